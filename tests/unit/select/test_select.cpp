// sattn-select: rules, the cost model (expected values worked out from the formulas in
// select_cost.cpp / sattn-select(1), not read from the code's output), overrides and their
// precedence, environment parsing, plans.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "formats/op_io.hpp"
#include "select/plan_json.hpp"
#include "select/select_cost.hpp"
#include "backends/rocc/sim_probe.hpp"
#include "sattn/select.hpp"

using namespace sattn;

namespace {

// Every variable the selector reads.
const char* const kSelectorVariables[] = {
    "SATTN_FORCE_SPEC",   "SATTN_DISABLE_SW",  "SATTN_DISABLE_BSR", "SATTN_DISABLE_NM",
    "SATTN_DISABLE_TOPK", "SATTN_DISABLE_LSH", "SATTN_DISABLE_BLG", "SATTN_DISABLE_LANDMARK",
    "SATTN_PREFER_BSR",   "SATTN_PREFER_SW",   "SATTN_HW_L1_BYTES", "SATTN_DISABLE_QUEST",
};

// Clears the selector's variables, sets the given ones, and puts everything back afterwards.
class ScopedEnv {
 public:
  explicit ScopedEnv(std::initializer_list<std::pair<const char*, const char*>> set = {}) {
    for (const char* name : kSelectorVariables) {
      const char* v = std::getenv(name);
      saved_.emplace_back(name, v ? std::optional<std::string>(v) : std::nullopt);
      unsetenv(name);
    }
    for (const auto& [name, value] : set) setenv(name, value, 1);
  }
  ~ScopedEnv() {
    for (const auto& [name, value] : saved_) {
      if (value)
        setenv(name.c_str(), value->c_str(), 1);
      else
        unsetenv(name.c_str());
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

Op op_from(const std::string& mlir_attributes) {
  auto ops = parse_mlir_ops("\"sattn.sparse_attention\"() { " + mlir_attributes + " } : () -> ()", "t.mlir");
  REQUIRE(ops.size() == 1);
  return ops[0];
}

// Options as the command line would give them (no flags unless `given` names them), with the
// environment applied.
SelectOptions resolved(SelectOptions flags = {}, std::set<std::string> given = {}) {
  return resolve_select_options(flags, given);
}

const Candidate& candidate(const Plan& p, Spec s) {
  for (const Candidate& c : p.selection.candidates)
    if (c.spec == s) return c;
  FAIL("no candidate " << to_string(s));
  return p.selection.candidates.front();
}

double term(const Plan& p, Spec s, const char* key) {
  return nlohmann::json::parse(candidate(p, s).terms).at(key).get<double>();
}

bool contains(const std::string& s, std::string_view part) {
  return s.find(part) != std::string::npos;
}

struct Failure {
  int code = -1;
  std::string message;
};

template <class F>
Failure failure_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return {int(e.code()), e.what()};
  }
  return {};
}

constexpr int kUsage = int(ExitCode::usage);
constexpr int kInvalid = int(ExitCode::invalid_input);

// heads 4, 1024 x 1024, head_dim 64, fp32, non-causal, bsr block 64: the base of the flip tests.
const std::string kBase = "heads = 4 : i64, seq_len = 1024 : i64, head_dim = 64 : i64, block_size = 64 : i64";

}  // namespace

TEST_CASE("select: cost terms of a small op follow the documented formulas") {
  ScopedEnv env;
  // B 1, H 2, L 256, d 32, fp32 (e 4), cpu (mac 1/16, stream_byte 1/16, gather_row 2, L1 32768).
  const Op op = op_from(
      "heads = 2 : i64, seq_len = 256 : i64, head_dim = 32 : i64, window_size = 8 : i64, "
      "block_size = 32 : i64, keep_ratio = 0.25");
  const Plan p = select_spec(op, resolved());
  // sliding_window: n = 17 = span; pairs = 256*17 less the 2*(1+...+8) = 72 positions the edge
  // rows lose = 4280; macs = 2*4280*64 = 547840;
  // tile_keys = 17 + 15 = 32, working set 2*32*32*4 = 8192 fits: kv_bytes = 2 * 16 tiles * 32 *
  // (2*32*4) = 262144; gathers = 2*4280*2 = 17120.
  // cycles 547840/16 + 262144/16 + 17120*2 = 34240 + 16384 + 34240 = 84864.
  CHECK(term(p, Spec::sliding_window, "pairs") == 4280);
  CHECK(term(p, Spec::sliding_window, "macs") == 547840);
  CHECK(term(p, Spec::sliding_window, "tile_keys") == 32);
  CHECK(term(p, Spec::sliding_window, "working_set_bytes") == 8192);
  CHECK(term(p, Spec::sliding_window, "kv_bytes") == 262144);
  CHECK(term(p, Spec::sliding_window, "gathers") == 17120);
  CHECK(candidate(p, Spec::sliding_window).cost == 84864);
  // bsr: 8x8 blocks of 32, keep ceil(0.25*8) = 2 per row -> 16 blocks; pairs 16*1024 = 16384;
  // macs 2*16384*64 = 2097152 (131072 cycles); working set 2*32*32*4 = 8192 fits: kv_bytes =
  // 2 kv heads * 16 * 32 * 256 = 262144 (16384); score_macs = 2*((256+256)*32 + 64*32) = 36864
  // (2304). Total 149760.
  CHECK(term(p, Spec::bsr, "kept_blocks") == 16);
  CHECK(term(p, Spec::bsr, "pairs") == 16384);
  CHECK(term(p, Spec::bsr, "kv_bytes") == 262144);
  CHECK(term(p, Spec::bsr, "score_macs") == 36864);
  CHECK(candidate(p, Spec::bsr).cost == 149760);
  // dense: block 64, 4x4 = 16 blocks, pairs 65536, macs 8388608 (524288), kv_bytes 2*16*64*256
  // = 524288 (32768). Total 557056.
  CHECK(term(p, Spec::dense, "pairs") == 65536);
  CHECK(candidate(p, Spec::dense).cost == 557056);
  CHECK(p.spec == Spec::sliding_window);
  CHECK(p.selection.kind == "cost");
  CHECK(contains(p.selection.reason, "cheapest on cpu: sliding_window"));
  CHECK(std::get<SlidingWindowParams>(p.params).window_size == 8);
}

TEST_CASE("select: causal candidates and precision enter the terms") {
  ScopedEnv env;
  // Causal, 256 x 256, block 64: block row br has br+1 candidates (1+2+3+4 = 10); keep 0.5 keeps
  // 1, 1, 2, 2 = 6 blocks. bf16 (e 2): kv_bytes = 1 head * 6 blocks * 64 keys * (2*32*2) = 49152.
  const Op op = op_from(
      "heads = 1 : i64, seq_len = 256 : i64, head_dim = 32 : i64, causal = true, "
      "precision = \"bf16\", keep_ratio = 0.5, block_size = 64 : i64");
  const Plan p = select_spec(op, resolved());
  CHECK(term(p, Spec::bsr, "candidate_blocks") == 10);
  CHECK(term(p, Spec::bsr, "kept_blocks") == 6);
  CHECK(term(p, Spec::bsr, "kv_bytes") == 49152);
  // dense keeps all 10 candidate blocks; the kernels skip the masked half of the 4 diagonal
  // blocks: 6 * 4096 + 4 * (64*65/2) = 32896 = 256*257/2 pairs.
  CHECK(term(p, Spec::dense, "pairs") == 32896);
}

TEST_CASE("select: the rvv block kernel visits a causal diagonal block only up to each tile's limit") {
  // Same op as above (causal 256 x 256, block 64, keep 0.5: 1, 1, 2, 2 kept, 4 of them diagonal).
  // rvv chunks are 32 keys, tiles 4 rows (attn-block-rvv.inc.h): a tile of rows r..r+3 of a
  // diagonal block stops at key r+4, so tiles r = 0..28 visit 1 chunk and r = 32..60 visit 2:
  // 8*4*1 + 8*4*2 = 96 row visits a diagonal block, not 64*2 = 128. The 2 full blocks: 64*2 each.
  // chunk_work counts 32-key visits as 32/64: (2*128 + 4*96) / 2 = 320 (the whole blocks: 384).
  // rocc (64-key chunks, the whole diagonal block a visit) and non-causal ops are unchanged.
  const Op op = op_from(
      "heads = 1 : i64, seq_len = 256 : i64, head_dim = 32 : i64, causal = true, "
      "precision = \"bf16\", keep_ratio = 0.5, block_size = 64 : i64");
  select_detail::CostContext ctx;
  ctx.l1_bytes = 32768;
  auto chunk_work = [](const Candidate& c) { return nlohmann::json::parse(c.terms).at("chunk_work").get<double>(); };
  ctx.backend = Target::rvv;
  CHECK(chunk_work(select_detail::cost_bsr(op, BsrParams{64, 0.5}, ctx)) == 320);
  // dense: 6 full blocks (768 row visits) + 4 diagonal (384) = 1152 -> 576.
  CHECK(chunk_work(select_detail::cost_dense(op, ctx)) == 576);
  ctx.backend = Target::rocc;
  CHECK(chunk_work(select_detail::cost_bsr(op, BsrParams{64, 0.5}, ctx)) == 384);
  Op open = op;
  open.causal = false;
  ctx.backend = Target::rvv;
  // Not causal: 4 candidates a block row, 2 kept, every kept block whole: 8 * 64 * 2 / 2 = 512.
  CHECK(chunk_work(select_detail::cost_bsr(open, BsrParams{64, 0.5}, ctx)) == 512);
}

TEST_CASE("select: window span vs block fit flips the choice") {
  ScopedEnv env;
  // bsr (keep 0.125: 2 of 16 blocks per row) costs 4493312 in both. window 16: n = 33,
  // tile_keys 48, working set 2*48*64*4 = 24576 fits L1: 2002176, sliding_window wins. window 32:
  // tile_keys 80, working set 40960 > 32768, every row re-gathers from memory: 11528704, bsr wins.
  const Plan narrow = select_spec(op_from(kBase + ", keep_ratio = 0.125, window_size = 16 : i64"), resolved());
  const Plan wide = select_spec(op_from(kBase + ", keep_ratio = 0.125, window_size = 32 : i64"), resolved());
  CHECK(narrow.spec == Spec::sliding_window);
  CHECK(candidate(narrow, Spec::sliding_window).cost == 2002176);
  CHECK(wide.spec == Spec::bsr);
  CHECK(nlohmann::json::parse(candidate(wide, Spec::sliding_window).terms).at("l1_fit") == false);
  CHECK(candidate(wide, Spec::sliding_window).cost == 11528704);
  CHECK(candidate(wide, Spec::bsr).cost == 4493312);
}

TEST_CASE("select: keep_ratio flips the choice") {
  ScopedEnv env;
  // window 32 costs 11528704 (above). bsr keeps ceil(r*16) blocks per row: r 0.25 -> 4 blocks,
  // 8949760 < 11528704; r 0.5 -> 8 blocks, 17862656 > 11528704.
  const Plan sparse = select_spec(op_from(kBase + ", keep_ratio = 0.25, window_size = 32 : i64"), resolved());
  const Plan dense_ish = select_spec(op_from(kBase + ", keep_ratio = 0.5, window_size = 32 : i64"), resolved());
  CHECK(sparse.spec == Spec::bsr);
  CHECK(candidate(sparse, Spec::bsr).cost == 8949760);
  CHECK(dense_ish.spec == Spec::sliding_window);
  CHECK(candidate(dense_ish, Spec::bsr).cost == 17862656);
}

TEST_CASE("select: the L1 size flips the choice, from flags and from the environment") {
  const Op op = op_from(kBase + ", keep_ratio = 0.25, window_size = 32 : i64");
  {
    ScopedEnv env;
    CHECK(select_spec(op, resolved()).spec == Spec::bsr);  // window's 40960-byte working set spills
    SelectOptions flags;
    flags.l1_bytes = 65536;
    const Plan p = select_spec(op, resolved(flags, {"l1_bytes"}));
    // Fits now: kv_bytes 4*64*80*512 = 10485760 -> 3799552 total, below bsr's 8949760.
    CHECK(p.spec == Spec::sliding_window);
    CHECK(candidate(p, Spec::sliding_window).cost == 3799552);
    CHECK(term(p, Spec::sliding_window, "l1_bytes") == 65536);
    CHECK(contains(p.selection.reason, "--l1-bytes 65536"));
  }
  {
    ScopedEnv env({{"SATTN_HW_L1_BYTES", "65536"}});
    const Plan p = select_spec(op, resolved());
    CHECK(p.spec == Spec::sliding_window);
    CHECK(contains(p.selection.reason, "SATTN_HW_L1_BYTES=65536"));
    // The flag outranks the environment.
    SelectOptions flags;
    flags.l1_bytes = 32768;
    CHECK(select_spec(op, resolved(flags, {"l1_bytes"})).spec == Spec::bsr);
  }
}

TEST_CASE("select: a block that does not fit L1 is re-streamed per query tile and head") {
  ScopedEnv env;
  // imc (mac 1/64, stream_byte 1/2, gather_row 64), block 128: working set 2*128*64*4 = 65536.
  // window 4: n = 9, pairs 1024*9 - 2*(1+2+3+4) = 9196, tile_keys 24, sliding_window =
  // 4*9196*128/64 + 4*64*24*512/2 + 4*9196*2*64 = 73568 + 1572864 + 4708352 = 6354784.
  // bsr, 8 of 8x8 blocks kept (1 per row), score_macs 4*(2048*64 + 64*64) = 540672 (67584):
  //   L1 65536 fits:  kv_bytes 4*8*128*512 = 2097152 -> 4*8*16384*128/64 + 1048576 + 67584 = 2164736;
  //   L1 32768 spills: kv_bytes x ceil(128/16) = 8 -> 8388608 cycles, total 9504768.
  const Op op = op_from(
      "heads = 4 : i64, seq_len = 1024 : i64, head_dim = 64 : i64, block_size = 128 : i64, "
      "keep_ratio = 0.125, window_size = 4 : i64");
  SelectOptions flags;
  flags.backend = Target::imc;
  const Plan small = select_spec(op, resolved(flags));
  CHECK(small.spec == Spec::sliding_window);
  CHECK(nlohmann::json::parse(candidate(small, Spec::bsr).terms).at("l1_fit") == false);
  CHECK(term(small, Spec::bsr, "kv_bytes") == 16777216);
  CHECK(candidate(small, Spec::bsr).cost == 9504768);
  CHECK(candidate(small, Spec::sliding_window).cost == 6354784);
  flags.l1_bytes = 65536;
  const Plan large = select_spec(op, resolved(flags, {"l1_bytes"}));
  CHECK(large.spec == Spec::bsr);
  CHECK(candidate(large, Spec::bsr).cost == 2164736);
}

TEST_CASE("select: GQA favours block layouts, which share K/V loads across the group") {
  ScopedEnv env;
  // heads 8, keep 1/16 (1 block of 16 per row), window 18 (n = 37, 37546 pairs a head after the
  // edges): sliding_window = 2402944 + 851968 + 1201472 = 4456384 whatever the grouping (it works
  // per query head).
  // bsr, 8 KV heads: 4194304 + 262144 + 73728 = 4530176 -> sliding_window.
  // bsr, 2 KV heads (G 4): kv_bytes /4 -> 65536; score_macs 2*((4*1024+1024)*64 + 256*64) =
  // 688128 -> 43008; total 4302848 -> bsr.
  const std::string attrs =
      "heads = 8 : i64, seq_len = 1024 : i64, head_dim = 64 : i64, block_size = 64 : i64, keep_ratio = 0.0625, "
      "window_size = 18 : i64";
  const Plan mha = select_spec(op_from(attrs), resolved());
  const Plan gqa = select_spec(op_from(attrs + ", gqa_group_size = 4 : i64"), resolved());
  CHECK(mha.spec == Spec::sliding_window);
  CHECK(candidate(mha, Spec::bsr).cost == 4530176);
  CHECK(gqa.spec == Spec::bsr);
  CHECK(candidate(gqa, Spec::bsr).cost == 4302848);
  CHECK(candidate(gqa, Spec::sliding_window).cost == 4456384);
  CHECK(term(gqa, Spec::bsr, "kv_reuse") == 64 * 4);
}

TEST_CASE("select: prefer hints flip a close call") {
  const std::string attrs =
      "heads = 8 : i64, seq_len = 1024 : i64, head_dim = 64 : i64, block_size = 64 : i64, keep_ratio = 0.0625, "
      "window_size = 18 : i64";
  const Op op = op_from(attrs);  // sliding_window 4456384 < bsr 4530176
  {
    ScopedEnv env;
    SelectOptions flags;
    flags.prefer_bsr = true;
    const Plan p = select_spec(op, resolved(flags, {"prefer_bsr"}));
    // bsr 4530176 * 0.75 = 3397632 < sliding_window 4456384 * 1.1.
    CHECK(p.spec == Spec::bsr);
    CHECK(candidate(p, Spec::bsr).cost == 3397632);
    CHECK(term(p, Spec::sliding_window, "prefer_factor") == doctest::Approx(1.1));
    CHECK(contains(p.selection.reason, "--prefer-bsr"));
  }
  {
    ScopedEnv env({{"SATTN_PREFER_BSR", "yes"}});
    CHECK(select_spec(op, resolved()).spec == Spec::bsr);
    // A preference flag replaces the environment's.
    SelectOptions flags;
    flags.prefer_sw = true;
    const Plan p = select_spec(op, resolved(flags, {"prefer_sw"}));
    CHECK(p.spec == Spec::sliding_window);
    CHECK(contains(p.selection.reason, "--prefer-sw"));
  }
  {
    ScopedEnv env({{"SATTN_PREFER_SW", "1"}});
    // GQA case where bsr wins by 4302848 vs 4456384: preferring sliding_window flips it back.
    CHECK(select_spec(op_from(attrs + ", gqa_group_size = 4 : i64"), resolved()).spec == Spec::sliding_window);
  }
}

TEST_CASE("select: compression blocks make bsr scoring dearer") {
  ScopedEnv env;
  // heads 4, block 32 (32x32 blocks, keep 2 per row: 64), window 20 (n = 41, 41564 pairs a head
  // after the edges): sliding_window 1330048 + 458752 + 665024 = 2453824.
  // bsr without compression: 2097152 + 262144 + score 4*(2048*64 + 1024*64)/16 = 49152 -> 2408448.
  // comp_block_size 4: 8 sub-blocks per block: score 4*(2048*64 + 1024*64*8)/16 = 163840 -> 2523136.
  const std::string attrs =
      "heads = 4 : i64, seq_len = 1024 : i64, head_dim = 64 : i64, block_size = 32 : i64, keep_ratio = 0.0625, "
      "window_size = 20 : i64";
  const Plan plain = select_spec(op_from(attrs), resolved());
  const Plan compressed = select_spec(op_from(attrs + ", comp_block_size = 4 : i64"), resolved());
  CHECK(plain.spec == Spec::bsr);
  CHECK(candidate(plain, Spec::bsr).cost == 2408448);
  CHECK(compressed.spec == Spec::sliding_window);
  CHECK(term(compressed, Spec::bsr, "score_sub_blocks") == 8);
  CHECK(candidate(compressed, Spec::bsr).cost == 2523136);
  CHECK(candidate(compressed, Spec::sliding_window).cost == 2453824);
}

TEST_CASE("select: a gather-expensive backend turns a window into blocks") {
  ScopedEnv env;
  // window 32 (65 keys a row) against bsr keeping 2 of 16 blocks of 64 (128 keys a row), L1
  // 65536 so that the window's keys fit: cpu takes the window (3799552 < 4493312). RVV gathers
  // every K element of a row layout (vluxei32, 1.15 cycles each at fp32) and every K/V row
  // (27.9), which costs the window 524032*27.9 + 16769024*1.15 = 33904870.4 cycles of gather
  // alone: bsr wins. The accelerator computes only allowed pairs and fetches gathered keys in
  // bursts, so rocc keeps the window (its cost follows the pairs: 65504 against 131072).
  const Op op = op_from(kBase + ", keep_ratio = 0.125, window_size = 32 : i64");
  SelectOptions flags;
  flags.l1_bytes = 65536;
  CHECK(select_spec(op, resolved(flags, {"l1_bytes"})).spec == Spec::sliding_window);
  flags.backend = Target::rvv;
  const Plan rvv = select_spec(op, resolved(flags, {"l1_bytes"}));
  CHECK(rvv.spec == Spec::bsr);
  CHECK(rvv.backend == Target::rvv);
  CHECK(term(rvv, Spec::sliding_window, "gathered_elements") == 16769024);
  CHECK(nlohmann::json::parse(candidate(rvv, Spec::sliding_window).terms).at("cycles").at("gather").get<double>() ==
        doctest::Approx(33904870.4));
  CHECK(contains(rvv.selection.reason, "cheapest on rvv"));
  flags.backend = Target::rocc;
  const Plan rocc = select_spec(op, resolved(flags, {"l1_bytes"}));
  CHECK(rocc.spec == Spec::sliding_window);
  CHECK(term(rocc, Spec::bsr, "pairs") == 131072);
}

TEST_CASE("select: rules apply in order, and a disabled rule falls through") {
  ScopedEnv env;
  const Op op = op_from(
      "seq_len = 512 : i64, global_tokens = 8 : i64, nm_n = 2 : i64, nm_m = 8 : i64, "
      "topk_k = 16 : i64, lsh_buckets = 4 : i64, num_landmarks = 16 : i64");
  SelectOptions o = resolved();
  const Spec order[] = {Spec::block_local_global, Spec::nm_structured, Spec::topk_per_query, Spec::lsh, Spec::landmark};
  for (Spec expected : order) {
    const Plan p = select_spec(op, o);
    CHECK(p.spec == expected);
    CHECK(p.selection.kind == "rule");
    o.disabled.insert(expected);
  }
  // All rules disabled: the cost model, global_tokens describing bsr (which keeps the global
  // block: 1 + 7*2 = 15 of 64 blocks, against dense's 64).
  const Plan p = select_spec(op, o);
  CHECK(p.selection.kind == "cost");
  CHECK(contains(p.selection.reason, "num_landmarks = 16 would select landmark, but it is disabled"));
  CHECK(candidate(p, Spec::nm_structured).feasible == false);
  REQUIRE(p.spec == Spec::bsr);
  CHECK(std::get<BsrParams>(p.params).global_tokens == 8);
  CHECK(term(p, Spec::bsr, "kept_blocks") == 15);
}

TEST_CASE("select: top_pages or page_size selects quest; its cost follows the documented formulas") {
  ScopedEnv env;
  // A decode step: one query, 1024 keys of context, 2 heads, d 32, causal, pages of 16 (default).
  const Op op = op_from("heads = 2 : i64, kv_heads = 2 : i64, seq_len = 1 : i64, kv_len = 1024 : i64, "
                        "head_dim = 32 : i64, causal = true, top_pages = 8 : i64");
  const Plan p = select_spec(op, resolved());
  CHECK(p.spec == Spec::quest);
  CHECK(p.selection.kind == "rule");
  CHECK(contains(p.selection.reason, "top_pages = 8 selects quest"));
  CHECK(std::get<QuestParams>(p.params).page_size == 16);
  CHECK(std::get<QuestParams>(p.params).top_pages == 8);
  // page_size alone is a rule too; top_pages beyond the 64 pages is the op's error.
  CHECK(select_spec(op_from("seq_len = 1 : i64, kv_len = 256 : i64, page_size = 32 : i64"), resolved()).spec ==
        Spec::quest);
  CHECK(failure_of([] { select_spec(op_from("kv_len = 256 : i64, top_pages = 17 : i64"), resolved()); }).code == kInvalid);
  SelectOptions off = resolved();
  off.disabled.insert(Spec::quest);
  CHECK(select_spec(op, off).spec != Spec::quest);

  // One block row of 1 query, 64 candidate pages, 8 kept: pairs 7*16 + 16 (the diagonal page,
  // whole: the query is aligned with key 1023) = 128; macs 2 heads * 128 * 64 = 16384; working
  // set 2*16*32*4 = 4096 fits: kv_bytes = 2 kv heads * 8 * 16 * (2*32*4) = 65536; score_macs =
  // 2 * (2*1024*32 + 1 * 64 * 2*32) = 139264. cpu: (16384 + 65536 + 139264) / 16 = 13824.
  select_detail::CostContext ctx;
  ctx.l1_bytes = 32768;
  const Candidate c = select_detail::cost_quest(op, QuestParams{16, 8}, ctx);
  const auto t = nlohmann::json::parse(c.terms);
  CHECK(t.at("kept_blocks").get<double>() == 8);
  CHECK(t.at("candidate_blocks").get<double>() == 64);
  CHECK(t.at("pairs").get<double>() == 128);
  CHECK(t.at("kv_bytes").get<double>() == 65536);
  CHECK(t.at("score_macs").get<double>() == 139264);
  CHECK(c.cost == 13824);
  // Against dense at the same step (64 blocks of 64 keys... one row: pairs 1024): quest is cheaper.
  CHECK(c.cost < select_detail::cost_dense(op, ctx).cost);
}

TEST_CASE("select: SATTN_DISABLE_* and --disable feed the same fall-through") {
  const Op op = op_from("seq_len = 512 : i64, nm_n = 2 : i64, nm_m = 8 : i64, window_size = 8 : i64");
  {
    ScopedEnv env({{"SATTN_DISABLE_NM", "true"}});
    const Plan p = select_spec(op, resolved());
    CHECK(p.spec == Spec::sliding_window);  // the cost model: only the window is described
    CHECK(contains(p.selection.reason, "disabled by SATTN_DISABLE_NM=true"));
    CHECK(candidate(p, Spec::nm_structured).why_not == "disabled by SATTN_DISABLE_NM=true");
  }
  {
    ScopedEnv env;
    SelectOptions flags;
    flags.disabled = {Spec::nm_structured, Spec::sliding_window};
    const Plan p = select_spec(op, resolved(flags, {"disabled"}));
    // Nothing described is usable: every remaining candidate with defaults (bsr, dense).
    CHECK(p.spec != Spec::sliding_window);
    CHECK(contains(p.selection.reason, "--disable nm_structured"));
    CHECK(candidate(p, Spec::sliding_window).why_not == "disabled by --disable sliding_window");
  }
  {
    ScopedEnv env({{"SATTN_DISABLE_NM", "0"}, {"SATTN_DISABLE_SW", ""}});  // explicit no, and empty
    CHECK(select_spec(op, resolved()).spec == Spec::nm_structured);
  }
}

TEST_CASE("select: nothing to cost defaults to bsr") {
  ScopedEnv env;
  const Op op = op_from("seq_len = 512 : i64");
  const Plan p = select_spec(op, resolved());
  CHECK(p.spec == Spec::bsr);
  CHECK(p.selection.kind == "default");
  CHECK(std::get<BsrParams>(p.params).keep_ratio == 0.125);
  SelectOptions o = resolved();
  o.disabled.insert(Spec::bsr);
  const Plan q = select_spec(op, o);
  CHECK(q.spec != Spec::bsr);
  CHECK(contains(q.selection.reason, "bsr is unusable"));
  o.disabled = {Spec::bsr, Spec::sliding_window, Spec::dense};
  CHECK(failure_of([&] { select_spec(op, o); }).code == kUsage);
}

TEST_CASE("select: overrides rank flag > environment > attribute") {
  const Op op = op_from("seq_len = 512 : i64, window_size = 8 : i64, spec = \"dense\"");
  {
    ScopedEnv env;
    const Plan p = select_spec(op, resolved());
    CHECK(p.spec == Spec::dense);
    CHECK(p.selection.kind == "override");
    CHECK(contains(p.selection.reason, "the op's spec attribute (dense, t.mlir:1:"));
  }
  {
    ScopedEnv env({{"SATTN_FORCE_SPEC", "bsr"}});
    const Plan p = select_spec(op, resolved());
    CHECK(p.spec == Spec::bsr);
    CHECK(contains(p.selection.reason, "SATTN_FORCE_SPEC=bsr, which overrides the op's spec attribute (dense)"));
    SelectOptions flags;
    flags.force = Spec::sliding_window;
    const Plan q = select_spec(op, resolved(flags, {"force"}));
    CHECK(q.spec == Spec::sliding_window);
    CHECK(contains(q.selection.reason, "--force-spec sliding_window, which overrides the op's spec attribute"));
  }
  {
    // A disabled spec attribute is ignored (the environment outranks the op).
    ScopedEnv env;
    SelectOptions flags;
    flags.disabled = {Spec::dense};
    const Plan p = select_spec(op, resolved(flags, {"disabled"}));
    CHECK(p.spec == Spec::sliding_window);
    CHECK(contains(p.selection.reason, "the op's spec attribute (dense"));
    CHECK(contains(p.selection.reason, "is disabled by --disable dense"));
  }
}

TEST_CASE("select: a spec both forced and disabled follows the layers") {
  const Op op = op_from("seq_len = 512 : i64, window_size = 8 : i64");
  {
    ScopedEnv env({{"SATTN_DISABLE_BSR", "1"}});
    SelectOptions flags;
    flags.force = Spec::bsr;
    const Plan p = select_spec(op, resolved(flags, {"force"}));  // flag force beats env disable
    CHECK(p.spec == Spec::bsr);
    CHECK(contains(p.selection.reason, "which overrides SATTN_DISABLE_BSR=1"));
  }
  {
    ScopedEnv env({{"SATTN_FORCE_SPEC", "bsr"}});
    SelectOptions flags;
    flags.disabled = {Spec::bsr};
    const Plan p = select_spec(op, resolved(flags, {"disabled"}));  // flag disable beats env force
    CHECK(p.spec == Spec::sliding_window);
    CHECK(contains(p.selection.reason, "SATTN_FORCE_SPEC=bsr (overridden by --disable bsr)"));
  }
  {
    ScopedEnv env({{"SATTN_FORCE_SPEC", "bsr"}, {"SATTN_DISABLE_BSR", "1"}});
    const Failure f = failure_of([] { resolved(); });
    CHECK(f.code == kUsage);
    CHECK(contains(f.message, "bsr is both forced (SATTN_FORCE_SPEC=bsr) and disabled (SATTN_DISABLE_BSR=1)"));
  }
}

TEST_CASE("select: invalid environment values are usage errors naming the variable") {
  const std::pair<const char*, const char*> bad[] = {
      {"SATTN_HW_L1_BYTES", "abc"},   {"SATTN_HW_L1_BYTES", "0"}, {"SATTN_HW_L1_BYTES", "12k"},
      {"SATTN_DISABLE_BSR", "maybe"}, {"SATTN_PREFER_SW", "2"},   {"SATTN_FORCE_SPEC", "sparse"},
  };
  for (const auto& [name, value] : bad) {
    ScopedEnv env({{name, value}});
    const Failure f = failure_of([] { resolved(); });
    CHECK_MESSAGE(f.code == kUsage, name << "=" << value);
    CHECK(contains(f.message, std::string(name) + ": expected"));
    CHECK(contains(f.message, std::string("'") + value + "'"));
  }
  ScopedEnv both({{"SATTN_PREFER_BSR", "1"}, {"SATTN_PREFER_SW", "YES"}});
  CHECK(failure_of([] { resolved(); }).code == kUsage);
}

TEST_CASE("select: valid environment values") {
  ScopedEnv env({{"SATTN_HW_L1_BYTES", "4096"}, {"SATTN_DISABLE_LANDMARK", "On"}, {"SATTN_FORCE_SPEC", "sw"}});
  const SelectOptions o = resolved();
  CHECK(o.l1_bytes == 4096);
  CHECK(o.disabled == std::set<Spec>{Spec::landmark});
  CHECK(o.force == Spec::sliding_window);  // the prototype's alias
}

TEST_CASE("select: the accelerator probe without its harness is an external-tool error") {
  // --use-hw-probe: the tool probes (backends/rocc), the selector only folds the answer.
  ScopedEnv env;
  char tmpl[] = "/tmp/sattn-test-libexec-XXXXXX";
  const std::string empty = ::mkdtemp(tmpl);
  setenv("SATTN_LIBEXEC_DIR", empty.c_str(), 1);
  const Failure f = failure_of([&] { probe_hw_capabilities(); });
  unsetenv("SATTN_LIBEXEC_DIR");
  std::filesystem::remove(empty);
  CHECK(f.code == 4);
  CHECK(contains(f.message, "verilator"));
}

TEST_CASE("select: capabilities fold into the options as data") {
  ScopedEnv env;
  HwCapabilities hw;
  hw.specs = {Spec::dense, Spec::bsr};
  hw.scratchpad_bytes = 4096;
  hw.description = "LANES 8, spec mask 0x05";
  hw.where = "spec mask 0x05, test";
  SelectOptions flags;
  flags.use_hw_probe = true;
  flags.hw = hw;
  const SelectOptions o = resolved(flags, {"use_hw_probe"});
  CHECK(o.disabled.count(Spec::sliding_window) == 1);
  CHECK(o.disabled.count(Spec::bsr) == 0);
  CHECK(o.l1_bytes == 4096);
  CHECK(contains(o.source.at("probe"), "--use-hw-probe: LANES 8, spec mask 0x05 (unsupported: sliding_window"));
  flags.force = Spec::lsh;
  const Failure forced = failure_of([&] { resolved(flags, {"use_hw_probe", "force"}); });
  CHECK(forced.code == 2);
  CHECK(contains(forced.message, "not supported by the accelerator (probe: spec mask 0x05, test)"));
}

TEST_CASE("select: a forced spec the op cannot support is an input error naming why") {
  ScopedEnv env;
  SelectOptions flags;
  flags.force = Spec::bsr;
  const Failure one_token = failure_of([&] { select_spec(op_from("seq_len = 1 : i64"), resolved(flags, {"force"})); });
  CHECK(one_token.code == kInvalid);
  CHECK(contains(one_token.message, "cannot use bsr (--force-spec bsr): bsr needs at least 2 key blocks"));
  // The attribute's location is kept in the message.
  const Failure window = failure_of(
      [] { select_spec(op_from("seq_len = 64 : i64, window_size = 100 : i64, spec = \"sw\""), resolved()); });
  CHECK(window.code == kInvalid);
  CHECK(contains(window.message, "t.mlir:1:"));
  CHECK(contains(window.message, "window_size"));
  // Unforced, the same bsr is merely infeasible.
  const Plan p = select_spec(op_from("seq_len = 1 : i64, keep_ratio = 0.5"), resolved());
  CHECK(p.spec == Spec::dense);
  CHECK(contains(candidate(p, Spec::bsr).why_not, "2 key blocks"));
}

TEST_CASE("select: plans round-trip, and bare ops are selected in-process") {
  ScopedEnv env;
  const Op op = op_from("name = \"a\", seq_len = 512 : i64, heads = 2 : i64, keep_ratio = 0.25, block_size = 32 : i64");
  SelectOptions flags;
  flags.backend = Target::rocc;
  const Plan plan = select_spec(op, resolved(flags));
  const std::string line = plan_to_json(plan).dump();
  const std::string bare = R"({"schema": "sattn.op/v1", "name": "b", "seq_len": 64, "window_size": 4})";
  const std::vector<Plan> read = parse_plans(line + "\n" + bare + "\n", "p.jsonl", resolved());
  REQUIRE(read.size() == 2);
  CHECK(read[0].spec == plan.spec);
  CHECK(read[0].backend == Target::rocc);
  CHECK(read[0].op.name == "a");
  CHECK(params_to_json(read[0].params) == params_to_json(plan.params));
  CHECK(plan_to_json(read[0]) == plan_to_json(plan));
  CHECK(read[1].op.name == "b");
  CHECK(read[1].spec == Spec::sliding_window);
  CHECK(read[1].selection.kind == "cost");
}

TEST_CASE("select: plan reader errors") {
  ScopedEnv env;
  const Plan plan = select_spec(op_from("seq_len = 512 : i64, keep_ratio = 0.25"), resolved());
  nlohmann::json j = plan_to_json(plan);
  {
    nlohmann::json v2 = j;
    v2["schema"] = "sattn.plan/v2";
    const Failure f = failure_of([&] { parse_plans(v2.dump(), "p.json", resolved()); });
    CHECK(f.code == kInvalid);
    CHECK(contains(f.message, "unsupported schema major version"));
  }
  {
    nlohmann::json edited = j;
    edited["params"]["keep_ratio"] = 0.5;
    const Failure f = failure_of([&] { parse_plans("\n" + edited.dump(), "p.jsonl", resolved()); });
    CHECK(f.code == kInvalid);
    CHECK(contains(f.message, "p.jsonl:2:1: plan's params.keep_ratio (0.5) disagrees with its op (0.25)"));
  }
  {
    nlohmann::json unknown = j;
    unknown["spec"] = "striped";
    CHECK(failure_of([&] { parse_plans(unknown.dump(), "p.json", resolved()); }).code == kInvalid);
    unknown = j;
    unknown["backend"] = "gpu";
    CHECK(failure_of([&] { parse_plans(unknown.dump(), "p.json", resolved()); }).code == kInvalid);
  }
  {
    nlohmann::json tiny = j;
    tiny["op"]["seq_len"] = 1;
    tiny["op"]["kv_len"] = 1;
    tiny.erase("params");
    const Failure f = failure_of([&] { parse_plans(tiny.dump(), "p.json", resolved()); });
    CHECK(f.code == kInvalid);
    CHECK(contains(f.message, "2 key blocks"));
  }
}

// The lower bound a recall-constrained selection compares with the target (sattn-select(1),
// QUALITY TARGET): mean - k * sd(8 contiguous band means) / sqrt(8), clamped to [0, 1], the
// band means' variance from successive differences: sum (m[b+1] - m[b])^2 / (2 (bands - 1)), and
// k = sqrt(2) * z(confidence), 2.3261743 at the default 0.95. Expected values worked out by hand
// from that definition.
// recall_pooled_bound: mean - z(C) sd sqrt(1 + 1/n) over the samples' means, sd with n - 1; z(0.95)
// = 1.6448536. Expected values worked out by hand from that definition.
TEST_CASE("recall_pooled_bound: a prediction bound from the spread between samples") {
  // {0.9, 0.8}: mean 0.85, sd 0.0707107, 1.6448536 * 0.0707107 * sqrt(1.5) = 0.142449.
  CHECK(recall_pooled_bound({0.9, 0.8}) == doctest::Approx(0.707551).epsilon(1e-5));
  // {0.5, 0.7, 0.9}: mean 0.7, sd 0.2, 1.6448536 * 0.2 * sqrt(4 / 3) = 0.379863.
  CHECK(recall_pooled_bound({0.5, 0.7, 0.9}) == doctest::Approx(0.320137).epsilon(1e-5));
  // The order of the samples does not matter; equal means have no spread; C = 0.5 is the mean.
  CHECK(recall_pooled_bound({0.9, 0.5, 0.7}) == doctest::Approx(0.320137).epsilon(1e-5));
  CHECK(recall_pooled_bound({0.9, 0.9, 0.9}) == doctest::Approx(0.9));
  CHECK(recall_pooled_bound({0.5, 0.7, 0.9}, 0.5) == doctest::Approx(0.7));
  CHECK(recall_pooled_bound({0.5, 0.7, 0.9}, 0.99) < recall_pooled_bound({0.5, 0.7, 0.9}, 0.9));
  // Clamped at 0: mean 0.1, sd 0.141421, 0.1 - 0.284897 < 0.
  CHECK(recall_pooled_bound({0.0, 0.2}) == 0.0);
  // One sample has no spread to pool: a usage error, as a bad confidence is.
  for (const std::vector<double>& bad : {std::vector<double>{}, std::vector<double>{0.9}}) {
    try {
      recall_pooled_bound(bad);
      FAIL(bad.size() << " samples accepted");
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::usage);
    }
  }
}

