// Plans (sattn.plan/v1): written by sattn-select, read by every tool downstream of it. A reader
// also accepts bare ops (any op format) and selects for them in-process.
#include <cmath>

#include "support/io.hpp"
#include "support/process.hpp"
#include "formats/op_io.hpp"
#include "select/plan_json.hpp"
#include "formats/data.hpp"
#include "sattn/select.hpp"
#include "select/select_cost.hpp"

namespace sattn {

namespace {

using nlohmann::json;

json candidate_to_json(const Candidate& c) {
  json j = {{"spec", std::string(to_string(c.spec))}, {"feasible", c.feasible}};
  if (!c.why_not.empty()) j["why_not"] = c.why_not;
  // Whole costs as integers, like the terms; no cost (a rule's or forced spec's) as null.
  if (!std::isfinite(c.cost))
    j["cost"] = nullptr;
  else if (c.cost == std::floor(c.cost) && std::fabs(c.cost) < 9007199254740992.0)
    j["cost"] = int64_t(c.cost);
  else
    j["cost"] = c.cost;
  json terms = json::parse(c.terms, nullptr, false);
  j["terms"] = terms.is_object() ? terms : json::object();
  return j;
}

// One JSON document of the input and where it starts.
struct Document {
  json value;
  SourceLoc loc;
};

size_t first_non_space(std::string_view text, size_t from) {
  while (from < text.size() && (text[from] == ' ' || text[from] == '\t' || text[from] == '\r' || text[from] == '\n'))
    ++from;
  return from;
}

SourceLoc loc_of_offset(std::string_view text, size_t offset, const std::string& file) {
  SourceLoc loc{file, 1, 1};
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++loc.line;
      loc.col = 1;
    } else {
      ++loc.col;
    }
  }
  return loc;
}

// The documents of a JSON input, split as the op reader splits them (one value, an array of
// values, or JSON Lines). Called after parse_ops() accepted the text, so parsing cannot fail.
std::vector<Document> json_documents(std::string_view text, const std::string& file) {
  std::vector<Document> docs;
  if (json::accept(text)) {
    json whole = json::parse(text);
    const SourceLoc start = loc_of_offset(text, first_non_space(text, 0), file);
    if (whole.is_array()) {
      for (auto& element : whole) docs.push_back({std::move(element), start});
    } else {
      docs.push_back({std::move(whole), start});
    }
    return docs;
  }
  for (size_t line = 0; line < text.size();) {
    const size_t end = std::min(text.find('\n', line), text.size());
    const size_t first = first_non_space(text.substr(0, end), line);
    if (first < end) docs.push_back({json::parse(text.substr(line, end - line)), loc_of_offset(text, first, file)});
    line = end + 1;
  }
  return docs;
}

bool is_plan_document(const json& doc) {
  if (!doc.is_object()) return false;
  auto schema = doc.find("schema");
  return schema != doc.end() && schema->is_string() && schema->get<std::string>().rfind("sattn.plan/", 0) == 0;
}

Selection selection_from_json(const json& doc, const SourceLoc& loc) {
  Selection s;
  s.kind = "plan";
  s.reason = "read from a plan";
  auto it = doc.find("selection");
  if (it == doc.end() || !it->is_object()) return s;
  try {
    s.kind = it->value("kind", s.kind);
    s.reason = it->value("reason", s.reason);
    if (auto r = it->find("min_recall"); r != it->end() && r->is_number()) s.min_recall = r->get<double>();
    for (const json& c : it->value("candidates", json::array())) {
      Candidate cand;
      auto spec = parse_spec(c.at("spec").get<std::string>());
      if (!spec)
        throw_input_error(loc, "plan: unknown spec '" + c.at("spec").get<std::string>() + "' in selection.candidates");
      cand.spec = *spec;
      cand.feasible = c.value("feasible", true);
      cand.why_not = c.value("why_not", "");
      const json cost = c.value("cost", json(nullptr));
      cand.cost = cost.is_number() ? cost.get<double>() : std::nan("");
      cand.terms = c.value("terms", json::object()).dump();
      s.candidates.push_back(std::move(cand));
    }
  } catch (const json::exception& e) {
    throw_input_error(loc, std::string("plan: malformed selection record: ") + e.what());
  }
  return s;
}

