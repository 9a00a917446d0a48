// Profiles (sattn-profile(5)): named bundles of selector hints, backend parameters and defaults,
// in YAML (schema sattn.profile/v1), found by NAME in a search path or given as a PATH. The
// precedence everywhere: flags > environment > profile > built-in defaults. This is the part a
// user needs: find, list, validate and show profiles, and read the parts the core applies (the
// backends read their own sections when given a profile name, e.g. BackendRunOptions::profile;
// the selector through SelectRequest::profile).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sattn/op.hpp"

namespace sattn {

// Where profile names are looked up, first match wins: ./profiles, $XDG_CONFIG_HOME/sattn/profiles
// (default ~/.config/sattn/profiles), <prefix>/share/sattn/profiles (beside the executable; in a
// build tree build/share/sattn/profiles).
std::vector<std::string> profile_search_path();

// A NAME (looked up as NAME.yaml in the search path) or a PATH (contains '/' or ends in .yaml).
// Throws Error(usage) listing the search path when nothing matches.
std::string find_profile(const std::string& name_or_path);

struct ProfileEntry {
  std::string name, path, description;
  bool shadowed = false;  // a profile of the same name comes earlier in the search path
};
// Every profile in the search path, in lookup order.
std::vector<ProfileEntry> list_profiles();

// Reads a profile and its `base:` chain and checks every file against sattn.profile/v1 and every
// backend section with that backend's loader: Error(invalid_input) with file:line:col on the
// first problem (unknown key, wrong type, out of range, inheritance cycle).
void validate_profile(const std::string& name_or_path);
// The profile with its chain merged (child keys over base keys), as a JSON object text: what
// `sattn profile show --format json` prints ("inherits" lists the files, base first).
std::string profile_json(const std::string& name_or_path);

// Profile parts the core applies itself.
struct ProfileSelect {
  std::optional<std::string> prefer;  // "bsr", "sw" or "none"
  std::optional<int64_t> l1_bytes;
  std::optional<double> min_recall;    // select.min_recall: the quality target (sattn-select --min-recall)
  std::optional<double> recall_confidence;  // select.recall_confidence (sattn-select --recall-confidence)
  std::optional<std::string> recall_bound;  // select.recall_bound: "window", "mean" or "cv" (sattn-select --recall-bound)
  std::optional<std::string> backend;  // the cost model's target: cpu, rvv, rocc, imc
  std::vector<Spec> disable;
};
ProfileSelect profile_select(const std::string& name_or_path);

struct ProfileDefaults {
  std::optional<Precision> precision;  // for ops without a precision attribute
  std::optional<int64_t> tile_rows;    // for ops without a tile_rows attribute
  std::optional<std::string> backend;  // `sattn run`'s default backend (cpu, rvv, rocc, imc, all)
};
ProfileDefaults profile_defaults(const std::string& name_or_path);

// Applies the defaults to an op: only attributes the op does not set itself.
void apply_profile_defaults(Op&, const ProfileDefaults&);

}  // namespace sattn
