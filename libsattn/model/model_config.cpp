// Reading a Hugging Face style config.json: the attention shapes only (sattn-model(1), CONFIG).
//
// Which layers are local (sliding-window) layers, by precedence:
//   1. `layer_types`: one entry per layer, "sliding_attention" (local) or "full_attention";
//   2. the family's rule when `sliding_window` is set:
//        gemma2               even layers local, odd layers global (Gemma 2 alternates);
//        gemma3, gemma3_text  every layer local but each `sliding_window_pattern`-th (default 6:
//                             5 local to 1 global);
//        mistral, mixtral     every layer local;
//        qwen2, qwen3         local from `max_window_layers` on, and only with use_sliding_window;
//   3. otherwise every layer global.
// Gemma 3's multimodal configs keep the language model under `text_config`: read from there.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/op_attributes.hpp"
#include "sattn/model.hpp"
#include "support/io.hpp"
#include "support/process.hpp"

namespace sattn {

namespace fs = std::filesystem;
using nlohmann::json;

std::string_view to_string(LayerClass c) {
  return c == LayerClass::local ? "local" : "global";
}

double ModelConfig::scale() const {
  return 1.0 / std::sqrt(query_pre_attn_scalar ? *query_pre_attn_scalar : double(head_dim));
}

namespace {

const char* const kModelTypes[] = {"gpt2",  "llama", "mistral", "mixtral", "gemma", "gemma2",
                                   "gemma3", "gemma3_text", "qwen2", "qwen3", "phi3"};

// Where a key is written: the first `"key"` followed by ':' at or after `from` (the config's
// keys are unique within their object; a nested object is searched from its own key on).
class KeyLocator {
 public:
  KeyLocator(const std::string& text, std::string file) : text_(text), file_(std::move(file)) {}
  size_t find(const std::string& key, size_t from = 0) const {
    const std::string quoted = "\"" + key + "\"";
    for (size_t at = text_.find(quoted, from); at != std::string::npos; at = text_.find(quoted, at + 1)) {
      size_t p = at + quoted.size();
      while (p < text_.size() && std::isspace(static_cast<unsigned char>(text_[p]))) ++p;
      if (p < text_.size() && text_[p] == ':') return at;
    }
    return std::string::npos;
  }
  SourceLoc loc(const std::string& key, size_t from = 0) const {
    const size_t at = find(key, from);
    if (at == std::string::npos) return SourceLoc{file_, 0, 0};
    return detail::loc_at(text_, at, file_);
  }
  SourceLoc file_loc() const { return SourceLoc{file_, 0, 0}; }

 private:
  const std::string& text_;
  std::string file_;
};

struct Reader {
  const json& obj;         // the object the fields are in
  const KeyLocator& keys;
  size_t from;             // where that object's text starts
  std::string prefix;      // "text_config." for nested fields in messages

  const json* get(const std::string& key) const {
    auto it = obj.find(key);
    return it == obj.end() || it->is_null() ? nullptr : &*it;
  }
  [[noreturn]] void fail(const std::string& key, const std::string& message) const {
    const SourceLoc at = keys.find(key, from) != std::string::npos ? keys.loc(key, from) : keys.file_loc();
    throw Error(ExitCode::invalid_input, message, at);
  }
  // A positive integer at `key` (any of `names`, first present wins); nullopt when absent.
  std::optional<int64_t> integer(const std::vector<std::string>& names, std::string* used = nullptr) const {
    for (const std::string& key : names) {
      const json* v = get(key);
      if (!v) continue;
      if (!v->is_number_integer() && !(v->is_number_float() && std::floor(v->get<double>()) == v->get<double>()))
        fail(key, prefix + key + " must be an integer (got " + v->dump() + ")");
      const double d = v->get<double>();
      if (d < 1 || d > double(int64_t(1) << 40)) fail(key, prefix + key + " must be in [1, 2^40] (got " + v->dump() + ")");
      if (used) *used = key;
      return int64_t(d);
    }
    return std::nullopt;
  }
  int64_t required(const std::vector<std::string>& names, std::string* used = nullptr) const {
    if (auto v = integer(names, used)) return *v;
    std::string list;
    for (const std::string& n : names) list += (list.empty() ? "" : " or ") + prefix + n;
    throw Error(ExitCode::invalid_input, "missing field " + list + " (a positive integer)", keys.file_loc());
  }
  std::optional<double> real(const std::string& key) const {
    const json* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_number()) fail(key, prefix + key + " must be a number or null (got " + v->dump() + ")");
    const double d = v->get<double>();
    if (!(d > 0) || !std::isfinite(d)) fail(key, prefix + key + " must be > 0 (got " + v->dump() + ")");
    return d;
  }
  std::optional<bool> boolean(const std::string& key) const {
    const json* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_boolean()) fail(key, prefix + key + " must be true or false (got " + v->dump() + ")");
    return v->get<bool>();
  }
};

}  // namespace

