// sattn-select-spec, sattn-lower-rvv, sattn-lower-rocc: libsattn's selector and parameter
// resolution (through Bridge.h) applied to every sattn.sparse_attention op; and the named
// pipelines sattn-to-rvv / sattn-to-rocc.
#include "Convert.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
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

// The pass options as the bridge's plain struct. A template because the options' types are
// protected members of the generated pass bases. An empty backend and l1-bytes=0 (the defaults)
// count as not given, so that sattn-select's order (flag > SATTN_* > profile > default) decides;
// a lowering pass's `defaultBackend` is its target.
template <class Str, class Flag, class Int, class List, class Real>
sattn_bridge::Options bridgeOptions(const Str& backend, const Flag& preferBsr, const Flag& preferSw, const Int& l1Bytes,
                                    const Str& forceSpec, const List& disable, const Str& profile,
                                    const Real& minRecall, const List& data, const Real& recallConfidence,
                                    const Str& recallBound, const char* defaultBackend) {
  sattn_bridge::Options o;
  o.backend = std::string(backend).empty() ? std::string(defaultBackend) : std::string(backend);
  o.backend_set = !o.backend.empty();
  o.prefer_bsr = preferBsr;
  o.prefer_sw = preferSw;
  o.l1_set = l1Bytes != 0;
  o.l1_bytes = l1Bytes;
  o.force = forceSpec;
  for (const std::string& d : disable) o.disable.push_back(d);
  o.profile = profile;
  o.min_recall_set = double(minRecall) >= 0;
  o.min_recall = minRecall;
  for (const std::string& d : data) o.data.push_back(d);
  o.recall_confidence_set = double(recallConfidence) >= 0;
  o.recall_confidence = recallConfidence;
  o.recall_bound = recallBound;
  return o;
}
#define SATTN_BRIDGE_OPTIONS(defaultBackend) \
  bridgeOptions(backend, preferBsr, preferSw, l1Bytes, forceSpec, disable, profile, minRecall, data, recallConfidence, \
                recallBound, \
                defaultBackend)

// Sets `spec` and `selection` on ops that have no selection yet. False on error (reported).
bool selectAll(Operation* root, const sattn_bridge::Options& o) {
  bool ok = true;
  root->walk([&](SparseAttentionOp op) {
    if (op->hasAttr("selection")) return;
    sattn_bridge::Result r = sattn_bridge::select(toBridgeOp(op), o);
    if (!r.ok) {
      op->emitError(r.error);
      ok = false;
      return;
    }
    Builder b(op->getContext());
    op->setAttr("spec", b.getStringAttr(r.spec));
    op->setAttr("selection", b.getStringAttr(r.selection));
    // A recall-constrained choice is a grid point: its parameters become the op's attributes.
    for (const sattn_bridge::Attr& a : r.chosen_params) op->setAttr(a.name, toMlirAttr(b, a));
  });
  return ok;
}

// Every sattn op in input order (the reader names an unnamed op after its position).
SmallVector<Operation*> sattnOps(Operation* root) {
  SmallVector<Operation*> ops;
  root->walk([&](Operation* op) {
    if (isa<SparseAttentionOp, RvvCallOp, RoccCallOp>(op)) ops.push_back(op);
  });
  return ops;
}

template <class CallOp>
bool lowerAll(Operation* root, const sattn_bridge::Options& o) {
  if (!selectAll(root, o)) return false;
  bool ok = true;
  SmallVector<Operation*> ops = sattnOps(root);
  for (size_t index = 0; index < ops.size(); ++index) {
    auto op = dyn_cast<SparseAttentionOp>(ops[index]);
    if (!op) continue;  // already lowered
    sattn_bridge::Result r = sattn_bridge::resolve(toBridgeOp(op), index);
    if (!r.ok) {
      op->emitError(r.error);
      ok = false;
      continue;
    }
    OpBuilder b(op);
    NamedAttrList attrs(op->getAttrDictionary());
    // Aliases are resolved into their canonical names.
    for (const char* alias : {"num_heads", "num_kv_heads", "force_spec"}) attrs.erase(alias);
    for (const sattn_bridge::Attr& a : r.resolved) attrs.set(a.name, toMlirAttr(b, a));
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
    // No lowering target: the backend is sattn-select's (flag, else profile, else cpu).
    if (!selectAll(getOperation(), SATTN_BRIDGE_OPTIONS(""))) signalPassFailure();
  }
};
struct LowerRvv : impl::SattnLowerRvvBase<LowerRvv> {
  using SattnLowerRvvBase::SattnLowerRvvBase;
  void runOnOperation() override {
    if (!lowerAll<RvvCallOp>(getOperation(), SATTN_BRIDGE_OPTIONS("rvv"))) signalPassFailure();
  }
};
struct LowerRocc : impl::SattnLowerRoccBase<LowerRocc> {
  using SattnLowerRoccBase::SattnLowerRoccBase;
  void runOnOperation() override {
    if (!lowerAll<RoccCallOp>(getOperation(), SATTN_BRIDGE_OPTIONS("rocc"))) signalPassFailure();
  }
};

