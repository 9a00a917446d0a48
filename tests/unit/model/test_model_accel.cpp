// sattn model's accelerator terms against the accelerator itself: the closed-form DRAM traffic
// (accel_dram_bytes) against the DMA counters of the bit-exact model running the driver's command
// stream; quest in a policy; head_dim padding in the model's accelerator cycles.
#include <doctest/doctest.h>

#include <string>

#include "accel_test_support.hpp"
#include "sattn/model.hpp"

using namespace sattn;
using namespace sattn::accel_test;

namespace {

double measured_dram(const Case& c) {
  accel::Config cfg;
  const accel::RunResult r = accel::run_model(program_of(c, cfg), cfg);
  return double(r.counters.dma_bytes_in + r.counters.dma_bytes_out);
}

}  // namespace

TEST_CASE("model: the accelerator's DRAM bytes follow its driver's DMA exactly") {
  struct Shape_ {
    int64_t seq, kv, dim, heads, kv_heads;
    bool causal;
  };
  // Prefill and decode-like (kv_len > seq_len), GQA, a head_dim the driver pads (40 -> 48), tiles
  // of 64 rows inside a block row of 128 (dense at seq 150), windows wider than a tile.
  const Shape_ shapes[] = {{72, 72, 32, 2, 1, true}, {150, 150, 16, 2, 2, true},  {20, 100, 40, 4, 2, true},
                           {72, 72, 32, 2, 1, false}, {130, 130, 16, 1, 1, false}};
  for (const Shape_& sh : shapes)
    for (Spec spec : {Spec::dense, Spec::sliding_window, Spec::bsr})
      for (Precision prec : {Precision::i8, Precision::i4}) {
        if (spec == Spec::bsr && !sh.causal) continue;  // non-causal bsr: which partial block is kept is data
        CAPTURE(to_string(spec));
        CAPTURE(to_string(prec));
        CAPTURE(sh.seq);
        CAPTURE(sh.kv);
        CAPTURE(sh.dim);
        const Case c = make_case(spec, prec, sh.causal, sh.seq, sh.kv, sh.dim, sh.heads, sh.kv_heads);
        CHECK(accel_dram_bytes(c.op, spec, resolve_params(c.op, spec)) == measured_dram(c));
      }
}

TEST_CASE("model: quest's accelerator DRAM bytes are the kept pages' (within the diagonal page)") {
  // A decode chunk of 4 queries over 256 keys in pages of 8, 3 kept: the driver loads 3 pages per
  // head; the closed form counts the diagonal page as kept, which quest may not choose, so it is
  // exact or one page per tile above.
  const Case c = make_case(Spec::quest, Precision::i8, true, 4, 256, 32, 2, 1);
  const double model = accel_dram_bytes(c.op, Spec::quest, resolve_params(c.op, Spec::quest));
  const double measured = measured_dram(c);
  CHECK(model >= measured);
  CHECK(model <= measured + 2 /*heads*/ * 2 /*K, V*/ * 8 * 32);
  // And far below dense's for the same step.
  CHECK(model < 0.2 * accel_dram_bytes(c.op, Spec::dense, DenseParams{}));
}

TEST_CASE("model: accel_traffic walks the driver's tiles and chunks (the pipeline model's counts)") {
  // The accelerator's pipeline model (sattn-model(1) COSTS) charges the DRAM latency per DMA
  // command and a fill per tile: its tile and chunk counts must be the driver's. One-query decode
  // steps (tiles of one row), a chunk of 8, and prefill tiles of 64 rows in blocks of 64.
  struct Shape_ {
    int64_t seq, kv, dim, heads, kv_heads;
  };
  const Shape_ shapes[] = {{1, 256, 64, 2, 1}, {8, 256, 64, 2, 1}, {150, 150, 16, 2, 2}};
  for (const Shape_& sh : shapes)
    for (Spec spec : {Spec::dense, Spec::sliding_window, Spec::bsr}) {
      CAPTURE(to_string(spec));
      CAPTURE(sh.seq);
      const Case c = make_case(spec, Precision::i8, true, sh.seq, sh.kv, sh.dim, sh.heads, sh.kv_heads);
      accel::Config cfg;
      const accel::Program p = program_of(c, cfg);
      const AccelTraffic t = accel_traffic(c.op, spec, resolve_params(c.op, spec));
      CHECK(t.tiles == double(p.tiles));
      CHECK(t.chunks == double(p.chunks));
      CHECK(t.loads == double(p.chunks) * (spec == Spec::sliding_window ? 3 : 2));
      CHECK(t.bytes == accel_dram_bytes(c.op, spec, resolve_params(c.op, spec)));
      CHECK(t.first_chunk_bytes > 0);
      CHECK(t.first_chunk_bytes <= t.bytes - t.q_bytes - t.out_bytes);
    }
}
