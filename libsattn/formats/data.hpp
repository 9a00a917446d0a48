// Where an op's Q/K/V come from (a .npy directory or the seeded generator), and the JSON pieces
// every sattn.* document and result is made of: the envelope, the layout summary, the result header.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/synthetic.hpp"
#include "sattn/formats.hpp"
#include "sattn/layout.hpp"
#include "sattn/plan.hpp"

namespace sattn {

// Reads DIR/{q,k,v}.npy or generates synthetic data. Shapes must match the op
// (q: [batch, heads, seq_len, head_dim]; k, v: [batch, kv_heads, kv_len, head_dim]); NaN or Inf
// values are input errors naming the file and element.
QKV load_qkv(const Op&, const DataSource&);
// An op that gives no shape attribute (none of batch, heads, kv_heads, gqa_group_size, seq_len,
// kv_len, head_dim in Op::attr_loc) takes its shape from DIR's arrays, read in src.layout: q gives
// batch, heads, seq_len, head_dim; k gives kv_heads and kv_len. It is validated again and one
// warning line names the shape. No directory, or an op that gives any shape attribute: a no-op
// (the documented defaults apply and a mismatch is an error). Non-4-D arrays are input errors.
void infer_shape_from_data(Op&, const DataSource&);
// Finite data whose fp32 arithmetic would still overflow is refused (an input error naming the
// file): scores |q . k| * scale up to max|q| * max|k| * head_dim * scale must stay below 1e38 (an
// overflowed row would read as "no allowed key", 0, where the double reference gives the mean of
// V), and the P V sum up to max|v| * kv_len below 1e38 (the fast kernel would give inf).
void check_data_range(const Op&, const QKV&, const std::string& q_file, const std::string& k_file,
                      const std::string& v_file);
// Describes a DataSource for results and envelopes: {"source": "npy", "dir"}, {"source":
// "synthetic", "seed"} or {"source": "artifacts"}.
nlohmann::json describe(const DataSource&);

// What a result says about a layout: granularity, block size, sharing, nnz, allowed (query, key)
// pairs over every query head, density.
nlohmann::json layout_summary(const Op&, const Layout&);
// The members every sattn.result/v1 starts with: schema and producer, op (as run), spec, params,
// backend, precision (the one the backend ran at), data, selection, layout.
nlohmann::json result_header(const Plan&, const Op& op_as_run, Precision, const std::string& backend,
                             const nlohmann::json& data_desc, const Layout&, const std::string& tool);

// sattn.* documents carry {"schema", "producer": {"tool", "version"}}.
nlohmann::json envelope(const std::string& kind, const std::string& tool);

}  // namespace sattn
