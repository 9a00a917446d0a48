// Spec selection (DESIGN §6): rules, then a cost model, then overrides; the Plan it makes is in
// sattn/plan.hpp.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sattn/formats.hpp"
#include "sattn/op.hpp"
#include "sattn/plan.hpp"
#include "sattn/tensor.hpp"

namespace sattn {

// Selector hints. Precedence: flags > environment > profile > defaults; see
// resolve_select_options().
// What a piece of hardware says it can run (the accelerator's PROBE), handed to the selector as
// plain data: the selector knows no backend (ARCHITECTURE.md, R3).
struct HwCapabilities {
  std::set<Spec> specs;          // the specs it runs
  int64_t scratchpad_bytes = 0;  // becomes the l1_bytes hint unless a flag, SATTN_* or the profile set one
  std::string description;       // for messages: "LANES 16, spec mask 0xff"
  std::string where;             // for messages: "spec mask 0x7f, build/libexec/sattn/sattn-accel-sim-lanes16"
};

// The default confidence of the recall bound (see recall_bound below).
inline constexpr double kRecallConfidence = 0.95;

// What the recall bound covers (--recall-bound / SATTN_RECALL_BOUND; sattn-select(1), QUALITY
// TARGET). window: a prediction bound for the head's mean recall on one more window of text (each
// window the user runs must reach R). mean: a confidence bound for the head's mean recall over text
// like the calibration samples (the recall of many windows pooled must reach R). With n samples
// the margin is z(C) x the spread of one window's mean x sqrt(1 + 1/n) (window) or sqrt(1/n) (mean).
// cv: the mean bound, its confidence chosen from the calibration samples by leave-one-out
// cross-validation (recall_cv_confidence below), at most the given confidence.
enum class RecallBound { window, mean, cv };

struct SelectOptions {
  Target backend = Target::cpu;
  std::optional<Spec> force;        // --force-spec / SATTN_FORCE_SPEC (the op's spec attribute ranks below)
  std::set<Spec> disabled;          // --disable / SATTN_DISABLE_{SW,BSR,NM,TOPK,LSH}
  bool prefer_bsr = false;          // --prefer-bsr / SATTN_PREFER_BSR
  bool prefer_sw = false;           // --prefer-sw / SATTN_PREFER_SW
  std::optional<int64_t> l1_bytes;  // --l1-bytes / SATTN_HW_L1_BYTES (default per backend)
  bool use_hw_probe = false;        // --use-hw-probe
  std::optional<HwCapabilities> hw; // the probe's answer (the caller probes; resolve_select_options folds it)
  // A profile's defaults for ops that do not set these attributes themselves.
  std::optional<Precision> default_precision;
  std::optional<int64_t> default_tile_rows;
  // Selection under a quality target (sattn-select --min-recall; select_recall.cpp): the cheapest
  // point of recall_grid() whose recall on the calibration samples is at least min_recall.
  std::optional<double> min_recall;            // --min-recall / SATTN_MIN_RECALL / profile select.min_recall
  // How sure the recall bound is that another window of text reaches min_recall, in [0.5, 1):
  // --recall-confidence / SATTN_RECALL_CONFIDENCE / profile select.recall_confidence. The bound is
  // mean - recall_sigmas(recall_confidence) * stderr (recall_bound below).
  double recall_confidence = kRecallConfidence;
  RecallBound recall_bound = RecallBound::window;  // --recall-bound / SATTN_RECALL_BOUND
  std::vector<std::string> calibration_data;   // --data DIR (repeatable): DIR/{q,k,v}.npy, one sample each
  uint64_t calibration_seed = 0x5A77;          // no --data: the synthetic generator with this seed
  // In-memory calibration samples (the Python API's select(data=[(q, k, v), ...])), scored before
  // calibration_data; each must match the op's shapes and be finite (Error(invalid_input)).
  std::shared_ptr<const std::vector<QKV>> calibration_samples;
  DataLayout calibration_layout = DataLayout::bhsd;  // --layout: the axis order of the --data arrays
  // Where each hint came from, quoted in the selection reason: "force" -> "--force-spec bsr" or
  // "SATTN_FORCE_SPEC=bsr"; "disable:<spec>" -> "--disable bsr" or "SATTN_DISABLE_BSR=1";
  // "prefer", "l1_bytes" likewise. Filled by resolve_select_options(); a missing key reads as
  // the option's name.
  std::map<std::string, std::string> source;
  // Called on every bare op before selection (not on plans or artifacts): the tools set it with
  // --data to fill the shape attributes the op leaves out from the arrays (infer_shape_from_data).
  std::function<void(Op&)> complete_op;
};

struct ProfileSelect;  // profile.hpp
// Fills every field the flags left unset from the environment (SATTN_*), then from the profile's
// select section when one is given (precedence: flags > environment > profile > defaults).
// `flags` holds what the command line said; `flag_set` names the fields it set explicitly.
SelectOptions resolve_select_options(const SelectOptions& flags, const std::set<std::string>& flag_set,
                                     const ProfileSelect* profile = nullptr, const std::string& profile_name = "");

// --use-hw-probe: specs the hardware does not run become disabled with the reason "not supported
// by the accelerator (probe)" (a forced one is Error(usage)), and its scratchpad size becomes the
// l1_bytes hint unless a flag, the environment or the profile set one. Each decision is recorded
// in options.source ("probe", "unsupported:<spec>", "l1_bytes").
void fold_capabilities(SelectOptions& options, const HwCapabilities&);

// What a caller asks of the selector: a tool's flags, an MLIR pass's options, the C API. Fields
// left unset fall through to the environment (SATTN_*), then to the profile, then to the defaults.
struct SelectRequest {
  std::optional<std::string> backend;          // the cost model's target: cpu, rvv, rocc, imc
  std::optional<Spec> force;                   // --force-spec
  std::optional<std::vector<Spec>> disable;    // --disable (given, even empty, replaces SATTN_DISABLE_*)
  std::optional<bool> prefer_bsr, prefer_sw;   // --prefer-bsr / --prefer-sw
  std::optional<int64_t> l1_bytes;             // --l1-bytes
  bool use_hw_probe = false;                   // --use-hw-probe: `hw` holds the probe's answer
  std::optional<HwCapabilities> hw;
  std::optional<std::string> profile;          // a profile NAME or PATH (sattn-profile(5))
  std::optional<double> min_recall;            // --min-recall R in [0, 1]
  std::optional<double> recall_confidence;     // --recall-confidence C in [0.5, 1)
  std::optional<RecallBound> recall_bound;     // --recall-bound window|mean|cv
  std::vector<std::string> data;               // --data DIR: calibration samples for min_recall
  std::optional<uint64_t> seed;                // --seed: the synthetic calibration sample without --data
  DataLayout layout = DataLayout::bhsd;        // --layout: the axis order of the --data arrays
};
// parse_spec for an option value; an unknown name is Error(usage) naming the option and listing the specs.
Spec spec_option(const std::string& option, const std::string& value);
// The merge of flags > environment > profile > defaults: loads the profile when one is named,
// applies its select and defaults sections. Bad values: Error(usage); a bad profile:
// Error(invalid_input) with file:line:col.
SelectOptions resolve_select_request(const SelectRequest&);

// The recall grid (sattn-select(1), QUALITY TARGET): the candidates a recall-constrained
// selection compares, and sattn-eval --grid evaluates. sliding_window with window_size in
// {4, 8, 16, 32, 64, 128, 256, 512}; bsr with block_size in {32, 64} x keep_ratio in {0.05, 0.1,
// 0.15, 0.2, 0.3, 0.4, 0.5, 0.7}; topk_per_query with topk_k in {8, 16, 32, 64, 128}; dense.
// Points the op cannot take (resolve_params or the cost model's feasibility) are left out; the
// other attributes are the specs' defaults, not the op's (its tile hints are kept).
struct GridPoint {
  Spec spec = Spec::dense;
  SpecParams params;
  std::string label;  // "keep_ratio=0.1,block_size=64"; "" for dense
  PatternAttrs attrs; // the op's attributes for this point (its tile hints kept): what a plan's op carries
};
std::vector<GridPoint> recall_grid(const Op&);
// The label of a spec's parameters as recall_grid() writes it.
std::string grid_label(Spec, const SpecParams&);

// What a recall-constrained selection compares with the target, per (calibration sample, query
// head): a lower bound of the head's mean row recall that one window of rows can vouch for. The
// rows (in order) are cut into kRecallBands contiguous bands of (nearly) equal size, and the bound
// is mean - sigmas * sd(band means) / sqrt(bands), clamped to [0, 1]: the batch-means standard
// error of the mean (contiguous bands, because neighbouring rows attend alike). sigmas =
// recall_sigmas(confidence) = sqrt(2) * z(confidence), z the standard normal quantile: one-sided
// at that confidence for the difference between the means of two independent windows of the same
// length (2.326 at the default 0.95; 0 at 0.5, the plain mean). sd(band means) is estimated from
// successive differences, sum (m[b+1] - m[b])^2 / (2 (bands - 1)), so that a smooth trend over
// positions does not count as noise. Fewer than 2 rows: the mean. sattn-select(1), QUALITY
// TARGET; docs/decisions.md.
inline constexpr int kRecallBands = 8;
struct RecallBand {
  double mean = 1;         // the head's mean row recall
  double stderr_mean = 0;  // sd(band means) / sqrt(bands), sd from successive differences
};
RecallBand recall_band_stats(const std::vector<double>& row_recall);
// sqrt(2) * the standard normal quantile of `confidence`; Error(usage) outside [0.5, 1).
double recall_sigmas(double confidence);
// mean - recall_sigmas(confidence) * stderr_mean, in [0, 1].
double recall_bound(const std::vector<double>& row_recall, double confidence = kRecallConfidence);
// With two or more calibration samples (windows of text), one query head's bound pools them:
// given the head's mean row recall on each sample, mean - z(confidence) * sd * sqrt(1 + 1/n), n
// samples, sd their sample standard deviation (n - 1 in the denominator), clamped to [0, 1]: a
// one-sided prediction bound for the head's mean on one more window. The spread between windows
// replaces the row bands' standard error, and for n = 1 the same formula with the band estimate
// of one window's sd is recall_bound's sqrt(2) z. Fewer than 2 means: Error(usage).
// docs/decisions.md, "Calibration on many windows". RecallBound::mean: mean - z(confidence) * sd *
// sqrt(1/n), a one-sided confidence bound for the mean over windows (docs/decisions.md, "The
// issue's goals per configuration").
double recall_pooled_bound(const std::vector<double>& sample_means, double confidence = kRecallConfidence,
                           RecallBound bound = RecallBound::window);
// RecallBound::cv: the confidence of the mean bound, chosen on the calibration samples alone by
// leave-one-out cross-validation (docs/decisions.md, "Choosing the confidence on the calibration
// windows"). For each confidence C of recall_cv_ladder(cap), ascending, and each sample f: the
// choice made on the other n - 1 samples (the cheapest point whose worst head's mean bound at C over
// them reaches the target; a point without means is dense, recall 1), scored on sample f. C's
// out-of-sample recall is the worst head's mean of those scores over the n folds, the statistic a
// pooled held-out reading measures; the smallest C whose out-of-sample recall reaches the target
// wins, else the cap. points: the feasible candidates, cheapest first; means[s][h]: head h's mean
// row recall on sample s (every point the same samples and heads). Needs kRecallCvMinSamples
// samples (Error(usage) otherwise; the selector uses the mean bound at the cap below that).
inline constexpr int kRecallCvMinSamples = 4;
struct RecallCvPoint {
  std::vector<std::vector<double>> means;  // [sample][head]; empty: dense (recall 1 by definition)
};
struct RecallCv {
  double confidence = kRecallConfidence;  // the chosen confidence (the cap when none reaches the target)
  double recall = 0;                      // its out-of-sample recall
  bool reached = false;                   // whether a confidence of the ladder reached the target
};
// 0.5, 0.55, ..., 0.95: the steps below cap, then cap (in [0.5, 1)).
std::vector<double> recall_cv_ladder(double cap);
RecallCv recall_cv_confidence(const std::vector<RecallCvPoint>& cheapest_first, double target,
                              double cap = kRecallConfidence);
// "window", "mean" or "cv"; parse_recall_bound: std::nullopt for any other name.
const char* to_string(RecallBound);
std::optional<RecallBound> parse_recall_bound(const std::string& name);

// Selects a spec for `op`. A forced spec the op cannot support is Error(invalid_input) naming why.
Plan select_spec(const Op&, const SelectOptions&);

// Reads plans (sattn.plan/v1 JSON Lines) or bare ops in any op format, selecting in-process
// with `options` for bare ops. Errors carry file:line:col.
std::vector<Plan> read_plans(const std::string& path, const SelectOptions& options);
std::vector<Plan> parse_plans(std::string_view text, const std::string& filename, const SelectOptions& options);

}  // namespace sattn
