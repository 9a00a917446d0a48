// sattn-imc: attention ops (or plain GEMMs) on an in-memory-compute crossbar cost model
// (sattn.imc/v1): energy, latency and area breakdowns, sparse against dense.
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <sstream>

#include <CLI/CLI.hpp>

#include "cli/data_layout.hpp"
#include "cli/select_flags.hpp"
#include "cli/cli.hpp"
#include "cli/output.hpp"
#include "backends/imc/imc.hpp"
#include "support/io.hpp"
#include "formats/op_io.hpp"
#include "backends/cpu/run.hpp"
#include "select/inputs.hpp"
#include "support/text_table.hpp"

namespace sattn {

namespace {

constexpr const char* kTool = "sattn-imc";

struct ImcOptions {
  OutputFlags out;  // -o, --format, -q
  std::vector<std::string> inputs;
  SelectFlags selection;
  std::string data_dir;
  DataLayout layout = DataLayout::bhsd;  // --layout
  uint64_t seed = kDefaultSeed;
  std::string config;
  int tech = 0;
  std::string cell, subarray, kv_placement;
  int cell_bits = 0, adc_bits = 0, input_bits = -1, weight_bits = -1;
  int64_t cols_per_adc = 0, parallel_rows = -1;
  double clock_mhz = 0;
  std::vector<std::string> gemm;
  std::string sweep;
  std::string prog = kTool;  // "sattn imc" under the umbrella, for diagnostics
  CLI::Option *tech_opt = nullptr, *cell_bits_opt = nullptr, *adc_bits_opt = nullptr, *cols_per_adc_opt = nullptr,
              *parallel_opt = nullptr, *clock_opt = nullptr, *input_bits_opt = nullptr, *weight_bits_opt = nullptr;
};

std::string num(double v) { return format_sig(v, 4); }

[[noreturn]] void range_error(const std::string& flag, const std::string& value, const std::string& range) {
  throw Error(ExitCode::invalid_input, flag + " " + value + " is out of range " + range);
}

// Defaults, then the profile's imc: sections, then --config, then the individual flags.
ImcParams resolve_params(const ImcOptions& o) {
  ImcParams p = imc_params(o.selection.request().profile);
  if (!o.config.empty()) load_imc_config(p, o.config);
  if (o.tech_opt->count()) {
    const auto nodes = imc_tech_nodes();
    if (std::find(nodes.begin(), nodes.end(), o.tech) == nodes.end())
      range_error("--tech", std::to_string(o.tech), "(presets: 22, 28, 40, 65)");
    p.tech_nm = o.tech;
  }
  if (!o.cell.empty()) {
    if (o.cell != "sram" && o.cell != "rram") throw Error(ExitCode::usage, "--cell must be sram or rram (got '" + o.cell + "')");
    p.cell = o.cell == "sram" ? ImcCell::sram : ImcCell::rram;
  }
  if (!o.subarray.empty()) {
    const size_t x = o.subarray.find_first_of("xX");
    int64_t r = 0, c = 0;
    try {
      size_t u1 = 0, u2 = 0;
      if (x == std::string::npos) throw std::invalid_argument("no x");
      r = std::stoll(o.subarray.substr(0, x), &u1);
      c = std::stoll(o.subarray.substr(x + 1), &u2);
      if (u1 != x || u2 != o.subarray.size() - x - 1) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
      throw Error(ExitCode::usage, "--subarray must be ROWSxCOLS, e.g. 128x128 (got '" + o.subarray + "')");
    }
    if (r < 8 || r > 4096 || c < 8 || c > 4096) range_error("--subarray", o.subarray, "[8, 4096] in each dimension");
    p.rows = r;
    p.cols = c;
  }
  if (o.cell_bits_opt->count()) {
    if (o.cell_bits < 1 || o.cell_bits > 4) range_error("--cell-bits", std::to_string(o.cell_bits), "[1, 4]");
    p.cell_bits = o.cell_bits;
  }
  if (o.adc_bits_opt->count()) {
    if (o.adc_bits < 1 || o.adc_bits > 12) range_error("--adc-bits", std::to_string(o.adc_bits), "[1, 12]");
    p.adc_bits = o.adc_bits;
  }
  if (o.cols_per_adc_opt->count()) {
    if (o.cols_per_adc < 1 || o.cols_per_adc > p.cols)
      range_error("--cols-per-adc", std::to_string(o.cols_per_adc), "[1, " + std::to_string(p.cols) + "] (the sub-array's columns)");
    p.cols_per_adc = o.cols_per_adc;
  }
  if (o.parallel_opt->count()) {
    if (o.parallel_rows < 0 || o.parallel_rows > p.rows)
      range_error("--parallel-rows", std::to_string(o.parallel_rows), "[0 (all), " + std::to_string(p.rows) + "] (the sub-array's rows)");
    p.parallel_rows = o.parallel_rows;
  }
  if (o.clock_opt->count()) {
    if (!(o.clock_mhz >= 1 && o.clock_mhz <= 10000)) range_error("--clock-mhz", num(o.clock_mhz), "[1, 10000]");
    p.clock_mhz = o.clock_mhz;
  }
  if (!o.kv_placement.empty()) {
    if (o.kv_placement != "write" && o.kv_placement != "sram")
      throw Error(ExitCode::usage, "--kv-placement must be write or sram (got '" + o.kv_placement + "')");
    p.kv_placement = o.kv_placement == "sram" ? KvPlacement::sram : KvPlacement::write;
  }
  if (o.input_bits_opt->count()) {
    if (o.input_bits < 0 || o.input_bits > 16) range_error("--input-bits", std::to_string(o.input_bits), "[0 (from the op), 16]");
    p.input_bits = o.input_bits;
  }
  if (o.weight_bits_opt->count()) {
    if (o.weight_bits < 0 || o.weight_bits > 16) range_error("--weight-bits", std::to_string(o.weight_bits), "[0 (from the op), 16]");
    p.weight_bits = o.weight_bits;
  }
  return p;
}

struct GemmShape {
  int64_t m, k, n;
};

GemmShape parse_gemm(const std::string& s) {
  GemmShape g{};
  std::istringstream in(s);
  std::string part;
  std::vector<int64_t> v;
  while (std::getline(in, part, ',')) {
    size_t used = 0;
    long long x = 0;
    try {
      x = std::stoll(part, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (part.empty() || used != part.size()) throw Error(ExitCode::usage, "--gemm must be M,K,N (got '" + s + "')");
    v.push_back(x);
  }
  if (v.size() != 3) throw Error(ExitCode::usage, "--gemm must be M,K,N (got '" + s + "')");
  if (v[0] < 1 || v[1] < 1 || v[2] < 1 || v[0] > (int64_t(1) << 40) || v[1] > (int64_t(1) << 24) || v[2] > (int64_t(1) << 24))
    range_error("--gemm", s, "(M in [1, 2^40], K and N in [1, 2^24])");
  g.m = v[0];
  g.k = v[1];
  g.n = v[2];
  return g;
}

std::vector<ImcPrepared> prepare_ops(const ImcOptions& o) {
  SelectOptions selection = o.selection.resolve();
  complete_ops_from_data(selection, o.data_dir, o.layout);
  std::vector<BackendInput> items;
  for (const std::string& in : o.inputs)
    for (BackendInput& item : read_backend_inputs(in, selection)) items.push_back(std::move(item));
  require_supported(imc_backend(), items);  // exit 2: softcap
  // The memory guard, before any layout exists.
  for (const BackendInput& item : items) check_memory(item.plan.op, item.plan.spec, imc_memory(item), tool_memory_limit());
  DataSource src;
  if (!o.data_dir.empty()) src.dir = o.data_dir;
  src.layout = o.layout;
  src.seed = o.seed;
  std::vector<ImcPrepared> ops;
  for (BackendInput& item : items) {
    std::optional<QKV> data;
    if (src.dir && item.layout && item.data) {
      // Artifacts with --data: their layout is used as it is (docs/decisions.md), with a warning
      // when it was chosen from other Q/K than the ones given.
      const QKV given = load_qkv(item.plan.op, src);
      if (const std::string w = artifacts_data_mismatch(item, given, *src.dir); !w.empty() && !o.out.quiet)
        print_diagnostic(o.prog, "warning", w);
    } else if (is_data_dependent(item.plan.spec) && !item.layout) {
      data = item.data && !src.dir ? *item.data : load_qkv(item.plan.op, src);
    }
    ops.push_back(prepare_imc(item, data ? &*data : nullptr));
  }
  return ops;
}

nlohmann::json gemm_json(const ImcGemmReport& g, const ImcParams& p) {
  nlohmann::json j = envelope("imc", kTool);
  j["mode"] = "gemm";
  j["gemm"] = {{"m", g.m}, {"k", g.k}, {"n", g.n}};
  j["params"] = to_json(p);
  j["mapping"] = {{"input_bits", g.input_bits},
                  {"weight_bits", g.weight_bits},
                  {"cells_per_weight", (g.weight_bits + p.cell_bits - 1) / p.cell_bits}};
  j["notes"] = nlohmann::json::array({"weights are programmed once before inference: no writes are charged"});
  j["dense"] = to_json(g.cost, p, p.cell);
  return j;
}

const char* kComponents[] = {"array", "adc", "accumulation", "buffer", "interconnect", "writes", "total"};

double component(const ImcBreakdown& b, int i) {
  const double v[] = {b.array, b.adc, b.accumulation, b.buffer, b.interconnect, b.writes, b.total()};
  return v[i];
}

std::string breakdown_text(const std::string& title, const ImcCost& s, const ImcCost* d) {
  std::vector<std::string> header{"component", "energy_pj", "latency_ns", "area_mm2"};
  if (d) header = {"component", "energy_pj", "dense_energy_pj", "latency_ns", "dense_latency_ns", "area_mm2", "dense_area_mm2"};
  TextTable t(header);
  for (int i = 0; i < 7; ++i) {
    if (d)
      t.add({kComponents[i], num(component(s.energy_pj, i)), num(component(d->energy_pj, i)), num(component(s.latency_ns, i)),
             num(component(d->latency_ns, i)), num(component(s.area_mm2, i)), num(component(d->area_mm2, i))});
    else
      t.add({kComponents[i], num(component(s.energy_pj, i)), num(component(s.latency_ns, i)), num(component(s.area_mm2, i))});
  }
  TextTable m(d ? std::vector<std::string>{"metric", "sparse", "dense", "dense/sparse"}
                : std::vector<std::string>{"metric", "value"});
  auto row = [&](const std::string& name, double a, double b) {
    if (d)
      m.add({name, num(a), num(b), a > 0 ? num(b / a) : "-"});
    else
      m.add({name, num(a)});
  };
  row("ops", s.ops, d ? d->ops : 0);
  row("arrays", double(s.counts.arrays_allocated), d ? double(d->counts.arrays_allocated) : 0);
  row("adc_conversions", s.counts.adc_conversions, d ? d->counts.adc_conversions : 0);
  row("TOPS", s.tops(), d ? d->tops() : 0);
  row("TOPS/W", s.tops_per_w(), d ? d->tops_per_w() : 0);
  row("TOPS/mm2", s.tops_per_mm2(), d ? d->tops_per_mm2() : 0);
  return title + "\n" + t.str() + "\n" + m.str() + "\n";
}

std::string params_line(const ImcParams& p) {
  std::ostringstream s;
  s << "tech " << p.tech_nm << " nm, " << to_string(p.cell) << ", sub-array " << p.rows << "x" << p.cols << ", cell_bits "
    << p.cell_bits << ", adc_bits " << p.adc_bits << ", cols_per_adc " << p.cols_per_adc << ", parallel_rows "
    << p.parallel() << ", clock " << p.clock() << " MHz, kv_placement " << to_string(p.kv_placement);
  return s.str();
}

int imc_action(ImcOptions& o) {
  o.out.check();
  const ImcParams base = resolve_params(o);
  std::vector<GemmShape> gemms;
  for (const std::string& g : o.gemm) gemms.push_back(parse_gemm(g));
  if (o.inputs.empty() && gemms.empty()) o.inputs.push_back("-");
  const std::vector<ImcParams> points = o.sweep.empty() ? std::vector<ImcParams>{base} : parse_sweep(o.sweep, base);

  // Read and lay out every op first: a malformed file fails before any work or output.
  const std::vector<ImcPrepared> ops = prepare_ops(o);
  ProgressLine progress(o.out.progress() && points.size() * (ops.size() + gemms.size()) > 1);
  std::string out = o.sweep.empty() ? "" : imc_sweep_header();
  size_t done = 0;
  const size_t todo = points.size() * (ops.size() + gemms.size());
  for (const ImcParams& p : points) {
    for (const ImcPrepared& po : ops) {
      progress.show("[" + std::to_string(++done) + "/" + std::to_string(todo) + "] " + po.op.name);
      const ImcOpReport r = imc_attention(po.op, po.sparse, po.dense, p);
      if (!o.sweep.empty()) {
        out += imc_sweep_row(po.op.name, p, r.sparse, &r.dense);
      } else if (o.out.json()) {
        out += imc_attention_json(po, r, p, kTool).dump() + "\n";
      } else {
        std::string title = po.op.name + ": " + std::string(to_string(po.spec)) + ", " +
                            std::string(to_string(po.op.precision)) + " (" + std::to_string(r.input_bits) + "-bit inputs, " +
                            std::to_string(r.weight_bits) + "-bit weights), density " + num(r.density) + "\n" + params_line(p);
        for (const std::string& n : r.notes) title += "\nnote: " + n;
        out += breakdown_text(title, r.sparse, &r.dense);
      }
    }
    for (const GemmShape& g : gemms) {
      progress.show("[" + std::to_string(++done) + "/" + std::to_string(todo) + "] gemm");
      const ImcGemmReport r = imc_gemm(g.m, g.k, g.n, p);
      const std::string name = "gemm_" + std::to_string(g.m) + "x" + std::to_string(g.k) + "x" + std::to_string(g.n);
      if (!o.sweep.empty())
        out += imc_sweep_row(name, p, r.cost, nullptr);
      else if (o.out.json())
        out += gemm_json(r, p).dump() + "\n";
      else
        out += breakdown_text(name + " (" + std::to_string(r.input_bits) + "-bit inputs, " + std::to_string(r.weight_bits) +
                                  "-bit weights)\n" + params_line(p),
                              r.cost, nullptr);
    }
  }
  progress.clear();
  write_atomic(o.out.output, out);
  return 0;
}

}  // namespace

std::function<int()> configure_imc(CLI::App& app) {
  auto o = std::make_shared<ImcOptions>();
  o->selection.backend = "imc";
  app.add_option("ops", o->inputs,
                 "Ops (MLIR generic form, JSON or YAML), plans (sattn.plan/v1) or artifacts (sattn.artifacts/v1); "
                 "'-' = stdin (the default unless --gemm is given)");
  o->selection.add_to(app, "Selection of bare ops: ", /*with_backend=*/false, /*with_probe=*/false);
  auto* data = app.add_option("--data", o->data_dir, "Q/K for data-dependent specs from DIR/{q,k,v}.npy");
  add_layout_option(app, o->layout, data);
  app.add_option("--seed", o->seed, "Seed of the synthetic data when --data is not given")->capture_default_str()->excludes(data);
  app.add_option("--config", o->config, "IMC parameters from a YAML file (the format of a profile's imc: section)");
  o->tech_opt = app.add_option("--tech", o->tech, "Technology node preset: 22, 28, 40 or 65 (nm; default 22)");
  app.add_option("--cell", o->cell, "Cell type: sram or rram (1T1R; default rram)");
  app.add_option("--subarray", o->subarray, "Sub-array size ROWSxCOLS (default 128x128)");
  o->cell_bits_opt = app.add_option("--cell-bits", o->cell_bits, "Bits per cell, 1-4 (SRAM: 1; default 1)");
  o->adc_bits_opt = app.add_option("--adc-bits", o->adc_bits, "ADC precision in bits, 1-12 (default 4)");
  o->cols_per_adc_opt = app.add_option("--cols-per-adc", o->cols_per_adc, "Columns sharing one ADC (default 8)");
  o->parallel_opt = app.add_option("--parallel-rows", o->parallel_rows, "Rows driven at once; 0 = all rows (default)");
  o->clock_opt = app.add_option("--clock-mhz", o->clock_mhz, "Digital clock in MHz (default per node)");
  app.add_option("--kv-placement", o->kv_placement,
                 "write: program K and V into the cells each op (energy, latency, endurance); sram: keep them in "
                 "SRAM-IMC arrays (default write)");
  o->input_bits_opt = app.add_option("--input-bits", o->input_bits, "Bits per input, 0 = from the op's precision");
  o->weight_bits_opt = app.add_option("--weight-bits", o->weight_bits, "Bits per stored weight, 0 = from the op's precision");
  app.add_option("--gemm", o->gemm, "Map a weight-stationary M,K,N matrix product instead of (or besides) ops; repeatable")
      ->allow_extra_args(false);
  app.add_option("--sweep", o->sweep,
                 "Sweep parameters and write CSV: \"subarray=64x64,128x128;adc_bits=3..8;cell_bits=1,2\" "
                 "(axes: subarray, adc_bits, cell_bits, cols_per_adc, parallel_rows, tech)");
  o->out.add_to(app, "Write the report to FILE, atomically",
                "json (sattn.imc/v1 JSON Lines) or text (breakdown tables)",
                "No progress on stderr");
  add_max_memory_option(app);
  o->prog = app.get_name();
  return [o] { return imc_action(*o); };
}

}  // namespace sattn
