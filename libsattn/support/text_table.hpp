// Plain-text tables with aligned columns (for --format text and benchmarks).
#pragma once
#include <string>
#include <vector>

namespace sattn {

class TextTable {
 public:
  explicit TextTable(std::vector<std::string> header) : header_(std::move(header)) {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  // Columns padded to their widest cell; a dashed rule under the header.
  std::string str() const;
  // The same as a GitHub-flavoured markdown table.
  std::string markdown() const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// Cell formats shared by the tools' tables: fixed-point with `digits` decimals ("12.35") and
// one-decimal scientific ("1.2e-03").
std::string format_fixed(double v, int digits);
std::string format_sci(double v);
// `digits` significant digits, the shortest form ("0.25", "1.71e+07"): std::setprecision.
std::string format_sig(double v, int digits);
// Scientific with `digits` decimals ("1.23e-03").
std::string format_sci(double v, int digits);

}  // namespace sattn
