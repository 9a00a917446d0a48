#ifndef SATTN_PASSES_TD
#define SATTN_PASSES_TD
include "mlir/Pass/PassBase.td"

defvar SattnSelectOptions = [
  Option<"backend", "backend", "std::string", "\"cpu\"", "Target backend of the cost model: cpu, rvv, rocc or imc">,
  Option<"preferBsr", "prefer-bsr", "bool", "false", "Scale bsr's cost by 0.75, sliding_window's by 1.1">,
  Option<"preferSw", "prefer-sw", "bool", "false", "Scale sliding_window's cost by 0.75, bsr's by 1.1">,
  Option<"l1Bytes", "l1-bytes", "int64_t", "0", "L1 / scratchpad bytes of the target (outranks SATTN_HW_L1_BYTES)">,
  Option<"forceSpec", "force-spec", "std::string", "\"\"", "Use this spec for every op (outranks SATTN_FORCE_SPEC)">,
  ListOption<"disable", "disable", "std::string", "Never select these specs">,
  Option<"profile", "profile", "std::string", "\"\"", "Profile NAME or PATH (sattn-profile(5))">
];

def SattnSelectSpec : Pass<"sattn-select-spec"> {
  let summary = "Select a spec for every sattn.sparse_attention op (libsattn's selector, as sattn-select)";
  let options = SattnSelectOptions;
}
def SattnLowerRvv : Pass<"sattn-lower-rvv"> {
  let summary = "Rewrite sattn.sparse_attention into sattn.rvv_call (selecting first where no selection is recorded)";
  let options = SattnSelectOptions;
}
def SattnLowerRocc : Pass<"sattn-lower-rocc"> {
  let summary = "Rewrite sattn.sparse_attention into sattn.rocc_call (selecting first where no selection is recorded)";
  let options = SattnSelectOptions;
}
#endif