// RecallBound::mean: mean - z(C) sd sqrt(1/n), a confidence bound for the mean over windows.
// Expected values worked out by hand from that definition.
TEST_CASE("recall_pooled_bound: RecallBound::mean bounds the mean over windows") {
  // {0.9, 0.8}: mean 0.85, sd 0.0707107, 1.6448536 * 0.0707107 * sqrt(1 / 2) = 0.0822427.
  CHECK(recall_pooled_bound({0.9, 0.8}, 0.95, RecallBound::mean) == doctest::Approx(0.767757).epsilon(1e-5));
  // {0.5, 0.7, 0.9}: mean 0.7, sd 0.2, 1.6448536 * 0.2 * sqrt(1 / 3) = 0.189931.
  CHECK(recall_pooled_bound({0.5, 0.7, 0.9}, 0.95, RecallBound::mean) == doctest::Approx(0.510069).epsilon(1e-5));
  // Always at or above the window bound of the same samples; C = 0.5 is the mean either way.
  CHECK(recall_pooled_bound({0.5, 0.7, 0.9}, 0.9, RecallBound::mean) > recall_pooled_bound({0.5, 0.7, 0.9}, 0.9));
  CHECK(recall_pooled_bound({0.5, 0.7, 0.9}, 0.5, RecallBound::mean) == doctest::Approx(0.7));
  CHECK(parse_recall_bound("mean") == RecallBound::mean);
  CHECK(parse_recall_bound("window") == RecallBound::window);
  CHECK(!parse_recall_bound("Mean"));
  CHECK(std::string(to_string(RecallBound::mean)) == "mean");
}

