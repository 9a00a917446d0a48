// Per-call cancellation (sattn/cancel.hpp): each thread has a chain of scopes, innermost first;
// the checks in long loops walk it (one or two links in practice).
#include "sattn/cancel.hpp"

namespace sattn {

namespace {
thread_local const CancelScope* t_scope = nullptr;
}  // namespace

CancelScope::CancelScope(const CancelToken* token) noexcept : token_(token), outer_(t_scope), saved_(t_scope) {
  t_scope = this;
}

CancelScope::CancelScope(Adopt, const CancelScope* chain) noexcept : token_(nullptr), outer_(chain), saved_(t_scope) {
  t_scope = this;
}

CancelScope::~CancelScope() { t_scope = saved_; }

const CancelScope* CancelScope::current() noexcept { return t_scope; }

bool CancelScope::cancelled() const noexcept {
  for (const CancelScope* s = this; s; s = s->outer_)
    if (s->token_ && s->token_->requested()) return true;
  return false;
}

bool cancel_requested() noexcept { return t_scope && t_scope->cancelled(); }

void throw_if_cancelled() {
  if (cancel_requested()) throw Interrupted();
}

}  // namespace sattn
