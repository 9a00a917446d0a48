// Layouts of every spec (libsattn/src/layout*.cpp): the sparse reference over a layout equals the
// dense reference under the equivalent mask, over randomized shapes, and the error paths.
// Selection rules: test_layout_selection.cpp; hand-worked cases: test_layout_cases.cpp.
#include <doctest/doctest.h>

#include "layout_test_support.hpp"

using namespace sattn;
using namespace sattn::layout_test;

// ---------------------------------------------------------------------------------------------
// Sparse reference over the layout == dense reference under the equivalent mask, every spec.

TEST_CASE("layout: dense matches the dense oracle") {
  Rng rng(101);
  int64_t empty_rows = 0;
  for (int trial = 0; trial < 10; ++trial) {
    const Problem p = random_problem(rng, trial);
    CAPTURE(trial);
    const Layout l = build_layout(p.op, Spec::dense, DenseParams{}, nullptr, nullptr);
    CHECK(l.block);
    CHECK(l.shared);
    CHECK(l.block_size == std::min<int64_t>(64, std::max(p.op.shape.seq_len, p.op.shape.kv_len)));
    check_structure(p.op, l);
    check_mask_equals(p.op, l, dense_predicate(p.op));
    empty_rows += check_against_oracle(p, l, dense_predicate(p.op));
  }
  CHECK(empty_rows > 0);
}

TEST_CASE("layout: sliding_window matches the independent oracle") {
  Rng rng(202);
  int64_t empty_rows = 0;
  for (int trial = 0; trial < 16; ++trial) {
    const Problem p = random_problem(rng, trial);
    const SlidingWindowParams prm = random_sliding_window(rng, p.op);
    CAPTURE(trial);
    CAPTURE(prm.window_size);
    CAPTURE(prm.dilation);
    CAPTURE(prm.wrap);
    const Layout l = build_layout(p.op, Spec::sliding_window, prm, nullptr, nullptr);
    CHECK_FALSE(l.block);
    CHECK(l.shared);
    check_structure(p.op, l);
    const MaskFn allowed = sliding_window_predicate(p.op, prm);
    check_mask_equals(p.op, l, allowed);
    empty_rows += check_against_oracle(p, l, allowed);
  }
  CHECK(empty_rows > 0);
}

TEST_CASE("layout: block_local_global matches the independent oracle") {
  Rng rng(303);
  int64_t empty_rows = 0;
  for (int trial = 0; trial < 16; ++trial) {
    const Problem p = random_problem(rng, trial);
    const BlockLocalGlobalParams prm = random_block_local_global(rng, p.op);
    CAPTURE(trial);
    CAPTURE(prm.block_size);
    CAPTURE(prm.window_blocks);
    CAPTURE(prm.global_tokens);
    const Layout l = build_layout(p.op, Spec::block_local_global, prm, nullptr, nullptr);
    CHECK(l.block);
    CHECK(l.shared);
    CHECK(l.block_size == prm.block_size);
    check_structure(p.op, l);
    const MaskFn allowed = block_local_global_predicate(p.op, prm);
    check_mask_equals(p.op, l, allowed);
    empty_rows += check_against_oracle(p, l, allowed);
  }
  CHECK(empty_rows > 0);
}

TEST_CASE("layout: landmark without refinement matches the independent oracle") {
  Rng rng(404);
  for (int trial = 0; trial < 10; ++trial) {
    const Problem p = random_problem(rng, trial);
    const LandmarkParams prm{pick(rng, 1, p.op.shape.kv_len + 3), 0};  // m > kv_len: duplicates collapse
    CAPTURE(trial);
    const Layout l = build_layout(p.op, Spec::landmark, prm, nullptr, nullptr);
    CHECK(l.shared);
    check_structure(p.op, l);
    const MaskFn allowed = landmark_predicate(p.op, prm.num_landmarks);
    check_mask_equals(p.op, l, allowed);
    check_against_oracle(p, l, allowed);
  }
}

TEST_CASE("layout: data-dependent specs match the dense oracle under their mask") {
  Rng rng(505);
  for (Spec spec : {Spec::bsr, Spec::nm_structured, Spec::topk_per_query, Spec::lsh, Spec::landmark, Spec::quest}) {
    int64_t empty_rows = 0;
    for (int trial = 0; trial < 8; ++trial) {
      const Problem p = random_problem(rng, trial);
      SpecParams prm;
      switch (spec) {
        case Spec::bsr: prm = random_bsr(rng, p.op); break;
        case Spec::nm_structured: prm = random_nm(rng); break;
        case Spec::topk_per_query: prm = TopkParams{pick(rng, 1, p.op.shape.kv_len)}; break;
        case Spec::lsh: prm = LshParams{pick(rng, 1, 8), pick(rng, 1, 3), rng.next_u64()}; break;
        case Spec::quest: {
          const int64_t page = pick(rng, 1, std::max(p.op.shape.seq_len, p.op.shape.kv_len));
          prm = QuestParams{page, pick(rng, 1, ceil_div(p.op.shape.kv_len, page))};
          break;
        }
        default: prm = LandmarkParams{pick(rng, 1, p.op.shape.kv_len), pick(rng, 1, 3)}; break;
      }
      CAPTURE(to_string(spec));
      CAPTURE(trial);
      const Layout l = build_layout(p.op, spec, prm, &p.q, &p.k);
      CHECK(l.spec == spec);
      CHECK_FALSE(l.shared);
      check_structure(p.op, l);
      empty_rows += check_against_oracle(p, l, mask_of(l, p.op));
    }
    CHECK(empty_rows > 0);
  }
}

// ---------------------------------------------------------------------------------------------
// Errors.

TEST_CASE("layout: data-dependent specs reject missing, misshapen or non-finite data") {
  Rng rng(1313);
  const Op op = make_op(1, 2, 1, 8, 8, 4, false);
  const Tensor q = random_tensor(rng, 1, 2, 8, 4), k = random_tensor(rng, 1, 1, 8, 4);
  const SpecParams params[] = {BsrParams{}, NmParams{}, TopkParams{4}, LshParams{}, LandmarkParams{4, 1}, QuestParams{2, 2}};
  const Spec specs[] = {Spec::bsr, Spec::nm_structured, Spec::topk_per_query, Spec::lsh, Spec::landmark, Spec::quest};
  for (int t = 0; t < 6; ++t) {
    CAPTURE(to_string(specs[t]));
    try {
      build_layout(op, specs[t], params[t], nullptr, nullptr);
      FAIL("no error without data");
    } catch (const Error& e) {
      CHECK(e.code() == ExitCode::invalid_input);
      CHECK(e.message() == "spec " + std::string(to_string(specs[t])) + " needs Q/K data");
    }
    if (specs[t] != Spec::landmark) {  // landmark refinement reads only K
      Tensor wrong = random_tensor(rng, 1, 1, 8, 4);
      CHECK_THROWS_AS(build_layout(op, specs[t], params[t], &wrong, &k), Error);
    }
    Tensor bad = k;
    bad.data[3] = NAN;
    CHECK_THROWS_AS(build_layout(op, specs[t], params[t], &q, &bad), Error);
  }
  // Data-independent specs need none.
  CHECK_NOTHROW(build_layout(op, Spec::landmark, LandmarkParams{4, 0}, nullptr, nullptr));
  CHECK_NOTHROW(build_layout(op, Spec::sliding_window, SlidingWindowParams{}, nullptr, nullptr));
}