// RecallBound::cv: leave-one-out cross-validation over the samples picks the smallest confidence of
// the ladder whose out-of-sample recall (the worst head's mean over the folds of the left-out
// sample's recall of the fold's choice) reaches the target. Worked out by hand; target 0.9, points
// cheapest first A, B, dense; head 1 of A and B is 1.0 on every sample (never the worst).
//   A head 0 = {1.0, 1.0, 0.85, 0.72}, B head 0 = 0.91 on every sample (sd 0: its bound is 0.91).
//   Folds 0 and 1 train on {1.0, 0.85, 0.72} (mean 0.8567 < 0.9): B, scoring 0.91.
//   Fold 2 trains on {1.0, 1.0, 0.72}: mean 0.90667, sd 0.16166, sd / sqrt(3) 0.09333: A at z = 0
//   (C 0.5), B from C 0.55 on (z 0.12566: 0.8949). Fold 3 trains on {1.0, 1.0, 0.85}: mean 0.95,
//   sd / sqrt(3) 0.05: A up to C 0.8 (z 0.84162: 0.90792), B from C 0.85 (z 1.03643: 0.89818).
//   C 0.5: (0.91 + 0.91 + 0.85 + 0.72) / 4 = 0.8475; C 0.55 .. 0.8: (3 x 0.91 + 0.72) / 4 = 0.8625;
//   C 0.85: 0.91 >= 0.9, chosen.
TEST_CASE("recall_cv_confidence: leave-one-out cross-validation picks the confidence") {
  auto point = [](std::vector<double> head0) {
    RecallCvPoint p;
    for (double m : head0) p.means.push_back({m, 1.0});
    return p;
  };
  const std::vector<RecallCvPoint> points = {point({1.0, 1.0, 0.85, 0.72}), point({0.91, 0.91, 0.91, 0.91}), RecallCvPoint{}};
  const RecallCv cv = recall_cv_confidence(points, 0.9, 0.95);
  CHECK(cv.reached);
  CHECK(cv.confidence == doctest::Approx(0.85));
  CHECK(cv.recall == doctest::Approx(0.91));
  // Capped below 0.85: no confidence reaches 0.9; the cap and its out-of-sample recall.
  const RecallCv capped = recall_cv_confidence(points, 0.9, 0.8);
  CHECK(!capped.reached);
  CHECK(capped.confidence == doctest::Approx(0.8));
  CHECK(capped.recall == doctest::Approx(0.8625));
  // A target every fold's choice clears at the plain mean: 0.5. Target 0.8: A on every fold
  // (train means 0.8567, 0.8567, 0.90667, 0.95), scoring A's mean 0.8925.
  const RecallCv low = recall_cv_confidence(points, 0.8, 0.95);
  CHECK(low.confidence == doctest::Approx(0.5));
  CHECK(low.recall == doctest::Approx(0.8925));
  // Only dense: every fold scores 1. Too few samples: a usage error.
  CHECK(recall_cv_confidence({RecallCvPoint{}}, 0.99).reached);
  const std::vector<RecallCvPoint> three = {point({0.9, 0.8, 0.7})};
  CHECK_THROWS_AS(recall_cv_confidence(three, 0.5), Error);
  // The ladder: steps of 0.05 below the cap, then the cap.
  CHECK(recall_cv_ladder(0.95).size() == 10);
  CHECK(recall_cv_ladder(0.95).back() == 0.95);
  CHECK(recall_cv_ladder(0.99).size() == 11);
  CHECK(recall_cv_ladder(0.5) == std::vector<double>{0.5});
  CHECK(recall_cv_ladder(0.62) == std::vector<double>{0.5, 0.55, 0.6, 0.62});
  CHECK(parse_recall_bound("cv") == RecallBound::cv);
  CHECK(std::string(to_string(RecallBound::cv)) == "cv");
  // The pooled bound of cv is the mean bound.
  CHECK(recall_pooled_bound({0.9, 0.8}, 0.95, RecallBound::cv) == recall_pooled_bound({0.9, 0.8}, 0.95, RecallBound::mean));
}

