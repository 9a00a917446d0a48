// sattn's public C++ API: one include for everything a user needs. Link sattn::sattn
// (find_package(sattn)) or `pkg-config --cflags --libs sattn`.
//
//   auto ops = sattn::read_ops("op.mlir");                       // formats.hpp
//   sattn::Plan plan = sattn::select_spec(ops[0], sattn::resolve_select_request({}));  // select.hpp
//   sattn::QKV data = sattn::read_qkv(plan.op, std::nullopt);   // synthetic, seeded
//   sattn::Layout layout = sattn::build_layout(plan.op, plan.spec, plan.params, &data.q, &data.k);
//   sattn::Tensor out = sattn::fast_attention(plan.op, layout, data.q, data.k, data.v, {});
//   sattn::Tensor ref = sattn::reference_attention(plan.op, layout, data.q, data.k, data.v);
//   bool ok = sattn::compare(out, ref).max_rel <= sattn::tolerance(plan.op.precision);
#pragma once
#include "sattn/attention.hpp"
#include "sattn/backend.hpp"
#include "sattn/cancel.hpp"
#include "sattn/cuda.hpp"
#include "sattn/error.hpp"
#include "sattn/fidelity.hpp"
#include "sattn/formats.hpp"
#include "sattn/layout.hpp"
#include "sattn/model.hpp"
#include "sattn/op.hpp"
#include "sattn/plan.hpp"
#include "sattn/profile.hpp"
#include "sattn/select.hpp"
#include "sattn/tensor.hpp"

namespace sattn {
// The library's version, "MAJOR.MINOR.PATCH" (the SONAME carries MAJOR).
const char* version();
}  // namespace sattn
