// The sattn dialect: ops and verifiers (the checks are libsattn's, through Bridge.h).
#include "sattn-mlir/Sattn.h"

#include "Convert.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"

#include <mutex>
#include <set>

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

LogicalResult verifyWithLibsattn(Operation* op, sattn_bridge::OpKind kind) {
  sattn_bridge::Result r = sattn_bridge::verify(kind, toBridgeOp(op));
  // At the op's location, not on the op: a diagnostic on an op prints it, and printing an op
  // verifies it first (endless recursion). Once per op and message, though the module is
  // verified after parsing and after every pass.
  static std::mutex mutex;
  static std::set<std::pair<const void*, std::string>> warned;
  for (const std::string& w : r.warnings) {
    std::lock_guard<std::mutex> lock(mutex);
    if (warned.insert({op->getLoc().getAsOpaquePointer(), w}).second) mlir::emitWarning(op->getLoc(), w);
  }
  if (!r.ok) return op->emitError(r.error);
  return success();
}

LogicalResult SparseAttentionOp::verify() { return verifyWithLibsattn(*this, sattn_bridge::OpKind::sparse_attention); }
LogicalResult RvvCallOp::verify() { return verifyWithLibsattn(*this, sattn_bridge::OpKind::rvv_call); }
LogicalResult RoccCallOp::verify() { return verifyWithLibsattn(*this, sattn_bridge::OpKind::rocc_call); }

}  // namespace sattn_mlir