TEST_CASE("recall_bound: batch means of contiguous row bands") {
  CHECK(recall_bound({}) == 1.0);
  CHECK(recall_bound({0.7}) == doctest::Approx(0.7));
  // Equal rows: no spread, the bound is the mean.
  CHECK(recall_bound(std::vector<double>(100, 0.9)) == doctest::Approx(0.9));
  // 8 rows, one per band: mean 0.5, one step of 1: variance 1 / 14, se sqrt(1 / 14 / 8) = 0.0944911,
  // bound 0.5 - 0.219803.
  CHECK(recall_bound({1, 1, 1, 1, 0, 0, 0, 0}) == doctest::Approx(0.280197).epsilon(1e-5));
  const RecallBand rb = recall_band_stats({1, 1, 1, 1, 0, 0, 0, 0});
  CHECK(rb.mean == doctest::Approx(0.5));
  CHECK(rb.stderr_mean == doctest::Approx(0.0944911).epsilon(1e-5));
  // 16 rows alternating 1, 0: every band of 2 rows has mean 0.5, so the bands agree and the bound
  // is the mean (bands are contiguous rows, not single rows).
  std::vector<double> alt;
  for (int i = 0; i < 16; ++i) alt.push_back(i % 2 ? 0.0 : 1.0);
  CHECK(recall_bound(alt) == doctest::Approx(0.5));
  // The same 16 values sorted: band means 1,1,1,1,0,0,0,0 as above.
  std::vector<double> sorted(8, 1.0);
  sorted.resize(16, 0.0);
  CHECK(recall_bound(sorted) == doctest::Approx(0.280197).epsilon(1e-5));
  // A steady trend (band means 0.80, 0.81, ..., 0.87) is not noise: steps of 0.01, variance
  // 0.0001 / 2, se 0.0025, bound 0.835 - 0.005815 (the plain sd of the band means would give 0.0143).
  std::vector<double> trend;
  for (int i = 0; i < 8; ++i) trend.push_back(0.8 + 0.01 * i);
  CHECK(recall_bound(trend) == doctest::Approx(0.829185).epsilon(1e-5));
  // Clamped at 0: mean 0.0125, se 0.0094491, 0.0125 - 0.0219803 < 0.
  CHECK(recall_bound({0.1, 0, 0, 0, 0, 0, 0, 0}) == 0.0);
  // 4 rows: 4 bands; mean 0.85, steps of 0.1: variance 0.03 / 6, se 0.0353553, bound 0.85 - 0.0822427.
  CHECK(recall_bound({1, 0.9, 0.8, 0.7}) == doctest::Approx(0.767757).epsilon(1e-5));
  // Never above the mean, whatever the rows.
  const std::vector<double> rows{0.93, 0.97, 0.88, 0.99, 0.91, 0.95, 0.96, 0.9, 0.94, 0.97, 0.89};
  double mean = 0;
  for (double v : rows) mean += v / double(rows.size());
  CHECK(recall_bound(rows) < mean);
  // The confidence: 0.5 is the plain mean (z = 0); 0.8 gives k = sqrt(2) * 0.841621 = 1.190232,
  // 0.5 - 1.190232 * 0.0944911 = 0.387534; higher confidence, lower bound; outside [0.5, 1) is a
  // usage error.
  CHECK(recall_sigmas(0.5) == doctest::Approx(0.0).epsilon(1e-12));
  CHECK(recall_sigmas(0.95) == doctest::Approx(2.3261743).epsilon(1e-7));
  CHECK(recall_sigmas(0.975) == doctest::Approx(std::sqrt(2.0) * 1.959964).epsilon(1e-6));
  CHECK(recall_bound({1, 1, 1, 1, 0, 0, 0, 0}, 0.5) == doctest::Approx(0.5));
  CHECK(recall_bound({1, 1, 1, 1, 0, 0, 0, 0}, 0.8) == doctest::Approx(0.387534).epsilon(1e-5));
  CHECK(recall_bound(rows, 0.99) < recall_bound(rows, 0.9));
  for (double bad : {0.49, 1.0, -1.0, std::nan("")}) {
    try {
      recall_sigmas(bad);
      FAIL("confidence " << bad << " accepted");
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::usage);
    }
  }
}

