// sattn-select-spec, sattn-lower-rvv, sattn-lower-rocc: libsattn's selector and parameter
// resolution (through Bridge.h) applied to every sattn.sparse_attention op.
#include "Convert.h"
#include "sattn-mlir/Sattn.h"

namespace sattn_mlir {
#define GEN_PASS_DEF_SATTNSELECTSPEC
#define GEN_PASS_DEF_SATTNLOWERRVV
#define GEN_PASS_DEF_SATTNLOWERROCC
#include "sattn-mlir/Passes.h.inc"
}  // namespace sattn_mlir

using namespace mlir;

namespace sattn_mlir {
namespace {

// The pass options as the bridge's plain struct (a macro: the options are protected members).
#define SATTN_OPTIONS(defaultBackend)                                                          \
  [&] {                                                                                        \
    sattn_bridge::Options o;                                                                   \
    o.backend_set = true;                                                                      \
    o.backend = backend.hasValue() ? std::string(backend) : std::string(defaultBackend);       \
    o.prefer_bsr = preferBsr;                                                                  \
    o.prefer_sw = preferSw;                                                                    \
    o.l1_set = l1Bytes.hasValue();                                                             \
    o.l1_bytes = l1Bytes;                                                                      \
    o.force = forceSpec;                                                                       \
    for (const std::string& d : disable) o.disable.push_back(d);                               \
    o.profile = profile;                                                                       \
    return o;                                                                                  \
  }()

// Sets `spec` and `selection` on ops that have no selection yet. False on error (reported).
bool selectAll(Operation* root, const sattn_bridge::Options& o) {
  bool ok = true;
  root->walk([&](SparseAttentionOp op) {
    if (op->hasAttr("selection")) return;
    sattn_bridge::Result r = sattn_bridge::select(toBridgeAttrs(op), o);
    if (!r.ok) {
      op->emitError(r.error);
      ok = false;
      return;
    }
    Builder b(op->getContext());
    op->setAttr("spec", b.getStringAttr(r.spec));
    op->setAttr("selection", b.getStringAttr(r.selection));
  });
  return ok;
}

template <class CallOp>
bool lowerAll(Operation* root, const sattn_bridge::Options& o) {
  if (!selectAll(root, o)) return false;
  bool ok = true;
  SmallVector<SparseAttentionOp> ops;
  root->walk([&](SparseAttentionOp op) { ops.push_back(op); });
  for (SparseAttentionOp op : ops) {
    sattn_bridge::Result r = sattn_bridge::resolve(toBridgeAttrs(op), o.backend);
    if (!r.ok) {
      op->emitError(r.error);
      ok = false;
      continue;
    }
    OpBuilder b(op);
    NamedAttrList attrs(op->getAttrDictionary());
    for (const sattn_bridge::Attr& a : r.resolved) attrs.set(a.name, toMlirAttr(b, a));
    // Aliases were resolved into their canonical names.
    for (const char* alias : {"num_heads", "num_kv_heads", "force_spec"}) attrs.erase(alias);
    OperationState state(op.getLoc(), CallOp::getOperationName());
    state.addAttributes(attrs);
    b.create(state);
    op->erase();
  }
  return ok;
}

struct SelectSpec : impl::SattnSelectSpecBase<SelectSpec> {
  using SattnSelectSpecBase::SattnSelectSpecBase;
  void runOnOperation() override {
    sattn_bridge::Options o = SATTN_OPTIONS("cpu");
    o.backend_set = backend.hasValue();
    if (!selectAll(getOperation(), o)) signalPassFailure();
  }
};
struct LowerRvv : impl::SattnLowerRvvBase<LowerRvv> {
  using SattnLowerRvvBase::SattnLowerRvvBase;
  void runOnOperation() override {
    if (!lowerAll<RvvCallOp>(getOperation(), SATTN_OPTIONS("rvv"))) signalPassFailure();
  }
};
struct LowerRocc : impl::SattnLowerRoccBase<LowerRocc> {
  using SattnLowerRoccBase::SattnLowerRoccBase;
  void runOnOperation() override {
    if (!lowerAll<RoccCallOp>(getOperation(), SATTN_OPTIONS("rocc"))) signalPassFailure();
  }
};

}  // namespace
}  // namespace sattn_mlir
