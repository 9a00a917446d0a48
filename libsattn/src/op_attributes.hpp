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

}  // namespace sattn::detail
