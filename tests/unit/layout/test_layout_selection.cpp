// Layout selection rules (libsattn/src/layout*.cpp): block top-k keep counts and forced blocks,
// N:M and top-k optimality against brute-force scores, exact tie handling, GQA score sharing and
// the LSH hash, checked against definitions written from layout.cpp's semantics.
#include <doctest/doctest.h>

#include "layout_test_support.hpp"

using namespace sattn;
using namespace sattn::layout_test;

// ---------------------------------------------------------------------------------------------
// Selection rules and invariants.

TEST_CASE("layout: bsr keeps local, global and the best-scoring blocks, keep count by formula") {
  Rng rng(606);
  for (int trial = 0; trial < 24; ++trial) {
    const Problem p = random_problem(rng, trial);
    const BsrParams prm = random_bsr(rng, p.op);
    CAPTURE(trial);
    CAPTURE(prm.block_size);
    CAPTURE(prm.keep_ratio);
    CAPTURE(prm.comp_block_size);
    CAPTURE(prm.global_tokens);
    const Layout l = build_layout(p.op, Spec::bsr, prm, &p.q, &p.k);
    check_structure(p.op, l);
    const Shape& s = p.op.shape;
    const int64_t B = prm.block_size, block_cols = ceil_div(s.kv_len, B), offset = s.kv_len - s.seq_len;
    const int64_t global = ceil_div(prm.global_tokens, B);
    for (int64_t b = 0; b < s.batch; ++b)
      for (int64_t kvh = 0; kvh < s.kv_heads; ++kvh) {
        const Rows rows = rows_of(l, b, kvh);
        for (int64_t br = 0; br < ceil_div(s.seq_len, B); ++br) {
          CAPTURE(br);
          // Candidates: block columns whose first key is not after the block row's last aligned key.
          const int64_t last_pos = std::min((br + 1) * B, s.seq_len) - 1 + offset;
          std::vector<int64_t> candidates;
          for (int64_t bc = 0; bc < block_cols; ++bc)
            if (!p.op.causal || bc * B <= last_pos) candidates.push_back(bc);
          std::set<int64_t> forced;
          if (!candidates.empty()) {
            forced.insert(std::clamp<int64_t>(floor_div(br * B + offset, B), 0, block_cols - 1));
            for (int64_t bc : candidates)
              if (bc < global) forced.insert(bc);
          }
          const std::vector<int32_t>& kept = rows[br];
          const int64_t want =
              std::max<int64_t>(expected_keep(prm.keep_ratio, int64_t(candidates.size())), int64_t(forced.size()));
          REQUIRE(int64_t(kept.size()) == want);
          for (int64_t bc : forced) CHECK(std::binary_search(kept.begin(), kept.end(), int32_t(bc)));
          double worst_kept = INFINITY, best_dropped = -INFINITY;
          for (int64_t bc : candidates) {
            if (forced.count(bc)) continue;
            const double score = bsr_block_score(p, prm, b, kvh, br, bc);
            if (std::binary_search(kept.begin(), kept.end(), int32_t(bc)))
              worst_kept = std::min(worst_kept, score);
            else
              best_dropped = std::max(best_dropped, score);
          }
          CHECK(worst_kept >= best_dropped - 1e-9);
        }
      }
  }
}

TEST_CASE("layout: nm_structured keeps the nm_n best allowed keys of every group of nm_m") {
  Rng rng(707);
  for (int trial = 0; trial < 16; ++trial) {
    const Problem p = random_problem(rng, trial);
    const NmParams prm = random_nm(rng);
    CAPTURE(trial);
    CAPTURE(prm.nm_n);
    CAPTURE(prm.nm_m);
    const Layout l = build_layout(p.op, Spec::nm_structured, prm, &p.q, &p.k);
    check_structure(p.op, l);
    for (int64_t b = 0; b < p.op.shape.batch; ++b)
      for (int64_t kvh = 0; kvh < p.op.shape.kv_heads; ++kvh) {
        const Rows rows = rows_of(l, b, kvh);
        for (int64_t i = 0; i < p.op.shape.seq_len; ++i)
          for (int64_t g = 0; g < p.op.shape.kv_len; g += prm.nm_m)
            check_best_of(p, b, kvh, i, rows[i], g, std::min(g + prm.nm_m, p.op.shape.kv_len), prm.nm_n);
      }
  }
}

