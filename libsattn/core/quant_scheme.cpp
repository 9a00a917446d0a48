// Quantization schemes (sattn/quant.hpp): names, parsing, and the quantization of one op's Q, K,
// V into codes and scale tables (sattn-quant(7) "Math").
#include "core/quant_scheme.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/quant.hpp"
#include "sattn/error.hpp"

namespace sattn {

std::string_view to_string(ScaleGranularity g) {
  switch (g) {
    case ScaleGranularity::tensor: return "tensor";
    case ScaleGranularity::head: return "head";
    case ScaleGranularity::block: return "block";
    case ScaleGranularity::token: return "token";
  }
  return "?";
}

std::string_view to_string(PvPrecision p) {
  switch (p) {
    case PvPrecision::fp32: return "fp32";
    case PvPrecision::i8: return "i8";
    case PvPrecision::fix16: return "fix16";
  }
  return "?";
}

std::string_view to_string(VGranularity g) { return g == VGranularity::tensor ? "tensor" : "channel"; }

bool QuantScheme::is_per_tensor() const { return *this == per_tensor_scheme(); }

QuantScheme per_tensor_scheme() { return QuantScheme{}; }

QuantScheme sage_scheme() {
  QuantScheme s;
  s.q = ScaleGranularity::token;
  s.k = ScaleGranularity::block;
  s.block = 16;
  s.smooth_q = s.smooth_k = true;
  s.pv = PvPrecision::i8;
  s.v = VGranularity::channel;
  return s;
}

QuantScheme smooth_scheme() {
  QuantScheme s;
  s.q = ScaleGranularity::token;
  s.k = ScaleGranularity::token;
  s.block = 16;
  s.smooth_q = s.smooth_k = true;
  s.rotate = true;
  s.pv = PvPrecision::fix16;
  s.v = VGranularity::channel;
  return s;
}

QuantScheme recommended_scheme(Precision p, int64_t head_dim) {
  QuantScheme s = smooth_scheme();
  if (p == Precision::i4) s.block = 2;  // docs/decisions.md: block=4 fails the i4 check on Laplace data
  if (head_dim < 1 || (head_dim & (head_dim - 1)) != 0) s.rotate = false;
  return s;
}

namespace {

std::optional<ScaleGranularity> parse_granularity_name(std::string_view s) {
  for (ScaleGranularity g : {ScaleGranularity::tensor, ScaleGranularity::head, ScaleGranularity::block,
                             ScaleGranularity::token})
    if (to_string(g) == s) return g;
  return std::nullopt;
}

}  // namespace

std::optional<QuantScheme> parse_quant_scheme(std::string_view text, std::string* error) {
  auto fail = [&](const std::string& what) -> std::optional<QuantScheme> {
    if (error) *error = what;
    return std::nullopt;
  };
  QuantScheme s;
  size_t start = 0;
  bool first = true;
  if (text.empty()) return fail("empty scheme (valid names: per-tensor, sage, smooth; or key=value,...)");
  while (start <= text.size()) {
    const size_t comma = text.find(',', start);
    const std::string_view item = text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    start = comma == std::string_view::npos ? text.size() + 1 : comma + 1;
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      if (!first) return fail("'" + std::string(item) + "' is not key=value (a scheme name comes first)");
      if (item == "per-tensor") s = per_tensor_scheme();
      else if (item == "sage") s = sage_scheme();
      else if (item == "smooth") s = smooth_scheme();
      else return fail("unknown scheme '" + std::string(item) + "' (valid: per-tensor, sage, smooth)");
      first = false;
      continue;
    }
    first = false;
    const std::string key(item.substr(0, eq)), value(item.substr(eq + 1));
    if (key == "q" || key == "k") {
      auto g = parse_granularity_name(value);
      if (!g) return fail(key + "=" + value + ": valid granularities are tensor, head, block, token");
      (key == "q" ? s.q : s.k) = *g;
    } else if (key == "block") {
      char* end = nullptr;
      const long n = std::strtol(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || n < 1 || n > 4096) return fail("block=" + value + ": must be an integer in [1, 4096]");
      s.block = n;
    } else if (key == "smooth") {
      if (value == "none") s.smooth_q = s.smooth_k = false;
      else if (value == "q") s.smooth_q = true, s.smooth_k = false;
      else if (value == "k") s.smooth_q = false, s.smooth_k = true;
      else if (value == "qk") s.smooth_q = s.smooth_k = true;
      else return fail("smooth=" + value + ": valid values are none, q, k, qk");
    } else if (key == "rotate") {
      if (value != "0" && value != "1") return fail("rotate=" + value + ": must be 0 or 1");
      s.rotate = value == "1";
    } else if (key == "pv") {
      if (value == "fp32") s.pv = PvPrecision::fp32;
      else if (value == "i8") s.pv = PvPrecision::i8;
      else if (value == "fix16") s.pv = PvPrecision::fix16;
      else return fail("pv=" + value + ": valid values are fp32, i8, fix16");
    } else if (key == "v") {
      if (value == "tensor") s.v = VGranularity::tensor;
      else if (value == "channel") s.v = VGranularity::channel;
      else return fail("v=" + value + ": valid values are tensor, channel");
    } else {
      return fail("unknown key '" + key + "' (valid: q, k, block, smooth, rotate, pv, v)");
    }
  }
  return s;
}