TEST_CASE("select: one-row rvv block tiles pay tile_shared of the missing rows; short rocc chunks count their keys") {
  // A one-query decode step: 1 query, 256 keys, quest pages of 16, 4 kept. rvv: one tile of one
  // row (tiles are 4 rows), each page a visit of ceil(16/32) = 1 chunk counted 32/64, the row
  // weighted 1 + 0.57 * 3 = 2.71: 4 * 2.71 / 2 = 5.42 (0.5 a page before). rocc: a 16-key page
  // is a quarter of its 64-key chunk: 4 * 16/64 = 1 (4 whole chunks before).
  const Op op = op_from(
      "heads = 1 : i64, seq_len = 1 : i64, kv_len = 256 : i64, head_dim = 64 : i64, causal = true, "
      "precision = \"i8\", page_size = 16 : i64, top_pages = 4 : i64");
  select_detail::CostContext ctx;
  ctx.l1_bytes = 32768;
  auto chunk_work = [](const Candidate& c) { return nlohmann::json::parse(c.terms).at("chunk_work").get<double>(); };
  const QuestParams q{16, 4};
  ctx.backend = Target::rvv;
  CHECK(chunk_work(select_detail::cost_quest(op, q, ctx)) == doctest::Approx(4 * (1 + 0.57 * 3) / 2));
  ctx.backend = Target::rocc;
  CHECK(chunk_work(select_detail::cost_quest(op, q, ctx)) == doctest::Approx(1.0));
}