// The named pipelines' options: the selection options of the passes, less the backend (the
// pipeline's target).
struct PipelineOptions : PassPipelineOptions<PipelineOptions> {
  Option<bool> preferBsr{*this, "prefer-bsr", llvm::cl::desc("Scale bsr's cost by 0.75, sliding_window's by 1.1")};
  Option<bool> preferSw{*this, "prefer-sw", llvm::cl::desc("Scale sliding_window's cost by 0.75, bsr's by 1.1")};
  Option<int64_t> l1Bytes{*this, "l1-bytes", llvm::cl::desc("L1 / scratchpad bytes of the target (0: not given)"),
                          llvm::cl::init(0)};
  Option<std::string> forceSpec{*this, "force-spec", llvm::cl::desc("Use this spec for every op")};
  ListOption<std::string> disable{*this, "disable", llvm::cl::desc("Never select these specs")};
  Option<std::string> profile{*this, "profile", llvm::cl::desc("Profile NAME or PATH (sattn-profile(5))")};
  Option<double> minRecall{*this, "min-recall",
                           llvm::cl::desc("Quality target: the cheapest recall-grid candidate whose recall on the "
                                          "calibration data is at least R, else dense (negative: not given)"),
                           llvm::cl::init(-1.0)};
  ListOption<std::string> data{*this, "data", llvm::cl::desc("Calibration samples for min-recall (directories)")};
  Option<double> recallConfidence{*this, "recall-confidence",
                                  llvm::cl::desc("Confidence of min-recall's lower bound, from 0.5 to below 1 "
                                                 "(negative: not given, 0.95)"),
                                  llvm::cl::init(-1.0)};
  Option<std::string> recallBound{*this, "recall-bound",
                                  llvm::cl::desc("What min-recall's bound covers: window, mean or cv (empty: not "
                                                 "given, window)")};
};

// sattn-select-spec{backend=TARGET, ...} then the lowering to TARGET's call op.
template <class LowerOptions>
void buildPipeline(OpPassManager& pm, const PipelineOptions& p, const char* target,
                   std::unique_ptr<Pass> (*lower)(const LowerOptions&)) {
  SattnSelectSpecOptions select;
  select.backend = target;
  select.preferBsr = p.preferBsr;
  select.preferSw = p.preferSw;
  select.forceSpec = p.forceSpec;
  std::vector<std::string> disabled(p.disable.begin(), p.disable.end());  // the pass copies it
  select.disable = disabled;
  select.profile = p.profile;
  select.l1Bytes = p.l1Bytes;
  select.minRecall = p.minRecall;
  select.recallConfidence = p.recallConfidence;
  select.recallBound = p.recallBound;
  std::vector<std::string> data(p.data.begin(), p.data.end());
  select.data = data;
  LowerOptions lowering;  // every op is selected by now: the lowering only resolves parameters
  lowering.backend = target;
  pm.addPass(createSattnSelectSpec(select));
  pm.addPass(lower(lowering));
}

}  // namespace

void registerSattnPipelines() {
  PassPipelineRegistration<PipelineOptions>(
      "sattn-to-rvv", "Select every op's spec for RVV (sattn-select-spec) and lower it to sattn.rvv_call",
      [](OpPassManager& pm, const PipelineOptions& p) {
        buildPipeline<SattnLowerRvvOptions>(pm, p, "rvv", createSattnLowerRvv);
      });
  PassPipelineRegistration<PipelineOptions>(
      "sattn-to-rocc", "Select every op's spec for the RoCC accelerator and lower it to sattn.rocc_call",
      [](OpPassManager& pm, const PipelineOptions& p) {
        buildPipeline<SattnLowerRoccOptions>(pm, p, "rocc", createSattnLowerRocc);
      });
}

}  // namespace sattn_mlir
