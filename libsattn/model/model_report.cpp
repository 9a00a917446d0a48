// The model report: sattn.model/v1 JSON (schemas/model.schema.json), a text table, a gnuplot
// script with its data inline.
#include <cmath>
#include <sstream>

#include <nlohmann/json.hpp>

#include "sattn/model.hpp"
#include "support/text_table.hpp"

namespace sattn {

namespace {

using nlohmann::json;

json cost_json(const LayerCost& c) {
  return json{{"pairs", c.pairs},
              {"density", c.density},
              {"flops", c.flops},
              {"bytes", c.bytes},
              {"cpu", {{"cycles", c.cpu_cycles}, {"seconds", c.cpu_s}}},
              {"rvv", {{"cycles", c.rvv_cycles}}},
              {"rocc", {{"cycles", c.rocc_cycles}, {"dram_bytes", c.rocc_dram_bytes}, {"energy_pj", c.rocc_energy_pj}}},
              {"imc", {{"energy_pj", c.imc_energy_pj}, {"latency_ns", c.imc_latency_ns}}}};
}

json params_json(const SpecParams& p) {
  return std::visit(
      [](const auto& v) -> json {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, SlidingWindowParams>)
          return {{"window_size", v.window_size}, {"dilation", v.dilation}};
        else if constexpr (std::is_same_v<T, BsrParams>)
          return {{"block_size", v.block_size}, {"keep_ratio", v.keep_ratio}, {"comp_block_size", v.comp_block_size},
                  {"global_tokens", v.global_tokens}};
        else
          return json::object();
      },
      p);
}

double ratio(double dense, double sparse) {
  return sparse > 0 ? dense / sparse : 0;
}

// Totals the user reads first: time to first token (prefill) or tokens per second (decode) per
// backend, energy per token, DRAM traffic; sparse, dense and dense / sparse.
json totals_json(const ModelReport& r, const LayerCost& c, const std::map<std::string, double>& secs) {
  const bool decode = r.options.phase.kind == ModelPhase::Kind::decode;
  const double tokens = decode ? double(r.options.phase.tokens) : double(r.options.phase.seq_len);
  json t = cost_json(c);
  json s = json::object();
  for (const auto& [backend, v] : secs) {
    json b{{"seconds", v}};
    if (decode) b["tokens_per_s"] = v > 0 ? tokens / v : 0;
    else b["ttft_s"] = v;
    s[backend] = b;
  }
  t["time"] = s;
  t["energy_per_token_pj"] = {{"rocc", c.rocc_energy_pj / tokens}, {"imc", c.imc_energy_pj / tokens}};
  t["dram_bytes_per_token"] = c.rocc_dram_bytes / tokens;
  return t;
}

}  // namespace

std::string model_report_json(const ModelReport& r, const std::string& tool) {
  const ModelConfig& m = r.config;
  const ModelPhase& ph = r.options.phase;
  json j;
  j["schema"] = "sattn.model/v1";
  j["producer"] = {{"tool", tool}, {"version", SATTN_VERSION}};
  json classes = json::array();
  for (LayerClass c : m.classes) classes.push_back(std::string(to_string(c)));
  j["model"] = {{"name", m.name},
                {"model_type", m.model_type},
                {"source", m.source},
                {"layers", m.layers},
                {"heads", m.heads},
                {"kv_heads", m.kv_heads},
                {"head_dim", m.head_dim},
                {"max_position_embeddings", m.max_position},
                {"sliding_window", m.sliding_window ? json(*m.sliding_window) : json(nullptr)},
                {"scale", m.scale()},
                {"softcap", m.softcap ? json(*m.softcap) : json(nullptr)},
                {"layer_classes", classes}};
  j["policy"] = {{"name", r.policy.name}, {"file", r.policy.file}};
  if (ph.kind == ModelPhase::Kind::prefill)
    j["phase"] = {{"kind", "prefill"}, {"seq_len", ph.seq_len}};
  else
    j["phase"] = {{"kind", "decode"}, {"context", ph.context}, {"tokens", ph.tokens}, {"chunk", ph.chunk}, {"steps", ph.steps()}};
  j["options"] = {{"precision", std::string(to_string(r.options.precision))},
                  {"batch", r.options.batch},
                  {"clock_mhz", r.options.clock_mhz},
                  {"cpu_ghz", r.options.cpu_ghz}};
  json layers = json::array();
  for (const LayerReport& l : r.layers)
    layers.push_back({{"index", l.index},
                      {"class", std::string(to_string(l.cls))},
                      {"spec", std::string(to_string(l.spec))},
                      {"params", params_json(l.params)},
                      {"rule", l.rule},
                      {"sparse", cost_json(l.sparse)},
                      {"dense", cost_json(l.dense)}});
  j["layers"] = layers;
  const json sparse = totals_json(r, r.sparse, r.seconds_sparse), dense = totals_json(r, r.dense, r.seconds_dense);
  j["totals"] = {{"sparse", sparse},
                 {"dense", dense},
                 {"saving", {{"cpu", ratio(r.dense.cpu_s, r.sparse.cpu_s)},
                             {"rvv", ratio(r.dense.rvv_cycles, r.sparse.rvv_cycles)},
                             {"rocc", ratio(r.dense.rocc_cycles, r.sparse.rocc_cycles)},
                             {"rocc_energy", ratio(r.dense.rocc_energy_pj, r.sparse.rocc_energy_pj)},
                             {"dram_bytes", ratio(r.dense.rocc_dram_bytes, r.sparse.rocc_dram_bytes)},
                             {"imc_energy", ratio(r.dense.imc_energy_pj, r.sparse.imc_energy_pj)},
                             {"imc_latency", ratio(r.dense.imc_latency_ns, r.sparse.imc_latency_ns)},
                             {"flops", ratio(r.dense.flops, r.sparse.flops)}}}};
  return j.dump() + "\n";
}

