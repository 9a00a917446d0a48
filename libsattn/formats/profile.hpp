// Profiles inside the library: the loaded YAML chain, the section loaders' registry and the
// yaml-cpp helpers the backends' section loaders use. The user's API is sattn/profile.hpp.
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "sattn/op.hpp"
#include "sattn/profile.hpp"

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

// Reads, validates and follows `base:` (cycles and unknown bases are errors). Every file is
// checked against sattn.profile/v1: unknown keys and wrong types are Error(invalid_input) with
// file:line:col. Backend sections are checked by their own loaders (register_profile_section).
Profile load_profile(const std::string& name_or_path);

// Block-style YAML text of a JSON value (for `profile show`).
std::string json_to_yaml_text(const nlohmann::json&, int indent = 0);

// The parts the core applies, from a loaded profile (sattn/profile.hpp has them by name).
ProfileSelect profile_select(const Profile&);
ProfileDefaults profile_defaults(const Profile&);

// A backend registers the checker of its section ("rvv", "rocc" (formerly "accel"), "energy", "imc") so that
// load_profile() validates every section with the same loader the backend applies.
using SectionChecker = std::function<void(const YAML::Node&, const std::string& file)>;
void register_profile_section(const std::string& key, SectionChecker);

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
