// The imc backend: an op's layouts (its spec's and the dense one it is compared with) costed on
// the crossbar model, as a sattn.imc/v1 document; the registry's entry.
#include <optional>

#include "backends/imc/imc.hpp"
#include "formats/data.hpp"
#include "formats/profile.hpp"

namespace sattn {

ImcParams imc_params(const std::optional<std::string>& profile) {
  ImcParams p;
  if (profile)
    for (const auto& [file, node] : load_profile(*profile).sections("imc")) apply_yaml(p, node, file);
  return p;
}

MemoryEstimate imc_memory(const BackendInput& item) {
  const Op& op = item.plan.op;
  const MemoryUse sparse{.data = is_data_dependent(item.plan.spec) && !item.data, .outputs = false, .layout = !item.layout};
  MemoryEstimate e = estimate_memory(op, item.plan.spec, item.plan.params, sparse);
  const int64_t dense = estimate_memory(op, Spec::dense, DenseParams{}, {.data = false, .outputs = false}).bytes;
  e.parts.emplace_back("dense layout", dense);
  e.bytes += dense;
  return e;
}

ImcPrepared prepare_imc(const BackendInput& item, const QKV* data) {
  const Op& op = item.plan.op;
  ImcPrepared p{item.input, op, item.plan.spec, {}, {}};
  if (item.layout) {
    p.sparse = *item.layout;
  } else if (is_data_dependent(item.plan.spec)) {
    if (!data) throw Error(ExitCode::runtime, "imc: " + std::string(to_string(item.plan.spec)) + " needs the op's data");
    p.sparse = build_layout(op, item.plan.spec, item.plan.params, &data->q, &data->k);
  } else {
    p.sparse = build_layout(op, item.plan.spec, item.plan.params, nullptr, nullptr);
  }
  p.dense = build_layout(op, Spec::dense, resolve_params(op, Spec::dense), nullptr, nullptr);
  return p;
}

nlohmann::json imc_attention_json(const ImcPrepared& po, const ImcOpReport& r, const ImcParams& p, const std::string& tool) {
  nlohmann::json j = envelope("imc", tool);
  j["mode"] = "attention";
  j["input"] = po.input;
  j["op"] = po.op.name;
  j["spec"] = std::string(to_string(po.spec));
  j["precision"] = std::string(to_string(po.op.precision));
  j["params"] = to_json(p);
  const int cpw = (r.weight_bits + (r.kv_cell == ImcCell::sram ? 1 : p.cell_bits) - 1) /
                  (r.kv_cell == ImcCell::sram ? 1 : p.cell_bits);
  j["mapping"] = {{"input_bits", r.input_bits},
                  {"weight_bits", r.weight_bits},
                  {"cells_per_weight", cpw},
                  {"kv_cell", std::string(to_string(r.kv_cell))},
                  {"density", r.density},
                  {"dense_density", r.dense_density}};
  j["notes"] = r.notes;
  j["sparse"] = to_json(r.sparse, p, r.kv_cell);
  j["dense"] = to_json(r.dense, p, r.kv_cell);
  auto ratio = [](double a, double b) { return b > 0 ? nlohmann::json(a / b) : nlohmann::json(nullptr); };
  if (r.scheme && r.sparse_per_tensor) {
    // The scheme's cost against per-tensor quantization of the same sparse op (sattn-imc(1)).
    const ImcCost& s = r.sparse;
    const ImcCost& t = *r.sparse_per_tensor;
    j["quant"] = {{"quant_scheme", r.scheme_name},
                  {"pv_input_bits", r.scheme->pv_input_bits},
                  {"pv_weight_bits", r.scheme->pv_weight_bits},
                  {"energy_pj", s.energy_pj.total()},
                  {"per_tensor_energy_pj", t.energy_pj.total()},
                  {"energy_overhead", ratio(s.energy_pj.total() - t.energy_pj.total(), t.energy_pj.total())},
                  {"adc_energy_pj", s.energy_pj.adc},
                  {"per_tensor_adc_energy_pj", t.energy_pj.adc},
                  {"peripheral_energy_pj", s.energy_pj.accumulation + s.energy_pj.buffer},
                  {"per_tensor_peripheral_energy_pj", t.energy_pj.accumulation + t.energy_pj.buffer},
                  {"latency_ns", s.latency_ns.total()},
                  {"per_tensor_latency_ns", t.latency_ns.total()}};
  } else if (po.op.precision == Precision::i8 || po.op.precision == Precision::i4) {
    j["quant"] = {{"quant_scheme", "per-tensor"}};
  }
  j["ratio"] = {{"energy", ratio(r.dense.energy_pj.total(), r.sparse.energy_pj.total())},
                {"latency", ratio(r.dense.latency_ns.total(), r.sparse.latency_ns.total())},
                {"area", ratio(r.dense.area_mm2.total(), r.sparse.area_mm2.total())},
                {"tops_per_w", ratio(r.sparse.tops_per_w(), r.dense.tops_per_w())},
                {"effective_tops_per_w", ratio(r.dense.ops, r.sparse.energy_pj.total())}};
  return j;
}

namespace {

class ImcBackend final : public Backend {
 public:
  std::string_view name() const override { return "imc"; }
  std::string_view summary() const override {
    return "in-memory-compute crossbars (a cost model): energy, latency, area, sparse against dense";
  }
  Target cost_target() const override { return Target::imc; }
  BackendCapabilities capabilities() const override {
    return {{Precision::fp32, Precision::bf16, Precision::i8, Precision::i4}, false, true, "", /*softcap=*/false,
            /*quant_schemes=*/true};
  }
  BackendResult run(const BackendInput& item, const QKV& data, const DataSource&,
                    const BackendRunOptions& o) const override {
    const CancelScope cancel(o.cancel);  // this call's cancellation
    const ImcParams params = imc_params(o.profile);
    const ImcPrepared prepared = prepare_imc(item, &data);
    const ImcOpReport report = imc_attention(prepared.op, prepared.sparse, prepared.dense, params);
    return {imc_attention_json(prepared, report, params, o.tool).dump(), true, {}, {}};
  }
};

}  // namespace

const Backend& imc_backend() {
  static const ImcBackend backend;
  return backend;
}

}  // namespace sattn
