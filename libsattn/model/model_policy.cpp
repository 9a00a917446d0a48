// Sparsity policies for whole models (sattn-model(1), POLICY; schemas/model-policy.schema.json):
// which spec each class of layers runs.
//
//   schema: sattn.model-policy/v1     # optional
//   name: global-bsr                  # optional (default: the file's stem)
//   local:  {spec: sliding_window}    # window_size: the config's sliding_window
//   global: {spec: bsr, keep_ratio: 0.1, block_size: 64}
//   layers:                           # overrides, later entries win
//     - {first: 2, spec: dense}       # or last: N, range: [a, b], index: i
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "formats/profile.hpp"
#include "sattn/model.hpp"

namespace sattn {

namespace fs = std::filesystem;

std::optional<ModelPolicy> builtin_policy(const std::string& name) {
  ModelPolicy p;
  p.name = name;
  p.file = "(built in)";
  if (name == "native") return p;  // local: sliding_window (config's window), global: dense
  if (name == "dense") {
    p.local = LayerRule{Spec::dense, {}, "local", {}};
    return p;
  }
  return std::nullopt;
}

namespace {

// The specs the model-level cost covers: those the selector's cost model prices.
bool has_cost_model(Spec s) {
  return s == Spec::dense || s == Spec::sliding_window || s == Spec::bsr || s == Spec::quest;
}

const std::vector<std::string> kRuleKeys = {"spec", "window_size", "dilation", "block_size", "keep_ratio",
                                            "comp_block_size", "global_tokens", "page_size", "top_pages"};

LayerRule read_rule(const std::string& file, const YAML::Node& node, const std::string& where) {
  LayerRule r;
  r.where = where;
  r.loc = yaml_loc(file, node);
  const YAML::Node spec = node["spec"];
  if (!spec) yaml_fail(file, node, where + ": missing key 'spec' (dense, sliding_window, bsr or quest)");
  const std::string name = yaml_string(file, spec, where + ".spec");
  const auto s = parse_spec(name);
  if (!s) {
    std::string list;
    for (Spec k : kAllSpecs) list += (list.empty() ? "" : ", ") + std::string(to_string(k));
    yaml_fail(file, spec, where + ".spec: unknown spec '" + name + "' (specs: " + list + ")");
  }
  if (!has_cost_model(*s))
    yaml_fail(file, spec, where + ".spec: spec '" + std::string(to_string(*s)) +
                              "' has no model-level cost model (use dense, sliding_window, bsr or quest)");
  r.spec = *s;
  constexpr int64_t kMax = int64_t(1) << 30;
  PatternAttrs& a = r.attrs;
  if (const YAML::Node v = node["window_size"]) a.window_size = yaml_int(file, v, where + ".window_size", 1, kMax);
  if (const YAML::Node v = node["dilation"]) a.dilation = yaml_int(file, v, where + ".dilation", 1, kMax);
  if (const YAML::Node v = node["block_size"]) a.block_size = yaml_int(file, v, where + ".block_size", 1, 65536);
  if (const YAML::Node v = node["keep_ratio"]) a.keep_ratio = yaml_real(file, v, where + ".keep_ratio", 1e-9, 1);
  if (const YAML::Node v = node["comp_block_size"]) a.comp_block_size = yaml_int(file, v, where + ".comp_block_size", 1, 65536);
  if (const YAML::Node v = node["global_tokens"]) a.global_tokens = yaml_int(file, v, where + ".global_tokens", 0, kMax);
  if (const YAML::Node v = node["page_size"]) a.page_size = yaml_int(file, v, where + ".page_size", 1, 65536);
  if (const YAML::Node v = node["top_pages"]) a.top_pages = yaml_int(file, v, where + ".top_pages", 1, kMax);
  if (r.spec != Spec::quest && (a.page_size || a.top_pages))
    yaml_fail(file, node, where + ": page_size and top_pages belong to quest, not " + name);
  const bool block_keys = a.block_size || a.keep_ratio || a.comp_block_size || a.global_tokens;
  if (r.spec != Spec::sliding_window && (a.window_size || a.dilation))
    yaml_fail(file, node, where + ": window_size and dilation belong to sliding_window, not " + name);
  if (r.spec != Spec::bsr && block_keys)
    yaml_fail(file, node, where + ": block_size, keep_ratio, comp_block_size and global_tokens belong to bsr, not " + name);
  return r;
}

}  // namespace

ModelPolicy parse_model_policy(const std::string& text, const std::string& file) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw Error(ExitCode::invalid_input, "YAML syntax error: " + e.msg,
                SourceLoc{file, e.mark.line < 0 ? 0 : e.mark.line + 1, e.mark.column < 0 ? 0 : e.mark.column + 1});
  }
  if (!root.IsMap()) throw Error(ExitCode::invalid_input, "a policy must be a mapping (local:, global:, layers:)", SourceLoc{file, 1, 1});
  yaml_check_keys(file, root, "the policy", {"schema", "name", "description", "local", "global", "layers"});
  if (const YAML::Node s = root["schema"]) {
    const std::string v = yaml_string(file, s, "schema");
    if (v != "sattn.model-policy/v1") yaml_fail(file, s, "schema must be sattn.model-policy/v1 (got '" + v + "')");
  }
  ModelPolicy p;
  p.file = file;
  p.name = root["name"] ? yaml_string(file, root["name"], "name") : fs::path(file).stem().string();
  if (const YAML::Node d = root["description"]) yaml_string(file, d, "description");
  for (const char* cls : {"local", "global"}) {
    const YAML::Node n = root[cls];
    if (!n) continue;
    yaml_check_keys(file, n, cls, kRuleKeys);
    (std::string(cls) == "local" ? p.local : p.global) = read_rule(file, n, cls);
  }
  if (const YAML::Node list = root["layers"]) {
    if (!list.IsSequence()) yaml_fail(file, list, "layers must be a list of {first|last|range|index, spec, ...}");
    for (size_t i = 0; i < list.size(); ++i) {
      const YAML::Node e = list[i];
      const std::string where = "layers[" + std::to_string(i) + "]";
      std::vector<std::string> keys = kRuleKeys;
      for (const char* k : {"first", "last", "range", "index"}) keys.push_back(k);
      yaml_check_keys(file, e, where, keys);
      LayerOverride o;
      int selectors = 0;
      constexpr int64_t kMaxLayers = 100000;
      if (const YAML::Node v = e["first"]) {
        o.first = 0;
        o.last = yaml_int(file, v, where + ".first", 1, kMaxLayers) - 1;
        ++selectors;
      }
      if (const YAML::Node v = e["last"]) {
        // Resolved against the model's layer count when costed: stored as a negative count.
        o.first = -yaml_int(file, v, where + ".last", 1, kMaxLayers);
        o.last = -1;
        ++selectors;
      }
      if (const YAML::Node v = e["index"]) {
        o.first = o.last = yaml_int(file, v, where + ".index", 0, kMaxLayers - 1);
        ++selectors;
      }
      if (const YAML::Node v = e["range"]) {
        if (!v.IsSequence() || v.size() != 2) yaml_fail(file, v, where + ".range must be [first, last] (inclusive)");
        o.first = yaml_int(file, v[0], where + ".range[0]", 0, kMaxLayers - 1);
        o.last = yaml_int(file, v[1], where + ".range[1]", 0, kMaxLayers - 1);
        if (o.last < o.first) yaml_fail(file, v, where + ".range: last (" + std::to_string(o.last) + ") < first (" + std::to_string(o.first) + ")");
        ++selectors;
      }
      if (selectors != 1) yaml_fail(file, e, where + ": needs exactly one of first, last, range, index");
      o.rule = read_rule(file, e, where);
      p.layers.push_back(o);
    }
  }
  return p;
}