// A plan document: the op (already read by parse_ops()), its spec and backend; parameters are
// resolved again from the op and must agree with the ones the plan echoes.
Plan plan_from_document(const json& doc, Op op, const SourceLoc& loc, const SelectOptions& options) {
  Plan plan;
  auto spec_it = doc.find("spec");
  if (spec_it == doc.end() || !spec_it->is_string()) throw_input_error(loc, "plan has no 'spec' string");
  auto spec = parse_spec(spec_it->get<std::string>());
  if (!spec) throw_input_error(loc, "plan: unknown spec '" + spec_it->get<std::string>() + "'");
  plan.backend = options.backend;
  if (auto b = doc.find("backend"); b != doc.end()) {
    std::optional<Target> backend = b->is_string() ? parse_backend(b->get<std::string>()) : std::nullopt;
    if (!backend) throw_input_error(loc, "plan: unknown backend " + b->dump() + " (cpu, rvv, rocc or imc)");
    plan.backend = *backend;
  }
  try {
    plan.params = resolve_params(op, *spec);
  } catch (const Error& e) {
    throw Error(e.code(), "plan's spec " + spec_it->get<std::string>() + ": " + e.message(), e.loc());
  }
  // The layout is built from the resolved parameters; an edited "params" would be ignored
  // silently, so a disagreement is an error.
  if (auto p = doc.find("params"); p != doc.end() && p->is_object()) {
    const json resolved = params_to_json(plan.params);
    for (const auto& [key, value] : resolved.items()) {
      auto written = p->find(key);
      if (written != p->end() && *written != value)
        throw_input_error(loc, "plan's params." + key + " (" + written->dump() + ") disagrees with its op (" +
                                   value.dump() + "); change the op's attributes, not the echoed params");
    }
  }
  if (std::string why = select_detail::why_infeasible(op, *spec, plan.params); !why.empty())
    throw_input_error(loc, "plan's spec " + spec_it->get<std::string>() + ": " + why);
  plan.spec = *spec;
  plan.selection = selection_from_json(doc, loc);
  plan.op = std::move(op);
  return plan;
}

}  // namespace

json plan_to_json(const Plan& plan) {
  json j = envelope("plan", "sattn-select");
  j["op"] = op_to_json(plan.op);
  j["spec"] = std::string(to_string(plan.spec));
  j["params"] = params_to_json(plan.params);
  j["backend"] = std::string(to_string(plan.backend));
  json candidates = json::array();
  for (const Candidate& c : plan.selection.candidates) candidates.push_back(candidate_to_json(c));
  j["selection"] = {{"kind", plan.selection.kind}, {"reason", plan.selection.reason}, {"candidates", candidates}};
  if (plan.selection.min_recall) j["selection"]["min_recall"] = *plan.selection.min_recall;
  return j;
}

namespace {
// "keep_ratio 0.125, block_size 64": a plan's parameters for a message.
std::string params_text(const SpecParams& params) {
  std::string text;
  const json j = params_to_json(params);
  for (const auto& [k, v] : j.items())
    if (k != "spec" && !(v.is_number() && v.get<double>() == 0))  // zero: a feature left off
      text += (text.empty() ? "" : ", ") + k + " " + (v.is_string() ? v.get<std::string>() : v.dump());
  return text;
}
}  // namespace

std::vector<Plan> parse_plans(std::string_view text, const std::string& filename, const SelectOptions& options) {
  // parse_ops() reads a plan's "op" member, rejects unknown schema major versions and reports
  // every syntax error with its position; plans and bare ops come out in input order.
  std::vector<Op> ops = parse_ops(text, filename);
  const size_t start = first_non_space(text, 0);
  const bool json_input = start < text.size() && (text[start] == '{' || text[start] == '[');
  std::vector<Document> docs;
  if (json_input) docs = json_documents(text, filename);
  if (json_input && docs.size() != ops.size())
    throw_runtime_error(filename + ": read " + std::to_string(ops.size()) + " ops from " + std::to_string(docs.size()) +
                        " JSON documents");
  std::vector<Plan> plans;
  for (size_t i = 0; i < ops.size(); ++i) {
    if (json_input && is_plan_document(docs[i].value))
      plans.push_back(plan_from_document(docs[i].value, std::move(ops[i]), docs[i].loc, options));
    else {
      if (options.complete_op) options.complete_op(ops[i]);
      plans.push_back(select_spec(ops[i], options));
      // An op that names no spec and no pattern attribute (only a shape) gets a default spec
      // (bsr): not silently, since a reader might expect exact (dense) attention.
      if (plans.back().selection.kind == "default")
        report_warning(ops[i].loc.str() + ": op '" + ops[i].name + "' names no spec and no pattern attribute: " +
                       std::string(to_string(plans.back().spec)) + " (" + params_text(plans.back().params) +
                       ") by default; give spec = \"dense\" for exact attention (--explain lists the candidates)");
    }
  }
  return plans;
}

std::vector<Plan> read_plans(const std::string& path, const SelectOptions& options) {
  return parse_plans(read_op_input(path), path == "-" ? "<stdin>" : path, options);
}

}  // namespace sattn
