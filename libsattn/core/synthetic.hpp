// A seeded pseudo-random generator and the synthetic Q/K/V generator.
// Integer-only arithmetic until the final exact conversion, so one seed gives the same bits on
// every machine and compiler (no libm calls, no std::*_distribution).
#pragma once
#include <cstdint>

#include "sattn/op.hpp"
#include "sattn/tensor.hpp"

namespace sattn {

// xoshiro256** seeded through splitmix64.
class Rng {
 public:
  explicit Rng(uint64_t seed);
  uint64_t next_u64();
  // Uniform in [0, 1) with 24 random bits (exactly representable as float).
  float uniform();
  // Approximately standard normal: Irwin-Hall sum of 4 uniform 24-bit integers, centred and
  // scaled by sqrt(3) (exact: computed in integers, one rounding at the end).
  float normal();
  // Uniform integer in [0, n).
  uint64_t below(uint64_t n);

 private:
  uint64_t s_[4];
};

inline constexpr uint64_t kDefaultSeed = 0x5A77;  // the embedded default data set (DataSource::seed)

// Synthetic attention inputs for an op. Keys have mild locality (neighbouring positions are
// correlated) so data-dependent specs have structure to find.
QKV synthetic_qkv(const Shape&, uint64_t seed = kDefaultSeed);

}  // namespace sattn