TEST_CASE("layout: topk_per_query keeps exactly min(k, allowed) best keys per row") {
  Rng rng(808);
  for (int trial = 0; trial < 16; ++trial) {
    const Problem p = random_problem(rng, trial);
    const TopkParams prm{pick(rng, 1, p.op.shape.kv_len)};
    CAPTURE(trial);
    CAPTURE(prm.topk_k);
    const Layout l = build_layout(p.op, Spec::topk_per_query, prm, &p.q, &p.k);
    check_structure(p.op, l);
    for (int64_t b = 0; b < p.op.shape.batch; ++b)
      for (int64_t kvh = 0; kvh < p.op.shape.kv_heads; ++kvh) {
        const Rows rows = rows_of(l, b, kvh);
        for (int64_t i = 0; i < p.op.shape.seq_len; ++i)
          check_best_of(p, b, kvh, i, rows[i], 0, p.op.shape.kv_len, prm.topk_k);
      }
  }
}

TEST_CASE("layout: nm and topk over several row tiles (worker threads) are exact and repeatable") {
  // Rows are scored in tiles of 8, 16 or 32 rows (by ISA), one tile per worker item: 600 rows
  // make many, the last partial.
  Rng rng(1414);
  for (bool causal : {false, true}) {
    Problem p{make_op(1, 2, 1, 600, 650, 8, causal), {}, {}, {}};
    p.q = random_tensor(rng, 1, 2, 600, 8);
    p.k = random_tensor(rng, 1, 1, 650, 8);
    p.v = random_tensor(rng, 1, 1, 650, 8);
    const Layout topk = build_layout(p.op, Spec::topk_per_query, TopkParams{20}, &p.q, &p.k);
    const Layout nm = build_layout(p.op, Spec::nm_structured, NmParams{2, 8}, &p.q, &p.k);
    check_structure(p.op, topk);
    check_structure(p.op, nm);
    const Rows topk_rows = rows_of(topk), nm_rows = rows_of(nm);
    for (int64_t i = 0; i < 600; i += 7) {
      CAPTURE(i);
      check_best_of(p, 0, 0, i, topk_rows[i], 0, 650, 20);
      for (int64_t g = 0; g < 650; g += 8) check_best_of(p, 0, 0, i, nm_rows[i], g, std::min<int64_t>(g + 8, 650), 2);
    }
    const Layout again = build_layout(p.op, Spec::topk_per_query, TopkParams{20}, &p.q, &p.k);
    CHECK(again.heads[0].ptr == topk.heads[0].ptr);
    CHECK(again.heads[0].idx == topk.heads[0].idx);
  }
}

TEST_CASE("layout: topk selection is exact on ties and near-ties below float resolution") {
  // 300 keys. Keys 100..299 are one vector with one coordinate (which one varies) moved by -3..3
  // ulps: their scores differ by less than float sgemm's rounding, which would scramble their
  // order, and many tie exactly. Keys 0..99 are all equal: an exact tie, lower index wins.
  const int64_t kv = 300, dim = 16;
  Op op = make_op(1, 1, 1, 3, kv, dim, false);
  Problem p{op, Tensor(1, 1, 3, dim), Tensor(1, 1, kv, dim), Tensor(1, 1, kv, dim)};
  Rng rng(909);
  std::vector<float> base(dim), other(dim);
  for (int64_t c = 0; c < dim; ++c) base[c] = rng.normal(), other[c] = rng.normal();
  for (int64_t j = 0; j < kv; ++j)
    for (int64_t c = 0; c < dim; ++c) p.k.row(0, 0, j)[c] = j < 100 ? other[c] : base[c];
  for (int64_t j = 100; j < kv; ++j) {
    float& x = p.k.row(0, 0, j)[(j * 7) % dim];
    const int64_t ulps = (j * 37) % 7 - 3;
    for (int64_t t = 0; t < std::abs(ulps); ++t) x = std::nextafter(x, ulps > 0 ? INFINITY : -INFINITY);
  }
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t c = 0; c < dim; ++c) p.q.row(0, 0, i)[c] = i == 2 ? other[c] : base[c] + 0.5f * rng.normal();
  for (int64_t topk : {1, 5, 37, 100, 150, 222}) {
    const Layout l = build_layout(op, Spec::topk_per_query, TopkParams{topk}, &p.q, &p.k);
    const Rows rows = rows_of(l);
    for (int64_t i = 0; i < 3; ++i) {
      std::vector<std::pair<double, int64_t>> ranked;  // (-score, key): ascending = best first
      for (int64_t j = 0; j < kv; ++j) {
        double s = 0;
        for (int64_t c = 0; c < dim; ++c) s += double(p.q.row(0, 0, i)[c]) * double(p.k.row(0, 0, j)[c]);
        ranked.push_back({-s, j});
      }
      std::sort(ranked.begin(), ranked.end());
      std::vector<int32_t> want;
      for (int64_t t = 0; t < topk; ++t) want.push_back(int32_t(ranked[t].second));
      std::sort(want.begin(), want.end());
      CAPTURE(topk);
      CAPTURE(i);
      CHECK(rows[i] == want);
    }
  }
}

