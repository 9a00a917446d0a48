// --layout bhsd|bshd: the axis order of a --data directory's arrays (issue 21, "bring your own data").
#pragma once
#include <map>
#include <string>

#include <CLI/CLI.hpp>

#include "formats/data.hpp"
#include "sattn/formats.hpp"
#include "sattn/select.hpp"

namespace sattn {

// Adds --layout, which needs --data (`data`, when given).
inline CLI::Option* add_layout_option(CLI::App& app, DataLayout& layout, CLI::Option* data = nullptr) {
  static const std::map<std::string, DataLayout> names{{"bhsd", DataLayout::bhsd}, {"bshd", DataLayout::bshd}};
  auto* opt = app.add_option("--layout", layout,
                             "Axis order of the --data arrays: bhsd ([batch, heads, seq, head_dim]) or bshd ([batch, "
                             "seq, heads, head_dim], as a Hugging Face model's projections before the transpose; "
                             "transposed on read)")
                  ->transform(CLI::CheckedTransformer(names))
                  ->option_text("bhsd|bshd")
                  ->default_str("bhsd");
  if (data) opt->needs(data);
  return opt;
}

// With --data, bare ops that leave shape attributes out take them from the arrays.
inline void complete_ops_from_data(SelectOptions& selection, const DataSource& src) {
  if (!src.dir) return;
  selection.complete_op = [src](Op& op) { infer_shape_from_data(op, src); };
}
inline void complete_ops_from_data(SelectOptions& selection, const std::string& dir, DataLayout layout) {
  if (dir.empty()) return;
  DataSource src;
  src.dir = dir;
  src.layout = layout;
  complete_ops_from_data(selection, src);
}

}  // namespace sattn
