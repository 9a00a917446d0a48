// Reading ops (MLIR generic form, JSON, YAML) and an op's Q/K/V (.npy files or the seeded
// synthetic generator): sattn-artifacts(7), sattn-select(1).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sattn/op.hpp"
#include "sattn/tensor.hpp"

namespace sattn {

enum class OpFormat { automatic, mlir, json, yaml };

// Parse every op in `text`. `filename` is used in error locations only. With `automatic`, the
// format is guessed from the content: a `"sattn.sparse_attention"` op (or any op of the sattn
// dialect, generic or custom form: sattn-opt's lowered sattn.rvv_call / sattn.rocc_call are
// read as ops with their spec forced) or `module` -> MLIR,
// a leading `{` or `[` -> JSON, otherwise YAML. Each op is validated. Errors throw
// Error(invalid_input) with file:line:col and, where it applies, the attribute's name.
//
// Attribute names and aliases (all optional): name, batch, heads (num_heads), kv_heads
// (num_kv_heads; default heads), seq_len, kv_len (default seq_len), head_dim, causal, scale,
// precision, scale_q/k/v, spec (force_spec), the pattern attributes of PatternAttrs, and
// gqa_group_size (the prototype's name: kv_heads = heads / gqa_group_size). An op without a name
// is named "op<N>", N its 0-based index in the input. Op::loc and Op::attr_loc (keyed by the
// canonical name) are filled. JSON and YAML ops may carry "schema" ("sattn.op/v1"; a
// "sattn.plan/v1" document's "op" member is read instead) and "producer".
//
// Warnings (an unknown attribute, which is ignored) are appended to `*warnings` as
// "FILE:LINE:COL: message" when `warnings` is given (the CLI prints them with its prefix);
// otherwise they are printed to stderr as "warning: FILE:LINE:COL: message".
std::vector<Op> parse_ops(std::string_view text, const std::string& filename, OpFormat = OpFormat::automatic,
                          std::vector<std::string>* warnings = nullptr);
// Reads a file ("-" = stdin, named "<stdin>" in messages) and parses it. With `automatic`, the
// extension decides (.mlir, .json/.jsonl, .yaml/.yml), else the content as in parse_ops().
std::vector<Op> read_ops(const std::string& path, OpFormat = OpFormat::automatic,
                         std::vector<std::string>* warnings = nullptr);

// Where an op's Q/K/V come from: DIR/{q,k,v}.npy, else the seeded synthetic generator; or the
// artifacts the op was read from (from_artifacts: the data came with them).
// The axis order of the .npy arrays in a data directory: bhsd = [batch, heads, seq, head_dim] (the
// default, what sattn computes in), bshd = [batch, seq, heads, head_dim] (Hugging Face's
// hidden-state order before the transpose), transposed to bhsd on read.
enum class DataLayout { bhsd, bshd };

struct DataSource {
  std::optional<std::string> dir;
  uint64_t seed = 0x5A77;  // kDefaultSeed, the embedded default data set
  bool from_artifacts = false;
  DataLayout layout = DataLayout::bhsd;  // --layout: the axis order of DIR's arrays
};

// Q, K and V for `op`: DIR/q.npy, k.npy and v.npy (float32; float16 and float64, converted to
// float32 with a note; bfloat16 as uint16 bit patterns), or, with
// no directory, the deterministic synthetic generator seeded with `seed` (the same bits on every
// machine). Shapes must match the op; NaN or Inf is Error(invalid_input) naming the file.
QKV read_qkv(const Op& op, const std::optional<std::string>& dir, uint64_t seed = 0x5A77);

}  // namespace sattn
