// The check of a run against the reference (backends/backend.cpp): full, sampled and none, the
// rows a sample draws, and the work estimate the tools guard with.
#include <doctest/doctest.h>

#include <algorithm>
#include <set>

#include "backends/backend.hpp"
#include "sattn/sattn.hpp"

using namespace sattn;

namespace {

Plan plan_of(const std::string& json) {
  const std::vector<Op> ops = parse_ops(json, "check.json");
  return select_spec(ops.at(0), resolve_select_request({}));
}

// The fast kernel's output for a plan, as a CpuRun ready to be checked.
CpuRun run_of(const Plan& plan, const QKV& data, const Layout& layout) {
  CpuRun r;
  r.spec = plan.spec;
  r.params = plan.params;
  r.out = fast_attention(plan.op, layout, data.q, data.k, data.v);
  return r;
}

}  // namespace

TEST_CASE("check modes: names, and auto samples above 2^23 reference pairs") {
  CHECK(parse_check_mode("full") == CheckMode::full);
  CHECK(parse_check_mode("sample") == CheckMode::sample);
  CHECK(parse_check_mode("none") == CheckMode::none);
  CHECK(parse_check_mode("auto") == CheckMode::automatic);
  CHECK_FALSE(parse_check_mode("partial").has_value());
  CHECK(resolve_check_mode(CheckMode::automatic, 8388608) == CheckMode::full);
  CHECK(resolve_check_mode(CheckMode::automatic, 8388609) == CheckMode::sample);
  CHECK(resolve_check_mode(CheckMode::full, 1e12) == CheckMode::full);
  CHECK(resolve_check_mode(CheckMode::none, 10) == CheckMode::none);
}

TEST_CASE("sampled rows: seeded, sorted, first and last included; whole block rows on block layouts") {
  const Plan sw = plan_of(R"({"spec":"sliding_window","seq_len":1000,"heads":1,"head_dim":8,"window_size":4})");
  const Layout csr = build_layout(sw.op, sw.spec, sw.params, nullptr, nullptr);
  const CheckOptions o;  // 256 rows, seed 0x5A77
  const std::vector<int64_t> rows = check_rows(csr, CheckMode::sample, o);
  CHECK(rows.size() == 256);
  CHECK(std::is_sorted(rows.begin(), rows.end()));
  CHECK(std::set<int64_t>(rows.begin(), rows.end()).size() == rows.size());
  CHECK(rows.front() == 0);
  CHECK(rows.back() == 999);
  CHECK(check_rows(csr, CheckMode::sample, o) == rows);  // the same rows every time
  CheckOptions other = o;
  other.seed = 7;
  CHECK(check_rows(csr, CheckMode::sample, other) != rows);  // the seed decides them
  CHECK(check_rows(csr, CheckMode::full, o).size() == 1000);
  CHECK(check_rows(csr, CheckMode::none, o).empty());
  other.rows = 5000;  // more than there are: every row
  CHECK(check_rows(csr, CheckMode::sample, other).size() == 1000);

  const Plan bsr = plan_of(R"({"spec":"block_local_global","seq_len":1000,"heads":1,"head_dim":8,"block_size":64,"global_tokens":0})");
  const Layout blocks = build_layout(bsr.op, bsr.spec, bsr.params, nullptr, nullptr);
  REQUIRE(blocks.block);
  const std::vector<int64_t> brows = check_rows(blocks, CheckMode::sample, o);
  // 4 block rows of 64 cover 256 rows; the last block row is partial (1000 = 15 * 64 + 40).
  std::set<int64_t> block_rows;
  for (int64_t i : brows) block_rows.insert(i / 64);
  CHECK(block_rows.size() == 4);
  CHECK(block_rows.count(0) == 1);
  CHECK(block_rows.count(15) == 1);
  CHECK(brows.size() == 64 * 3 + 40);
}

TEST_CASE("a sampled check finds an error in a sampled row, and only there; none checks nothing") {
  const Plan plan = plan_of(R"({"spec":"sliding_window","seq_len":2048,"heads":2,"head_dim":16,"window_size":8})");
  const QKV data = read_qkv(plan.op, std::nullopt);
  const Layout layout = build_layout(plan.op, plan.spec, plan.params, &data.q, &data.k);
  CheckOptions sample;
  sample.mode = CheckMode::sample;
  const std::vector<int64_t> rows = check_rows(layout, CheckMode::sample, sample);
  REQUIRE(rows.size() == 256);
  double ms = 0;

  CpuRun clean = run_of(plan, data, layout);
  nlohmann::json c = check_against_reference(plan.op, layout, data, clean, ms, sample);
  CHECK(c["mode"] == "sample");
  CHECK(c["rows_checked"] == 256);
  CHECK(c["rows"] == 2048);
  CHECK(c["passed"] == true);
  // The sampled check's error equals the full check's on the same rows: compare it with the
  // error of a full check whose output differs from the kernel's only outside the sample.
  CpuRun full = run_of(plan, data, layout);
  CheckOptions full_mode;
  full_mode.mode = CheckMode::full;
  CHECK(check_against_reference(plan.op, layout, data, full, ms, full_mode)["mode"] == "full");
  CHECK(full.error.max_rel >= clean.error.max_rel);

  // Spoil one sampled row: the sample sees it.
  CpuRun bad = run_of(plan, data, layout);
  bad.out.row(0, 1, rows[100])[3] += 10.0f;
  CHECK(check_against_reference(plan.op, layout, data, bad, ms, sample)["passed"] == false);
  CHECK_FALSE(bad.passed);
  // Spoil a row outside the sample: the sample does not see it (that is what sampling gives up),
  // the full check does.
  int64_t unsampled = 1;
  while (std::binary_search(rows.begin(), rows.end(), unsampled)) ++unsampled;
  CpuRun hidden = run_of(plan, data, layout);
  hidden.out.row(0, 0, unsampled)[0] += 10.0f;
  CHECK(check_against_reference(plan.op, layout, data, hidden, ms, sample)["passed"] == true);
  CHECK(check_against_reference(plan.op, layout, data, hidden, ms, full_mode)["passed"] == false);

  CheckOptions none;
  none.mode = CheckMode::none;
  CpuRun unchecked = run_of(plan, data, layout);
  nlohmann::json n = check_against_reference(plan.op, layout, data, unchecked, ms, none);
  CHECK(n["mode"] == "none");
  CHECK(n["passed"].is_null());
  CHECK(n["rows_checked"] == 0);
  CHECK(unchecked.passed);
}