std::string to_string(const QuantScheme& s) {
  if (s == per_tensor_scheme()) return "per-tensor";
  if (s == sage_scheme()) return "sage";
  if (s == smooth_scheme()) return "smooth";
  const char* smooth = s.smooth_q ? (s.smooth_k ? "qk" : "q") : (s.smooth_k ? "k" : "none");
  return "q=" + std::string(to_string(s.q)) + ",k=" + std::string(to_string(s.k)) + ",block=" + std::to_string(s.block) +
         ",smooth=" + smooth + ",rotate=" + (s.rotate ? "1" : "0") + ",pv=" + std::string(to_string(s.pv)) +
         ",v=" + std::string(to_string(s.v));
}

QuantScheme quant_scheme_of(const Op& op) {
  if (op.quant_scheme) return *op.quant_scheme;
  if (op.precision == Precision::i8 || op.precision == Precision::i4) return recommended_scheme(op.precision, op.shape.head_dim);
  return per_tensor_scheme();
}

void hadamard_inplace(float* x, int64_t n) {
  for (int64_t len = 1; len < n; len <<= 1)
    for (int64_t i = 0; i < n; i += 2 * len)
      for (int64_t j = i; j < i + len; ++j) {
        const float a = x[j], b = x[j + len];
        x[j] = a + b;
        x[j + len] = a - b;
      }
  const float norm = 1.0f / std::sqrt(static_cast<float>(n));
  for (int64_t i = 0; i < n; ++i) x[i] *= norm;
}

namespace {

// absmax / qmax over values; 1 when they are all zero (as absmax_scale()).
float absmax_over(const float* x, int64_t n, int32_t qmax) {
  float m = 0;
  for (int64_t t = 0; t < n; ++t)
    if (std::abs(x[t]) > m) m = std::abs(x[t]);
  return m == 0.0f ? 1.0f : m / static_cast<float>(qmax);
}

// Row scales of a [heads_total, len, dim] tensor (heads_total = batch * heads) at a granularity:
// one per row, expanded. `fixed`: the op's per-tensor scale, used at granularity tensor.
std::vector<float> row_scales(const std::vector<float>& x, int64_t heads_total, int64_t len, int64_t dim,
                              ScaleGranularity g, int64_t block, int32_t qmax, std::optional<double> fixed,
                              const std::vector<float>* table = nullptr) {
  std::vector<float> s(size_t(heads_total * len));
  if (table && !table->empty()) {  // fixed tables: each row reads its group's entry
    const int64_t blocks = (len + block - 1) / block;
    for (int64_t r = 0; r < heads_total * len; ++r) {
      const int64_t h = r / len, i = r % len;
      const int64_t at = g == ScaleGranularity::tensor ? 0
                         : g == ScaleGranularity::head ? h
                         : g == ScaleGranularity::block ? h * blocks + i / block
                                                         : r;
      s[size_t(r)] = (*table)[size_t(at)];
    }
    return s;
  }
  auto fill = [&](int64_t row0, int64_t rows) {
    const float scale = absmax_over(x.data() + row0 * dim, rows * dim, qmax);
    std::fill(s.begin() + row0, s.begin() + row0 + rows, scale);
  };
  switch (g) {
    case ScaleGranularity::tensor:
      if (fixed) std::fill(s.begin(), s.end(), static_cast<float>(*fixed));
      else fill(0, heads_total * len);
      break;
    case ScaleGranularity::head:
      for (int64_t h = 0; h < heads_total; ++h) fill(h * len, len);
      break;
    case ScaleGranularity::block:
      for (int64_t h = 0; h < heads_total; ++h)
        for (int64_t i = 0; i < len; i += block) fill(h * len + i, std::min(block, len - i));
      break;
    case ScaleGranularity::token:
      for (int64_t r = 0; r < heads_total * len; ++r) fill(r, 1);
      break;
  }
  return s;
}

template <class Code>
std::vector<Code> codes_of(const std::vector<float>& x, const std::vector<float>& row_scale, int64_t dim, int32_t qmax) {
  std::vector<Code> c(x.size());
  for (size_t row = 0; row < row_scale.size(); ++row) {
    const float scale = row_scale[row];
    const size_t first = row * size_t(dim);
    for (size_t e = first; e < first + size_t(dim); ++e) c[e] = static_cast<Code>(quantize_code(x[e], scale, qmax));
  }
  return c;
}

}  // namespace

