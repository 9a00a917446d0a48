#include "formats/profile.hpp"
#include "sattn/plan.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "formats/nesting.hpp"
#include "sattn/error.hpp"
#include "support/io.hpp"
#include "support/process.hpp"

namespace fs = std::filesystem;

namespace sattn {

// ---- strict YAML reading ------------------------------------------------------------------------

SourceLoc yaml_loc(const std::string& file, const YAML::Node& node) {
  const YAML::Mark m = node.Mark();
  if (m.line < 0) return SourceLoc{file, 0, 0};
  return SourceLoc{file, m.line + 1, m.column + 1};
}

void yaml_fail(const std::string& file, const YAML::Node& node, const std::string& message) {
  throw Error(ExitCode::invalid_input, message, yaml_loc(file, node));
}

void yaml_require_map(const std::string& file, const YAML::Node& node, const std::string& what) {
  if (!node.IsMap()) yaml_fail(file, node, what + " must be a mapping of key: value");
}

void yaml_check_keys(const std::string& file, const YAML::Node& map, const std::string& section,
                     const std::vector<std::string>& known) {
  yaml_require_map(file, map, section);
  for (const auto& kv : map) {
    const std::string key = kv.first.Scalar();
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    std::string list;
    for (const std::string& k : known) list += (list.empty() ? "" : ", ") + k;
    yaml_fail(file, kv.first, "unknown key '" + key + "' in " + section + " (known: " + list + ")");
  }
}

namespace {

const YAML::Node& scalar_of(const std::string& file, const YAML::Node& node, const std::string& key,
                            const char* type) {
  if (!node.IsScalar()) yaml_fail(file, node, key + " must be " + type);
  return node;
}

// Numbers and booleans are plain scalars: a quoted one ("256") is a string, refused as ops refuse
// it (an op's "vlen": "256" is an error too), with its position.
const YAML::Node& unquoted_of(const std::string& file, const YAML::Node& node, const std::string& key,
                              const char* type) {
  scalar_of(file, node, key, type);
  if (node.Tag() == "!")
    yaml_fail(file, node, key + " must be " + type + ", not the string '" + node.Scalar() + "' (drop the quotes)");
  return node;
}

}  // namespace

int64_t yaml_int(const std::string& file, const YAML::Node& node, const std::string& key, int64_t lo, int64_t hi) {
  const std::string s = unquoted_of(file, node, key, "an integer").Scalar();
  size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(s, &used, 10);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != s.size()) yaml_fail(file, node, key + " must be an integer (got '" + s + "')");
  if (v < lo || v > hi)
    yaml_fail(file, node, key + " = " + s + " is out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return v;
}

double yaml_real(const std::string& file, const YAML::Node& node, const std::string& key, double lo, double hi) {
  const std::string s = unquoted_of(file, node, key, "a number").Scalar();
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != s.size() || !std::isfinite(v)) yaml_fail(file, node, key + " must be a finite number (got '" + s + "')");
  if (v < lo || v > hi) {
    std::ostringstream range;
    range << "[" << lo << ", " << hi << "]";
    yaml_fail(file, node, key + " = " + s + " is out of range " + range.str());
  }
  return v;
}

bool yaml_bool(const std::string& file, const YAML::Node& node, const std::string& key) {
  const std::string s = unquoted_of(file, node, key, "true or false").Scalar();
  if (s == "true") return true;
  if (s == "false") return false;
  yaml_fail(file, node, key + " must be true or false (got '" + s + "')");
}

std::string yaml_string(const std::string& file, const YAML::Node& node, const std::string& key) {
  return scalar_of(file, node, key, "a string").Scalar();
}

// ---- lookup -------------------------------------------------------------------------------------