namespace {

std::string sig(double v) {
  return format_sig(v, 3);
}

std::string params_text(const LayerReport& l) {
  if (const auto* w = std::get_if<SlidingWindowParams>(&l.params)) return "w=" + std::to_string(w->window_size);
  if (const auto* b = std::get_if<BsrParams>(&l.params))
    return "b=" + std::to_string(b->block_size) + " keep=" + format_sig(b->keep_ratio, 3);
  return "";
}

// Seconds in the unit that reads best.
std::string seconds_text(double s) {
  if (s >= 1) return format_sig(s, 3) + " s";
  if (s >= 1e-3) return format_sig(s * 1e3, 3) + " ms";
  return format_sig(s * 1e6, 3) + " us";
}

}  // namespace

std::string model_report_text(const ModelReport& r) {
  const ModelConfig& m = r.config;
  const ModelPhase& ph = r.options.phase;
  const bool decode = ph.kind == ModelPhase::Kind::decode;
  std::ostringstream out;
  out << "model " << m.name << " (" << m.model_type << "): " << m.layers << " layers, " << m.heads << " heads, "
      << m.kv_heads << " kv heads, head_dim " << m.head_dim;
  if (m.sliding_window) out << ", sliding_window " << *m.sliding_window;
  if (m.softcap) out << ", softcap " << sig(*m.softcap);
  out << "\npolicy " << r.policy.name << "; ";
  if (decode)
    out << "decode " << ph.tokens << " tokens at context " << ph.context << ", " << ph.chunk << " per step (" << ph.steps() << " steps)";
  else
    out << "prefill " << ph.seq_len << " tokens";
  out << "; " << to_string(r.options.precision) << ", batch " << r.options.batch << ", clock " << format_sig(r.options.clock_mhz, 6)
      << " MHz (rvv, rocc), cpu " << format_sig(r.options.cpu_ghz, 6) << " GHz\n\n";
  TextTable t({"layer", "class", "spec", "params", "density", "cpu", "rvv Mcyc", "rocc Mcyc", "rocc uJ", "imc uJ", "dense rocc Mcyc"});
  for (const LayerReport& l : r.layers)
    t.add({std::to_string(l.index), std::string(to_string(l.cls)), std::string(to_string(l.spec)), params_text(l),
           sig(l.sparse.density), seconds_text(l.sparse.cpu_s), sig(l.sparse.rvv_cycles / 1e6), sig(l.sparse.rocc_cycles / 1e6),
           sig(l.sparse.rocc_energy_pj / 1e6), sig(l.sparse.imc_energy_pj / 1e6), sig(l.dense.rocc_cycles / 1e6)});
  out << t.str() << "\n";
  const double tokens = decode ? double(ph.tokens) : double(ph.seq_len);
  TextTable tot({"total", "sparse", "dense", "dense/sparse"});
  auto row = [&](const std::string& name, double s, double d, const std::string& unit, double scale) {
    tot.add({name, sig(s / scale) + unit, sig(d / scale) + unit, format_sig(ratio(d, s), 3) + "x"});
  };
  for (const char* b : {"cpu", "rvv", "rocc", "imc"}) {
    const double s = r.seconds_sparse.at(b), d = r.seconds_dense.at(b);
    if (decode) {
      tot.add({std::string(b) + " tokens/s", sig(tokens / s), sig(tokens / d), format_sig(ratio(d, s), 3) + "x"});
    } else {
      tot.add({std::string(b) + " time to first token", seconds_text(s), seconds_text(d), format_sig(ratio(d, s), 3) + "x"});
    }
  }
  row("rocc energy/token", r.sparse.rocc_energy_pj / tokens, r.dense.rocc_energy_pj / tokens, " uJ", 1e6);
  row("imc energy/token", r.sparse.imc_energy_pj / tokens, r.dense.imc_energy_pj / tokens, " uJ", 1e6);
  row("DRAM traffic", r.sparse.rocc_dram_bytes, r.dense.rocc_dram_bytes, " MB", 1e6);
  row("FLOPs", r.sparse.flops, r.dense.flops, " GFLOP", 1e9);
  out << tot.str();
  out << "\nattention layers only (no projections or MLPs); analytical models: sattn-model(1) COSTS\n";
  if (m.softcap)
    out << "softcap " << sig(*m.softcap) << ": one tanh per score, not in the cost models; of the backends only cpu runs it\n";
  return out.str();
}

