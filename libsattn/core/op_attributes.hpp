// Internal to the op readers (mlir_reader.cpp, op_json.cpp, op_yaml.cpp): the attribute
// vocabulary they share. Each reader turns its syntax into (name, AttrValue, locations) and
// hands them to an OpBuilder, so names, aliases, type checks and messages are the same in
// every format.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sattn/error.hpp"
#include "sattn/op.hpp"

namespace sattn::detail {

// A value as written, before it is checked against the attribute's type.
struct AttrValue {
  enum class Kind { integer, floating, string, boolean, other };
  Kind kind = Kind::other;
  // Integers keep magnitude and sign apart so that a full-range uint64 `seed` fits.
  uint64_t magnitude = 0;
  bool negative = false;
  double number = 0;  // floating
  bool flag = false;  // boolean
  std::string text;   // string contents; for `other`, the value's source text

  static AttrValue integer(uint64_t magnitude, bool negative);
  static AttrValue floating(double);
  static AttrValue string(std::string);
  static AttrValue boolean(bool);
  static AttrValue other(std::string source_text);

  // For messages: `integer 5`, `string "x"`, `float 0.5`, `boolean true`, `value [1, 2]`.
  std::string describe() const;
};

// A numeric literal: decimal or 0x integer (optional sign), or decimal float with a '.' or an
// exponent. nullopt with `*why` set ("bad number '1.2.3'", "integer out of range") otherwise.
std::optional<AttrValue> parse_number(std::string_view text, std::string* why);

// 1-based line:col of a byte offset in `text`.
SourceLoc loc_at(std::string_view text, size_t offset, const std::string& file);

// Appends "LOC: message" to `sink`, or prints "warning: LOC: message" to stderr if it is null.
void emit_warning(std::vector<std::string>* sink, const SourceLoc&, const std::string& message);

// What a JSON/YAML document's "schema" says it is. Throws for another kind or major version.
enum class DocumentKind { op, plan };
DocumentKind check_schema(std::string_view schema, const SourceLoc&);

// Collects the attributes of one op, then applies defaults and validates.
class OpBuilder {
 public:
  // `op_loc`: where the op starts; `index`: its 0-based position in the input (default name).
  OpBuilder(SourceLoc op_loc, size_t index, std::vector<std::string>* warnings);

  // Sets one attribute. `key_loc` is where its name is written (recorded in Op::attr_loc);
  // type errors point at `value_loc`. Unknown names warn and are ignored; a repeated
  // attribute (or alias) is an error.
  void set(const std::string& name, const AttrValue&, const SourceLoc& key_loc, const SourceLoc& value_loc);

  // kv_len = seq_len and kv_heads = heads unless given, gqa_group_size folded into kv_heads,
  // the default name; then validate(). Throws Error(invalid_input).
  Op finish();

 private:
  Op op_;
  size_t index_;
  std::vector<std::string>* warnings_;
  std::optional<int64_t> gqa_group_size_;
  std::map<std::string, std::string> written_as_;  // canonical name -> name as written
};

// The ops of the `sattn` MLIR dialect (sattn-opt(1)): the op itself and the backend calls the
// lowering passes write. The MLIR reader and sattn-opt's verifier both read them through
// DialectOpBuilder, so a lowered module means the same thing, with the same messages, to both.
enum class DialectOp { sparse_attention, rvv_call, rocc_call };
// "sattn.sparse_attention" -> sparse_attention, ...; nullopt for any other name.
std::optional<DialectOp> parse_dialect_op(std::string_view name);

// An OpBuilder that also knows the attributes only the dialect's ops carry: `selection` (the
// selector's summary that sattn-select-spec writes; a string, otherwise ignored) on every op,
// and on backend calls the per-spec flags blg_enabled, nm_enabled, topk_enabled, lsh_enabled.
// finish() checks that a backend call has a `spec` and that each flag given agrees with it.
class DialectOpBuilder {
 public:
  DialectOpBuilder(DialectOp, SourceLoc op_loc, size_t index, std::vector<std::string>* warnings);
  void set(const std::string& name, const AttrValue&, const SourceLoc& key_loc, const SourceLoc& value_loc);
  Op finish();

 private:
  DialectOp kind_;
  SourceLoc op_loc_;
  OpBuilder builder_;
  std::map<std::string, std::pair<bool, SourceLoc>> flags_;  // flag name -> (value, where written)
};

}  // namespace sattn::detail
