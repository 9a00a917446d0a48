// The RVV backend's performance model (sattn-run-rvv(1), "CORE MODEL"): the exact dynamic
// instruction mix of a kernel region, as counted by the QEMU plugin libsattn-insn-count.so, turned
// into modelled cycles by a simple in-order core model (VLEN, DLEN, lanes, per-class costs).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace YAML {
class Node;
}

namespace sattn::rvv {

// Dynamic instruction counts of the kernel region, one field per class of the plugin
// (libsattn/qemu-plugin/riscv_classify.h says which instruction goes where).
struct InstructionMix {
  uint64_t scalar = 0;
  uint64_t vector_arith = 0;  // arithmetic, moves, permutes, conversions, mask ops
  uint64_t vector_load_unit = 0, vector_store_unit = 0;
  uint64_t vector_load_strided = 0, vector_store_strided = 0;
  uint64_t vector_load_indexed = 0, vector_store_indexed = 0;  // gathers / scatters
  uint64_t vector_reduction = 0;
  uint64_t vsetvl = 0;
  // Elements (memory accesses, one per active element and segment field) moved by the vector
  // loads and stores of each kind, counted by the plugin, so gathers are charged per element.
  uint64_t unit_elements = 0, strided_elements = 0, indexed_elements = 0;
  // The classes whose cost follows the register group, split by the LMUL each instruction ran
  // at (the plugin tracks vtype through every vsetvl*); lmul 0 = unknown (vtype set from a
  // register), charged at RegionShape::lmul. Empty: everything at RegionShape::lmul.
  struct LmulBin {
    double lmul = 0;  // 0.125 .. 8, or 0
    uint64_t vector_arith = 0, vector_load_unit = 0, vector_store_unit = 0, vector_reduction = 0;
  };
  std::vector<LmulBin> by_lmul;
  uint64_t regions = 0;  // marker pairs seen (a runner has one)
  nlohmann::json histogram = nlohmann::json::object();  // mnemonic -> {class, count}

  uint64_t total() const;
  uint64_t vector() const;  // every class but scalar (vsetvl included)
};

// Reads the plugin's output (sattn.insn-count/v1). Throws Error(external_tool) when the file is
// missing or malformed, or when the markers were unbalanced (a runner bug).
InstructionMix read_instruction_mix(const std::string& path);
// {"total", "vector", "regions", "classes": {...}, "histogram": {...}}
nlohmann::json to_json(const InstructionMix&);

// A parameterised in-order core with a vector unit. Every cost is in cycles; the assumptions are
// those of sattn-run-rvv(1), CORE MODEL. Defaults are compiled in; a YAML file (--core-model, or
// a profile's core model section) overrides any subset of them.
struct CoreModel {
  std::string name = "default";   // a label for reports
  std::string source = "built-in";  // the files applied, in order
  int vlen = 256;                 // bits per vector register, when --vlen does not say
  int dlen = 128;                 // bits per cycle through the vector arithmetic datapath
  int mem_bits = 128;             // bits per cycle through the vector load/store unit (unit-stride)
  int lanes = 1;                  // elements per cycle of strided and indexed accesses
  int element_bits = 32;          // element width assumed for the depth of reduction trees
  double scalar_ipc = 1.0;        // scalar instructions retired per cycle
  double vsetvl_cycles = 1.0;     // per vsetvl/vsetvli/vsetivli
  double vector_issue_cycles = 1.0;  // floor of any vector instruction's occupancy
  double arith_cycles_per_beat = 1.0;      // per DLEN-bit beat
  double load_cycles_per_beat = 1.0;       // per mem_bits-bit beat of a unit-stride load
  double store_cycles_per_beat = 1.0;      // per mem_bits-bit beat of a unit-stride store
  double reduction_cycles_per_beat = 1.0;  // per DLEN-bit beat of a reduction's operand
  double reduction_step_cycles = 1.0;      // per level of the reduction tree
  double strided_cycles_per_element = 1.0;  // per element and lane
  double indexed_cycles_per_element = 2.0;  // per element and lane (gather/scatter)

  // Applies the keys present in `node` (a mapping; `file` names it in errors). Unknown keys,
  // wrong types and out-of-range values are Error(invalid_input) with file:line:col.
  void apply_yaml(const YAML::Node& node, const std::string& file);
  // Reads and applies a YAML file (--core-model FILE): the mapping itself, or its `rvv:` section
  // when it has one (so a profile can be given as the file). Syntax errors carry file:line:col.
  void apply_file(const std::string& path);
  nlohmann::json to_json() const;
};

// Lets load_profile() validate a profile's `rvv:` section with CoreModel::apply_yaml.
void register_rvv_profile_section();

// What the cycle model needs to know about the run beyond the counts.
struct RegionShape {
  int vlen = 256;  // bits
  int lmul = 1;    // LMUL charged where the counts do not know it (runner.json "lmul")
};

struct CycleEstimate {
  double total = 0;
  nlohmann::json by_class = nlohmann::json::object();  // class -> cycles
  // Per LMUL charged: {"lmul", "arith_beats" = ceil(VLEN*LMUL/DLEN), "mem_beats" =
  // ceil(VLEN*LMUL/mem_bits), "reduction_levels" = ceil(log2(VLEN*LMUL/element_bits))}
  nlohmann::json groups = nlohmann::json::array();
  nlohmann::json to_json() const;
};

CycleEstimate model_cycles(const CoreModel&, const InstructionMix&, const RegionShape&);

}  // namespace sattn::rvv
