// The passes of sattn-opt (sattn-opt(1)). Their options are sattn-select's flags; options left
// at their defaults count as not given, so the SATTN_* environment and the profile apply.
#ifndef SATTN_PASSES_TD
#define SATTN_PASSES_TD
include "mlir/Pass/PassBase.td"

defvar SattnSelectOptions = [
  Option<"backend", "backend", "std::string", "\"\"",
         "Target backend of the cost model: cpu, rvv, rocc or imc (default: sattn-select's; a lowering's own target)">,
  Option<"preferBsr", "prefer-bsr", "bool", "false", "Scale bsr's cost by 0.75, sliding_window's by 1.1">,
  Option<"preferSw", "prefer-sw", "bool", "false", "Scale sliding_window's cost by 0.75, bsr's by 1.1">,
  Option<"l1Bytes", "l1-bytes", "int64_t", "0",
         "L1 / scratchpad bytes of the target (outranks SATTN_HW_L1_BYTES; 0: not given)">,
  Option<"forceSpec", "force-spec", "std::string", "\"\"",
         "Use this spec for every op (outranks SATTN_FORCE_SPEC and the op's spec attribute)">,
  ListOption<"disable", "disable", "std::string", "Never select these specs (adds to SATTN_DISABLE_*)">,
  Option<"profile", "profile", "std::string", "\"\"", "Profile NAME or PATH (sattn-profile(5))">,
  Option<"minRecall", "min-recall", "double", "-1.0",
         "Quality target: the cheapest recall-grid candidate whose recall on the calibration data is at least R, else dense (outranks SATTN_MIN_RECALL; negative: not given)">,
  ListOption<"data", "data", "std::string", "Calibration samples for min-recall: directories of q.npy, k.npy, v.npy (none: the synthetic sample)">,
  Option<"recallConfidence", "recall-confidence", "double", "-1.0",
         "Confidence of min-recall's lower bound, from 0.5 to below 1 (outranks SATTN_RECALL_CONFIDENCE; negative: not given, 0.95)">,
  Option<"recallBound", "recall-bound", "std::string", "\"\"",
         "What min-recall's bound covers: window, mean or cv (cv: the mean bound at the confidence cross-validation over 4 or more data samples picks; outranks SATTN_RECALL_BOUND; empty: not given, window)">
];

def SattnSelectSpec : Pass<"sattn-select-spec"> {
  let summary = "Select a spec for every sattn.sparse_attention op (libsattn's selector, as sattn-select)";
  let description = [{
    Sets `spec` and `selection` ("KIND: REASON") on every sattn.sparse_attention op that has no
    `selection` yet, choosing as sattn-select does with the same flags and environment.
  }];
  let options = SattnSelectOptions;
}
def SattnLowerRvv : Pass<"sattn-lower-rvv"> {
  let summary = "Rewrite sattn.sparse_attention into sattn.rvv_call (selecting for rvv where no selection is recorded)";
  let options = SattnSelectOptions;
}
def SattnLowerRocc : Pass<"sattn-lower-rocc"> {
  let summary = "Rewrite sattn.sparse_attention into sattn.rocc_call (selecting for rocc where no selection is recorded)";
  let options = SattnSelectOptions;
}
#endif
