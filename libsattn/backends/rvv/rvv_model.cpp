// Instruction mix (the plugin's counts) and the cycle model of sattn-run-rvv(1), CORE MODEL.
#include "backends/rvv/rvv_model.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>

#include "sattn/error.hpp"

namespace sattn::rvv {

uint64_t InstructionMix::vector() const {
  return vector_arith + vector_load_unit + vector_store_unit + vector_load_strided + vector_store_strided +
         vector_load_indexed + vector_store_indexed + vector_reduction + vsetvl;
}

uint64_t InstructionMix::total() const { return scalar + vector(); }

namespace {

struct ClassField {
  const char* name;
  uint64_t InstructionMix::*field;
};
constexpr ClassField kClasses[] = {
    {"scalar", &InstructionMix::scalar},
    {"vector_arith", &InstructionMix::vector_arith},
    {"vector_load_unit", &InstructionMix::vector_load_unit},
    {"vector_store_unit", &InstructionMix::vector_store_unit},
    {"vector_load_strided", &InstructionMix::vector_load_strided},
    {"vector_store_strided", &InstructionMix::vector_store_strided},
    {"vector_load_indexed", &InstructionMix::vector_load_indexed},
    {"vector_store_indexed", &InstructionMix::vector_store_indexed},
    {"vector_reduction", &InstructionMix::vector_reduction},
    {"vsetvl", &InstructionMix::vsetvl},
};

[[noreturn]] void bad_counts(const std::string& path, const std::string& what) {
  throw Error(ExitCode::external_tool, "instruction counts from the QEMU plugin " + what, SourceLoc{path});
}

uint64_t count_at(const nlohmann::json& obj, const char* key, const std::string& path) {
  const auto it = obj.find(key);
  if (it == obj.end() || !it->is_number_unsigned()) bad_counts(path, std::string("lack a count '") + key + "'");
  return it->get<uint64_t>();
}

}  // namespace

InstructionMix read_instruction_mix(const std::string& path) {
  std::ifstream in(path);
  if (!in)
    throw Error(ExitCode::external_tool,
                "the QEMU plugin wrote no counts (did qemu-riscv64 load libsattn-insn-count.so?)", SourceLoc{path});
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || j.value("schema", "") != "sattn.insn-count/v1") bad_counts(path, "are not sattn.insn-count/v1");
  InstructionMix m;
  const nlohmann::json classes = j.value("classes", nlohmann::json::object());
  for (const ClassField& c : kClasses) m.*c.field = count_at(classes, c.name, path);
  const nlohmann::json elements = j.value("elements", nlohmann::json::object());
  m.unit_elements = count_at(elements, "vector_load_unit", path) + count_at(elements, "vector_store_unit", path);
  m.strided_elements =
      count_at(elements, "vector_load_strided", path) + count_at(elements, "vector_store_strided", path);
  m.indexed_elements =
      count_at(elements, "vector_load_indexed", path) + count_at(elements, "vector_store_indexed", path);
  m.regions = count_at(j, "regions", path);
  static const std::pair<const char*, double> kBins[] = {{"m1", 1},     {"m2", 2},      {"m4", 4},     {"m8", 8},
                                                         {"mf2", 0.5},  {"mf4", 0.25},  {"mf8", 0.125}, {"unknown", 0}};
  const nlohmann::json by_lmul = j.value("by_lmul", nlohmann::json::object());
  InstructionMix::LmulBin sum;
  for (const auto& [name, lmul] : kBins) {
    const auto it = by_lmul.find(name);
    if (it == by_lmul.end()) continue;
    InstructionMix::LmulBin b;
    b.lmul = lmul;
    b.vector_arith = it->value("vector_arith", uint64_t(0));
    b.vector_load_unit = it->value("vector_load_unit", uint64_t(0));
    b.vector_store_unit = it->value("vector_store_unit", uint64_t(0));
    b.vector_reduction = it->value("vector_reduction", uint64_t(0));
    sum.vector_arith += b.vector_arith;
    sum.vector_load_unit += b.vector_load_unit;
    sum.vector_store_unit += b.vector_store_unit;
    sum.vector_reduction += b.vector_reduction;
    m.by_lmul.push_back(b);
  }
  if (sum.vector_arith != m.vector_arith || sum.vector_load_unit != m.vector_load_unit ||
      sum.vector_store_unit != m.vector_store_unit || sum.vector_reduction != m.vector_reduction)
    bad_counts(path, "do not add up: the by_lmul split differs from the class totals");
  m.histogram = j.value("histogram", nlohmann::json::object());
  if (j.value("open_region", false) || count_at(j, "stray_end_markers", path) || count_at(j, "nested_begin_markers", path))
    bad_counts(path, "show unbalanced region markers (a begin without an end, or the reverse): a runner bug");
  if (count_at(j, "total", path) != m.total()) bad_counts(path, "do not add up: total differs from the classes' sum");
  return m;
}

