// "Did you mean": the known name closest to a misspelt one (unknown flags, op attributes).
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace sattn {

// The candidate `given` most likely meant, or "" when none is close: first a candidate that
// extends `given` ("window" -> "window_size"; the shortest when several do), else the one at the
// smallest edit distance (insertions, deletions, substitutions, adjacent swaps), if that distance
// is at most max(1, size/3) of the longer name. Case is ignored and '-' is '_' (a name equal but for
// those is returned).
std::string closest_name(std::string_view given, const std::vector<std::string>& candidates);
// " (did you mean 'X'?)" for closest_name's answer X, or "".
std::string did_you_mean(std::string_view given, const std::vector<std::string>& candidates);

}  // namespace sattn
