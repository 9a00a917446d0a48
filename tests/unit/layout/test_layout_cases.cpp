// Hand-worked layouts (libsattn/src/layout*.cpp): small cases with the expected index lists
// worked out by hand from the definitions in layout.cpp's header comment.
#include <doctest/doctest.h>

#include "layout_test_support.hpp"

using namespace sattn;
using namespace sattn::layout_test;

// ---------------------------------------------------------------------------------------------
// Hand-worked cases.

TEST_CASE("layout: sliding_window hand-worked cases") {
  SUBCASE("seq 8, window 2, dilation 2, wrap: every other key of the ring") {
    const Op op = make_op(1, 1, 1, 8, 8, 4, false);
    const Rows rows =
        rows_of(build_layout(op, Spec::sliding_window, SlidingWindowParams{2, 2, true}, nullptr, nullptr));
    for (int64_t i = 0; i < 8; ++i)
      CHECK(rows[i] == (i % 2 == 0 ? std::vector<int32_t>{0, 2, 4, 6} : std::vector<int32_t>{1, 3, 5, 7}));
  }
  SUBCASE("seq 8, window 1, dilation 3, wrap") {
    const Op op = make_op(1, 1, 1, 8, 8, 4, false);
    const Rows want = {{0, 3, 5}, {1, 4, 6}, {2, 5, 7}, {0, 3, 6}, {1, 4, 7}, {0, 2, 5}, {1, 3, 6}, {2, 4, 7}};
    CHECK(rows_of(build_layout(op, Spec::sliding_window, SlidingWindowParams{1, 3, true}, nullptr, nullptr)) == want);
  }
  SUBCASE("causal, seq 4 < kv 6 (offset 2), window 2, dilation 2, no wrap") {
    const Op op = make_op(1, 1, 1, 4, 6, 4, true);
    const Rows want = {{0, 2}, {1, 3}, {0, 2, 4}, {1, 3, 5}};
    CHECK(rows_of(build_layout(op, Spec::sliding_window, SlidingWindowParams{2, 2, false}, nullptr, nullptr)) == want);
  }
  SUBCASE("causal, seq 6 > kv 4 (offset -2): the first two rows are empty") {
    const Op op = make_op(1, 1, 1, 6, 4, 4, true);
    const Rows want = {{}, {}, {0}, {0, 1}, {1, 2}, {2, 3}};
    CHECK(rows_of(build_layout(op, Spec::sliding_window, SlidingWindowParams{1, 1, false}, nullptr, nullptr)) == want);
  }
  SUBCASE("causal with wrap: wrapped positions are in the future and dropped") {
    const Op op = make_op(1, 1, 1, 5, 5, 4, true);
    const Rows want = {{0}, {0, 1}, {0, 1, 2}, {1, 2, 3}, {2, 3, 4}};
    CHECK(rows_of(build_layout(op, Spec::sliding_window, SlidingWindowParams{2, 1, true}, nullptr, nullptr)) == want);
  }
}

TEST_CASE("layout: block_local_global hand-worked cases (seq 10, block 4: partial last block)") {
  auto blocks = [](int64_t seq, int64_t kv, bool causal, BlockLocalGlobalParams p) {
    return rows_of(build_layout(make_op(1, 1, 1, seq, kv, 4, causal), Spec::block_local_global, p, nullptr, nullptr));
  };
  // global_tokens 1 rounds up to one whole global block.
  CHECK(blocks(10, 10, false, {4, 0, 1}) == Rows{{0, 1, 2}, {0, 1}, {0, 2}});
  CHECK(blocks(10, 10, true, {4, 0, 1}) == Rows{{0}, {0, 1}, {0, 2}});
  CHECK(blocks(10, 10, false, {4, 1, 0}) == Rows{{0, 1}, {0, 1, 2}, {1, 2}});
  CHECK(blocks(10, 10, true, {4, 1, 0}) == Rows{{0}, {0, 1}, {1, 2}});
  // seq 6 < kv 10: block row 0 is aligned with keys 4..7 (local block 1), row 1 with 8..9 (block 2).
  CHECK(blocks(6, 10, true, {4, 1, 0}) == Rows{{0, 1}, {1, 2}});
  CHECK(blocks(6, 10, false, {4, 0, 0}) == Rows{{1}, {2}});
}

