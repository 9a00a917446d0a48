// IMC parameter sweeps: "axis=values;axis=values" -> the cartesian product, and CSV rows.
#include <algorithm>
#include <iomanip>
#include <sstream>

#include "support/text_table.hpp"
#include "sattn/error.hpp"
#include "backends/imc/imc.hpp"

namespace sattn {

namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) parts.push_back(cur);
  if (!s.empty() && s.back() == sep) parts.push_back("");
  return parts;
}

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t"), b = s.find_last_not_of(" \t");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

[[noreturn]] void sweep_error(const std::string& m) {
  throw Error(ExitCode::usage, "--sweep: " + m + " (syntax: \"subarray=64x64,128x128;adc_bits=3..8;cell_bits=1,2\")");
}

int64_t parse_int(const std::string& s, const std::string& axis) {
  size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (s.empty() || used != s.size()) sweep_error(axis + ": '" + s + "' is not an integer");
  return v;
}

// "3..8" -> 3,4,5,6,7,8; "4" -> 4.
std::vector<int64_t> parse_int_item(const std::string& item, const std::string& axis) {
  const size_t dots = item.find("..");
  if (dots == std::string::npos) return {parse_int(item, axis)};
  const int64_t a = parse_int(item.substr(0, dots), axis), b = parse_int(item.substr(dots + 2), axis);
  if (b < a) sweep_error(axis + ": empty range '" + item + "'");
  if (b - a > 4096) sweep_error(axis + ": range '" + item + "' has more than 4096 values");
  std::vector<int64_t> v;
  for (int64_t x = a; x <= b; ++x) v.push_back(x);
  return v;
}

struct Axis {
  std::string name;
  std::vector<std::vector<int64_t>> values;  // subarray: {rows, cols}; others: {v}
};

void set_axis(ImcParams& p, const std::string& name, const std::vector<int64_t>& v) {
  if (name == "subarray") {
    p.rows = v[0];
    p.cols = v[1];
  } else if (name == "adc_bits") {
    p.adc_bits = int(v[0]);
  } else if (name == "cell_bits") {
    p.cell_bits = int(v[0]);
  } else if (name == "cols_per_adc") {
    p.cols_per_adc = v[0];
  } else if (name == "parallel_rows") {
    p.parallel_rows = v[0];
  } else if (name == "tech") {
    p.tech_nm = int(v[0]);
  }
}

std::string num(double v) { return format_sig(v, 6); }

}  // namespace

std::vector<ImcParams> parse_sweep(const std::string& spec, const ImcParams& base) {
  static const std::vector<std::string> kAxes{"subarray", "adc_bits", "cell_bits", "cols_per_adc", "parallel_rows", "tech"};
  std::vector<Axis> axes;
  for (const std::string& raw : split(spec, ';')) {
    const std::string part = trim(raw);
    if (part.empty()) sweep_error("empty axis");
    const size_t eq = part.find('=');
    if (eq == std::string::npos) sweep_error("'" + part + "' is not AXIS=VALUES");
    Axis axis{trim(part.substr(0, eq)), {}};
    if (std::find(kAxes.begin(), kAxes.end(), axis.name) == kAxes.end())
      sweep_error("unknown axis '" + axis.name + "' (subarray, adc_bits, cell_bits, cols_per_adc, parallel_rows, tech)");
    for (const auto& a : axes)
      if (a.name == axis.name) sweep_error("axis '" + axis.name + "' given twice");
    for (const std::string& item_raw : split(part.substr(eq + 1), ',')) {
      const std::string item = trim(item_raw);
      if (item.empty()) sweep_error(axis.name + ": empty value");
      if (axis.name == "subarray") {
        const size_t x = item.find_first_of("xX");
        if (x == std::string::npos) sweep_error("subarray: '" + item + "' is not ROWSxCOLS");
        for (int64_t r : parse_int_item(item.substr(0, x), axis.name))
          for (int64_t c : parse_int_item(item.substr(x + 1), axis.name)) axis.values.push_back({r, c});
      } else {
        for (int64_t v : parse_int_item(item, axis.name)) axis.values.push_back({v});
      }
    }
    if (axis.values.empty()) sweep_error(axis.name + ": no values");
    axes.push_back(std::move(axis));
  }
  size_t points = 1;
  for (const Axis& a : axes) {
    points *= a.values.size();
    if (points > 100000) sweep_error("more than 100000 points");
  }
  std::vector<ImcParams> out;
  for (size_t n = 0; n < points; ++n) {
    ImcParams p = base;
    size_t rest = n;
    for (size_t ai = axes.size(); ai-- > 0;) {  // the last axis varies fastest
      const Axis& a = axes[ai];
      set_axis(p, a.name, a.values[rest % a.values.size()]);
      rest /= a.values.size();
    }
    out.push_back(p);
  }
  return out;
}

std::string imc_sweep_header() {
  return "op,tech_nm,cell,subarray_rows,subarray_cols,cell_bits,adc_bits,cols_per_adc,parallel_rows,"
         "energy_pj,latency_ns,area_mm2,tops,tops_per_w,tops_per_mm2,"
         "dense_energy_pj,dense_latency_ns,dense_area_mm2,dense_tops_per_w,energy_ratio\n";
}

std::string imc_sweep_row(const std::string& op, const ImcParams& p, const ImcCost& s, const ImcCost* d) {
  std::ostringstream row;
  row << op << ',' << p.tech_nm << ',' << to_string(p.cell) << ',' << p.rows << ',' << p.cols << ',' << p.cell_bits << ','
      << p.adc_bits << ',' << p.cols_per_adc << ',' << p.parallel() << ',' << num(s.energy_pj.total()) << ','
      << num(s.latency_ns.total()) << ',' << num(s.area_mm2.total()) << ',' << num(s.tops()) << ','
      << num(s.tops_per_w()) << ',' << num(s.tops_per_mm2());
  if (d)
    row << ',' << num(d->energy_pj.total()) << ',' << num(d->latency_ns.total()) << ',' << num(d->area_mm2.total())
        << ',' << num(d->tops_per_w()) << ',' << num(d->energy_pj.total() / s.energy_pj.total());
  else
    row << ",,,,,";
  row << '\n';
  return row.str();
}

}  // namespace sattn
