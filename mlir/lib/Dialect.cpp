// The sattn dialect: ops and verifiers (the checks are libsattn's, through Bridge.h).
#include "sattn-mlir/Sattn.h"

#include "Convert.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"

using namespace mlir;

#include "sattn-mlir/SattnOpsDialect.cpp.inc"
#define GET_OP_CLASSES
#include "sattn-mlir/SattnOps.cpp.inc"

namespace sattn_mlir {

void SattnDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "sattn-mlir/SattnOps.cpp.inc"
      >();
}

LogicalResult verifyWithLibsattn(Operation* op, bool isCall) {
  sattn_bridge::Result r = sattn_bridge::verify(toBridgeAttrs(op), isCall);
  for (const std::string& w : r.warnings) op->emitWarning(w);
  if (!r.ok) return op->emitError(r.error);
  return success();
}

LogicalResult SparseAttentionOp::verify() { return verifyWithLibsattn(*this, false); }
LogicalResult RvvCallOp::verify() { return verifyWithLibsattn(*this, true); }
LogicalResult RoccCallOp::verify() { return verifyWithLibsattn(*this, true); }

}  // namespace sattn_mlir