TEST_CASE("layout: dense hand-worked cases") {
  const Layout causal = build_layout(make_op(1, 1, 1, 100, 100, 4, true), Spec::dense, DenseParams{}, nullptr, nullptr);
  CHECK(causal.block_size == 64);
  CHECK(rows_of(causal) == Rows{{0}, {0, 1}});
  CHECK(causal.allowed_pairs(0, 0) == 100 * 101 / 2);
  const Layout small = build_layout(make_op(1, 1, 1, 10, 30, 4, false), Spec::dense, DenseParams{}, nullptr, nullptr);
  CHECK(small.block_size == 30);  // clamped to the sequence
  CHECK(rows_of(small) == Rows{{0}});
  CHECK(small.density() == 1.0);
}

TEST_CASE("layout: bsr hand-worked cases") {
  // 8 keys in blocks of 2 with block means (0,0), (1,0), (2,0), (3,0); every query is (1, 0), so
  // block c scores c.
  Problem p{make_op(1, 1, 1, 8, 8, 2, false), Tensor(1, 1, 8, 2), Tensor(1, 1, 8, 2), Tensor(1, 1, 8, 2)};
  for (int64_t j = 0; j < 8; ++j) p.k.row(0, 0, j)[0] = float(j / 2) + (j % 2 == 0 ? 0.25f : -0.25f);
  for (int64_t i = 0; i < 8; ++i) p.q.row(0, 0, i)[0] = 1;
  auto blocks = [&](bool causal, BsrParams prm) {
    p.op.causal = causal;
    return rows_of(build_layout(p.op, Spec::bsr, prm, &p.q, &p.k));
  };
  CHECK(blocks(false, {2, 0.5, 0, 0}) == Rows{{0, 3}, {1, 3}, {2, 3}, {2, 3}});
  // Causal: 1, 2, 3, 4 candidates keep 1, 1, 2, 2 blocks.
  CHECK(blocks(true, {2, 0.5, 0, 0}) == Rows{{0}, {1}, {1, 2}, {2, 3}});
  // One global token: block 0 is forced; rows 1..3 are full with the local and global blocks.
  CHECK(blocks(false, {2, 0.5, 0, 1}) == Rows{{0, 3}, {0, 1}, {0, 2}, {0, 3}});
  // keep_ratio 1 keeps every candidate.
  CHECK(blocks(true, {2, 1.0, 0, 0}) == Rows{{0}, {0, 1}, {0, 1, 2}, {0, 1, 2, 3}});

  SUBCASE("keep_ratio 0.28 of 25 candidates keeps 7, not 8") {
    // In binary floating point 0.28 * 25 = 7.000000000000001.
    Problem r{make_op(1, 1, 1, 1, 25, 1, false), Tensor(1, 1, 1, 1), Tensor(1, 1, 25, 1), Tensor(1, 1, 25, 1)};
    r.q.row(0, 0, 0)[0] = 1;
    for (int64_t j = 0; j < 25; ++j) r.k.row(0, 0, j)[0] = float(j);
    // Local block is 24 (query 0 aligned with key 24); the best others are 23, 22, ..., 18.
    CHECK(rows_of(build_layout(r.op, Spec::bsr, BsrParams{1, 0.28, 0, 0}, &r.q, &r.k))[0] ==
          std::vector<int32_t>{18, 19, 20, 21, 22, 23, 24});
  }
  SUBCASE("compression scoring takes the best sub-block, not the block mean") {
    // Blocks of 4 keys, sub-blocks of 2. Block 0: sub-block means 5 and -5 (block mean 0);
    // block 1: sub-block means 1 and 1 (block mean 1). Block 2 (keys 8..9) is local.
    Problem c{make_op(1, 1, 1, 1, 10, 1, false), Tensor(1, 1, 1, 1), Tensor(1, 1, 10, 1), Tensor(1, 1, 10, 1)};
    c.q.row(0, 0, 0)[0] = 1;
    const float key_values[10] = {5, 5, -5, -5, 1, 1, 1, 1, 0, 0};
    for (int64_t j = 0; j < 10; ++j) c.k.row(0, 0, j)[0] = key_values[j];
    CHECK(rows_of(build_layout(c.op, Spec::bsr, BsrParams{4, 0.5, 0, 0}, &c.q, &c.k))[0] == std::vector<int32_t>{1, 2});
    CHECK(rows_of(build_layout(c.op, Spec::bsr, BsrParams{4, 0.5, 2, 0}, &c.q, &c.k))[0] == std::vector<int32_t>{0, 2});
  }
}