TEST_CASE("work estimate: exact pairs for dense and sliding_window, the check it implies, refusal material") {
  const Backend& cpu = *find_backend("cpu");
  BackendRunOptions o;
  o.threads = 1;
  const Plan dense = plan_of(R"({"spec":"dense","seq_len":4096,"heads":2,"head_dim":64})");
  WorkEstimate w = cpu.estimate(dense, o);
  CHECK(w.pairs == doctest::Approx(2.0 * 4096 * 4096));
  CHECK(w.macs == doctest::Approx(w.pairs * 2 * 64));
  CHECK(w.check == CheckMode::sample);  // 2^25 pairs > 2^23
  CHECK(w.check_pairs == doctest::Approx(w.pairs * 256 / 4096));
  CHECK(w.kernel_seconds > 0);
  CHECK(w.seconds() == doctest::Approx(w.kernel_seconds + w.check_seconds));
  o.check.mode = CheckMode::full;
  const WorkEstimate wf = cpu.estimate(dense, o);
  CHECK(wf.check_seconds == doctest::Approx(w.check_seconds * 4096 / 256));
  o.check.mode = CheckMode::none;
  CHECK(cpu.estimate(dense, o).check_seconds == 0);
  // Twice the threads, half the kernel time (cpu runs threaded).
  o.threads = 2;
  CHECK(cpu.estimate(dense, o).kernel_seconds == doctest::Approx(w.kernel_seconds / 2));
  // Causal dense: exactly the layout's allowed pairs (kv_len > seq_len too); the other specs: an
  // upper bound of the layout's.
  for (const char* op : {R"({"spec":"dense","seq_len":100,"kv_len":130,"heads":3,"head_dim":8,"causal":true})",
                         R"({"spec":"dense","seq_len":130,"kv_len":100,"heads":1,"batch":2,"head_dim":8,"causal":true})",
                         R"({"spec":"sliding_window","seq_len":100,"heads":2,"head_dim":8,"window_size":4,"causal":true})",
                         R"({"spec":"bsr","seq_len":300,"heads":2,"head_dim":8,"block_size":32,"keep_ratio":0.25})"}) {
    const Plan p = plan_of(op);
    const QKV d = read_qkv(p.op, std::nullopt);
    const Layout l = build_layout(p.op, p.spec, p.params, &d.q, &d.k);
    double exact = 0;
    for (int64_t b = 0; b < p.op.shape.batch; ++b)
      for (int64_t kvh = 0; kvh < p.op.shape.kv_heads; ++kvh) exact += double(l.allowed_pairs(b, kvh));
    exact *= double(p.op.shape.group_size());
    CAPTURE(op);
    if (p.spec == Spec::dense)
      CHECK(cpu.estimate(p, o).pairs == doctest::Approx(exact));
    else
      CHECK(cpu.estimate(p, o).pairs >= exact);
  }
  // imc has no output to check.
  CHECK(find_backend("imc")->estimate(dense, o).check == CheckMode::none);
}

TEST_CASE("a long full check with progress: reported slice by slice, the same error as one pass") {
  // Dense 4096: 2^24 reference pairs, above 2^23, so with a progress callback the full check runs
  // in slices; without one, in one pass.
  const Plan plan = plan_of(R"({"spec":"dense","seq_len":4096,"heads":1,"head_dim":8})");
  const QKV data = read_qkv(plan.op, std::nullopt);
  const Layout layout = build_layout(plan.op, plan.spec, plan.params, &data.q, &data.k);
  CheckOptions full;
  full.mode = CheckMode::full;
  double ms = 0;
  CpuRun once = run_of(plan, data, layout);
  once.out.row(0, 0, 1234)[5] += 0.5f;  // an error somewhere in the middle, for both to find
  CpuRun sliced = once;
  check_against_reference(plan.op, layout, data, once, ms, full);
  std::vector<double> done;
  double total = 0;
  const nlohmann::json c = check_against_reference(plan.op, layout, data, sliced, ms, full, [&](const ProgressReport& p) {
    CHECK(p.stage == "check");
    done.push_back(p.done);
    total = p.total;
  });
  CHECK(c["mode"] == "full");
  CHECK(c["rows_checked"] == 4096);
  CHECK(sliced.error.max_abs == once.error.max_abs);
  CHECK(sliced.error.max_rel == once.error.max_rel);
  CHECK(sliced.passed == once.passed);
  CHECK(total == 4096);
  CHECK(done.size() > 10);  // reported as it went, not only at the start and the end
  CHECK(std::is_sorted(done.begin(), done.end()));
  CHECK(done.back() == 4096);
}