std::vector<std::string> profile_search_path() {
  std::vector<std::string> dirs{"profiles"};
  const char* xdg = std::getenv("XDG_CONFIG_HOME");
  const char* home = std::getenv("HOME");
  if (xdg && *xdg)
    dirs.push_back(std::string(xdg) + "/sattn/profiles");
  else if (home && *home)
    dirs.push_back(std::string(home) + "/.config/sattn/profiles");
  // libexec_dir() is PREFIX/libexec/sattn (or $SATTN_LIBEXEC_DIR); data lives in PREFIX/share.
  const fs::path prefix = fs::path(libexec_dir()).parent_path().parent_path();
  dirs.push_back((prefix / "share" / "sattn" / "profiles").string());
  return dirs;
}

namespace {

bool looks_like_path(const std::string& s) {
  return s.find('/') != std::string::npos || (s.size() > 5 && (s.ends_with(".yaml") || s.ends_with(".yml")));
}

std::string search_path_text() {
  std::string text;
  for (const std::string& d : profile_search_path()) text += (text.empty() ? "" : ", ") + d;
  return text;
}

std::map<std::string, SectionChecker>& section_checkers() {
  static std::map<std::string, SectionChecker> checkers;
  return checkers;
}


// Core sections, checked here; backend sections by their registered loaders.
// `inherits` is what `sattn profile show` writes (the files a merged profile came from): accepted
// as a list of strings and ignored, so that `profile show X | profile validate -` round-trips.
const std::vector<std::string> kTopKeys = {"schema", "name", "description", "base", "inherits", "select",
                                           "defaults", "rvv", "rocc", "accel", "energy", "imc"};

Precision precision_of(const std::string& file, const YAML::Node& node) {
  const std::string s = yaml_string(file, node, "defaults.precision");
  auto p = parse_precision(s);
  if (!p) yaml_fail(file, node, "defaults.precision must be fp32, bf16, i8 or i4 (got '" + s + "')");
  return *p;
}

std::string backend_of(const std::string& file, const YAML::Node& node, const std::string& key,
                       const std::vector<std::string>& allowed) {
  std::string s = yaml_string(file, node, key);
  if (std::find(allowed.begin(), allowed.end(), "rocc") != allowed.end())
    s = canonical_backend_name(s, yaml_loc(file, node).str());  // "sim", "accel": deprecated names of rocc
  if (std::find(allowed.begin(), allowed.end(), s) == allowed.end()) {
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    yaml_fail(file, node, key + " must be one of " + list + " (got '" + s + "')");
  }
  return s;
}

void read_select(const std::string& file, const YAML::Node& sel, ProfileSelect& out) {
  yaml_check_keys(file, sel, "select", {"prefer", "l1_bytes", "backend", "disable", "min_recall", "recall_confidence",
                                           "recall_bound"});
  if (sel["min_recall"]) out.min_recall = yaml_real(file, sel["min_recall"], "select.min_recall", 0.0, 1.0);
  if (sel["recall_confidence"]) {
    // [0.5, 1): yaml_real takes a closed range, so 1 itself is refused here, at its position.
    const double c = yaml_real(file, sel["recall_confidence"], "select.recall_confidence", 0.5, 1.0);
    if (c >= 1.0)
      yaml_fail(file, sel["recall_confidence"], "select.recall_confidence = 1 is out of range [0.5, 1): a bound at confidence 1 is -inf");
    out.recall_confidence = c;
  }
  if (sel["recall_bound"]) out.recall_bound = backend_of(file, sel["recall_bound"], "select.recall_bound", {"window", "mean", "cv"});
  if (sel["prefer"]) out.prefer = backend_of(file, sel["prefer"], "select.prefer", {"bsr", "sw", "none"});
  if (sel["l1_bytes"]) out.l1_bytes = yaml_int(file, sel["l1_bytes"], "select.l1_bytes", 1, int64_t(1) << 40);
  if (sel["backend"]) out.backend = backend_of(file, sel["backend"], "select.backend", {"cpu", "rvv", "rocc", "imc"});
  if (const YAML::Node d = sel["disable"]) {
    if (!d.IsSequence()) yaml_fail(file, d, "select.disable must be a list of spec names");
    out.disable.clear();
    for (const auto& item : d) {
      const std::string s = yaml_string(file, item, "select.disable");
      auto spec = parse_spec(s);
      if (!spec) yaml_fail(file, item, "select.disable: unknown spec '" + s + "'");
      out.disable.push_back(*spec);
    }
  }
}

void read_defaults(const std::string& file, const YAML::Node& d, ProfileDefaults& out) {
  yaml_check_keys(file, d, "defaults", {"precision", "tile_rows", "backend"});
  if (d["precision"]) out.precision = precision_of(file, d["precision"]);
  if (d["tile_rows"]) out.tile_rows = yaml_int(file, d["tile_rows"], "defaults.tile_rows", 1, 4096);
  if (d["backend"]) out.backend = backend_of(file, d["backend"], "defaults.backend", {"cpu", "rvv", "rocc", "imc", "all"});
}

ProfileFile read_profile_file(const std::string& name, const std::string& path) {
  const std::string text = read_text(path);
  check_yaml_nesting(text, path);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw Error(ExitCode::invalid_input, e.msg, SourceLoc{path, e.mark.line + 1, e.mark.column + 1});
  }
  if (!root.IsMap()) throw Error(ExitCode::invalid_input, "a profile must be a YAML mapping (sattn-profile(5))", SourceLoc{path, 1, 1});
  check_yaml_document(root, [&path](const YAML::Mark& m) {
    return m.line < 0 ? SourceLoc{path} : SourceLoc{path, m.line + 1, m.column + 1};
  });
  yaml_check_keys(path, root, "the profile", kTopKeys);
  const YAML::Node schema = root["schema"];
  if (!schema) throw Error(ExitCode::invalid_input, "missing 'schema: sattn.profile/v1'", SourceLoc{path, 1, 1});
  const std::string s = yaml_string(path, schema, "schema");
  if (s.rfind("sattn.profile/", 0) != 0) yaml_fail(path, schema, "schema must be sattn.profile/v1 (got '" + s + "')");
  if (s != "sattn.profile/v1") yaml_fail(path, schema, "unsupported profile version '" + s + "' (this sattn reads sattn.profile/v1)");
  for (const char* key : {"name", "description", "base"})
    if (root[key]) yaml_string(path, root[key], key);
  if (const YAML::Node inherits = root["inherits"]) {
    if (!inherits.IsSequence()) yaml_fail(path, inherits, "inherits must be a list of file names (what profile show writes)");
    for (const YAML::Node& f : inherits) yaml_string(path, f, "inherits[]");
  }
  ProfileSelect sel;
  ProfileDefaults def;
  if (root["select"]) read_select(path, root["select"], sel);
  if (root["defaults"]) read_defaults(path, root["defaults"], def);
  for (const auto& [key, checker] : section_checkers()) {
    if (root[key]) checker(root[key], path);
    if (key == "rocc" && root["accel"]) checker(root["accel"], path);  // its deprecated name
  }
  for (const char* key : {"rvv", "rocc", "accel", "energy", "imc"})
    if (root[key]) yaml_require_map(path, root[key], key);
  if (root["accel"]) {
    // The accelerator's section was `accel:` until the backend names were unified (rocc).
    if (root["rocc"]) yaml_fail(path, root["accel"], "both 'rocc' and its deprecated name 'accel': keep 'rocc'");
    SourceLoc key_loc = yaml_loc(path, root["accel"]);
    for (const auto& kv : root)  // the key itself, not its section's first line
      if (kv.first.IsScalar() && kv.first.Scalar() == "accel") key_loc = yaml_loc(path, kv.first);
    canonical_backend_name("accel", key_loc.str() + ": profile section 'accel'");
  }
  return ProfileFile{name, path, root};
}