TEST_CASE("layout: nm_structured and topk_per_query hand-worked cases") {
  // One-dimensional keys, query 1: the score of key j is its value.
  const float values[9] = {5, 1, 3, 7, 2, 2, 9, 0, 4};
  auto problem = [&](int64_t seq, int64_t kv, bool causal) {
    Problem p{make_op(1, 1, 1, seq, kv, 1, causal), Tensor(1, 1, seq, 1), Tensor(1, 1, kv, 1), Tensor(1, 1, kv, 1)};
    for (int64_t i = 0; i < seq; ++i) p.q.row(0, 0, i)[0] = 1;
    for (int64_t j = 0; j < kv; ++j) p.k.row(0, 0, j)[0] = values[j];
    return p;
  };
  const Problem p8 = problem(1, 8, false);
  // 2:4 -> group {5,1,3,7} keeps 0 and 3; group {2,2,9,0} keeps 6 and the tie 4 (lower index).
  CHECK(rows_of(build_layout(p8.op, Spec::nm_structured, NmParams{2, 4}, &p8.q, &p8.k))[0] ==
        std::vector<int32_t>{0, 3, 4, 6});
  // kv 9: the last group {4} has fewer than nm_n keys and keeps all of them.
  const Problem p9 = problem(1, 9, false);
  CHECK(rows_of(build_layout(p9.op, Spec::nm_structured, NmParams{2, 4}, &p9.q, &p9.k))[0] ==
        std::vector<int32_t>{0, 3, 4, 6, 8});
  // Causal, seq 2, kv 8: row 0 is aligned with key 6, so its second group is {2, 2, 9}.
  const Problem pc = problem(2, 8, true);
  CHECK(rows_of(build_layout(pc.op, Spec::nm_structured, NmParams{2, 4}, &pc.q, &pc.k)) ==
        Rows{{0, 3, 4, 6}, {0, 3, 4, 6}});
  CHECK(rows_of(build_layout(pc.op, Spec::nm_structured, NmParams{1, 4}, &pc.q, &pc.k)) == Rows{{3, 6}, {3, 6}});
  // Top-k: values 9, 7, 5 -> keys 6, 3, 0; causal row 0 (keys 0..6) the same.
  CHECK(rows_of(build_layout(p8.op, Spec::topk_per_query, TopkParams{3}, &p8.q, &p8.k))[0] ==
        std::vector<int32_t>{0, 3, 6});
  CHECK(rows_of(build_layout(pc.op, Spec::topk_per_query, TopkParams{5}, &pc.q, &pc.k)) ==
        Rows{{0, 2, 3, 4, 6}, {0, 2, 3, 4, 6}});
  // Ties: keys 4 and 5 both score 2; top-4 of keys 0..5 takes 3, 0, 2 and the lower tied key 4.
  const Problem p6 = problem(1, 6, false);
  CHECK(rows_of(build_layout(p6.op, Spec::topk_per_query, TopkParams{4}, &p6.q, &p6.k))[0] ==
        std::vector<int32_t>{0, 2, 3, 4});
}

TEST_CASE("layout: landmark hand-worked cases") {
  SUBCASE("evenly spaced, causal") {
    const Op op = make_op(1, 1, 1, 10, 10, 4, true);
    const Rows rows = rows_of(build_layout(op, Spec::landmark, LandmarkParams{3, 0}, nullptr, nullptr));
    // floor(t * 10 / 3) = 0, 3, 6.
    CHECK(rows[0] == std::vector<int32_t>{0});
    CHECK(rows[5] == std::vector<int32_t>{0, 3});
    CHECK(rows[9] == std::vector<int32_t>{0, 3, 6});
  }
  SUBCASE("k-means-lite refinement") {
    // Even keys near +1 (1.0, 1.05, 0.9, 0.97), odd keys at -1; the initial landmarks 0 and 4
    // both sit in the +1 cluster. Iteration 1 pulls centroid 1 to -0.62 (nearest key 1);
    // iteration 2 splits the clusters exactly: centroids 0.98 (nearest key 6) and -1 (key 1).
    Op op = make_op(1, 1, 1, 8, 8, 4, false);
    Tensor k(1, 1, 8, 4);
    const float first_coord[8] = {1.0f, -1, 1.05f, -1, 0.9f, -1, 0.97f, -1};
    for (int64_t j = 0; j < 8; ++j) k.row(0, 0, j)[0] = first_coord[j];
    auto landmarks = [&](int64_t iters) {
      return rows_of(build_layout(op, Spec::landmark, LandmarkParams{2, iters}, nullptr, &k))[3];
    };
    CHECK(landmarks(1) == std::vector<int32_t>{0, 1});
    CHECK(landmarks(2) == std::vector<int32_t>{1, 6});
    CHECK(landmarks(3) == std::vector<int32_t>{1, 6});
  }
}

