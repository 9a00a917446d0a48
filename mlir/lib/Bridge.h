// The only door between the MLIR code (built as MLIR is: -fno-rtti -fno-exceptions) and libsattn
// (exceptions + RTTI). Plain structs in, plain structs out; nothing throws across it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace sattn_bridge {

// One attribute as written (mirrors sattn::detail::AttrValue).
struct Attr {
  enum Kind { integer, floating, string, boolean, other } kind = other;
  std::string name;
  uint64_t magnitude = 0;
  bool negative = false;
  double number = 0;
  bool flag = false;
  std::string text;
};

struct Options {  // the pass options: sattn-select's flags, given or not
  std::string backend = "cpu";
  bool backend_set = false, prefer_bsr = false, prefer_sw = false, l1_set = false;
  int64_t l1_bytes = 0;
  std::string force, profile;
  std::vector<std::string> disable;
};

struct Result {
  bool ok = true;
  int exit_code = 0;
  std::string error;                  // libsattn's message, verbatim
  std::vector<std::string> warnings;  // unknown attributes, ...
  // select():
  std::string spec, selection;        // selection: "KIND: REASON"
  std::vector<Attr> resolved;         // shape, numerics and the spec's parameters, resolved
};

// libsattn's OpBuilder + validate() over the attributes (call ops: + resolve_params of `spec`).
Result verify(const std::vector<Attr>& attrs, bool is_call) noexcept;
// select_spec() with the options merged as sattn-select merges its flags (SATTN_* env honoured).
Result select(const std::vector<Attr>& attrs, const Options& options) noexcept;
// resolve_params of the op's `spec`: the attributes a backend call carries.
Result resolve(const std::vector<Attr>& attrs, const std::string& backend) noexcept;

}  // namespace sattn_bridge