TEST_CASE("layout: GQA heads share one selection scored with the summed query") {
  // Keys: k0 = (1, 0), k1 = (0, 1), k2 = (0.6, 0.6). Head 0 (q = (1, 0)) alone prefers k0, head 1
  // (q = (0, 1)) alone prefers k1; summed (1, 1) scores k2 highest (1.2).
  const float keys[3][2] = {{1, 0}, {0, 1}, {0.6f, 0.6f}};
  auto fill = [&](Problem& p) {
    for (int64_t j = 0; j < 3; ++j)
      for (int64_t c = 0; c < 2; ++c) p.k.row(0, p.k.heads() - 1, j)[c] = p.k.row(0, 0, j)[c] = keys[j][c];
    p.q.row(0, 0, 0)[0] = 1, p.q.row(0, 1, 0)[1] = 1;
  };
  Problem grouped{make_op(1, 2, 1, 1, 3, 2, false), Tensor(1, 2, 1, 2), Tensor(1, 1, 3, 2), Tensor(1, 1, 3, 2)};
  Problem separate{make_op(1, 2, 2, 1, 3, 2, false), Tensor(1, 2, 1, 2), Tensor(1, 2, 3, 2), Tensor(1, 2, 3, 2)};
  fill(grouped);
  fill(separate);
  SUBCASE("topk_per_query") {
    CHECK(rows_of(build_layout(grouped.op, Spec::topk_per_query, TopkParams{1}, &grouped.q, &grouped.k))[0] ==
          std::vector<int32_t>{2});
    const Layout l = build_layout(separate.op, Spec::topk_per_query, TopkParams{1}, &separate.q, &separate.k);
    CHECK(rows_of(l, 0, 0)[0] == std::vector<int32_t>{0});
    CHECK(rows_of(l, 0, 1)[0] == std::vector<int32_t>{1});
  }
  SUBCASE("nm_structured") {
    CHECK(rows_of(build_layout(grouped.op, Spec::nm_structured, NmParams{1, 3}, &grouped.q, &grouped.k))[0] ==
          std::vector<int32_t>{2});
  }
  SUBCASE("bsr: block scores summed over the group") {
    // Blocks of 2 identical keys; block 3 is the local block (query 0 aligned with key 7).
    const float block_keys[4][2] = {{1, 0}, {0, 1}, {0.6f, 0.6f}, {-1, -1}};
    Problem g{make_op(1, 2, 1, 1, 8, 2, false), Tensor(1, 2, 1, 2), Tensor(1, 1, 8, 2), Tensor(1, 1, 8, 2)};
    Problem s{make_op(1, 2, 2, 1, 8, 2, false), Tensor(1, 2, 1, 2), Tensor(1, 2, 8, 2), Tensor(1, 2, 8, 2)};
    for (Problem* p : {&g, &s}) {
      for (int64_t h = 0; h < p->k.heads(); ++h)
        for (int64_t j = 0; j < 8; ++j)
          for (int64_t c = 0; c < 2; ++c) p->k.row(0, h, j)[c] = block_keys[j / 2][c];
      p->q.row(0, 0, 0)[0] = 1, p->q.row(0, 1, 0)[1] = 1;
    }
    const BsrParams prm{2, 0.5, 0, 0};
    CHECK(rows_of(build_layout(g.op, Spec::bsr, prm, &g.q, &g.k))[0] == std::vector<int32_t>{2, 3});
    const Layout l = build_layout(s.op, Spec::bsr, prm, &s.q, &s.k);
    CHECK(rows_of(l, 0, 0)[0] == std::vector<int32_t>{0, 3});
    CHECK(rows_of(l, 0, 1)[0] == std::vector<int32_t>{1, 3});
  }
}