TEST_CASE("layout: quest hand-worked cases (pages of 2, min/max bounds)") {
  // 8 keys in pages of 2, head_dim 2. Page min/max per dimension:
  //   page 0: keys (1, 0), (-1, 0)   -> min (-1, 0), max (1, 0)
  //   page 1: keys (0.5, 0.5) twice  -> min = max = (0.5, 0.5)
  //   page 2: keys (0, 2), (0, -2)   -> min (0, -2), max (0, 2)
  //   page 3: keys (-3, 0), (-3, 0)  -> min = max = (-3, 0)
  Problem p{make_op(1, 1, 1, 1, 8, 2, false), Tensor(1, 1, 1, 2), Tensor(1, 1, 8, 2), Tensor(1, 1, 8, 2)};
  const float keys[8][2] = {{1, 0}, {-1, 0}, {0.5f, 0.5f}, {0.5f, 0.5f}, {0, 2}, {0, -2}, {-3, 0}, {-3, 0}};
  for (int64_t j = 0; j < 8; ++j) p.k.row(0, 0, j)[0] = keys[j][0], p.k.row(0, 0, j)[1] = keys[j][1];
  auto pages = [&](float q0, float q1, int64_t top, bool causal) {
    p.q.row(0, 0, 0)[0] = q0, p.q.row(0, 0, 0)[1] = q1;
    p.op.causal = causal;
    return rows_of(build_layout(p.op, Spec::quest, QuestParams{2, top}, &p.q, &p.k))[0];
  };
  // q = (1, 1): bounds 1 + 0 = 1, 0.5 + 0.5 = 1, 0 + 2 = 2, -3 + 0 = -3. Page 2 first, then the
  // tie of pages 0 and 1 goes to the lower page.
  CHECK(pages(1, 1, 1, false) == std::vector<int32_t>{2});
  CHECK(pages(1, 1, 2, false) == std::vector<int32_t>{0, 2});
  CHECK(pages(1, 1, 3, false) == std::vector<int32_t>{0, 1, 2});
  // q = (-1, 0): bounds 1, -0.5, 0, 3: page 3 then page 0. Page 0's bound (1) exceeds its true
  // best (q . (-1, 0) = 1, equal) and page 2's (0) is exact: the bound is tight here.
  CHECK(pages(-1, 0, 2, false) == std::vector<int32_t>{0, 3});
  // Decode alignment (one query aligned with key 7): causal keeps every page a candidate.
  CHECK(pages(-1, 0, 2, true) == std::vector<int32_t>{0, 3});
  // top_pages beyond the candidates keeps them all.
  CHECK(pages(1, 1, 9, false) == std::vector<int32_t>{0, 1, 2, 3});

  SUBCASE("a block row sums the bounds of its queries and of the group's heads") {
    // Two query heads share one KV head: q_h0 = (1, 0) and q_h1 = (0, 1). Sums of bounds:
    // page 0: 1 + 0 = 1; page 1: 0.5 + 0.5 = 1; page 2: 0 + 2 = 2; page 3: -3 + 0 = -3.
    Problem g{make_op(1, 2, 1, 1, 8, 2, false), Tensor(1, 2, 1, 2), Tensor(1, 1, 8, 2), Tensor(1, 1, 8, 2)};
    g.k = p.k;
    g.q.row(0, 0, 0)[0] = 1, g.q.row(0, 1, 0)[1] = 1;
    CHECK(rows_of(build_layout(g.op, Spec::quest, QuestParams{2, 2}, &g.q, &g.k))[0] == std::vector<int32_t>{0, 2});
  }
  SUBCASE("causal prefill: future pages are never candidates") {
    Problem c{make_op(1, 1, 1, 4, 4, 1, true), Tensor(1, 1, 4, 1), Tensor(1, 1, 4, 1), Tensor(1, 1, 4, 1)};
    const float kv[4] = {-1, -1, 5, 5};
    for (int64_t j = 0; j < 4; ++j) c.k.row(0, 0, j)[0] = kv[j], c.q.row(0, 0, j)[0] = 1;
    // Block row 0 (queries 0, 1) has page 0 only; block row 1 prefers page 1 (bound 10 > -2).
    CHECK(rows_of(build_layout(c.op, Spec::quest, QuestParams{2, 1}, &c.q, &c.k)) == Rows{{0}, {1}});
  }
}
