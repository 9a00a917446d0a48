// The reference oracle: short, double accumulation, plain (not online) softmax.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "sattn/attention.hpp"
#include "support/process.hpp"

namespace sattn {

namespace {

// One query row against a list of keys, in double. Writes head_dim outputs.
void reference_row(const float* q, const Tensor& k, const Tensor& v, int64_t b, int64_t kvh,
                   const std::vector<int64_t>& keys, double scale, float* out) {
  const int64_t d = k.dim();
  std::fill(out, out + d, 0.0f);
  if (keys.empty()) return;  // no allowed key: output 0
  std::vector<double> s(keys.size());
  double m = -std::numeric_limits<double>::infinity();
  for (size_t t = 0; t < keys.size(); ++t) {
    const float* kr = k.row(b, kvh, keys[t]);
    double dot = 0;
    for (int64_t c = 0; c < d; ++c) dot += double(q[c]) * double(kr[c]);
    s[t] = dot * scale;
    m = std::max(m, s[t]);
  }
  double sum = 0;
  for (double& x : s) sum += (x = std::exp(x - m));
  std::vector<double> acc(d, 0.0);
  for (size_t t = 0; t < keys.size(); ++t) {
    const float* vr = v.row(b, kvh, keys[t]);
    for (int64_t c = 0; c < d; ++c) acc[c] += s[t] * double(vr[c]);
  }
  for (int64_t c = 0; c < d; ++c) out[c] = float(acc[c] / sum);
}

template <class KeysOf>
Tensor run_reference(const Op& op, const Tensor& q, const Tensor& k, const Tensor& v, KeysOf keys_of) {
  const Shape& s = op.shape;
  Tensor o(s.batch, s.heads, s.seq_len, s.head_dim);
  std::vector<int64_t> keys;
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < s.heads; ++h)
      for (int64_t i = 0; i < s.seq_len; ++i) {
        throw_if_interrupted();  // a row is O(kv_len * head_dim): checked every row
        keys.clear();
        keys_of(b, h, i, keys);
        reference_row(q.row(b, h, i), k, v, b, h / s.group_size(), keys, op.softmax_scale(), o.row(b, h, i));
      }
  return o;
}

}  // namespace

Tensor reference_attention_masked(const Op& op, const Tensor& q, const Tensor& k, const Tensor& v,
                                  const MaskFn& allowed) {
  return run_reference(op, q, k, v, [&](int64_t b, int64_t h, int64_t i, std::vector<int64_t>& keys) {
    for (int64_t j = 0; j < op.shape.kv_len; ++j)
      if (allowed(b, h, i, j)) keys.push_back(j);
  });
}

Tensor reference_attention_dense(const Op& op, const Tensor& q, const Tensor& k, const Tensor& v) {
  const int64_t offset = op.shape.kv_len - op.shape.seq_len;
  return reference_attention_masked(op, q, k, v, [&](int64_t, int64_t, int64_t i, int64_t j) {
    return !op.causal || j <= i + offset;
  });
}

Tensor reference_attention(const Op& op, const Layout& layout, const Tensor& q, const Tensor& k, const Tensor& v) {
  const int64_t group = op.shape.group_size();
  return run_reference(op, q, k, v, [&](int64_t b, int64_t h, int64_t i, std::vector<int64_t>& keys) {
    const HeadLayout& hl = layout.head(b, h / group);
    if (!layout.block) {
      for (int64_t t = hl.ptr[i]; t < hl.ptr[i + 1]; ++t) keys.push_back(hl.idx[t]);
      return;
    }
    const int64_t br = i / layout.block_size;
    for (int64_t t = hl.ptr[br]; t < hl.ptr[br + 1]; ++t) {
      const int64_t j0 = int64_t(hl.idx[t]) * layout.block_size;
      for (int64_t j = j0; j < j0 + layout.block_size; ++j)
        if (layout.causal_ok(i, j)) keys.push_back(j);
    }
  });
}

ErrorStats compare(const Tensor& out, const Tensor& ref) {
  ErrorStats e;
  double ref_max = 0;
  for (size_t t = 0; t < ref.data.size(); ++t) {
    const double o = out.data[t];
    if (!std::isfinite(o)) e.finite = false;
    e.max_abs = std::max(e.max_abs, std::abs(o - double(ref.data[t])));
    ref_max = std::max(ref_max, std::abs(double(ref.data[t])));
  }
  e.max_rel = ref_max > 0 ? e.max_abs / ref_max : e.max_abs;
  if (!e.finite) e.max_abs = e.max_rel = std::numeric_limits<double>::infinity();
  return e;
}

double tolerance(Precision p) {
  switch (p) {
    case Precision::fp32: return 1e-4;
    case Precision::bf16: return 1e-2;
    case Precision::i8: return 5e-2;
    case Precision::i4: return 2.5e-1;
  }
  return 0;
}

}  // namespace sattn