TEST_CASE("layout: lsh is deterministic per seed, differs across seeds, keeps the diagonal") {
  Rng rng(1010);
  const Op op = make_op(2, 4, 2, 64, 64, 16, false);
  const Tensor q = random_tensor(rng, 2, 4, 64, 16), k = random_tensor(rng, 2, 2, 64, 16);
  const Layout a = build_layout(op, Spec::lsh, LshParams{8, 2, 7}, &q, &k);
  const Layout b = build_layout(op, Spec::lsh, LshParams{8, 2, 7}, &q, &k);
  const Layout c = build_layout(op, Spec::lsh, LshParams{8, 2, 8}, &q, &k);
  bool any_difference = false;
  for (size_t h = 0; h < a.heads.size(); ++h) {
    CHECK(a.heads[h].ptr == b.heads[h].ptr);
    CHECK(a.heads[h].idx == b.heads[h].idx);
    any_difference = any_difference || a.heads[h].idx != c.heads[h].idx;
  }
  CHECK(any_difference);
  for (int64_t bb = 0; bb < 2; ++bb)
    for (int64_t kvh = 0; kvh < 2; ++kvh) {
      const Rows rows = rows_of(a, bb, kvh);
      for (int64_t i = 0; i < 64; ++i) CHECK(std::binary_search(rows[i].begin(), rows[i].end(), int32_t(i)));
    }
}

TEST_CASE("layout: lsh buckets follow the documented hash") {
  // Re-derives the buckets from the documented construction (Rng stream, projection layout,
  // argmax over [xR, -xR] or xR) for even and odd bucket counts.
  Rng rng(1111);
  const int64_t seq = 40, kv = 50, dim = 8;
  for (bool causal : {false, true})
    for (int64_t buckets : {2, 5, 8})
      for (int64_t rounds : {1, 3}) {
        const Op op = make_op(1, 2, 1, seq, kv, dim, causal);
        const Tensor q = random_tensor(rng, 1, 2, seq, dim), k = random_tensor(rng, 1, 1, kv, dim);
        const uint64_t seed = 42;
        const Layout l = build_layout(op, Spec::lsh, LshParams{buckets, rounds, seed}, &q, &k);
        const int64_t cols = buckets % 2 == 0 ? buckets / 2 : buckets;
        auto hash = [&](const std::vector<double>& x, const std::vector<double>& proj) {
          std::vector<double> values;
          for (int64_t t = 0; t < cols; ++t) {
            double v = 0;
            for (int64_t c = 0; c < dim; ++c) v += x[c] * proj[c * cols + t];
            values.push_back(v);
          }
          if (buckets % 2 == 0)
            for (int64_t t = 0; t < cols; ++t) values.push_back(-values[t]);
          return std::max_element(values.begin(), values.end()) - values.begin();  // first max
        };
        std::vector<std::vector<int64_t>> query_bucket(rounds), key_bucket(rounds);
        for (int64_t r = 0; r < rounds; ++r) {
          Rng stream(seed ^ ((uint64_t(r) + 1) * 0x9E3779B97F4A7C15ull));
          std::vector<double> proj(dim * cols);
          for (double& x : proj) x = stream.normal();
          for (int64_t i = 0; i < seq; ++i) {
            std::vector<double> x(dim, 0.0);
            for (int64_t c = 0; c < dim; ++c) x[c] = double(q.row(0, 0, i)[c]) + double(q.row(0, 1, i)[c]);
            query_bucket[r].push_back(hash(x, proj));
          }
          for (int64_t j = 0; j < kv; ++j) {
            std::vector<double> x(k.row(0, 0, j), k.row(0, 0, j) + dim);
            key_bucket[r].push_back(hash(x, proj));
          }
        }
        check_mask_equals(op, l, [&](int64_t, int64_t, int64_t i, int64_t j) {
          if (!causal_allows(op, i, j)) return false;
          if (j == i + kv - seq) return true;  // the diagonal is always kept
          for (int64_t r = 0; r < rounds; ++r)
            if (query_bucket[r][i] == key_bucket[r][j]) return true;
          return false;
        });
      }
}