ModelPolicy load_model_policy(const std::string& name_or_path) {
  if (auto b = builtin_policy(name_or_path)) return *b;
  const bool path = name_or_path.find('/') != std::string::npos || name_or_path.ends_with(".yaml") ||
                    name_or_path.ends_with(".yml");
  std::string file = name_or_path;
  if (!path) {
    // A NAME: models/policies/NAME.yaml on the preset search path.
    std::string dirs;
    file.clear();
    for (const std::string& d : model_search_path()) {
      const fs::path p = fs::path(d) / "policies" / (name_or_path + ".yaml");
      std::error_code ec;
      if (file.empty() && fs::is_regular_file(p, ec)) file = p.string();
      dirs += (dirs.empty() ? "" : ", ") + (fs::path(d) / "policies").string();
    }
    if (file.empty())
      throw Error(ExitCode::usage, "no policy '" + name_or_path + "' (built in: native, dense; searched " + dirs +
                                       "); a policy file path needs a '/' or the .yaml suffix");
  }
  std::ifstream in(file, std::ios::binary);
  if (!in)
    throw Error(ExitCode::runtime, "cannot read policy '" + file + "'");
  std::ostringstream s;
  s << in.rdbuf();
  return parse_model_policy(s.str(), file);
}

}  // namespace sattn
