// The C API (sattn.h): versions, errors, ops and plans. Layouts and the attention calls are in
// capi_run.cpp. Every entry point is noexcept in effect: exceptions stop at guarded().
#include <cmath>
#include <cstddef>
#include <cstring>
#include <exception>
#include <new>
#include <sstream>

#include "capi/capi_internal.hpp"
#include "select/plan_json.hpp"
#include "sattn/formats.hpp"
#include "support/process.hpp"

namespace sattn::capi {

namespace {
thread_local std::string t_last_error;
}  // namespace

void set_last_error(std::string message) { t_last_error = std::move(message); }

sattn_status guarded(const char* fn, const std::function<void()>& body) {
  try {
    body();
    return SATTN_OK;
  } catch (const Error& e) {
    set_last_error(e.what());
    return static_cast<sattn_status>(static_cast<int>(e.kind()));
  } catch (const Interrupted&) {
    set_last_error(std::string(fn) + ": interrupted");
    return SATTN_RUNTIME;
  } catch (const std::bad_alloc&) {
    set_last_error(std::string(fn) + ": out of memory");
    return SATTN_RUNTIME;
  } catch (const std::exception& e) {
    set_last_error(std::string(fn) + ": " + e.what());
    return SATTN_RUNTIME;
  } catch (...) {
    set_last_error(std::string(fn) + ": unknown error");
    return SATTN_RUNTIME;
  }
}

void require(const void* p, const char* fn, const char* what) {
  if (!p) throw Error(ErrorKind::usage, std::string(fn) + ": " + what + " is NULL");
}

namespace {

OpFormat format_of(sattn_format f) {
  switch (f) {
    case SATTN_FORMAT_AUTO: return OpFormat::automatic;
    case SATTN_FORMAT_MLIR: return OpFormat::mlir;
    case SATTN_FORMAT_JSON: return OpFormat::json;
    case SATTN_FORMAT_YAML: return OpFormat::yaml;
  }
  throw Error(ErrorKind::usage, "unknown sattn_format " + std::to_string(int(f)));
}

template <class T>
const T& pick(const std::vector<T>& items, size_t index, const char* fn) {
  if (index >= items.size())
    throw Error(ErrorKind::usage, std::string(fn) + ": index " + std::to_string(index) + " is out of range (the input holds " +
                                      std::to_string(items.size()) + (items.size() == 1 ? " op)" : " ops)"));
  return items[index];
}

// Whether the caller's struct (struct_size bytes, from its header's *_init) holds `field`: fields
// appended by a later header are read as unset (docs/c-api.md, ABI policy).
#define SATTN_HAS_FIELD(o, type, field) (offsetof(type, field) + sizeof((o)->field) <= (o)->struct_size)

// The C options as a SelectRequest (resolve_select_request merges environment and profile).
SelectRequest request_of(const sattn_select_options* o) {
  SelectRequest req;
  if (!o) return req;
  if (o->struct_size < sizeof(size_t))
    throw Error(ErrorKind::usage, "sattn_select_options: struct_size is not set (call sattn_select_options_init)");
  using T = sattn_select_options;
  if (SATTN_HAS_FIELD(o, T, backend) && o->backend) req.backend = o->backend;
  if (SATTN_HAS_FIELD(o, T, force_spec) && o->force_spec) req.force = spec_option("--force-spec", o->force_spec);
  if (SATTN_HAS_FIELD(o, T, disable) && o->disable) {
    std::vector<Spec> specs;
    std::stringstream list(o->disable);
    for (std::string name; std::getline(list, name, ',');)
      if (!name.empty()) specs.push_back(spec_option("--disable", name));
    req.disable = specs;
  }
  const bool prefer_bsr = SATTN_HAS_FIELD(o, T, prefer_bsr) && o->prefer_bsr > 0;
  const bool prefer_sw = SATTN_HAS_FIELD(o, T, prefer_sw) && o->prefer_sw > 0;
  if (prefer_bsr && prefer_sw) throw Error(ErrorKind::usage, "--prefer-bsr and --prefer-sw contradict each other");
  if (prefer_bsr) req.prefer_bsr = true;
  if (prefer_sw) req.prefer_sw = true;
  if (SATTN_HAS_FIELD(o, T, l1_bytes) && o->l1_bytes >= 0) {
    if (o->l1_bytes < 1 || o->l1_bytes > (int64_t(1) << 40))
      throw Error(ErrorKind::usage, "--l1-bytes must be a whole number of bytes from 1 to 2^40");
    req.l1_bytes = o->l1_bytes;
  }
  if (SATTN_HAS_FIELD(o, T, profile) && o->profile) req.profile = o->profile;
  // min_recall: -1 is unset; the range check (invalid input, as --min-recall) is the selector's.
  if (SATTN_HAS_FIELD(o, T, min_recall) && o->min_recall != -1.0) req.min_recall = o->min_recall;
  if (SATTN_HAS_FIELD(o, T, data_count) && o->data_count > 0) {
    if (!o->data) throw Error(ErrorKind::usage, "sattn_select_options: data is NULL but data_count is " + std::to_string(o->data_count));
    for (size_t i = 0; i < o->data_count; ++i) {
      if (!o->data[i]) throw Error(ErrorKind::usage, "sattn_select_options: data[" + std::to_string(i) + "] is NULL");
      req.data.emplace_back(o->data[i]);
    }
  }
  if (SATTN_HAS_FIELD(o, T, seed) && o->seed != -1) {
    if (o->seed < 0) throw Error(ErrorKind::usage, "--seed must be a whole number from 0 to 2^63-1 (got " + std::to_string(o->seed) + ")");
    if (!req.data.empty()) throw Error(ErrorKind::usage, "--seed excludes --data (the seed picks the synthetic calibration sample)");
    req.seed = uint64_t(o->seed);
  }
  if (SATTN_HAS_FIELD(o, T, recall_confidence) && o->recall_confidence != -1.0) req.recall_confidence = o->recall_confidence;
  if (SATTN_HAS_FIELD(o, T, recall_bound) && o->recall_bound) {
    req.recall_bound = parse_recall_bound(o->recall_bound);
    if (!req.recall_bound)
      throw Error(ErrorKind::usage, std::string("--recall-bound must be window, mean or cv (got '") + o->recall_bound + "')");
  }
  return req;
}

sattn_plan* make_plan(Plan plan) {
  auto* p = new sattn_plan{std::move(plan), {}, {}};
  p->spec = std::string(to_string(p->plan.spec));
  p->json = plan_to_json(p->plan).dump();
  return p;
}

}  // namespace

}  // namespace sattn::capi