TEST_CASE("layout: lsh with one bucket is every allowed key") {
  Rng rng(1212);
  const Op op = make_op(1, 1, 1, 30, 20, 4, true);
  const Tensor q = random_tensor(rng, 1, 1, 30, 4), k = random_tensor(rng, 1, 1, 20, 4);
  check_mask_equals(op, build_layout(op, Spec::lsh, LshParams{1, 1, 3}, &q, &k), dense_predicate(op));
}

// The selection that the documented rule defines, by brute force: the `count` allowed keys of
// [first, last) with the highest double score (group-summed query . key), ties to the lower key.
static std::vector<int32_t> brute_force_best(const Problem& p, int64_t kvh, int64_t i, int64_t first, int64_t last,
                                             int64_t count) {
  return best_keys(p.op, i, first, last, count, [&](int64_t j) { return pair_score(p, 0, kvh, i, j); });
}

TEST_CASE("layout: large top-k and 1:M selections equal the brute-force rule, ties to the lower key") {
  // Long rows take the bucketed threshold search (counts of 16 and more) and N:M's 1:M fast path.
  // Small-integer data makes scores exact integers with many exact ties (which the lower key
  // must win); Gaussian data gives distinct scores.
  Rng rng(2525);
  for (int trial = 0; trial < 6; ++trial) {
    const bool integers = trial % 2 == 0, causal = trial % 3 == 1;
    const int64_t kv = pick(rng, 600, 1500), seq = causal ? kv : pick(rng, 3, 40), dim = pick(rng, 4, 24);
    Problem p{make_op(1, 2, 1, seq, kv, dim, causal), random_tensor(rng, 1, 2, seq, dim),
              random_tensor(rng, 1, 1, kv, dim), random_tensor(rng, 1, 1, kv, dim)};
    if (integers) {
      for (float& x : p.q.data) x = float(int64_t(rng.below(5)) - 2);
      for (float& x : p.k.data) x = float(int64_t(rng.below(3)) - 1);
    }
    CAPTURE(trial);
    const int64_t rows_checked[] = {0, seq / 3, seq / 2, seq - 1};
    for (int64_t topk : {int64_t(16), int64_t(17), pick(rng, 18, 200), kv / 16, kv / 2, kv - 1}) {
      CAPTURE(topk);
      const Rows rows = rows_of(build_layout(p.op, Spec::topk_per_query, TopkParams{topk}, &p.q, &p.k));
      for (int64_t i : rows_checked) {
        CAPTURE(i);
        CHECK(rows[i] == brute_force_best(p, 0, i, 0, kv, topk));
      }
    }
    for (const NmParams nm : {NmParams{1, 16}, NmParams{1, 5}, NmParams{2, 8}, NmParams{20, 64}}) {
      CAPTURE(nm.nm_n);
      CAPTURE(nm.nm_m);
      const Rows rows = rows_of(build_layout(p.op, Spec::nm_structured, nm, &p.q, &p.k));
      for (int64_t i : rows_checked) {
        std::vector<int32_t> want;
        for (int64_t g = 0; g < kv; g += nm.nm_m) {
          const std::vector<int32_t> part = brute_force_best(p, 0, i, g, std::min(g + nm.nm_m, kv), nm.nm_n);
          want.insert(want.end(), part.begin(), part.end());
        }
        CAPTURE(i);
        CHECK(rows[i] == want);
      }
    }
  }
}