QuantizedQKV quantize_qkv(const Op& op, const QuantScheme& scheme, TensorView q, TensorView k, TensorView v) {
  const Shape& sh = op.shape;
  if (op.precision != Precision::i8 && op.precision != Precision::i4)
    throw Error(ExitCode::invalid_input, "quantize_qkv: precision " + std::string(to_string(op.precision)) +
                                             " is not an integer precision");
  const std::array<int64_t, 4> q_shape{sh.batch, sh.heads, sh.seq_len, sh.head_dim};
  const std::array<int64_t, 4> kv_shape{sh.batch, sh.kv_heads, sh.kv_len, sh.head_dim};
  if (q.shape != q_shape || k.shape != kv_shape || v.shape != kv_shape)
    throw Error(ExitCode::invalid_input, "quantize_qkv: q, k or v does not match the op's shape");
  const int64_t d = sh.head_dim;
  if (scheme.rotate && (d & (d - 1)) != 0)
    throw Error(ExitCode::invalid_input, "quant_scheme rotate=1 needs a power-of-two head_dim (got " + std::to_string(d) + ")");
  const QuantTables* tables = op.quant_tables.get();
  if (tables)
    for (const char* name : kQuantTableNames) {
      const std::vector<float>& t = quant_table(*tables, name);
      int64_t want = 1;
      for (int64_t e : quant_table_shape(op, scheme, name)) want *= e;
      if (!t.empty() && int64_t(t.size()) != want)
        throw Error(ExitCode::invalid_input, std::string("quantize_qkv: the fixed ") + name + " table holds " +
                                                 std::to_string(t.size()) + " values, the scheme needs " +
                                                 std::to_string(want));
    }
  auto fixed = [&](const char* name) -> const std::vector<float>* {
    return tables && !quant_table(*tables, name).empty() ? &quant_table(*tables, name) : nullptr;
  };
  QuantizedQKV r;
  r.scheme = scheme;
  r.precision = op.precision;
  r.batch = sh.batch;
  r.heads = sh.heads;
  r.kv_heads = sh.kv_heads;
  r.seq_len = sh.seq_len;
  r.kv_len = sh.kv_len;
  r.dim = d;
  r.qk_max = quant_max(op.precision);
  const int64_t q_heads = sh.batch * sh.heads, kv_heads = sh.batch * sh.kv_heads;

  // K: smoothed (minus its per-channel mean over the tokens of each (batch, KV head)), then rotated.
  std::vector<float> kt(k.data, k.data + k.size());
  std::vector<float> k_mean(size_t(kv_heads * d), 0.0f);
  if (scheme.smooth_k && sh.kv_len > 0)
    for (int64_t h = 0; h < kv_heads; ++h) {
      float* base = kt.data() + h * sh.kv_len * d;
      for (int64_t c = 0; c < d; ++c) {
        double sum = 0;
        for (int64_t j = 0; j < sh.kv_len; ++j) sum += base[j * d + c];
        const auto mean = fixed("mean_k") ? (*fixed("mean_k"))[size_t(h * d + c)] : static_cast<float>(sum / double(sh.kv_len));
        k_mean[size_t(h * d + c)] = mean;
        for (int64_t j = 0; j < sh.kv_len; ++j) base[j * d + c] -= mean;
      }
    }
  if (scheme.smooth_k && op.softcap) {  // the dropped row term q_i . mean(K), in double
    r.row_bias.assign(size_t(q_heads * sh.seq_len), 0.0f);
    for (int64_t b = 0; b < sh.batch; ++b)
      for (int64_t h = 0; h < sh.heads; ++h) {
        const float* mean = k_mean.data() + (b * sh.kv_heads + h / sh.group_size()) * d;
        for (int64_t i = 0; i < sh.seq_len; ++i) {
          const float* qi = q.data + ((b * sh.heads + h) * sh.seq_len + i) * d;
          double dot = 0;
          for (int64_t c = 0; c < d; ++c) dot += double(qi[c]) * double(mean[c]);
          r.row_bias[size_t((b * sh.heads + h) * sh.seq_len + i)] = static_cast<float>(dot);
        }
      }
  }
  if (scheme.rotate)
    for (int64_t row = 0; row < kv_heads * sh.kv_len; ++row) hadamard_inplace(kt.data() + row * d, d);

  // Q: rotated, then minus the mean of each block of `block` rows (kept in q_mean).
  std::vector<float> qt(q.data, q.data + q.size());
  if (scheme.rotate)
    for (int64_t row = 0; row < q_heads * sh.seq_len; ++row) hadamard_inplace(qt.data() + row * d, d);
  if (scheme.smooth_q) {
    const int64_t blocks = (sh.seq_len + scheme.block - 1) / scheme.block;
    r.q_mean.assign(size_t(q_heads * blocks * d), 0.0f);
    for (int64_t h = 0; h < q_heads; ++h)
      for (int64_t blk = 0; blk < blocks; ++blk) {
        const int64_t i0 = blk * scheme.block, n = std::min(scheme.block, sh.seq_len - i0);
        float* mean = r.q_mean.data() + (h * blocks + blk) * d;
        float* row0 = qt.data() + (h * sh.seq_len + i0) * d;
        // The subtracted vector: the per-channel mean of the block, or its per-channel median when
        // that leaves smaller per-token ranges (sum over the block's rows of max_c |q - m|): one
        // outlier token then does not shift every other row of its block. Either is exact.
        std::vector<float> avg(static_cast<size_t>(d)), med(static_cast<size_t>(d)), column(static_cast<size_t>(n));
        for (int64_t c = 0; c < d; ++c) {
          double sum = 0;
          for (int64_t i = 0; i < n; ++i) sum += (column[size_t(i)] = row0[i * d + c]);
          avg[size_t(c)] = static_cast<float>(sum / double(n));
          std::sort(column.begin(), column.end());
          med[size_t(c)] = n % 2 ? column[size_t(n / 2)] : 0.5f * (column[size_t(n / 2 - 1)] + column[size_t(n / 2)]);
        }
        auto spread = [&](const std::vector<float>& m) {
          double total = 0;
          for (int64_t i = 0; i < n; ++i) {
            float worst = 0;
            for (int64_t c = 0; c < d; ++c) worst = std::max(worst, std::abs(row0[i * d + c] - m[size_t(c)]));
            total += worst;
          }
          return total;
        };
        if (const auto* m = fixed("mean_q")) avg.assign(m->begin() + (h * blocks + blk) * d, m->begin() + (h * blocks + blk + 1) * d);
        const std::vector<float>& chosen = fixed("mean_q") || !(spread(med) < spread(avg)) ? avg : med;
        for (int64_t c = 0; c < d; ++c) {
          mean[c] = chosen[size_t(c)];
          for (int64_t i = 0; i < n; ++i) row0[i * d + c] -= mean[c];
        }
      }
    r.k_smooth = kt;
  }
  if (scheme.smooth_k) r.k_mean = k_mean;

  // The op's scale_q/k (fixed, calibrated) apply at granularity tensor to untransformed values.
  r.q_scale = row_scales(qt, q_heads, sh.seq_len, d, scheme.q, scheme.block, r.qk_max,
                         !scheme.smooth_q && !scheme.rotate ? op.scale_q : std::nullopt, fixed("scale_q"));
  r.k_scale = row_scales(kt, kv_heads, sh.kv_len, d, scheme.k, scheme.block, r.qk_max,
                         !scheme.smooth_k && !scheme.rotate ? op.scale_k : std::nullopt, fixed("scale_k"));
  r.q_codes = codes_of<int8_t>(qt, r.q_scale, d, r.qk_max);
  r.k_codes = codes_of<int8_t>(kt, r.k_scale, d, r.qk_max);

  // V: one scale per tensor (the op's scale_v when given) or per (batch, KV head, channel).
  const int32_t v_max = scheme.pv == PvPrecision::fp32 ? r.qk_max : scheme.pv == PvPrecision::i8 ? 127 : 32767;
  r.p_max = scheme.pv == PvPrecision::fp32 ? 0 : v_max;
  r.v_scale.assign(size_t(kv_heads * d), 1.0f);
  if (const auto* t = fixed("scale_v")) {
    for (size_t e = 0; e < r.v_scale.size(); ++e) r.v_scale[e] = (*t)[t->size() == 1 ? 0 : e];
  } else if (scheme.v == VGranularity::tensor) {
    const float s = op.scale_v ? static_cast<float>(*op.scale_v) : absmax_over(v.data, v.size(), v_max);
    std::fill(r.v_scale.begin(), r.v_scale.end(), s);
  } else {
    for (int64_t h = 0; h < kv_heads; ++h)
      for (int64_t c = 0; c < d; ++c) {
        float m = 0;
        for (int64_t j = 0; j < sh.kv_len; ++j) m = std::max(m, std::abs(v.data[(h * sh.kv_len + j) * d + c]));
        r.v_scale[size_t(h * d + c)] = m == 0.0f ? 1.0f : m / static_cast<float>(v_max);
      }
  }
  const size_t v_count = size_t(v.size());
  if (scheme.pv == PvPrecision::fp32) {
    r.v_dequant.resize(v_count);
    for (size_t e = 0; e < v_count; ++e) {
      const float s = r.v_scale[(e / size_t(d * sh.kv_len)) * size_t(d) + e % size_t(d)];
      r.v_dequant[e] = static_cast<float>(quantize_code(v.data[e], s, v_max)) * s;
    }
  } else {
    r.v_codes.resize(v_count);
    for (size_t e = 0; e < v_count; ++e) {
      const float s = r.v_scale[(e / size_t(d * sh.kv_len)) * size_t(d) + e % size_t(d)];
      r.v_codes[e] = static_cast<int16_t>(quantize_code(v.data[e], s, v_max));
    }
  }
  return r;
}

