// The only door between the MLIR code (built as MLIR is: without exceptions) and libsattn
// (exceptions). Plain structs in, plain structs out; nothing throws across it.
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

// One sattn op as MLIR holds it: its attributes and where it is (a FileLineColLoc), so that
// libsattn's messages and selection reasons name the same places as sattn-select's.
struct OpDesc {
  std::vector<Attr> attrs;
  std::string file;
  int line = 0, col = 0;
};

struct Options {  // the pass options: sattn-select's flags, given or not
  std::string backend = "cpu";
  bool backend_set = false, prefer_bsr = false, prefer_sw = false, l1_set = false;
  int64_t l1_bytes = 0;
  std::string force, profile;
  std::vector<std::string> disable;
  bool min_recall_set = false;     // min-recall: selection under a quality target
  double min_recall = 0;
  std::vector<std::string> data;   // its calibration samples
  bool recall_confidence_set = false;  // recall-confidence: the bound's confidence (default 0.95)
  double recall_confidence = 0.95;
  std::string recall_bound;  // recall-bound: window, mean or cv; empty: not given
};

struct Result {
  bool ok = true;
  int exit_code = 0;
  std::string error;                  // libsattn's message, verbatim
  std::vector<std::string> warnings;  // unknown attributes, ... (without the op's location)
  // select():
  std::string spec, selection;        // selection: "KIND: REASON"
  std::vector<Attr> resolved;         // shape, numerics and the spec's parameters, resolved
  std::vector<Attr> chosen_params;    // select() under min-recall: the chosen grid point's parameters
};

enum class OpKind { sparse_attention, rvv_call, rocc_call };

// libsattn's DialectOpBuilder (the MLIR reader's) + validate() over the attributes; a backend
// call's spec must also be able to run on the op.
Result verify(OpKind, const OpDesc&) noexcept;
// select_spec() with the options merged as sattn-select merges its flags (SATTN_* env honoured).
Result select(const OpDesc&, const Options& options) noexcept;
// resolve_params of the op's `spec`: the attributes a backend call carries. `index`: the op's
// position among the module's sattn ops (an unnamed op is named "op<index>", as the reader does).
Result resolve(const OpDesc&, size_t index) noexcept;

}  // namespace sattn_bridge
