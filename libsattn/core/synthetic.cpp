// Deterministic synthetic data: integer arithmetic until one final exact conversion, so the
// same seed gives the same bits on every machine, compiler and floating-point contraction mode.
#include "core/synthetic.hpp"

namespace sattn {

namespace {

uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

constexpr int64_t kOne = int64_t(1) << 24;  // fixed point: 24 fractional bits

// An approximately N(0,1) value in 24-bit fixed point: Irwin-Hall sum of 4 uniforms.
// sum has mean 2*(2^24-1) and standard deviation 2^24/sqrt(3); 7/4 ~ sqrt(3) keeps it integer.
int64_t normal_fixed(Rng& rng) {
  int64_t sum = 0;
  for (int i = 0; i < 4; ++i) sum += int64_t(rng.next_u64() >> 40);
  return (sum - 2 * (kOne - 1)) * 7 / 4;
}

float to_float(int64_t fixed) { return float(double(fixed) / double(kOne)); }

uint64_t stream_seed(uint64_t seed, uint64_t tensor, uint64_t b, uint64_t h) {
  uint64_t x = seed;
  uint64_t s = splitmix64(x);
  s ^= tensor * 0xD1B54A32D192ED03ull;
  s ^= (b + 1) * 0xAEF17502108EF2D9ull;
  s ^= (h + 1) * 0x8CB92BA72F3D8DD7ull;
  return s;
}

}  // namespace

Rng::Rng(uint64_t seed) {
  uint64_t x = seed;
  for (auto& s : s_) s = splitmix64(x);
}

uint64_t Rng::next_u64() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

float Rng::uniform() { return float(next_u64() >> 40) * (1.0f / 16777216.0f); }

float Rng::normal() { return to_float(normal_fixed(*this)); }

uint64_t Rng::below(uint64_t n) {
  if (n == 0) return 0;
  // Rejection sampling removes modulo bias.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do x = next_u64();
  while (x >= limit);
  return x % n;
}

QKV synthetic_qkv(const Shape& s, uint64_t seed) {
  QKV t{Tensor(s.batch, s.heads, s.seq_len, s.head_dim), Tensor(s.batch, s.kv_heads, s.kv_len, s.head_dim),
        Tensor(s.batch, s.kv_heads, s.kv_len, s.head_dim)};
  const int64_t d = s.head_dim;
  std::vector<int64_t> state(static_cast<size_t>(d));
  for (int64_t b = 0; b < s.batch; ++b) {
    for (int64_t h = 0; h < s.kv_heads; ++h) {
      // Keys: an AR(1) walk per channel, so neighbouring keys are correlated (locality).
      Rng rk(stream_seed(seed, 1, b, h));
      for (auto& x : state) x = normal_fixed(rk);
      for (int64_t j = 0; j < s.kv_len; ++j) {
        float* row = t.k.row(b, h, j);
        for (int64_t c = 0; c < d; ++c) {
          state[c] = (3 * state[c] + 2 * normal_fixed(rk)) / 4;
          row[c] = to_float(state[c]);
        }
      }
      Rng rv(stream_seed(seed, 3, b, h));
      for (int64_t j = 0; j < s.kv_len; ++j) {
        float* row = t.v.row(b, h, j);
        for (int64_t c = 0; c < d; ++c) row[c] = to_float(normal_fixed(rv));
      }
    }
    const int64_t group = s.heads / s.kv_heads;
    for (int64_t h = 0; h < s.heads; ++h) {
      // Queries lean towards the key at their aligned position, plus noise: attention has
      // a local component and a data-dependent one.
      Rng rq(stream_seed(seed, 2, b, h));
      const int64_t offset = s.kv_len - s.seq_len;
      for (int64_t i = 0; i < s.seq_len; ++i) {
        const int64_t p = i + offset;
        float* row = t.q.row(b, h, i);
        const float* key = (p >= 0 && p < s.kv_len) ? t.k.row(b, h / group, p) : nullptr;
        for (int64_t c = 0; c < d; ++c) {
          const int64_t key_fixed = key ? int64_t(double(key[c]) * double(kOne)) : 0;
          row[c] = to_float((key_fixed + normal_fixed(rq)) / 2);
        }
      }
    }
  }
  return t;
}

}  // namespace sattn
