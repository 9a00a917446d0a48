// Profiles (sattn-profile(5)): named bundles of selector hints, backend parameters and defaults,
// written in YAML (schema sattn.profile/v1). Precedence everywhere: flags > environment >
// profile > built-in defaults.
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "sattn/op.hpp"

namespace sattn {

// One file of a profile's inheritance chain.
struct ProfileFile {
  std::string name;  // the name it was found under, or its path
  std::string path;
  YAML::Node root;
};

struct Profile {
  std::string name;                // as asked (NAME or PATH)
  std::vector<ProfileFile> chain;  // base first, the asked profile last

  // The `key` section of every file in the chain that has one, base first: apply them in this
  // order so a child overrides only what it names. Each pair is (file path, node).
  std::vector<std::pair<std::string, YAML::Node>> sections(const std::string& key) const;
  // The whole chain merged (child keys over base keys, recursively), as JSON, for `profile show`.
  nlohmann::json merged() const;
};

// Where profile names are looked up, first match wins: ./profiles, $XDG_CONFIG_HOME/sattn/profiles
// (default ~/.config/sattn/profiles), <prefix>/share/sattn/profiles (beside the executable; in a
// build tree build/share/sattn/profiles).
std::vector<std::string> profile_search_path();

// A NAME (looked up as NAME.yaml in the search path) or a PATH (contains '/' or ends in .yaml).
// Throws Error(usage) listing the search path when nothing matches.
std::string find_profile(const std::string& name_or_path);

// Reads, validates and follows `base:` (cycles and unknown bases are errors). Every file is
// checked against sattn.profile/v1: unknown keys and wrong types are Error(invalid_input) with
// file:line:col. Backend sections are checked by their own loaders (register_profile_section).
Profile load_profile(const std::string& name_or_path);

struct ProfileEntry {
  std::string name, path, description;
  bool shadowed = false;  // a profile of the same name comes earlier in the search path
};
std::vector<ProfileEntry> list_profiles();

// Block-style YAML text of a JSON value (for `profile show`).
std::string json_to_yaml_text(const nlohmann::json&, int indent = 0);

// A backend registers the checker of its section ("rvv", "accel", "energy", "imc") so that
// load_profile() validates every section with the same loader the backend applies.
using SectionChecker = std::function<void(const YAML::Node&, const std::string& file)>;
void register_profile_section(const std::string& key, SectionChecker);

// Profile parts the core applies itself.
struct ProfileSelect {
  std::optional<std::string> prefer;  // "bsr", "sw" or "none"
  std::optional<int64_t> l1_bytes;
  std::optional<double> min_recall;  // select.min_recall: the quality target (sattn-select --min-recall)
  std::optional<std::string> backend;
  std::vector<Spec> disable;
};
ProfileSelect profile_select(const Profile&);

struct ProfileDefaults {
  std::optional<Precision> precision;  // for ops without a precision attribute
  std::optional<int64_t> tile_rows;    // for ops without a tile_rows attribute
  std::optional<std::string> backend;  // `sattn run`'s default backend
};
ProfileDefaults profile_defaults(const Profile&);

// Applies the defaults to an op: only attributes the op does not set itself.
void apply_profile_defaults(Op&, const ProfileDefaults&);

// yaml-cpp helpers for strict section loaders: file:line:col of a node (1-based), and typed
// reads that fail with that location.
SourceLoc yaml_loc(const std::string& file, const YAML::Node&);
[[noreturn]] void yaml_fail(const std::string& file, const YAML::Node&, const std::string& message);
void yaml_require_map(const std::string& file, const YAML::Node&, const std::string& what);
// Every key of `map` must be in `known` ("unknown key 'x' in SECTION; known: a, b, c").
void yaml_check_keys(const std::string& file, const YAML::Node& map, const std::string& section,
                     const std::vector<std::string>& known);
int64_t yaml_int(const std::string& file, const YAML::Node&, const std::string& key, int64_t lo, int64_t hi);
double yaml_real(const std::string& file, const YAML::Node&, const std::string& key, double lo, double hi);
bool yaml_bool(const std::string& file, const YAML::Node&, const std::string& key);
std::string yaml_string(const std::string& file, const YAML::Node&, const std::string& key);

}  // namespace sattn
