// MLIR attributes <-> the bridge's plain attributes.
#pragma once
#include <charconv>

#include "Bridge.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Location.h"
#include "mlir/IR/Operation.h"

namespace sattn_mlir {

inline sattn_bridge::OpDesc toBridgeOp(mlir::Operation* op) {
  sattn_bridge::OpDesc desc;
  if (auto loc = op->getLoc().dyn_cast<mlir::FileLineColLoc>()) {
    desc.file = loc.getFilename().str();
    desc.line = int(loc.getLine());
    desc.col = int(loc.getColumn());
  }
  std::vector<sattn_bridge::Attr>& out = desc.attrs;
  for (mlir::NamedAttribute na : op->getAttrs()) {
    sattn_bridge::Attr a;
    a.name = na.getName().str();
    mlir::Attribute v = na.getValue();
    if (auto b = llvm::dyn_cast<mlir::BoolAttr>(v)) {
      a.kind = sattn_bridge::Attr::boolean, a.flag = b.getValue();
    } else if (llvm::isa<mlir::UnitAttr>(v)) {
      a.kind = sattn_bridge::Attr::boolean, a.flag = true;
    } else if (auto i = llvm::dyn_cast<mlir::IntegerAttr>(v)) {
      llvm::APInt x = i.getValue();
      bool isUnsigned = i.getType().isUnsignedInteger();
      a.kind = sattn_bridge::Attr::integer;
      a.negative = !isUnsigned && x.isNegative();
      a.magnitude = a.negative ? (-x).getZExtValue() : x.getZExtValue();
    } else if (auto f = llvm::dyn_cast<mlir::FloatAttr>(v)) {
      a.kind = sattn_bridge::Attr::floating, a.number = f.getValueAsDouble();
      // libsattn's reader takes `0.05 : f32` as the double 0.05; MLIR rounds it to a float.
      // The float's shortest decimal form is the literal again.
      if (!f.getType().isF64()) {
        char buf[64];
        auto [end, ec] = std::to_chars(buf, buf + sizeof buf, float(a.number));
        if (ec == std::errc()) std::from_chars(buf, end, a.number);
      }
    } else if (auto s = llvm::dyn_cast<mlir::StringAttr>(v)) {
      a.kind = sattn_bridge::Attr::string, a.text = s.str();
    } else {
      std::string text;
      llvm::raw_string_ostream os(text);
      v.print(os);
      a.kind = sattn_bridge::Attr::other, a.text = os.str();
    }
    out.push_back(std::move(a));
  }
  return desc;
}

inline mlir::Attribute toMlirAttr(mlir::Builder& b, const sattn_bridge::Attr& a) {
  switch (a.kind) {
    case sattn_bridge::Attr::boolean: return b.getBoolAttr(a.flag);
    case sattn_bridge::Attr::integer:
      if (a.name == "seed") return b.getIntegerAttr(b.getIntegerType(64, false), llvm::APInt(64, a.magnitude));
      return b.getI64IntegerAttr(a.negative ? -int64_t(a.magnitude) : int64_t(a.magnitude));
    case sattn_bridge::Attr::floating: return b.getF64FloatAttr(a.number);
    default: return b.getStringAttr(a.text);
  }
}

}  // namespace sattn_mlir