ModelConfig parse_model_config(const std::string& text, const std::string& file) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::parse_error& e) {
    const size_t at = e.byte > 0 ? std::min<size_t>(e.byte - 1, text.size()) : 0;
    std::string what = e.what();
    if (const size_t colon = what.find("syntax error"); colon != std::string::npos) what = what.substr(colon);
    throw Error(ExitCode::invalid_input, "JSON " + what, detail::loc_at(text, at, file));
  }
  const KeyLocator keys(text, file);
  if (!root.is_object()) throw Error(ExitCode::invalid_input, "a config.json must be a JSON object", SourceLoc{file, 1, 1});
  ModelConfig c;
  c.file = file;
  c.name = fs::path(file).stem().string();
  const Reader top{root, keys, 0, ""};
  const json* type = top.get("model_type");
  if (!type) throw Error(ExitCode::invalid_input, "missing field model_type (e.g. \"llama\")", keys.file_loc());
  if (!type->is_string()) top.fail("model_type", "model_type must be a string (got " + type->dump() + ")");
  c.model_type = type->get<std::string>();
  if (std::find(std::begin(kModelTypes), std::end(kModelTypes), c.model_type) == std::end(kModelTypes)) {
    std::string list;
    for (const char* t : kModelTypes) list += (list.empty() ? "" : ", ") + std::string(t);
    top.fail("model_type", "unknown model_type '" + c.model_type + "' (known: " + list + ")");
  }
  if (const json* s = top.get("_source"); s && s->is_string()) c.source = s->get<std::string>();
  if (c.source.empty()) c.source = file;

  // The language model's fields: Gemma 3's multimodal configs nest them under text_config.
  const json* text_cfg = top.get("text_config");
  if (text_cfg && !text_cfg->is_object()) top.fail("text_config", "text_config must be an object");
  const size_t text_from = text_cfg ? keys.find("text_config") : 0;
  const Reader r{text_cfg ? *text_cfg : root, keys, text_from == std::string::npos ? 0 : text_from,
                 text_cfg ? "text_config." : ""};

  const bool gpt2 = c.model_type == "gpt2";
  c.layers = r.required(gpt2 ? std::vector<std::string>{"n_layer", "num_hidden_layers"}
                             : std::vector<std::string>{"num_hidden_layers"});
  std::string heads_key;
  c.heads = r.required(gpt2 ? std::vector<std::string>{"n_head", "num_attention_heads"}
                            : std::vector<std::string>{"num_attention_heads"}, &heads_key);
  c.kv_heads = r.integer({"num_key_value_heads"}).value_or(c.heads);
  if (c.heads % c.kv_heads != 0)
    r.fail("num_key_value_heads", r.prefix + "num_key_value_heads (" + std::to_string(c.kv_heads) +
                                      ") must divide " + r.prefix + heads_key + " (" + std::to_string(c.heads) + ")");
  if (auto d = r.integer({"head_dim"})) {
    c.head_dim = *d;
  } else {
    std::string hidden_key;
    const auto hidden = r.integer(gpt2 ? std::vector<std::string>{"n_embd", "hidden_size"}
                                       : std::vector<std::string>{"hidden_size"}, &hidden_key);
    if (!hidden)
      throw Error(ExitCode::invalid_input, "missing field " + r.prefix + "head_dim or " + r.prefix + "hidden_size",
                  keys.file_loc());
    if (*hidden % c.heads != 0)
      r.fail(hidden_key, r.prefix + hidden_key + " (" + std::to_string(*hidden) + ") must be divisible by " + r.prefix +
                             heads_key + " (" + std::to_string(c.heads) + ") when head_dim is absent");
    c.head_dim = *hidden / c.heads;
  }
  c.max_position = r.required(gpt2 ? std::vector<std::string>{"n_positions", "max_position_embeddings"}
                                   : std::vector<std::string>{"max_position_embeddings"});
  c.sliding_window = r.integer({"sliding_window"});
  c.query_pre_attn_scalar = r.real("query_pre_attn_scalar");
  c.softcap = r.real("attn_logit_softcapping");

  c.classes.assign(size_t(c.layers), LayerClass::global);
  if (const json* types = r.get("layer_types")) {
    if (!types->is_array()) r.fail("layer_types", r.prefix + "layer_types must be a list");
    if (int64_t(types->size()) != c.layers)
      r.fail("layer_types", r.prefix + "layer_types has " + std::to_string(types->size()) + " entries, but " + r.prefix +
                                "num_hidden_layers is " + std::to_string(c.layers));
    for (size_t i = 0; i < types->size(); ++i) {
      const json& t = (*types)[i];
      const std::string s = t.is_string() ? t.get<std::string>() : "";
      if (s == "sliding_attention") c.classes[i] = LayerClass::local;
      else if (s != "full_attention")
        r.fail("layer_types", r.prefix + "layer_types[" + std::to_string(i) +
                                  "] must be \"sliding_attention\" or \"full_attention\" (got " + t.dump() + ")");
    }
    if (!c.sliding_window && std::count(c.classes.begin(), c.classes.end(), LayerClass::local) > 0)
      r.fail("layer_types", r.prefix + "layer_types names sliding_attention layers but " + r.prefix + "sliding_window is not set");
  } else if (c.sliding_window) {
    const std::string& t = c.model_type;
    if (t == "gemma2") {
      for (int64_t i = 0; i < c.layers; i += 2) c.classes[size_t(i)] = LayerClass::local;
    } else if (t == "gemma3" || t == "gemma3_text") {
      const int64_t pattern = r.integer({"sliding_window_pattern"}).value_or(6);
      for (int64_t i = 0; i < c.layers; ++i)
        if ((i + 1) % pattern != 0) c.classes[size_t(i)] = LayerClass::local;
    } else if (t == "mistral" || t == "mixtral" || t == "phi3") {
      std::fill(c.classes.begin(), c.classes.end(), LayerClass::local);
    } else if (t == "qwen2" || t == "qwen3") {
      if (r.boolean("use_sliding_window").value_or(false)) {
        const int64_t from = r.integer({"max_window_layers"}).value_or(c.layers);
        for (int64_t i = from; i < c.layers; ++i) c.classes[size_t(i)] = LayerClass::local;
      }
    }
  }
  // A window at least as long as the context is global attention in all but name (Qwen2.5 sets
  // sliding_window = max_position_embeddings with use_sliding_window false).
  if (c.sliding_window && *c.sliding_window >= c.max_position)
    std::replace(c.classes.begin(), c.classes.end(), LayerClass::local, LayerClass::global);
  return c;
}

