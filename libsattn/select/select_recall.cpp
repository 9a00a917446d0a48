// Selection under a quality target (sattn-select --min-recall; sattn-select(1), QUALITY TARGET).
//
// Every point of the recall grid is costed by the backend's cost model (select_cost.cpp) and its
// layout is built on each calibration sample; its recall there is the worst query head's lower
// bound of the head's mean row recall (recall_bound below for one sample, recall_pooled_bound over
// several; sattn/fidelity.hpp defines the row recall), dense counting as 1 by definition. The cheapest point whose bound reaches the
// target wins; when no sparse point does, dense does,
// with a warning. A sparse point that keeps every pair dense attention uses is left out (it is
// dense under another name). The selector still knows no backend (R3): the costs come from the
// cost model's constants, the recall from the data.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <limits>

#include "formats/data.hpp"
#include "sattn/fidelity.hpp"
#include "sattn/formats.hpp"
#include "sattn/layout.hpp"
#include "sattn/select.hpp"
#include "select/select_cost.hpp"

namespace sattn {

namespace {

std::string number(double v, const char* fmt = "%g") {
  char buf[32];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

// An in-memory sample: the op's shapes (bhsd, K/V with kv_heads heads), finite values.
void check_calibration_sample(const Op& op, const QKV& s, size_t index) {
  const Shape& sh = op.shape;
  const std::string what = "calibration sample " + std::to_string(index);
  auto check = [&](const Tensor& t, const char* name, std::array<int64_t, 4> want) {
    if (t.shape != want)
      throw Error(ExitCode::invalid_input, what + ": " + name + " has shape [" + std::to_string(t.shape[0]) + ", " +
                                               std::to_string(t.shape[1]) + ", " + std::to_string(t.shape[2]) + ", " +
                                               std::to_string(t.shape[3]) + "], op '" + op.name + "' needs [" +
                                               std::to_string(want[0]) + ", " + std::to_string(want[1]) + ", " +
                                               std::to_string(want[2]) + ", " + std::to_string(want[3]) + "]");
    for (size_t n = 0; n < t.data.size(); ++n)
      if (!std::isfinite(t.data[n]))
        throw Error(ExitCode::invalid_input, what + ": " + name + " element " + std::to_string(n) + " is " +
                                                 (std::isnan(t.data[n]) ? "NaN" : "Inf"));
  };
  check(s.q, "q", {sh.batch, sh.heads, sh.seq_len, sh.head_dim});
  check(s.k, "k", {sh.batch, sh.kv_heads, sh.kv_len, sh.head_dim});
  check(s.v, "v", {sh.batch, sh.kv_heads, sh.kv_len, sh.head_dim});
}

}  // namespace

RecallBand recall_band_stats(const std::vector<double>& rows) {
  RecallBand r;
  const int64_t n = int64_t(rows.size());
  if (n == 0) return r;
  double sum = 0;
  for (double v : rows) sum += v;
  r.mean = sum / double(n);
  const int64_t bands = std::min<int64_t>(kRecallBands, n);
  if (bands < 2) return r;
  std::vector<double> band_mean(size_t(bands), 0.0);
  for (int64_t b = 0; b < bands; ++b) {
    const int64_t i0 = b * n / bands, i1 = (b + 1) * n / bands;
    double s = 0;
    for (int64_t i = i0; i < i1; ++i) s += rows[size_t(i)];
    band_mean[size_t(b)] = s / double(i1 - i0);
  }
  // The variance of a band mean from successive differences (von Neumann): a smooth trend over
  // positions (early rows see few keys), which every window of text shares, cancels.
  double var = 0;
  for (int64_t b = 1; b < bands; ++b) {
    const double diff = band_mean[size_t(b)] - band_mean[size_t(b - 1)];
    var += diff * diff;
  }
  var /= 2.0 * double(bands - 1);
  r.stderr_mean = std::sqrt(var / double(bands));
  return r;
}

double recall_sigmas(double confidence) {
  if (!(confidence >= 0.5 && confidence < 1))
    throw Error(ExitCode::usage, "the recall confidence must be from 0.5 to below 1 (got " + number(confidence) + ")");
  // The standard normal quantile by bisection on Phi(x) = erfc(-x / sqrt 2) / 2 (monotone; 200
  // halvings of [0, 40] reach the double's resolution).
  double lo = 0, hi = 40;
  for (int i = 0; i < 200; ++i) {
    const double mid = 0.5 * (lo + hi);
    (0.5 * std::erfc(-mid / std::sqrt(2.0)) < confidence ? lo : hi) = mid;
  }
  return std::sqrt(2.0) * 0.5 * (lo + hi);
}

double recall_bound(const std::vector<double>& rows, double confidence) {
  const RecallBand r = recall_band_stats(rows);
  return std::clamp(r.mean - recall_sigmas(confidence) * r.stderr_mean, 0.0, 1.0);
}

const char* to_string(RecallBound b) {
  return b == RecallBound::mean ? "mean" : b == RecallBound::cv ? "cv" : "window";
}

std::optional<RecallBound> parse_recall_bound(const std::string& name) {
  if (name == "window") return RecallBound::window;
  if (name == "mean") return RecallBound::mean;
  if (name == "cv") return RecallBound::cv;
  return std::nullopt;
}

double recall_pooled_bound(const std::vector<double>& sample_means, double confidence, RecallBound bound) {
  const size_t n = sample_means.size();
  if (n < 2) throw Error(ExitCode::usage, "a pooled recall bound needs 2 or more samples (got " + std::to_string(n) + ")");
  double mean = 0;
  for (double m : sample_means) mean += m;
  mean /= double(n);
  double var = 0;
  for (double m : sample_means) var += (m - mean) * (m - mean);
  var /= double(n - 1);
  const double z = recall_sigmas(confidence) / std::sqrt(2.0);
  const double spread = bound == RecallBound::window ? 1.0 + 1.0 / double(n) : 1.0 / double(n);  // cv: the mean bound
  return std::clamp(mean - z * std::sqrt(var) * std::sqrt(spread), 0.0, 1.0);
}

std::vector<double> recall_cv_ladder(double cap) {
  recall_sigmas(cap);  // the range check
  std::vector<double> ladder;
  for (int step = 0; step < 10 && (50.0 + 5.0 * step) / 100.0 < cap - 1e-12; ++step) ladder.push_back((50.0 + 5.0 * step) / 100.0);
  ladder.push_back(cap);
  return ladder;
}

RecallCv recall_cv_confidence(const std::vector<RecallCvPoint>& points, double target, double cap) {
  size_t n = 0, heads = 0;
  for (const RecallCvPoint& p : points)
    if (!p.means.empty()) {
      n = p.means.size();
      heads = p.means[0].size();
      break;
    }
  RecallCv out;
  out.confidence = cap;
  if (n == 0) {  // no sparse point: every fold chooses dense (or nothing), whatever the confidence
    out.reached = !points.empty();
    out.recall = out.reached ? 1.0 : 0.0;
    return out;
  }
  if (n < size_t(kRecallCvMinSamples))
    throw Error(ExitCode::usage, "choosing the recall confidence by cross-validation needs " +
                                     std::to_string(kRecallCvMinSamples) + " or more calibration samples (got " +
                                     std::to_string(n) + ")");
  for (double c : recall_cv_ladder(cap)) {
    std::vector<double> held(heads, 0.0);  // per head: the sum over folds of the left-out sample's recall
    for (size_t f = 0; f < n; ++f) {
      const RecallCvPoint* chosen = nullptr;
      for (const RecallCvPoint& p : points) {
        double bound = 1;
        const size_t scored_heads = p.means.empty() ? 0 : heads;
        for (size_t h = 0; h < scored_heads; ++h) {
          std::vector<double> rest;
          for (size_t s = 0; s < n; ++s)
            if (s != f) rest.push_back(p.means[s][h]);
          bound = std::min(bound, recall_pooled_bound(rest, c, RecallBound::mean));
        }
        if (bound >= target) {
          chosen = &p;
          break;
        }
      }
      // No point reaches the target on this fold's samples (dense disabled): the fold scores 0.
      for (size_t h = 0; h < heads; ++h)
        held[h] += !chosen ? 0.0 : chosen->means.empty() ? 1.0 : chosen->means[f][h];
    }
    double worst = 1;
    for (double v : held) worst = std::min(worst, v / double(n));
    if (worst >= target) {
      out.confidence = c;
      out.recall = worst;
      out.reached = true;
      return out;
    }
    out.recall = worst;  // the cap's, when no confidence reaches the target
  }
  return out;
}

std::string grid_label(Spec spec, const SpecParams& params) {
  if (const auto* p = std::get_if<SlidingWindowParams>(&params); p && spec == Spec::sliding_window) {
    std::string s = "window_size=" + std::to_string(p->window_size);
    if (p->dilation != 1) s += ",dilation=" + std::to_string(p->dilation);
    if (p->wrap) s += ",wrap=true";
    return s;
  }
  if (const auto* p = std::get_if<BsrParams>(&params); p && spec == Spec::bsr) {
    std::string s = "keep_ratio=" + number(p->keep_ratio) + ",block_size=" + std::to_string(p->block_size);
    if (p->comp_block_size) s += ",comp_block_size=" + std::to_string(p->comp_block_size);
    if (p->global_tokens) s += ",global_tokens=" + std::to_string(p->global_tokens);
    return s;
  }
  if (const auto* p = std::get_if<TopkParams>(&params); p && spec == Spec::topk_per_query)
    return "topk_k=" + std::to_string(p->topk_k);
  return "";
}

std::vector<GridPoint> recall_grid(const Op& op) {
  std::vector<GridPoint> grid;
  Op base = op;
  // The grid's parameters, the specs' defaults for the rest; the op's tile hints stay (the cost
  // model reads them).
  base.attrs = PatternAttrs{};
  base.attrs.tile_M = op.attrs.tile_M, base.attrs.tile_S = op.attrs.tile_S;
  base.attrs.tile_D = op.attrs.tile_D, base.attrs.tile_rows = op.attrs.tile_rows;
  base.forced_spec.reset();
  auto add = [&](Spec spec, const Op& o) {
    try {
      SpecParams params = resolve_params(o, spec);
      if (!select_detail::why_infeasible(o, spec, params).empty()) return;
      grid.push_back({spec, params, grid_label(spec, params), o.attrs});
    } catch (const Error&) {
      // a point this op cannot take (window larger than the keys, ...): not in its grid
    }
  };
  for (int64_t w : {4, 8, 16, 32, 64, 128, 256, 512}) {
    Op o = base;
    o.attrs.window_size = w;
    add(Spec::sliding_window, o);
  }
  for (int64_t b : {32, 64})
    for (double r : {0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7}) {
      Op o = base;
      o.attrs.block_size = b;
      o.attrs.keep_ratio = r;
      add(Spec::bsr, o);
    }
  for (int64_t k : {8, 16, 32, 64, 128}) {
    Op o = base;
    o.attrs.topk_k = k;
    add(Spec::topk_per_query, o);
  }
  add(Spec::dense, base);
  return grid;
}

namespace select_detail {

RecallChoice choose_by_recall(const Op& op, const SelectOptions& o, const CostContext& ctx,
                              const std::function<std::string(Spec)>& disabled) {
  const double target = *o.min_recall;
  recall_sigmas(o.recall_confidence);  // the range check, before any work
  struct Point {
    GridPoint grid;
    Candidate cand;
    double recall = 1, mean = 1, density = 1;  // recall: the bound compared with the target
    std::vector<HeadFidelity> heads;
    std::vector<int64_t> heads_rows;  // per (sample, head): its rows (a head without rows is not scored)
    std::vector<RecallBand> bands;  // per (sample, head): the bound's parts, for the plan's terms
  };
  std::vector<Point> points;
  for (GridPoint& g : recall_grid(op)) {
    Point p;
    p.cand = cost_of(op, g.spec, g.params, ctx);
    p.cand.spec = g.spec;
    if (std::string why = disabled(g.spec); !why.empty()) {
      p.cand.feasible = false;
      p.cand.why_not = why;
    }
    p.grid = std::move(g);
    points.push_back(std::move(p));
  }

  // The calibration samples, one at a time: the layouts of every usable sparse point, scored
  // against dense attention in one pass.
  // In-memory samples (the Python API) first, then the directories; neither: the synthetic one.
  const size_t in_memory = o.calibration_samples ? o.calibration_samples->size() : 0;
  std::vector<std::optional<std::string>> samples;
  for (size_t i = 0; i < in_memory; ++i) samples.emplace_back(std::nullopt);
  for (const std::string& dir : o.calibration_data) samples.emplace_back(dir);
  if (samples.empty()) samples.emplace_back(std::nullopt);
  for (size_t si = 0; si < samples.size(); ++si) {
    const auto& dir = samples[si];
    QKV loaded;
    if (si < in_memory) {
      check_calibration_sample(op, (*o.calibration_samples)[si], si);
    } else {
      DataSource src;
      src.dir = dir;
      src.seed = o.calibration_seed;
      src.layout = o.calibration_layout;
      loaded = load_qkv(op, src);
    }
    const QKV& data = si < in_memory ? (*o.calibration_samples)[si] : loaded;
    std::vector<Layout> layouts;
    std::vector<Point*> scored;
    layouts.reserve(points.size());
    for (Point& p : points) {
      if (!p.cand.feasible || p.grid.spec == Spec::dense) continue;
      layouts.push_back(build_layout(op, p.grid.spec, p.grid.params, &data.q, &data.k));
      scored.push_back(&p);
    }
    std::vector<const Layout*> ptrs;
    for (const Layout& l : layouts) ptrs.push_back(&l);
    FidelityOptions fo;
    fo.with_output = false;
    const auto results = evaluate_fidelity(op, data, ptrs, fo);
    for (size_t n = 0; n < scored.size(); ++n)
      scored[n]->heads.insert(scored[n]->heads.end(), results[n].begin(), results[n].end());
  }
  // Per point: the (sample, head) band statistics, the worst head's mean (pooled over the samples),
  // the density.
  const size_t n_samples = samples.size();
  for (Point& p : points) {
    if (p.heads.empty()) continue;
    const FidelitySummary s = summarize_fidelity(p.heads);
    p.mean = s.worst_head_recall;
    for (const HeadFidelity& h : p.heads) {
      p.bands.push_back(recall_band_stats(h.row_recall));
      p.heads_rows.push_back(h.rows);
    }
    p.density = s.density;
    p.heads.clear();
    if (p.density >= 1.0) {
      p.cand.feasible = false;
      p.cand.why_not = "keeps every pair dense attention uses (dense by another name)";
    }
  }
  // Cheapest first (the order of the choice below and of the cross-validation's folds).
  std::vector<Point*> order;
  for (Point& p : points) order.push_back(&p);
  std::stable_sort(order.begin(), order.end(), [](const Point* a, const Point* b) { return a->cand.cost < b->cand.cost; });

  // --recall-bound cv: the mean bound, at the confidence leave-one-out cross-validation over the
  // samples picks (recall_cv_confidence), at most the given one; with fewer samples, the mean bound
  // at the given confidence.
  RecallBound bound = o.recall_bound;
  double confidence = o.recall_confidence;
  std::string cv_note;
  if (bound == RecallBound::cv) {
    bound = RecallBound::mean;
    if (n_samples < size_t(kRecallCvMinSamples)) {
      cv_note = "; cv needs " + std::to_string(kRecallCvMinSamples) + " or more samples: the mean bound at " +
                number(confidence);
    } else {
      std::vector<RecallCvPoint> cv_points;
      for (const Point* p : order) {
        if (!p->cand.feasible) continue;
        RecallCvPoint cp;
        if (p->grid.spec != Spec::dense) {
          const size_t per_sample = p->bands.size() / n_samples;
          cp.means.assign(n_samples, {});
          for (size_t j = 0; j < per_sample; ++j) {
            if (p->heads_rows[j] == 0) continue;
            for (size_t si = 0; si < n_samples; ++si) cp.means[si].push_back(p->bands[si * per_sample + j].mean);
          }
        }
        cv_points.push_back(std::move(cp));
      }
      const RecallCv cv = recall_cv_confidence(cv_points, target, o.recall_confidence);
      confidence = cv.confidence;
      cv_note = std::string("; confidence ") + number(confidence) + " chosen by leave-one-out cross-validation over the " +
                std::to_string(n_samples) + " samples (out-of-sample recall " + number(cv.recall, "%.4f") +
                (cv.reached ? "" : ", below the target at every confidence up to " + number(o.recall_confidence)) + ")";
    }
  }
  // One sample: per head, its mean minus sqrt(2) z(C) band standard errors (z(C) for the mean
  // bound). Several: per head, the bound pooled over the samples (recall_pooled_bound), whose spread
  // between windows of text is what the bound has to cover. Either way the worst head's bound is
  // the point's recall.
  const double sigmas = recall_sigmas(confidence) / (bound == RecallBound::mean ? std::sqrt(2.0) : 1.0);
  for (Point& p : points) {
    if (p.bands.empty()) continue;
    p.recall = 1;
    const size_t per_sample = p.bands.size() / n_samples;  // every sample has the op's (batch, head)s
    if (n_samples == 1) {
      for (size_t i = 0; i < p.bands.size(); ++i)
        if (p.heads_rows[i] > 0)
          p.recall = std::min(p.recall, std::clamp(p.bands[i].mean - sigmas * p.bands[i].stderr_mean, 0.0, 1.0));
    } else {
      p.mean = 1;
      for (size_t j = 0; j < per_sample; ++j) {
        if (p.heads_rows[j] == 0) continue;
        std::vector<double> means;
        for (size_t si = 0; si < n_samples; ++si) means.push_back(p.bands[si * per_sample + j].mean);
        double mean = 0;
        for (double m : means) mean += m / double(n_samples);
        p.mean = std::min(p.mean, mean);
        p.recall = std::min(p.recall, recall_pooled_bound(means, confidence, bound));
      }
    }
  }

  // The first (cheapest) that reaches the target wins.
  Point* chosen = nullptr;
  const Point* best_sparse = nullptr;  // the sparse point of highest recall, for the warning
  int cheaper_missed = 0;
  bool sparse_meets = false;
  for (Point* p : order) {
    if (!p->cand.feasible) continue;
    if (p->grid.spec != Spec::dense && (!best_sparse || p->recall > best_sparse->recall)) best_sparse = p;
    sparse_meets = sparse_meets || (p->grid.spec != Spec::dense && p->recall >= target);
    if (chosen) continue;
    if (p->recall >= target)
      chosen = p;
    else
      ++cheaper_missed;
  }
  const std::string where = std::to_string(samples.size()) + " calibration sample" + (samples.size() == 1 ? "" : "s, pooled") +
                            (o.calibration_data.empty() && in_memory == 0
                                 ? " (synthetic, seed " + std::to_string(o.calibration_seed) + ")"
                                 : "");
  if (!chosen)
    throw Error(ExitCode::usage, "no candidate of the recall grid reaches recall " + number(target) + " on " + where +
                                     " for op '" + op.name + "', and dense is " + disabled(Spec::dense));

  RecallChoice r;
  r.spec = chosen->grid.spec;
  r.params = chosen->grid.params;
  r.attrs = chosen->grid.attrs;
  const std::string what = std::string(to_string(r.spec)) + (chosen->grid.label.empty() ? "" : " " + chosen->grid.label);
  r.reason = "cheapest on " + std::string(to_string(o.backend)) + " with recall >= " + number(target) + " on " + where +
             ": " + what + " (recall bound " + number(chosen->recall, "%.4f") + " at confidence " + number(confidence) +
             (bound == RecallBound::mean ? " for the mean over text" : "") + ", mean " + number(chosen->mean, "%.4f") + ", density " +
             number(chosen->density, "%.3f") + ", cost " + number(chosen->cand.cost, "%.3g") + "); " +
             std::to_string(cheaper_missed) + " cheaper candidate" + (cheaper_missed == 1 ? "" : "s") + " miss the target" + cv_note;
  if (r.spec == Spec::dense && best_sparse && !sparse_meets) {
    const std::string w = "op '" + op.name + "': no sparse candidate reaches recall " + number(target) + " on " + where +
                          " (best: " + std::string(to_string(best_sparse->grid.spec)) + " " + best_sparse->grid.label +
                          ", recall " + number(best_sparse->recall, "%.4f") + "); selecting dense";
    r.warnings.push_back(w);
    r.reason = "no sparse candidate reaches recall >= " + number(target) + " at confidence " + number(confidence) +
               " on " + where + " (best: " +
               std::string(to_string(best_sparse->grid.spec)) + " " + best_sparse->grid.label + ", recall " +
               number(best_sparse->recall, "%.4f") + "): dense" + cv_note;
  }
  for (Point& p : points) {
    nlohmann::json terms = nlohmann::json::parse(p.cand.terms, nullptr, false);
    if (!terms.is_object()) terms = nlohmann::json::object();
    terms["params"] = p.grid.label;
    if (p.cand.feasible || p.density >= 1.0) {
      terms["recall"] = p.recall;
      terms["recall_mean"] = p.mean;
      if (!p.bands.empty()) {
        nlohmann::json heads = nlohmann::json::array();
        for (const RecallBand& b : p.bands) heads.push_back({b.mean, b.stderr_mean});
        terms["recall_heads"] = heads;
      }
      terms["density"] = std::min(1.0, p.density);
    }
    terms["chosen"] = &p == chosen;
    p.cand.terms = terms.dump();
    r.candidates.push_back(std::move(p.cand));
  }
  return r;
}

}  // namespace select_detail

}  // namespace sattn