nlohmann::json yaml_to_json(const YAML::Node& n) {
  if (n.IsMap()) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& kv : n) j[kv.first.Scalar()] = yaml_to_json(kv.second);
    return j;
  }
  if (n.IsSequence()) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& item : n) j.push_back(yaml_to_json(item));
    return j;
  }
  if (!n.IsScalar()) return nullptr;
  const std::string s = n.Scalar();
  if (n.Tag() == "!") return s;  // quoted: a string
  if (s == "true") return true;
  if (s == "false") return false;
  size_t used = 0;
  try {
    const long long i = std::stoll(s, &used);
    if (used == s.size()) return i;
    const double d = std::stod(s, &used);
    if (used == s.size()) return d;
  } catch (const std::exception&) {
  }
  return s;
}

}  // namespace

std::string json_to_yaml_text(const nlohmann::json& j, int indent) {
  std::string out;
  const std::string pad(size_t(indent), ' ');
  auto scalar = [](const nlohmann::json& v) {
    if (v.is_string()) {
      const std::string s = v.get<std::string>();
      const bool plain = !s.empty() && s.find_first_of(":#{}[],&*!|>'\"%@`") == std::string::npos &&
                         s.front() != ' ' && s.back() != ' ' && s.front() != '-';
      return plain ? s : v.dump();
    }
    return v.dump();
  };
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) {
      if ((v.is_object() && !v.empty()) || (v.is_array() && !v.empty()))
        out += pad + k + ":\n" + json_to_yaml_text(v, indent + 2);
      else
        out += pad + k + ": " + (v.is_object() ? "{}" : v.is_array() ? "[]" : scalar(v)) + "\n";
    }
  } else if (j.is_array()) {
    for (const auto& v : j) {
      if (v.is_object() || v.is_array())
        out += pad + "-\n" + json_to_yaml_text(v, indent + 2);
      else
        out += pad + "- " + scalar(v) + "\n";
    }
  } else {
    out += pad + scalar(j) + "\n";
  }
  return out;
}

