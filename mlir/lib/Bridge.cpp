// Compiled like libsattn (with exceptions): every libsattn call of sattn-opt goes through here.
#include "Bridge.h"

#include <nlohmann/json.hpp>

#include "core/op_attributes.hpp"
#include "formats/op_io.hpp"
#include "sattn/select.hpp"
#include "select/select_cost.hpp"

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

sattn::detail::DialectOp dialect_op(OpKind kind) {
  switch (kind) {
    case OpKind::rvv_call: return sattn::detail::DialectOp::rvv_call;
    case OpKind::rocc_call: return sattn::detail::DialectOp::rocc_call;
    case OpKind::sparse_attention: break;
  }
  return sattn::detail::DialectOp::sparse_attention;
}

// The op as libsattn's MLIR reader builds it: same vocabulary, checks and messages.
// Every attribute is placed at the op (MLIR keeps no attribute locations). Warnings lose that
// location again: MLIR's diagnostic adds it.
sattn::Op build(OpKind kind, const OpDesc& desc, std::vector<std::string>* warnings, size_t index = 0) {
  const sattn::SourceLoc loc{desc.file, desc.line, desc.col};
  std::vector<std::string> raw;
  sattn::detail::DialectOpBuilder builder(dialect_op(kind), loc, index, &raw);
  for (const Attr& a : desc.attrs) builder.set(a.name, to_value(a), loc, loc);
  sattn::Op op = builder.finish();
  const std::string prefix = loc.str().empty() ? "" : loc.str() + ": ";
  for (std::string& w : raw) warnings->push_back(w.rfind(prefix, 0) == 0 ? w.substr(prefix.size()) : w);
  return op;
}

// The spec an op names must be able to run on it (as sattn-select checks a forced spec).
sattn::SpecParams resolve_feasible(const sattn::Op& op, sattn::Spec spec) {
  sattn::SpecParams params = sattn::resolve_params(op, spec);
  if (std::string why = sattn::select_detail::why_infeasible(op, spec, params); !why.empty())
    throw sattn::Error(sattn::ExitCode::invalid_input, "spec " + std::string(sattn::to_string(spec)) + ": " + why);
  return params;
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

}  // namespace

Result verify(OpKind kind, const OpDesc& desc) noexcept {
  return guarded([&](Result& r) {
    sattn::Op op = build(kind, desc, &r.warnings);
    if (kind != OpKind::sparse_attention) resolve_feasible(op, *op.forced_spec);
  });
}

Result select(const OpDesc& desc, const Options& o) noexcept {
  return guarded([&](Result& r) {
    sattn::Op op = build(OpKind::sparse_attention, desc, &r.warnings);
    // The pass options as sattn-select's flags: the same merge (flags > environment > profile) and messages.
    sattn::SelectRequest req;
    if (o.backend_set) req.backend = o.backend;
    if (o.prefer_bsr) req.prefer_bsr = true;
    if (o.prefer_sw) req.prefer_sw = true;
    if (o.prefer_bsr && o.prefer_sw) throw sattn::Error(sattn::ExitCode::usage, "--prefer-sw excludes --prefer-bsr");
    if (o.l1_set) req.l1_bytes = o.l1_bytes;
    if (!o.force.empty()) req.force = sattn::spec_option("--force-spec", o.force);
    if (!o.disable.empty()) {
      req.disable.emplace();
      for (const std::string& d : o.disable) req.disable->push_back(sattn::spec_option("--disable", d));
    }
    if (!o.profile.empty()) req.profile = o.profile;
    if (o.min_recall_set) req.min_recall = o.min_recall;
    if (o.recall_confidence_set) req.recall_confidence = o.recall_confidence;
    if (!o.recall_bound.empty()) {
      req.recall_bound = sattn::parse_recall_bound(o.recall_bound);
      if (!req.recall_bound)
        throw sattn::Error(sattn::ExitCode::usage, "--recall-bound must be window, mean or cv (got '" + o.recall_bound + "')");
    }
    req.data = o.data;
    sattn::SelectOptions options = sattn::resolve_select_request(req);
    sattn::Plan plan = sattn::select_spec(op, options);
    if (plan.selection.kind == "recall") {
      const nlohmann::json params = sattn::params_to_json(plan.params);  // items() refers to it
      for (const auto& [k, v] : params.items())
        if (k != "spec") r.chosen_params.push_back(from_json(k, v));
    }
    r.spec = std::string(sattn::to_string(plan.spec));
    r.selection = plan.selection.kind + ": " + plan.selection.reason;
  });
}

Result resolve(const OpDesc& desc, size_t index) noexcept {
  return guarded([&](Result& r) {
    sattn::Op op = build(OpKind::sparse_attention, desc, &r.warnings, index);
    if (!op.forced_spec) throw sattn::Error(sattn::ExitCode::invalid_input, "no 'spec' to lower");
    fill_resolved(r, op, *op.forced_spec, resolve_feasible(op, *op.forced_spec));
  });
}

}  // namespace sattn_bridge