using namespace sattn;
using sattn::capi::guarded;
using sattn::capi::require;

extern "C" {

const char* sattn_version(void) { return SATTN_VERSION; }

const char* sattn_last_error(void) { return capi::t_last_error.c_str(); }

const char* sattn_status_string(sattn_status status) {
  switch (status) {
    case SATTN_OK: return "ok";
    case SATTN_RUNTIME: return "runtime error";
    case SATTN_USAGE: return "usage error";
    case SATTN_INVALID_INPUT: return "invalid input";
    case SATTN_EXTERNAL_TOOL: return "external tool failed";
    case SATTN_CHECK_FAILED: return "check failed";
  }
  return "unknown status";
}

sattn_status sattn_op_parse(const char* text, size_t length, const char* filename, sattn_format format, size_t index,
                            sattn_op** op, size_t* count) {
  constexpr const char* fn = "sattn_op_parse";
  return guarded(fn, [&] {
    require(text, fn, "text");
    require(op, fn, "op");
    *op = nullptr;
    const size_t n = length == size_t(-1) ? std::strlen(text) : length;
    std::vector<std::string> warnings;  // unknown attributes: ignored, as the tools do (not printed)
    const std::vector<Op> ops =
        parse_ops(std::string_view(text, n), filename ? filename : "<string>", capi::format_of(format), &warnings);
    if (count) *count = ops.size();
    *op = new sattn_op{capi::pick(ops, index, fn)};
  });
}

sattn_status sattn_op_read(const char* path, sattn_format format, size_t index, sattn_op** op, size_t* count) {
  constexpr const char* fn = "sattn_op_read";
  return guarded(fn, [&] {
    require(path, fn, "path");
    require(op, fn, "op");
    *op = nullptr;
    std::vector<std::string> warnings;
    const std::vector<Op> ops = read_ops(path, capi::format_of(format), &warnings);
    if (count) *count = ops.size();
    *op = new sattn_op{capi::pick(ops, index, fn)};
  });
}

void sattn_op_free(sattn_op* op) { delete op; }

sattn_status sattn_op_shape(const sattn_op* op, sattn_shape* shape) {
  constexpr const char* fn = "sattn_op_shape";
  return guarded(fn, [&] {
    require(op, fn, "op");
    require(shape, fn, "shape");
    const Shape& s = op->op.shape;
    *shape = sattn_shape{s.batch, s.heads, s.kv_heads, s.seq_len, s.kv_len, s.head_dim};
  });
}

const char* sattn_op_name(const sattn_op* op) { return op ? op->op.name.c_str() : ""; }
const char* sattn_op_precision(const sattn_op* op) { return op ? to_string(op->op.precision).data() : ""; }
int sattn_op_causal(const sattn_op* op) { return op && op->op.causal ? 1 : 0; }
double sattn_op_scale(const sattn_op* op) { return op ? op->op.softmax_scale() : std::nan(""); }
double sattn_op_softcap(const sattn_op* op) { return op ? op->op.softcap.value_or(0.0) : std::nan(""); }

void sattn_select_options_init(sattn_select_options* options) {
  if (!options) return;
  *options = sattn_select_options{};
  options->struct_size = sizeof(sattn_select_options);
  options->prefer_bsr = -1;
  options->prefer_sw = -1;
  options->l1_bytes = -1;
  options->min_recall = -1;
  options->seed = -1;
  options->recall_confidence = -1;
}

sattn_status sattn_select(const sattn_op* op, const sattn_select_options* options, sattn_plan** plan) {
  constexpr const char* fn = "sattn_select";
  return guarded(fn, [&] {
    require(op, fn, "op");
    require(plan, fn, "plan");
    *plan = nullptr;
    const SelectOptions resolved = resolve_select_request(capi::request_of(options));
    *plan = capi::make_plan(select_spec(op->op, resolved));
  });
}

sattn_status sattn_plan_read(const char* path, const sattn_select_options* options, size_t index, sattn_plan** plan,
                             size_t* count) {
  constexpr const char* fn = "sattn_plan_read";
  return guarded(fn, [&] {
    require(path, fn, "path");
    require(plan, fn, "plan");
    *plan = nullptr;
    const std::vector<Plan> plans = read_plans(path, resolve_select_request(capi::request_of(options)));
    if (count) *count = plans.size();
    *plan = capi::make_plan(capi::pick(plans, index, fn));
  });
}

void sattn_plan_free(sattn_plan* plan) { delete plan; }

const char* sattn_plan_spec(const sattn_plan* plan) { return plan ? plan->spec.c_str() : ""; }
const char* sattn_plan_kind(const sattn_plan* plan) { return plan ? plan->plan.selection.kind.c_str() : ""; }
const char* sattn_plan_reason(const sattn_plan* plan) { return plan ? plan->plan.selection.reason.c_str() : ""; }
const char* sattn_plan_json(const sattn_plan* plan) { return plan ? plan->json.c_str() : ""; }

sattn_status sattn_plan_op(const sattn_plan* plan, sattn_op** op) {
  constexpr const char* fn = "sattn_plan_op";
  return guarded(fn, [&] {
    require(plan, fn, "plan");
    require(op, fn, "op");
    *op = new sattn_op{plan->plan.op};
  });
}

}  // extern "C"
