// Compiled like libsattn (exceptions, RTTI): every libsattn call of sattn-opt goes through here.
#include "Bridge.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "op_attributes.hpp"
#include "sattn/op_io.hpp"
#include "sattn/select.hpp"
#include "select_cost.hpp"
#include "select_flags.hpp"

namespace sattn_bridge {

namespace {

using sattn::detail::AttrValue;

AttrValue to_value(const Attr& a) {
  switch (a.kind) {
    case Attr::integer: return AttrValue::integer(a.magnitude, a.negative);
    case Attr::floating: return AttrValue::floating(a.number);
    case Attr::string: return AttrValue::string(a.text);
    case Attr::boolean: return AttrValue::boolean(a.flag);
    case Attr::other: break;
  }
  return AttrValue::other(a.text);
}

bool is_call_only(const std::string& name) {
  return name == "selection" || name == "blg_enabled" || name == "nm_enabled" || name == "topk_enabled" ||
         name == "lsh_enabled";
}

sattn::Op build(const std::vector<Attr>& attrs, std::vector<std::string>* warnings) {
  sattn::detail::OpBuilder builder(sattn::SourceLoc{}, 0, warnings);
  for (const Attr& a : attrs)
    if (!is_call_only(a.name)) builder.set(a.name, to_value(a), {}, {});
  return builder.finish();
}

Attr from_json(const std::string& name, const nlohmann::json& v) {
  Attr a;
  a.name = name;
  if (v.is_boolean()) {
    a.kind = Attr::boolean;
    a.flag = v.get<bool>();
  } else if (v.is_number_unsigned()) {
    a.kind = Attr::integer;
    a.magnitude = v.get<uint64_t>();
  } else if (v.is_number_integer()) {
    a.kind = Attr::integer;
    int64_t x = v.get<int64_t>();
    a.negative = x < 0;
    a.magnitude = x < 0 ? 0 - uint64_t(x) : uint64_t(x);
  } else if (v.is_number()) {
    a.kind = Attr::floating;
    a.number = v.get<double>();
  } else {
    a.kind = Attr::string;
    a.text = v.is_string() ? v.get<std::string>() : v.dump();
  }
  return a;
}

template <class F>
Result guarded(F&& f) noexcept {
  Result r;
  try {
    f(r);
  } catch (const sattn::Error& e) {
    r.ok = false;
    r.exit_code = int(e.code());
    r.error = e.message();
  } catch (const std::exception& e) {
    r.ok = false;
    r.exit_code = 1;
    r.error = e.what();
  }
  return r;
}

// The call op's attributes: every shape and numeric field, resolved, and the spec's parameters.
void fill_resolved(Result& r, const sattn::Op& op, sattn::Spec spec, const sattn::SpecParams& params) {
  const auto& s = op.shape;
  auto add = [&](const std::string& n, const nlohmann::json& v) { r.resolved.push_back(from_json(n, v)); };
  r.spec = std::string(sattn::to_string(spec));
  add("spec", r.spec);
  add("name", op.name);
  add("batch", s.batch), add("heads", s.heads), add("kv_heads", s.kv_heads);
  add("seq_len", s.seq_len), add("kv_len", s.kv_len), add("head_dim", s.head_dim);
  add("gqa_group_size", s.group_size());
  add("causal", op.causal);
  add("scale", op.softmax_scale());
  add("precision", std::string(sattn::to_string(op.precision)));
  if (op.scale_q) add("scale_q", *op.scale_q);
  if (op.scale_k) add("scale_k", *op.scale_k);
  if (op.scale_v) add("scale_v", *op.scale_v);
  nlohmann::json p = sattn::params_to_json(params);
  add("comp_block_size", p.value("comp_block_size", int64_t(0)));
  for (const auto& [k, v] : p.items())
    if (k != "spec") add(k, v);
  add("blg_enabled", spec == sattn::Spec::block_local_global);
  add("nm_enabled", spec == sattn::Spec::nm_structured);
  add("topk_enabled", spec == sattn::Spec::topk_per_query);
  add("lsh_enabled", spec == sattn::Spec::lsh);
}

const Attr* find(const std::vector<Attr>& attrs, const std::string& name) {
  for (const Attr& a : attrs)
    if (a.name == name) return &a;
  return nullptr;
}

}  // namespace

Result verify(const std::vector<Attr>& attrs, bool is_call) noexcept {
  return guarded([&](Result& r) {
    sattn::Op op = build(attrs, &r.warnings);
    if (!is_call) return;
    if (!op.forced_spec) throw sattn::Error(sattn::ExitCode::invalid_input, "a backend call needs a 'spec' attribute");
    sattn::SpecParams params = sattn::resolve_params(op, *op.forced_spec);
    if (std::string why = sattn::select_detail::why_infeasible(op, *op.forced_spec, params); !why.empty())
      throw sattn::Error(sattn::ExitCode::invalid_input, "spec " + std::string(sattn::to_string(*op.forced_spec)) + ": " + why);
    // The per-spec flags must say what the spec is.
    const std::pair<const char*, sattn::Spec> flags[] = {{"blg_enabled", sattn::Spec::block_local_global},
                                                         {"nm_enabled", sattn::Spec::nm_structured},
                                                         {"topk_enabled", sattn::Spec::topk_per_query},
                                                         {"lsh_enabled", sattn::Spec::lsh}};
    for (auto [name, spec] : flags)
      if (const Attr* a = find(attrs, name); a && a->flag != (*op.forced_spec == spec))
        throw sattn::Error(sattn::ExitCode::invalid_input,
                           std::string("attribute '") + name + "': " + (a->flag ? "true" : "false") +
                               " disagrees with spec '" + std::string(sattn::to_string(*op.forced_spec)) + "'");
  });
}

Result select(const std::vector<Attr>& attrs, const Options& o) noexcept {
  return guarded([&](Result& r) {
    sattn::Op op = build(attrs, &r.warnings);
    // The pass options as sattn-select's command line: same parsing, merging and messages.
    CLI::App app;
    sattn::SelectFlags flags;
    flags.add_to(app, "", true, false);
    std::vector<std::string> argv;
    if (o.backend_set) argv.insert(argv.end(), {"--backend", o.backend});
    if (o.prefer_bsr) argv.push_back("--prefer-bsr");
    if (o.prefer_sw) argv.push_back("--prefer-sw");
    if (o.l1_set) argv.insert(argv.end(), {"--l1-bytes", std::to_string(o.l1_bytes)});
    if (!o.force.empty()) argv.insert(argv.end(), {"--force-spec", o.force});
    for (const std::string& d : o.disable) argv.insert(argv.end(), {"--disable", d});
    if (!o.profile.empty()) argv.insert(argv.end(), {"--profile", o.profile});
    std::reverse(argv.begin(), argv.end());
    try {
      app.parse(argv);
    } catch (const CLI::ParseError& e) {
      throw sattn::Error(sattn::ExitCode::usage, e.what());
    }
    sattn::SelectOptions options = flags.resolve();
    sattn::Plan plan = sattn::select_spec(op, options);
    r.spec = std::string(sattn::to_string(plan.spec));
    r.selection = plan.selection.kind + ": " + plan.selection.reason;
  });
}

Result resolve(const std::vector<Attr>& attrs, const std::string& backend) noexcept {
  (void)backend;
  return guarded([&](Result& r) {
    sattn::Op op = build(attrs, &r.warnings);
    if (!op.forced_spec) throw sattn::Error(sattn::ExitCode::invalid_input, "no 'spec' to lower");
    sattn::SpecParams params = sattn::resolve_params(op, *op.forced_spec);
    if (std::string why = sattn::select_detail::why_infeasible(op, *op.forced_spec, params); !why.empty())
      throw sattn::Error(sattn::ExitCode::invalid_input, "spec " + std::string(sattn::to_string(*op.forced_spec)) + ": " + why);
    fill_resolved(r, op, *op.forced_spec, params);
  });
}

}  // namespace sattn_bridge
