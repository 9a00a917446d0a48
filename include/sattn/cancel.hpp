// Cancelling a library call (ARCHITECTURE.md, R4: the library installs no signal handler and
// keeps no global cancellation flag). The caller owns a CancelToken and hands it to a call: in
// BackendRunOptions::cancel, to build_layout(), or to any other call through a CancelScope.
// Long loops (kernels, the reference, layout builders, emission, calibration, the IMC mapping,
// waiting for a helper process) check it and throw sattn::Interrupted; the call unwinds (its
// temporary files removed) and nothing partial is returned. One token per call, so two calls on
// two threads are cancelled independently.
#pragma once
#include <atomic>
#include <exception>

namespace sattn {

class CancelToken {
 public:
  // Async-signal-safe (a lock-free atomic): a signal handler may call it. Returns whether
  // cancellation had already been requested.
  bool request() noexcept { return flag_.exchange(true); }
  bool requested() const noexcept { return flag_.load(std::memory_order_relaxed); }
  void reset() noexcept { flag_.store(false); }

 private:
  std::atomic<bool> flag_{false};
  static_assert(std::atomic<bool>::is_always_lock_free, "set from signal handlers");
};

// What a cancelled call throws.
class Interrupted : public std::exception {
 public:
  const char* what() const noexcept override { return "interrupted"; }
};

// Makes `token` the cancellation of every library call this thread makes while the scope lives.
// Scopes nest: a call is cancelled when its token or an enclosing scope's is (the tools' Ctrl-C
// token encloses every call they make). A null token adds nothing. Library entry points that take
// a token install it this way; the library's worker threads adopt the scope of the thread that
// started them (CancelScope(CancelScope::current())).
class CancelScope {
 public:
  explicit CancelScope(const CancelToken* token) noexcept;
  // Adopts another thread's scope chain (for worker threads).
  struct Adopt {};
  CancelScope(Adopt, const CancelScope* chain) noexcept;
  ~CancelScope();
  CancelScope(const CancelScope&) = delete;
  CancelScope& operator=(const CancelScope&) = delete;
  // The innermost scope of the calling thread (nullptr when none).
  static const CancelScope* current() noexcept;
  // Whether this scope's token or an enclosing one's was requested.
  bool cancelled() const noexcept;

 private:
  const CancelToken* token_;
  const CancelScope* outer_;
  const CancelScope* saved_;  // the thread's scope before this one (restored by the destructor)
};

// Whether the calling thread's current call was cancelled; throws Interrupted if it was.
bool cancel_requested() noexcept;
void throw_if_cancelled();

}  // namespace sattn
