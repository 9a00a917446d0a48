// The sattn dialect and its passes (generated from SattnOps.td and Passes.td).
#pragma once
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/Pass/Pass.h"

#include "sattn-mlir/SattnOpsDialect.h.inc"
#define GET_OP_CLASSES
#include "sattn-mlir/SattnOps.h.inc"

namespace sattn_mlir {
#define GEN_PASS_DECL
#include "sattn-mlir/Passes.h.inc"
#define GEN_PASS_REGISTRATION
#include "sattn-mlir/Passes.h.inc"

// sattn-to-rvv and sattn-to-rocc: sattn-select-spec for the target, then its lowering.
void registerSattnPipelines();
}  // namespace sattn_mlir