std::vector<std::string> model_search_path() {
  std::vector<std::string> dirs{"models"};
  const fs::path prefix = fs::path(libexec_dir()).parent_path().parent_path();
  dirs.push_back((prefix / "share" / "sattn" / "models").string());
  return dirs;
}

std::vector<std::string> model_presets() {
  std::vector<std::string> names;
  for (const std::string& d : model_search_path()) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(d, ec))
      if (e.path().extension() == ".json") names.push_back(e.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

namespace {

std::string read_text(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ExitCode::runtime, std::string("cannot read ") + what + " '" + path + "'");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

ModelConfig load_model_config(const std::string& name_or_path) {
  if (name_or_path == "-") return parse_model_config(sattn::read_text("-"), "<stdin>");
  const bool path = name_or_path.find('/') != std::string::npos || name_or_path.ends_with(".json");
  if (path) {
    ModelConfig c = parse_model_config(read_text(name_or_path, "config"), name_or_path);
    return c;
  }
  for (const std::string& d : model_search_path()) {
    const fs::path p = fs::path(d) / (name_or_path + ".json");
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) {
      ModelConfig c = parse_model_config(read_text(p.string(), "preset"), p.string());
      c.name = name_or_path;
      return c;
    }
  }
  std::string list;
  for (const std::string& n : model_presets()) list += (list.empty() ? "" : ", ") + n;
  std::string dirs;
  for (const std::string& d : model_search_path()) dirs += (dirs.empty() ? "" : ", ") + d;
  throw Error(ExitCode::usage, "no model preset '" + name_or_path + "' (presets: " + (list.empty() ? "none found" : list) +
                                   "; searched " + dirs + "); a config.json path needs a '/' or the .json suffix");
}

}  // namespace sattn
