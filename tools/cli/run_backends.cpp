// `sattn run --backend rvv|sim|imc|all`: the whole pipeline in one command. Each backend runs
// in-process through the same tool table as its own tool (sattn run-rvv, sattn sim, sattn imc;
// cpu is `sattn run` itself), with the same inputs, selection flags, profile and data; their
// results are gathered into one JSON Lines stream and a summary table.
#include "cli/run_backends.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "cli/cli.hpp"
#include "sattn/error.hpp"
#include "support/io.hpp"
#include "core/resources.hpp"
#include "support/process.hpp"
#include "support/text_table.hpp"

#include <nlohmann/json.hpp>

namespace fs = std::filesystem;

namespace sattn {

namespace {

struct BackendTool {
  const char* backend;
  const char* tool;  // tool-table name
  std::vector<std::string> extra;  // arguments that select the backend
};

const std::vector<BackendTool>& backend_tools() {
  static const std::vector<BackendTool> tools = {
      {"cpu", "run", {"--backend", "cpu"}},
      {"rvv", "run-rvv", {}},
      {"sim", "sim", {}},
      {"imc", "imc", {}},
  };
  return tools;
}

std::string num(double v, int digits = 3) {
  std::ostringstream s;
  s << std::setprecision(digits) << v;
  return s.str();
}

const nlohmann::json* at(const nlohmann::json& j, std::initializer_list<const char*> path) {
  const nlohmann::json* p = &j;
  for (const char* key : path) {
    if (!p->is_object() || !p->contains(key)) return nullptr;
    p = &(*p)[key];
  }
  return p;
}

double number(const nlohmann::json& j, std::initializer_list<const char*> path) {
  const nlohmann::json* p = at(j, path);
  return p && p->is_number() ? p->get<double>() : 0.0;
}

// The backend's headline figure: what it measures (time, instructions, cycles, energy).
std::string figure(const std::string& backend, const nlohmann::json& r) {
  if (backend == "cpu") return num(number(r, {"timing", "kernel_ms"})) + " ms";
  if (backend == "rvv")
    return num(number(r, {"rvv", "instructions", "total"})) + " instr, " + num(number(r, {"rvv", "modelled_cycles"})) +
           " cycles";
  if (backend == "sim")
    return num(number(r, {"sim", "cycles"})) + " cycles, " + num(number(r, {"sim", "energy_pj", "total"}) / 1e3) + " nJ";
  if (backend == "imc")
    return num(number(r, {"sparse", "energy_pj", "total"}) / 1e3) + " nJ, " + num(number(r, {"ratio", "energy"})) +
           "x less than dense";
  return "-";
}

std::string density(const nlohmann::json& r) {
  if (const nlohmann::json* d = at(r, {"layout", "density"}); d && d->is_number()) return num(d->get<double>(), 4);
  if (const nlohmann::json* d = at(r, {"mapping", "density"}); d && d->is_number()) return num(d->get<double>(), 4);
  return "-";
}

// Exit codes ranked by severity for a run over several backends: the most telling one wins.
int worse(int a, int b) {
  auto rank = [](int c) {
    switch (c) {
      case 0: return 0;
      case 5: return 1;  // a check failed: the run itself worked
      case 3: return 3;
      case 4: return 4;
      case 2: return 5;
      default: return 2;
    }
  };
  return rank(b) > rank(a) ? b : a;
}

}  // namespace

std::vector<std::string> backend_names() {
  std::vector<std::string> names;
  for (const BackendTool& t : backend_tools()) names.push_back(t.backend);
  return names;
}

void write_run_output(const std::string& output, const std::string& format, const std::string& json_lines,
                      const std::string& table) {
  if (output != "-" && format == "text") {  // the table for the reader, the results for the record
    write_atomic(output, json_lines);
    write_atomic("-", table);
    return;
  }
  write_atomic(output, format == "json" ? json_lines : table);
}

int run_backends(const std::vector<std::string>& backends, const MultiRunOptions& o) {
  TempDir tmp("sattn-run");
  // Standard input can be read once: keep it in a file every backend reads.
  std::vector<std::string> inputs = o.inputs;
  for (std::string& in : inputs)
    if (in == "-") {
      const std::string path = (fs::path(tmp.path()) / "stdin").string();
      write_atomic(path, read_text("-"));
      in = path;
    }

  std::string json_lines;
  TextTable table({"op", "backend", "spec", "prec", "density", "max_rel_err", "result", "check"});
  int code = 0;
  for (const std::string& backend : backends) {
    throw_if_interrupted();
    const auto it = std::find_if(backend_tools().begin(), backend_tools().end(),
                                 [&](const BackendTool& t) { return backend == t.backend; });
    if (it == backend_tools().end()) throw Error(ExitCode::usage, "unknown backend '" + backend + "'");
    const std::string out = (fs::path(tmp.path()) / (backend + ".jsonl")).string();
    std::vector<std::string> args{std::string("sattn ") + it->tool};
    args.insert(args.end(), inputs.begin(), inputs.end());
    args.insert(args.end(), it->extra.begin(), it->extra.end());
    args.insert(args.end(), o.forwarded.begin(), o.forwarded.end());
    if (backend == "cpu") args.insert(args.end(), o.cpu_only.begin(), o.cpu_only.end());
    args.insert(args.end(), {"--format", "json", "-o", out});
    if (o.quiet) args.push_back("-q");
    if (!o.quiet && stderr_is_tty()) std::cerr << "sattn run: " << backend << "...\n";
    std::vector<const char*> argv;
    for (const std::string& a : args) argv.push_back(a.c_str());
    const int c = run_tool(*find_tool(it->tool), "sattn run --backend " + backend, int(argv.size()), argv.data());
    // Invalid input or usage is the same for every backend: say it once and write nothing.
    // So is an op refused by the memory guard (--max-memory): stop before the next backend tries.
    if (c == int(ExitCode::invalid_input) || c == int(ExitCode::usage) || memory_refused()) return c;
    code = worse(code, c);
    if (!fs::exists(out)) {
      table.add({"-", backend, "-", "-", "-", "-", "no result (exit " + std::to_string(c) + ")", "FAIL"});
      continue;
    }
    std::istringstream lines(read_text(out));
    for (std::string line; std::getline(lines, line);) {
      if (line.empty()) continue;
      const nlohmann::json r = nlohmann::json::parse(line);
      json_lines += line + "\n";
      const nlohmann::json* passed = at(r, {"check", "passed"});
      const nlohmann::json* err = at(r, {"check", "max_rel_error"});
      // Results name their op as {"op": {"name": ...}}; sattn.imc/v1 as {"op": "name"}.
      const nlohmann::json* op = at(r, {"op"});
      const std::string op_name = op && op->is_string() ? op->get<std::string>()
                                  : op && op->is_object()  ? op->value("name", std::string("-"))
                                                           : std::string("-");
      table.add({op_name, backend, r.value("spec", std::string("-")),
                 r.value("precision", std::string("-")), density(r),
                 err && err->is_number() ? format_sci(err->get<double>()) : (err && err->is_string() ? err->get<std::string>() : "-"),
                 figure(backend, r), passed ? (passed->get<bool>() ? "ok" : "FAIL") : "(model)"});
    }
  }
  write_run_output(o.output, o.format, json_lines, table.str());
  return code;
}

}  // namespace sattn
