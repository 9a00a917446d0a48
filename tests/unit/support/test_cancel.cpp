// Per-call cancellation (sattn/cancel.hpp, ARCHITECTURE R4): a token given to one call cancels
// that call only; calls on other threads, with their own token or none, run to the end and
// their results are the same bits as an uncancelled run.
#include <doctest/doctest.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <thread>

#include "sattn/sattn.hpp"
#include "support/process.hpp"

using namespace sattn;

namespace {

// A dense op whose check against the double reference takes far longer than the few
// milliseconds the tests wait before cancelling (seq 2048: 2 heads x 2048^2 x 64 MACs in double).
BackendInput long_op(const std::string& name) {
  const std::string text = R"({"schema":"sattn.op/v1","name":")" + name +
                           R"(","spec":"dense","seq_len":2048,"heads":2,"head_dim":64})";
  const std::vector<Op> ops = parse_ops(text, name + ".json");
  BackendInput in;
  in.input = name + ".json";
  in.plan = select_spec(ops.at(0), resolve_select_request({}));
  return in;
}

BackendResult run_cpu(const BackendInput& in, const QKV& data, const CancelToken* token) {
  BackendRunOptions o;
  o.cancel = token;
  o.threads = 1;
  return find_backend("cpu")->run(in, data, DataSource{}, o);
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.data.size() == b.data.size() && std::memcmp(a.data.data(), b.data.data(), a.data.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("a cancelled call stops; a concurrent call with its own token does not") {
  const BackendInput in = long_op("cancel");
  const QKV data = read_qkv(in.plan.op, std::nullopt);
  CancelToken a, b;
  std::optional<BackendResult> result_b;
  bool a_interrupted = false;
  std::thread ta([&] {
    try {
      run_cpu(in, data, &a);
    } catch (const Interrupted&) {
      a_interrupted = true;
    }
  });
  std::thread tb([&] { result_b = run_cpu(in, data, &b); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  a.request();  // cancels the call on thread A, mid-run
  ta.join();
  tb.join();
  CHECK(a_interrupted);
  REQUIRE(result_b.has_value());
  CHECK(result_b->passed);
  CHECK_FALSE(b.requested());
  // The surviving call's output is the one an uncancelled run gives.
  const BackendResult alone = run_cpu(in, data, nullptr);
  REQUIRE(alone.out.has_value());
  REQUIRE(result_b->out.has_value());
  CHECK(same_bits(*alone.out, *result_b->out));
}

TEST_CASE("a token requested before the call: the call throws Interrupted and returns nothing") {
  const BackendInput in = long_op("early");
  const QKV data = read_qkv(in.plan.op, std::nullopt);
  CancelToken t;
  CHECK_FALSE(t.request());  // the first request
  CHECK(t.request());        // reports that one was already made
  CHECK_THROWS_AS(run_cpu(in, data, &t), Interrupted);
  t.reset();
  CHECK_FALSE(t.requested());
}

TEST_CASE("scopes nest: an enclosing scope's token cancels calls inside it, on worker threads too") {
  CancelToken outer, inner;
  CHECK_FALSE(cancel_requested());
  {
    CancelScope so(&outer);
    CancelScope si(&inner);
    CHECK_FALSE(cancel_requested());
    outer.request();
    CHECK(cancel_requested());
    CHECK_THROWS_AS(throw_if_cancelled(), Interrupted);
    // A worker that adopts the starting thread's chain sees it; one that does not, does not.
    const CancelScope* chain = CancelScope::current();
    bool adopted = false, plain = true;
    std::thread w1([&] {
      CancelScope adopt(CancelScope::Adopt{}, chain);
      adopted = cancel_requested();
    });
    std::thread w2([&] { plain = cancel_requested(); });
    w1.join();
    w2.join();
    CHECK(adopted);
    CHECK_FALSE(plain);
  }
  CHECK_FALSE(cancel_requested());  // the scopes ended with the block
}

TEST_CASE("run_process under a token requested from another thread: the child is killed, Interrupted") {
  CancelToken t;
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    t.request();
  });
  bool interrupted_call = false;
  {
    CancelScope scope(&t);
    try {
      run_process({"sleep", "30"});
    } catch (const Interrupted&) {
      interrupted_call = true;
    }
  }
  canceller.join();
  CHECK(interrupted_call);
}
