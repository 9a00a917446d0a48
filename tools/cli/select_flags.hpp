// The selector's command-line flags, shared by every tool that selects (sattn-select, and
// sattn-emit / sattn run for bare ops), so they all choose alike and document alike.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "formats/profile.hpp"
#include "sattn/select.hpp"

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace sattn {

struct SelectFlags {
  std::string backend = "cpu";
  std::string force;
  std::vector<std::string> disable;
  bool prefer_bsr = false, prefer_sw = false;
  int64_t l1_bytes = 0;
  bool use_hw_probe = false;
  std::string profile;  // --profile NAME|PATH (sattn-profile(5))
  double min_recall = 0;              // --min-recall R (sattn-select only: add_recall_to)
  std::vector<std::string> data;      // --data DIR, repeatable: calibration samples
  uint64_t seed = 0x5A77;             // --seed: the synthetic calibration sample without --data
  double recall_confidence = kRecallConfidence;  // --recall-confidence C: the bound's confidence
  std::string recall_bound = "window";           // --recall-bound window|mean|cv: what the bound covers
  DataLayout layout = DataLayout::bhsd;  // --layout: the axis order of the --data arrays
  CLI::Option *min_recall_opt = nullptr, *data_opt = nullptr, *seed_opt = nullptr, *confidence_opt = nullptr,
              *bound_opt = nullptr;
  // Which options the command line gave: flags outrank the environment only where given.
  CLI::Option *backend_opt = nullptr, *force_opt = nullptr, *disable_opt = nullptr, *prefer_bsr_opt = nullptr,
              *prefer_sw_opt = nullptr, *l1_opt = nullptr, *probe_opt = nullptr,
              *profile_opt = nullptr;

  // Adds --force-spec/--spec, --disable, --prefer-bsr, --prefer-sw, --l1-bytes, and optionally
  // --backend (the cost model's target) and --use-hw-probe. `context` prefixes the help texts
  // ("" in sattn-select, "Selection of bare ops: " elsewhere).
  void add_to(CLI::App&, const std::string& context, bool with_backend, bool with_probe);
  // Adds --min-recall, --recall-confidence, --recall-bound, --data (repeatable) and --seed: selection under a quality target
  // (sattn-select; the other tools take SATTN_MIN_RECALL or the profile's select.min_recall and
  // calibrate on the synthetic sample).
  void add_recall_to(CLI::App&);
  // What the command line asked (unset flags stay unset); --use-hw-probe runs the probe here.
  SelectRequest request() const;
  // The flags merged with the environment and the profile (resolve_select_request). Bad
  // values: Error(usage); a bad profile: Error(invalid_input) with file:line:col.
  SelectOptions resolve() const;
};


}  // namespace sattn