std::vector<int64_t> quant_table_shape(const Op& op, const QuantScheme& scheme, std::string_view name) {
  const Shape& sh = op.shape;
  auto groups = [&](ScaleGranularity g, int64_t heads, int64_t len) -> std::vector<int64_t> {
    switch (g) {
      case ScaleGranularity::tensor: return {1};
      case ScaleGranularity::head: return {sh.batch, heads};
      case ScaleGranularity::block: return {sh.batch, heads, (len + scheme.block - 1) / scheme.block};
      case ScaleGranularity::token: return {sh.batch, heads, len};
    }
    return {1};
  };
  if (name == "scale_q") return groups(scheme.q, sh.heads, sh.seq_len);
  if (name == "scale_k") return groups(scheme.k, sh.kv_heads, sh.kv_len);
  if (name == "scale_v") return scheme.v == VGranularity::tensor ? std::vector<int64_t>{1}
                                                                  : std::vector<int64_t>{sh.batch, sh.kv_heads, sh.head_dim};
  if (name == "mean_q" && scheme.smooth_q)
    return {sh.batch, sh.heads, (sh.seq_len + scheme.block - 1) / scheme.block, sh.head_dim};
  if (name == "mean_k" && scheme.smooth_k) return {sh.batch, sh.kv_heads, sh.head_dim};
  return {};
}

