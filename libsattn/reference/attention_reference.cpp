// The reference oracle: short, double accumulation, plain (not online) softmax.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "sattn/attention.hpp"
#include "sattn/error.hpp"
#include "support/process.hpp"

namespace sattn {

namespace {

// The score of a scaled dot product: soft-capped (c * tanh(s / c)) when the op asks for it.
double capped(double s, double softcap) {
  return softcap > 0 ? softcap * std::tanh(s / softcap) : s;
}

// One query row against a list of keys, in double. Writes head_dim outputs.
void reference_row(const float* q, const Tensor& k, const Tensor& v, int64_t b, int64_t kvh,
                   const std::vector<int64_t>& keys, double scale, double softcap, float* out) {
  const int64_t d = k.dim();
  std::fill(out, out + d, 0.0f);
  if (keys.empty()) return;  // no allowed key: output 0
  std::vector<double> s(keys.size());
  double m = -std::numeric_limits<double>::infinity();
  for (size_t t = 0; t < keys.size(); ++t) {
    const float* kr = k.row(b, kvh, keys[t]);
    double dot = 0;
    for (int64_t c = 0; c < d; ++c) dot += double(q[c]) * double(kr[c]);
    s[t] = capped(dot * scale, softcap);
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
        reference_row(q.row(b, h, i), k, v, b, h / s.group_size(), keys, op.softmax_scale(), op.softcap.value_or(0),
                      o.row(b, h, i));
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

namespace {

// The keys of query row i of head h in a layout: its CSR list, or its kept blocks expanded with
// the causal rule and the bounds.
void layout_keys(const Layout& layout, int64_t group, int64_t b, int64_t h, int64_t i, std::vector<int64_t>& keys) {
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
}

void check_reference_shapes(const char* who, const Op& op, const Tensor& q, const Tensor& k, const Tensor& v,
                            const Tensor* dout) {
  const Shape& s = op.shape;
  const std::array<int64_t, 4> qs{s.batch, s.heads, s.seq_len, s.head_dim}, ks{s.batch, s.kv_heads, s.kv_len, s.head_dim};
  auto bad = [&](const char* name) {
    throw Error(ErrorKind::invalid_input, std::string(who) + ": " + name + " does not have the op's shape");
  };
  if (s.kv_heads <= 0 || s.heads % s.kv_heads != 0) bad("heads (not a multiple of kv_heads)");
  if (q.shape != qs || q.data.size() != size_t(TensorView(q).size())) bad("q");
  if (k.shape != ks || k.data.size() != size_t(TensorView(k).size())) bad("k");
  if (v.shape != ks || v.data.size() != size_t(TensorView(v).size())) bad("v");
  if (dout && (dout->shape != qs || dout->data.size() != size_t(TensorView(*dout).size()))) bad("dout");
}

}  // namespace

Tensor reference_attention(const Op& op, const Layout& layout, const Tensor& q, const Tensor& k, const Tensor& v) {
  const int64_t group = op.shape.group_size();
  return run_reference(op, q, k, v, [&](int64_t b, int64_t h, int64_t i, std::vector<int64_t>& keys) {
    layout_keys(layout, group, b, h, i, keys);
  });
}

std::vector<double> reference_lse(const Op& op, const Layout& layout, const Tensor& q, const Tensor& k) {
  const Shape& s = op.shape;
  const int64_t group = s.group_size(), d = s.head_dim;
  const double scale = op.softmax_scale();
  std::vector<double> lse(static_cast<size_t>(s.batch * s.heads * s.seq_len), -std::numeric_limits<double>::infinity());
  std::vector<int64_t> keys;
  std::vector<double> sc;
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < s.heads; ++h)
      for (int64_t i = 0; i < s.seq_len; ++i) {
        throw_if_interrupted();
        keys.clear();
        layout_keys(layout, group, b, h, i, keys);
        if (keys.empty()) continue;
        sc.assign(keys.size(), 0.0);
        double m = -std::numeric_limits<double>::infinity();
        for (size_t t = 0; t < keys.size(); ++t) {
          const float* qr = q.row(b, h, i);
          const float* kr = k.row(b, h / group, keys[t]);
          double dot = 0;
          for (int64_t c = 0; c < d; ++c) dot += double(qr[c]) * double(kr[c]);
          m = std::max(m, sc[t] = capped(dot * scale, op.softcap.value_or(0)));
        }
        double sum = 0;
        for (double x : sc) sum += std::exp(x - m);
        lse[(b * s.heads + h) * s.seq_len + i] = m + std::log(sum);
      }
  return lse;
}

// Per row: P = softmax(cap(scale * q K^T)) over the row's keys, O = P V, dP = dO V^T,
// dS = P * (dP - rowsum(dO * O)) * cap', dq = scale * dS K, dk += scale * dS^T q, dv += P^T dO;
// all in double, accumulated over the query heads of each KV head. cap(s) = c * tanh(s / c) with
// the op's softcap c (cap' = 1 - tanh^2(s / c)); without one cap is the identity.
Gradients reference_attention_backward(const Op& op, const Layout& layout, const Tensor& q, const Tensor& k,
                                       const Tensor& v, const Tensor& dout) {
  check_reference_shapes("reference_attention_backward", op, q, k, v, &dout);
  const Shape& s = op.shape;
  const int64_t group = s.group_size(), d = s.head_dim;
  const double scale = op.softmax_scale(), softcap = op.softcap.value_or(0);
  Gradients g{Tensor(s.batch, s.heads, s.seq_len, d), Tensor(s.batch, s.kv_heads, s.kv_len, d),
              Tensor(s.batch, s.kv_heads, s.kv_len, d)};
  std::vector<double> dk(g.dk.data.size(), 0.0), dv(g.dv.data.size(), 0.0);
  std::vector<int64_t> keys;
  std::vector<double> p, dp, slope, o(d), dq(d);
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < s.heads; ++h)
      for (int64_t i = 0; i < s.seq_len; ++i) {
        throw_if_interrupted();
        keys.clear();
        layout_keys(layout, group, b, h, i, keys);
        if (keys.empty()) continue;  // an empty row: output 0, no gradient anywhere
        const int64_t kvh = h / group;
        const float* qr = q.row(b, h, i);
        const float* gr = dout.row(b, h, i);
        const size_t n = keys.size();
        p.assign(n, 0.0);
        dp.assign(n, 0.0);
        slope.assign(n, 1.0);
        double m = -std::numeric_limits<double>::infinity();
        for (size_t t = 0; t < n; ++t) {
          const float* kr = k.row(b, kvh, keys[t]);
          double dot = 0;
          for (int64_t c = 0; c < d; ++c) dot += double(qr[c]) * double(kr[c]);
          if (softcap > 0) {
            const double th = std::tanh(dot * scale / softcap);
            slope[t] = 1 - th * th;
          }
          m = std::max(m, p[t] = capped(dot * scale, softcap));
        }
        double sum = 0;
        for (double& x : p) sum += (x = std::exp(x - m));
        for (double& x : p) x /= sum;
        std::fill(o.begin(), o.end(), 0.0);
        for (size_t t = 0; t < n; ++t) {
          const float* vr = v.row(b, kvh, keys[t]);
          double dot = 0;
          for (int64_t c = 0; c < d; ++c) {
            o[c] += p[t] * double(vr[c]);
            dot += double(gr[c]) * double(vr[c]);
          }
          dp[t] = dot;
        }
        double delta = 0;
        for (int64_t c = 0; c < d; ++c) delta += double(gr[c]) * o[c];
        std::fill(dq.begin(), dq.end(), 0.0);
        for (size_t t = 0; t < n; ++t) {
          const double ds = p[t] * (dp[t] - delta) * slope[t] * scale;
          const float* kr = k.row(b, kvh, keys[t]);
          const size_t kv_row = size_t(((b * s.kv_heads + kvh) * s.kv_len + keys[t]) * d);
          for (int64_t c = 0; c < d; ++c) {
            dq[c] += ds * double(kr[c]);
            dk[kv_row + c] += ds * double(qr[c]);
            dv[kv_row + c] += p[t] * double(gr[c]);
          }
        }
        float* dq_row = g.dq.row(b, h, i);
        for (int64_t c = 0; c < d; ++c) dq_row[c] = float(dq[c]);
      }
  for (size_t e = 0; e < dk.size(); ++e) {
    g.dk.data[e] = float(dk[e]);
    g.dv.data[e] = float(dv[e]);
  }
  return g;
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