void register_profile_section(const std::string& key, SectionChecker checker) {
  section_checkers()[key] = std::move(checker);
}

std::string find_profile(const std::string& name_or_path) {
  if (looks_like_path(name_or_path)) {
    if (!fs::exists(name_or_path)) throw Error(ExitCode::usage, "profile file '" + name_or_path + "' does not exist");
    return name_or_path;
  }
  for (const std::string& dir : profile_search_path()) {
    const fs::path p = fs::path(dir) / (name_or_path + ".yaml");
    if (fs::exists(p)) return p.string();
  }
  std::string names;
  for (const ProfileEntry& e : list_profiles())
    if (!e.shadowed) names += (names.empty() ? "" : ", ") + e.name;
  throw Error(ExitCode::usage, "no profile named '" + name_or_path + "' (searched " + search_path_text() + ")" +
                                   (names.empty() ? std::string() : "; available: " + names));
}

Profile load_profile(const std::string& name_or_path) {
  Profile p;
  p.name = name_or_path;
  std::vector<ProfileFile> chain;
  std::set<std::string> seen;
  std::string next = name_or_path;
  std::optional<SourceLoc> base_loc;  // where the `base:` that named `next` is (none for the first)
  while (true) {
    std::string found;
    try {
      found = find_profile(next);
    } catch (const Error& e) {
      // An unknown `base:` is an error in that file (exit 3 at the key), not a usage error.
      if (!base_loc) throw;
      throw Error(ExitCode::invalid_input, "base: " + e.message(), *base_loc);
    } catch (const std::filesystem::filesystem_error& e) {  // e.g. a name too long for a path
      if (!base_loc) throw Error(ExitCode::usage, std::string("profile '") + next + "': " + e.code().message());
      throw Error(ExitCode::invalid_input, "base: cannot look up '" + next + "': " + e.code().message(), *base_loc);
    }
    const std::string path = found;
    const std::string canonical = fs::weakly_canonical(path).string();
    if (seen.count(canonical)) {
      std::string cycle;
      for (const auto& f : chain) cycle += f.name + " -> ";
      throw Error(ExitCode::invalid_input, "profile inheritance cycle: " + cycle + next, SourceLoc{path, 1, 1});
    }
    seen.insert(canonical);
    // (Constructed in place: YAML::Node's assignment would write through to another tree.)
    ProfileFile file = [&]() -> ProfileFile {
      try {
        return read_profile_file(next, path);
      } catch (const Error& e) {
        // A base that cannot be read (a device, a directory) is an error of the `base:` key.
        if (!base_loc || e.code() != ExitCode::runtime) throw;
        throw Error(ExitCode::invalid_input, "base: " + e.loc().str() + ": " + e.message(), *base_loc);
      }
    }();
    const YAML::Node base = file.root["base"];
    chain.push_back(std::move(file));
    if (!base) break;
    base_loc = yaml_loc(path, base);
    next = base.Scalar();
    // A relative path is relative to the profile that names it, not to the current directory.
    if (looks_like_path(next) && !fs::path(next).is_absolute()) next = (fs::path(path).parent_path() / next).string();
    if (chain.size() > 16) throw Error(ExitCode::invalid_input, "profile inheritance deeper than 16 levels", SourceLoc{path, 1, 1});
  }
  // Copy-construct in reverse: YAML::Node's assignment writes through to the node it refers
  // to, so swapping elements (std::reverse) would overwrite one file's tree with another's.
  p.chain = std::vector<ProfileFile>(chain.rbegin(), chain.rend());
  return p;
}

