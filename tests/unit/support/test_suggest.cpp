// closest_name / did_you_mean: the suggestions of unknown flags and op attributes.
#include <doctest/doctest.h>

#include "support/suggest.hpp"

using namespace sattn;

namespace {
const std::vector<std::string> kAttrs = {"window_size", "window_blocks", "keep_ratio", "block_size", "seq_len",
                                         "kv_len", "heads", "kv_heads", "head_dim", "topk_k"};
}

TEST_CASE("suggest: a name the candidate extends wins, the shortest of several") {
  CHECK(closest_name("window", kAttrs) == "window_size");
  CHECK(closest_name("keep", kAttrs) == "keep_ratio");
  CHECK(closest_name("topk", kAttrs) == "topk_k");
  CHECK(closest_name("kv", kAttrs).empty());  // two characters: too short to count as a prefix
}

TEST_CASE("suggest: misspellings within a third of the length") {
  CHECK(closest_name("keep_ratoi", kAttrs) == "keep_ratio");  // an adjacent swap is one edit
  CHECK(closest_name("seqlen", kAttrs) == "seq_len");
  CHECK(closest_name("head-dim", kAttrs) == "head_dim");      // '-' and '_' are the same
  CHECK(closest_name("HEADS", kAttrs) == "heads");            // case is ignored
  CHECK(closest_name("blok_size", kAttrs) == "block_size");
}

TEST_CASE("suggest: nothing when nothing is close") {
  CHECK(closest_name("zzz", kAttrs).empty());
  CHECK(closest_name("", kAttrs).empty());
  CHECK(closest_name("causal", kAttrs).empty());
  CHECK(did_you_mean("zzz", kAttrs).empty());
  CHECK(did_you_mean("window", kAttrs) == " (did you mean 'window_size'?)");
}