std::string model_report_gnuplot(const ModelReport& r) {
  std::ostringstream g;
  const ModelPhase& ph = r.options.phase;
  const std::string phase = ph.kind == ModelPhase::Kind::decode
                                ? "decode " + std::to_string(ph.tokens) + " tokens at " + std::to_string(ph.context)
                                : "prefill " + std::to_string(ph.seq_len);
  g << "# sattn model: per-layer accelerator cycles, policy against all-dense: on top each layer's\n"
       "# cycles with the cumulative totals, below the per-layer cost stacked into one bar for dense\n"
       "# and one for the policy (a segment per layer, layer 0 at the bottom).\n"
       "# Run: gnuplot -e \"outfile='plot.svg'\" FILE (default sattn-model.svg).\n";
  g << "$layers << EOD\n# layer sparse_mcycles dense_mcycles cumulative_sparse cumulative_dense class\n";
  double cs = 0, cd = 0;
  for (const LayerReport& l : r.layers) {
    cs += l.sparse.rocc_cycles / 1e6;
    cd += l.dense.rocc_cycles / 1e6;
    g << l.index << ' ' << format_sig(l.sparse.rocc_cycles / 1e6, 6) << ' ' << format_sig(l.dense.rocc_cycles / 1e6, 6) << ' '
      << format_sig(cs, 6) << ' ' << format_sig(cd, 6) << ' ' << to_string(l.cls) << '\n';
  }
  g << "EOD\n";
  g << "if (!exists(\"outfile\")) outfile = 'sattn-model.svg'\n"
       "set terminal svg size 1000,1000 dynamic\nset output outfile\nset multiplot layout 2,1\n";
  g << "set title \"" << r.config.name << ", " << phase << ": accelerator Mcycles per layer (policy " << r.policy.name
    << " vs dense)\"\n";
  g << "set xlabel 'layer'\nset ylabel 'Mcycles per layer'\nset y2label 'cumulative Mcycles'\nset y2tics\nset ytics nomirror\n"
       "set style fill solid 0.6 border -1\nset boxwidth 0.4\nset key top left opaque\nset grid ytics\n";
  g << "plot $layers using ($1-0.2):3 with boxes title 'dense', \\\n"
       "     $layers using ($1+0.2):2 with boxes title 'policy', \\\n"
       "     $layers using 1:5 axes x1y2 with lines lw 2 title 'dense, cumulative', \\\n"
       "     $layers using 1:4 axes x1y2 with lines lw 2 title 'policy, cumulative'\n";
  // The same costs stacked: one bar per baseline, one segment per layer (gnuplot's columnstacked
  // histogram takes each `using` column as a bar and each data row as a segment of it).
  g << "set title \"per-layer accelerator Mcycles stacked (a segment per layer, layer 0 at the bottom)\"\n"
       "unset y2tics\nunset y2label\nset ytics mirror\nunset xlabel\nset ylabel 'Mcycles, all layers'\n"
       "set yrange [0:*]\nset key off\nset style data histograms\nset style histogram columnstacked\n"
       "set boxwidth 0.5 relative\nset xtics ('dense' 0, 'policy " << r.policy.name << "' 1)\n";
  g << "plot $layers using 3, '' using 2\nunset multiplot\n";
  return g.str();
}

}  // namespace sattn