std::vector<float>& quant_table(QuantTables& t, std::string_view name) {
  if (name == "scale_q") return t.scale_q;
  if (name == "scale_k") return t.scale_k;
  if (name == "scale_v") return t.scale_v;
  if (name == "mean_q") return t.mean_q;
  return t.mean_k;
}

const std::vector<float>& quant_table(const QuantTables& t, std::string_view name) {
  return quant_table(const_cast<QuantTables&>(t), name);
}

QuantTables tables_of(const QuantizedQKV& z) {
  QuantTables t;
  auto compress = [&](const std::vector<float>& rows, ScaleGranularity g, int64_t heads_total, int64_t len) {
    std::vector<float> out;
    switch (g) {
      case ScaleGranularity::tensor: out = {rows.empty() ? 1.0f : rows[0]}; break;
      case ScaleGranularity::head:
        for (int64_t h = 0; h < heads_total; ++h) out.push_back(rows[size_t(h * len)]);
        break;
      case ScaleGranularity::block:
        for (int64_t h = 0; h < heads_total; ++h)
          for (int64_t i = 0; i < len; i += z.scheme.block) out.push_back(rows[size_t(h * len + i)]);
        break;
      case ScaleGranularity::token: out = rows; break;
    }
    return out;
  };
  t.scale_q = compress(z.q_scale, z.scheme.q, z.batch * z.heads, z.seq_len);
  t.scale_k = compress(z.k_scale, z.scheme.k, z.batch * z.kv_heads, z.kv_len);
  t.scale_v = z.scheme.v == VGranularity::tensor ? std::vector<float>{z.v_scale.empty() ? 1.0f : z.v_scale[0]} : z.v_scale;
  t.mean_q = z.q_mean;
  t.mean_k = z.k_mean;
  return t;
}

}  // namespace sattn
