// Internal to the C API (libsattn/capi): the handles behind sattn.h's opaque types, the error
// guard that turns exceptions into statuses and the thread-local message, and DLTensor checks.
#pragma once
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "sattn/error.hpp"
#include "sattn/layout.hpp"
#include "sattn/op.hpp"
#include "sattn/sattn.h"
#include "sattn/select.hpp"
#include "sattn/tensor.hpp"

struct sattn_op {
  sattn::Op op;
};

struct sattn_plan {
  sattn::Plan plan;
  std::string spec, json;
};

struct sattn_layout {
  sattn::Layout layout;
};

namespace sattn::capi {

// Sets this thread's last error message.
void set_last_error(std::string message);

// Runs `body`; an exception becomes a status (its ErrorKind, which equals the exit code) and the
// thread's last error message. `fn` prefixes messages that carry no function name of their own.
sattn_status guarded(const char* fn, const std::function<void()>& body);

// Throws Error(usage) naming `fn` and `what` when `p` is null.
void require(const void* p, const char* fn, const char* what);

// Where a DLTensor lives, for the forward's dispatch.
enum class Device { cpu, cuda };

// A float32, C-contiguous DLTensor of `ndim` dimensions as a [.., .., .., ..] view (ndim 3 views
// get shape {d0, d1, d2, 1}). Anything else is Error(invalid_input) naming `fn` and `name`.
// `device` receives where it lives (CPU or CUDA; others are refused).
TensorView view_of(const DLTensor* t, const char* fn, const char* name, int ndim, Device* device);
MutableTensorView mutable_view_of(DLTensor* t, const char* fn, const char* name, int ndim, Device* device);

}  // namespace sattn::capi
