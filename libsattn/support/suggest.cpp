#include "support/suggest.hpp"

#include <algorithm>
#include <cctype>

namespace sattn {

namespace {

std::string fold(std::string_view s) {
  std::string out;
  for (char c : s) out += c == '-' ? '_' : char(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Optimal string alignment distance (Damerau-Levenshtein without repeated edits of a substring).
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i)
    for (size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1])});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.size()][b.size()];
}

}  // namespace

std::string closest_name(std::string_view given, const std::vector<std::string>& candidates) {
  const std::string g = fold(given);
  if (g.empty()) return "";
  std::string best;
  // A candidate that extends what was given (a prefix of at least 3 characters).
  if (g.size() >= 3)
    for (const std::string& c : candidates) {
      const std::string f = fold(c);
      if (f.size() > g.size() && f.compare(0, g.size(), g) == 0 && (best.empty() || c.size() < best.size())) best = c;
    }
  if (!best.empty()) return best;
  size_t best_distance = 0;
  for (const std::string& c : candidates) {
    const std::string f = fold(c);
    if (f == g) return c;  // differs only in case or in '-' for '_'
    const size_t d = edit_distance(g, f);
    const size_t limit = std::max<size_t>(1, std::max(g.size(), f.size()) / 3);
    if (d <= limit && (best.empty() || d < best_distance)) {
      best = c;
      best_distance = d;
    }
  }
  return best;
}

std::string did_you_mean(std::string_view given, const std::vector<std::string>& candidates) {
  const std::string c = closest_name(given, candidates);
  return c.empty() ? "" : " (did you mean '" + c + "'?)";
}

}  // namespace sattn
