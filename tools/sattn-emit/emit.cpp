// `sattn emit` / sattn-emit: plans (or bare ops, selected in-process) to artifacts on disk
// (DESIGN §2, §4), with the sattn.artifacts/v1 envelope of each op on stdout.
#include <CLI/CLI.hpp>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "cli/data_layout.hpp"
#include "cli/cli.hpp"
#include "cli/output.hpp"
#include "cli/select_flags.hpp"
#include "formats/emit.hpp"
#include "support/io.hpp"
#include "formats/op_io.hpp"
#include "core/resources.hpp"
#include "sattn/select.hpp"
#include "support/text_table.hpp"

namespace sattn {

namespace {

struct EmitCliOptions {
  OutputFlags out;  // -o, --format, -q
  std::vector<std::string> inputs{"-"};
  std::string out_dir;
  std::string out_stem;
  std::string data_dir;
  DataLayout layout = DataLayout::bhsd;  // --layout
  uint64_t seed = kDefaultSeed;
  SelectFlags selection;  // for bare ops, as in sattn-select
  bool force = false;
};

// Subdirectory names for several ops: the op's name, cleaned and made unique with ".2", ".3", ...
// (support/io.hpp unique_file_names) so that the same plans give the same names however they
// arrive (file or pipe).
std::vector<std::string> op_dir_names(const std::vector<Plan>& plans) {
  std::vector<std::string> names;
  for (const Plan& p : plans) names.push_back(p.op.name);
  return unique_file_names(names);
}

int emit_action(const EmitCliOptions& o) {
  if (o.out_dir.empty() == o.out_stem.empty())
    throw Error(ExitCode::usage, "give exactly one of --out-dir DIR and --out-stem DIR/NAME");
  o.out.check();
  SelectOptions selection = o.selection.resolve();
  complete_ops_from_data(selection, o.data_dir, o.layout);

  EmitOptions emit;
  if (!o.out_stem.empty()) {
    const std::filesystem::path stem(o.out_stem);
    emit.out_dir = stem.has_parent_path() ? stem.parent_path().string() : ".";
    emit.stem = stem.filename().string();
    emit.stage.merge = true;  // DIR is the user's: the files are added to it
  } else {
    emit.out_dir = o.out_dir;
  }
  emit.stage.force = o.force;
  if (!o.data_dir.empty()) emit.data.dir = o.data_dir;
  emit.data.layout = o.layout;
  emit.data.seed = o.seed;

  // Every input is read before anything is written: a malformed file leaves no output.
  std::vector<Plan> plans;
  for (const std::string& input : o.inputs)
    for (Plan& p : read_plans(input, selection)) plans.push_back(std::move(p));
  // The memory guard, before any data or layout exists (sliding_window rows are streamed).
  for (const Plan& p : plans)
    guard_memory(p.op, p.spec, p.params,
                 {.data = is_data_dependent(p.spec) || !o.data_dir.empty(), .outputs = false, .layout_streamed = true},
                 tool_memory_limit());
  std::vector<nlohmann::json> envelopes;
  if (plans.size() == 1) {
    envelopes.push_back(emit_artifacts(plans.front(), emit));
  } else {
    // One subdirectory per op, all staged together: either every op's artifacts appear or none.
    StagedDirectory stage(emit.out_dir, emit.stage);
    const std::vector<std::string> names = op_dir_names(plans);
    for (size_t n = 0; n < plans.size(); ++n) {
      EmitOptions one = emit;
      one.stage = {};  // a fresh subdirectory of the staged tree
      one.out_dir = (std::filesystem::path(stage.staging_path()) / names[n]).string();
      envelopes.push_back(emit_artifacts(plans[n], one));
      envelopes.back()["dir"] = (std::filesystem::path(emit.out_dir) / names[n]).string();
    }
    stage.commit("artifacts.json");  // in each op's subdirectory, the envelope moves last
  }

  std::string text;
  if (o.out.json()) {
    for (const auto& env : envelopes) text += env.dump() + "\n";
  } else {
    TextTable table({"op", "spec", "format", "layouts", "nnz", "density", "row_nnz min/mean/max", "dir"});
    for (const auto& env : envelopes) {
      const auto& row = env["stats"]["row_nnz"];
      table.add({env["op"]["name"].get<std::string>(), env["spec"].get<std::string>(),
                 env["layout"]["format"].get<std::string>(), std::to_string(env["layout"]["layouts"].get<int64_t>()),
                 std::to_string(env["nnz"].get<int64_t>()), format_fixed(env["density"].get<double>(), 4),
                 std::to_string(row["min"].get<int64_t>()) + "/" + format_fixed(row["mean"].get<double>(), 1) + "/" +
                     std::to_string(row["max"].get<int64_t>()),
                 env["dir"].get<std::string>()});
    }
    text = table.str();
  }
  write_atomic(o.out.output, text);
  return 0;
}

}  // namespace

std::function<int()> configure_emit(CLI::App& app) {
  auto o = std::make_shared<EmitCliOptions>();
  app.add_option("plans", o->inputs,
                 "Plans (sattn.plan/v1 JSON Lines) or bare ops (MLIR generic form, JSON or YAML); '-' = stdin")
      ->capture_default_str();
  auto* dir = app.add_option("--out-dir", o->out_dir,
                             "Write the artifacts into DIR (one subdirectory per op when there are several)");
  app.add_flag("--force", o->force,
               "Replace --out-dir even when it is a non-empty directory that holds no sattn output (it is always "
               "replaced whole)");
  app.add_option("--out-stem", o->out_stem,
                 "Write into DIR and name indices.txt/indices.desc NAME.txt/NAME.desc (DIR/NAME)")
      ->excludes(dir);
  auto* data = app.add_option("--data", o->data_dir,
                              "Read q.npy, k.npy, v.npy from DIR (float32, shapes checked against the op)");
  add_layout_option(app, o->layout, data);
  app.add_option("--seed", o->seed, "Seed of the synthetic data when --data is not given")
      ->capture_default_str()
      ->excludes(data);
  o->selection.add_to(app, "Selection of bare ops: ", /*with_backend=*/true, /*with_probe=*/false);
  o->out.add_to(app, "Write the envelopes (JSON Lines or table) to FILE, atomically",
                "json (sattn.artifacts/v1 JSON Lines) or text (a table)",
                "");
  add_max_memory_option(app);
  return [o] { return emit_action(*o); };
}

}  // namespace sattn
