// Shared by the fuzz targets: what counts as a finding. A reader may reject its input only with
// sattn::Error: invalid_input (exit 3) naming the file, or runtime (exit 1) for I/O. Any other
// exception escapes LLVMFuzzerTestOneInput and is reported by libFuzzer (or the replay driver)
// as a crash; ASan/UBSan report memory errors, leaks and undefined behaviour.
#pragma once
#include <cstdio>
#include <cstdlib>
#include <string>

#include "sattn/error.hpp"

namespace sattn_fuzz {

inline void check_error(const sattn::Error& e, const std::string& file) {
  if (e.code() == sattn::ExitCode::runtime) return;  // I/O (e.g. a file the input names)
  if (e.code() != sattn::ExitCode::invalid_input) {
    std::fprintf(stderr, "fuzz: reader error with exit code %d (want 3): %s\n", static_cast<int>(e.code()),
                 e.what());
    std::abort();
  }
  if (e.loc().file.empty() && std::string(e.what()).find(file) == std::string::npos) {
    std::fprintf(stderr, "fuzz: invalid-input error does not name the file: %s\n", e.what());
    std::abort();
  }
}

}  // namespace sattn_fuzz

// Runs `body`, accepting only sattn::Error as a rejection.
#define SATTN_FUZZ_GUARD(file, body)      \
  try {                                   \
    body;                                 \
  } catch (const sattn::Error& e) {       \
    sattn_fuzz::check_error(e, file);     \
  }