std::vector<std::pair<std::string, YAML::Node>> Profile::sections(const std::string& key) const {
  std::vector<std::pair<std::string, YAML::Node>> out;
  for (const ProfileFile& f : chain) {
    if (f.root[key]) out.emplace_back(f.path, f.root[key]);
    // A section under a deprecated backend name (`accel:`) is the canonical one's (`rocc:`).
    else if (key == "rocc" && f.root["accel"]) out.emplace_back(f.path, f.root["accel"]);
  }
  return out;
}

nlohmann::json Profile::merged() const {
  nlohmann::json j = nlohmann::json::object();
  for (const ProfileFile& f : chain) {
    nlohmann::json layer = yaml_to_json(f.root);
    if (layer.contains("accel")) {  // shown under the canonical name (rocc)
      layer["rocc"] = layer["accel"];
      layer.erase("accel");
    }
    j.merge_patch(layer);
  }
  j.erase("base");
  j["name"] = chain.empty() ? name : (chain.back().root["name"] ? chain.back().root["name"].Scalar() : chain.back().name);
  nlohmann::json files = nlohmann::json::array();
  for (const ProfileFile& f : chain) files.push_back(f.path);
  j["inherits"] = files;
  return j;
}

std::vector<ProfileEntry> list_profiles() {
  std::vector<ProfileEntry> out;
  std::set<std::string> names;
  for (const std::string& dir : profile_search_path()) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) continue;
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (e.path().extension() == ".yaml") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const fs::path& f : files) {
      ProfileEntry entry{f.stem().string(), f.string(), "", names.count(f.stem().string()) > 0};
      try {
        const YAML::Node root = YAML::LoadFile(f.string());
        if (root.IsMap() && root["description"] && root["description"].IsScalar())
          entry.description = root["description"].Scalar();
      } catch (const YAML::Exception&) {
        entry.description = "(unreadable: run 'sattn profile validate " + f.string() + "')";
      }
      names.insert(entry.name);
      out.push_back(std::move(entry));
    }
  }
  return out;
}

ProfileSelect profile_select(const Profile& p) {
  ProfileSelect out;
  for (const auto& [file, node] : p.sections("select")) read_select(file, node, out);
  return out;
}

ProfileDefaults profile_defaults(const Profile& p) {
  ProfileDefaults out;
  for (const auto& [file, node] : p.sections("defaults")) read_defaults(file, node, out);
  return out;
}

ProfileSelect profile_select(const std::string& name_or_path) { return profile_select(load_profile(name_or_path)); }
ProfileDefaults profile_defaults(const std::string& name_or_path) { return profile_defaults(load_profile(name_or_path)); }
void validate_profile(const std::string& name_or_path) { (void)load_profile(name_or_path); }
std::string profile_json(const std::string& name_or_path) { return load_profile(name_or_path).merged().dump(); }

void apply_profile_defaults(Op& op, const ProfileDefaults& d) {
  if (d.precision && !op.attr_loc.count("precision")) op.precision = *d.precision;
  if (d.tile_rows && !op.attrs.tile_rows) op.attrs.tile_rows = *d.tile_rows;
}

}  // namespace sattn
