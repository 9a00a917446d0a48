// What a backend is given: one op, as a plan, with the layout and data it came with when it was
// read from artifacts (sattn-artifacts(7)).
#pragma once
#include <optional>
#include <string>

#include "sattn/layout.hpp"
#include "sattn/select.hpp"
#include "sattn/tensor.hpp"

namespace sattn {

// One op for a backend: its plan and, when it came from artifacts, their layout and data.
struct BackendInput {
  std::string input;  // the file it was read from ("-" = stdin)
  Plan plan;
  std::optional<Layout> layout;
  std::optional<QKV> data;
};

}  // namespace sattn
