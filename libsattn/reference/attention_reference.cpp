// The reference oracle: short, double accumulation, plain (not online) softmax.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "sattn/attention.hpp"
#include "sattn/error.hpp"
#include "core/quant_scheme.hpp"
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

Tensor reference_attention_quantized(const Op& op, const QuantScheme& scheme, const Layout& layout, const Tensor& q,
                                     const Tensor& k, const Tensor& v) {
  check_reference_shapes("reference_attention_quantized", op, q, k, v, nullptr);
  const QuantizedQKV z = quantize_qkv(op, scheme, q, k, v);
  const Shape& s = op.shape;
  const int64_t group = s.group_size(), d = s.head_dim;
  const double scale = op.softmax_scale(), softcap = op.softcap.value_or(0);
  Tensor o(s.batch, s.heads, s.seq_len, d);
  std::vector<int64_t> keys;
  std::vector<double> sc, acc(static_cast<size_t>(d), 0.0);
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < s.heads; ++h)
      for (int64_t i = 0; i < s.seq_len; ++i) {
        throw_if_interrupted();
        keys.clear();
        layout_keys(layout, group, b, h, i, keys);
        float* out = o.row(b, h, i);
        if (keys.empty()) continue;  // no allowed key: output 0
        const int64_t kvh = h / group, qr = z.q_row(b, h, i);
        const int8_t* qc = z.q_codes.data() + qr * d;
        const float* mean = scheme.smooth_q ? z.mean_of(b, h, i) : nullptr;
        sc.assign(keys.size(), 0.0);
        double m = -std::numeric_limits<double>::infinity();
        for (size_t t = 0; t < keys.size(); ++t) {
          const int64_t kr = z.k_row(b, kvh, keys[t]);
          const int8_t* kc = z.k_codes.data() + kr * d;
          int64_t dot = 0;  // exact
          for (int64_t c = 0; c < d; ++c) dot += int64_t(qc[c]) * int64_t(kc[c]);
          double score = double(dot) * double(z.q_scale[size_t(qr)]) * double(z.k_scale[size_t(kr)]);
          if (mean) {  // the mean-Q term at high precision
            const float* ks = z.k_smooth.data() + kr * d;
            for (int64_t c = 0; c < d; ++c) score += double(mean[c]) * double(ks[c]);
          }
          if (!z.row_bias.empty()) score += double(z.row_bias[size_t(qr)]);  // softcap: q . mean(K) back
          m = std::max(m, sc[t] = capped(score * scale, softcap));
        }
        std::fill(acc.begin(), acc.end(), 0.0);
        double sum = 0;
        for (size_t t = 0; t < keys.size(); ++t) {
          const int64_t kr = z.k_row(b, kvh, keys[t]);
          double p = std::exp(sc[t] - m);
          if (z.p_max > 0) {  // P quantized with the fixed scale 1 / p_max, round half to even
            p = std::nearbyint(p * double(z.p_max));
            const int16_t* vc = z.v_codes.data() + kr * d;
            for (int64_t c = 0; c < d; ++c) acc[size_t(c)] += p * double(vc[c]);
          } else {
            const float* vd = z.v_dequant.data() + kr * d;
            for (int64_t c = 0; c < d; ++c) acc[size_t(c)] += p * double(vd[c]);
          }
          sum += p;
        }
        const float* vs = z.v_scale.data() + (b * s.kv_heads + kvh) * d;
        for (int64_t c = 0; c < d; ++c)
          out[c] = float(z.p_max > 0 ? acc[size_t(c)] * double(vs[c]) / sum : acc[size_t(c)] / sum);
      }
  return o;
}

Tensor reference_attention_quantized(const Op& op, const Layout& layout, const Tensor& q, const Tensor& k,
                                     const Tensor& v) {
  return reference_attention_quantized(op, quant_scheme_of(op), layout, q, k, v);
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
  double ref_max = 0, abs_diff = 0, abs_ref = 0, dot = 0, out_sq = 0, ref_sq = 0;
  for (size_t t = 0; t < ref.data.size(); ++t) {
    const double o = out.data[t], r = ref.data[t];
    if (!std::isfinite(o)) e.finite = false;
    e.max_abs = std::max(e.max_abs, std::abs(o - r));
    ref_max = std::max(ref_max, std::abs(r));
    abs_diff += std::abs(o - r);
    abs_ref += std::abs(r);
    dot += o * r;
    out_sq += o * o;
    ref_sq += r * r;
  }
  e.max_rel = ref_max > 0 ? e.max_abs / ref_max : e.max_abs;
  e.rel_l1 = abs_ref > 0 ? abs_diff / abs_ref : abs_diff;
  e.cosine = out_sq > 0 && ref_sq > 0 ? dot / std::sqrt(out_sq * ref_sq) : (out_sq == ref_sq ? 1.0 : 0.0);
  if (!e.finite) {
    e.max_abs = e.max_rel = e.rel_l1 = std::numeric_limits<double>::infinity();
    e.cosine = 0;
  }
  return e;
}

double tolerance(Precision p) {
  switch (p) {
    case Precision::fp32: return 1e-4;
    case Precision::bf16: return 1e-2;
    case Precision::i8: return 5e-2;
    case Precision::i4: return std::numeric_limits<double>::infinity();  // gated by rel-L1 and cosine
  }
  return 0;
}

Tolerance tolerance_of(Precision p, const QuantScheme& scheme) {
  Tolerance t;
  if (p == Precision::i4) {
    if (scheme.is_per_tensor()) {
      t.same_quantized = true;  // no accuracy promise: only the kernel is checked (docs/decisions.md)
      t.max_rel = 1e-4;
    } else {
      t.rel_l1 = 2e-1;
      t.min_cosine = 0.98;
    }
    return t;
  }
  t.max_rel = tolerance(p);
  return t;
}

bool within(const ErrorStats& e, const Tolerance& t) {
  return e.finite && e.max_rel <= t.max_rel && e.rel_l1 <= t.rel_l1 && e.cosine >= t.min_cosine;
}

std::string describe(const Tolerance& t) {
  auto sci = [](double x) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1e", x);
    return std::string(buf);
  };
  std::string s;
  auto add = [&](const std::string& part) { s += (s.empty() ? "" : ", ") + part; };
  if (std::isfinite(t.max_rel)) add("max relative error <= " + sci(t.max_rel));
  if (std::isfinite(t.rel_l1)) add("relative L1 <= " + sci(t.rel_l1));
  if (t.min_cosine > -1) add("cosine >= " + std::to_string(t.min_cosine).substr(0, 5));
  if (t.same_quantized) s += " against the same-quantized reference";
  return s;
}

}  // namespace sattn