nlohmann::json to_json(const InstructionMix& m) {
  nlohmann::json classes = nlohmann::json::object();
  for (const ClassField& c : kClasses) classes[c.name] = m.*c.field;
  nlohmann::json bins = nlohmann::json::array();
  for (const InstructionMix::LmulBin& b : m.by_lmul)
    bins.push_back({{"lmul", b.lmul == 0 ? nlohmann::json("unknown") : nlohmann::json(b.lmul)},
                    {"vector_arith", b.vector_arith},
                    {"vector_load_unit", b.vector_load_unit},
                    {"vector_store_unit", b.vector_store_unit},
                    {"vector_reduction", b.vector_reduction}});
  return {{"total", m.total()},
          {"vector", m.vector()},
          {"regions", m.regions},
          {"classes", classes},
          {"by_lmul", bins},
          {"elements", {{"unit", m.unit_elements}, {"strided", m.strided_elements}, {"indexed", m.indexed_elements}}},
          {"histogram", m.histogram}};
}

// ---- the cycle model --------------------------------------------------------------------------

CycleEstimate model_cycles(const CoreModel& core, const InstructionMix& m, const RegionShape& shape) {
  CycleEstimate e;
  std::vector<InstructionMix::LmulBin> bins = m.by_lmul;
  if (bins.empty()) {
    InstructionMix::LmulBin all;
    all.vector_arith = m.vector_arith;
    all.vector_load_unit = m.vector_load_unit;
    all.vector_store_unit = m.vector_store_unit;
    all.vector_reduction = m.vector_reduction;
    bins.push_back(all);
  }
  // Every vector instruction occupies its unit for at least vector_issue_cycles.
  auto occupancy = [&](double cycles) { return std::max(core.vector_issue_cycles, cycles); };
  double arith = 0, load = 0, store = 0, reduction = 0;
  for (const InstructionMix::LmulBin& b : bins) {
    const double lmul = b.lmul > 0 ? b.lmul : double(std::max(shape.lmul, 1));
    const double group_bits = double(shape.vlen) * lmul;
    const int64_t arith_beats = std::max<int64_t>(1, int64_t(std::ceil(group_bits / core.dlen)));
    const int64_t mem_beats = std::max<int64_t>(1, int64_t(std::ceil(group_bits / core.mem_bits)));
    const double group_elements = std::max(group_bits / core.element_bits, 1.0);
    const int64_t levels = int64_t(std::ceil(std::log2(group_elements)));
    e.groups.push_back({{"lmul", lmul},
                        {"lmul_known", b.lmul > 0},
                        {"arith_beats", arith_beats},
                        {"mem_beats", mem_beats},
                        {"reduction_levels", levels}});
    arith += double(b.vector_arith) * occupancy(double(arith_beats) * core.arith_cycles_per_beat);
    load += double(b.vector_load_unit) * occupancy(double(mem_beats) * core.load_cycles_per_beat);
    store += double(b.vector_store_unit) * occupancy(double(mem_beats) * core.store_cycles_per_beat);
    reduction += double(b.vector_reduction) * (occupancy(double(arith_beats) * core.reduction_cycles_per_beat) +
                                               double(levels) * core.reduction_step_cycles);
  }

  auto& c = e.by_class;
  c["scalar"] = double(m.scalar) / core.scalar_ipc;
  c["vsetvl"] = double(m.vsetvl) * core.vsetvl_cycles;
  c["vector_arith"] = arith;
  c["vector_load_unit"] = load;
  c["vector_store_unit"] = store;
  c["vector_reduction"] = reduction;
  // Strided and indexed accesses: an issue slot each, then one address per lane and cycle.
  c["vector_strided"] = double(m.vector_load_strided + m.vector_store_strided) * core.vector_issue_cycles +
                        double(m.strided_elements) * core.strided_cycles_per_element / core.lanes;
  c["vector_indexed"] = double(m.vector_load_indexed + m.vector_store_indexed) * core.vector_issue_cycles +
                        double(m.indexed_elements) * core.indexed_cycles_per_element / core.lanes;
  for (const auto& [name, cycles] : c.items()) e.total += cycles.get<double>();
  return e;
}

nlohmann::json CycleEstimate::to_json() const {
  return {{"total", std::llround(total)}, {"by_class", by_class}, {"groups", groups}};
}

}  // namespace sattn::rvv
