// Reader of the `sattn` dialect's ops in MLIR's generic form, and in the custom form that
// sattn-opt prints (the ops' assembly format is their attribute dictionary):
//
//   module {            // optional; also `module @name attributes {...} {`
//     "sattn.sparse_attention"() { window_size = 8 : i64, precision = "bf16" } : () -> ()
//     sattn.rvv_call {spec = "sliding_window", window_size = 8 : i64, ...}
//   }
//
// sattn.rvv_call / sattn.rocc_call are ops lowered by sattn-opt: read like the op, with their
// spec forced (DialectOpBuilder). No MLIR library is needed: a small hand-written lexer and
// recursive-descent parser, so that every error carries the line:col where it happened
// (1-based; columns count bytes).
#include <algorithm>
#include <deque>

#include "core/op_attributes.hpp"
#include "formats/nesting.hpp"
#include "formats/op_io.hpp"

namespace sattn {

namespace {

using detail::AttrValue;
using detail::DialectOp;
using detail::parse_dialect_op;

enum class TokenKind { end, identifier, string, number, punct, sigil };

struct Token {
  TokenKind kind = TokenKind::end;
  std::string text;  // identifier, decoded string contents, number literal, punctuation
  int line = 1, col = 1;
  size_t offset = 0;
};

bool is_ident_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_ident_char(char c) {
  return is_ident_start(c) || (c >= '0' && c <= '9') || c == '.' || c == '$';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

std::string describe(const Token& t) {
  switch (t.kind) {
    case TokenKind::end: return "end of input";
    case TokenKind::string: return "\"" + t.text + "\"";
    default: return "'" + t.text + "'";
  }
}

class Lexer {
 public:
  Lexer(std::string_view text, const std::string& file) : text_(text), file_(file) {}

  // The token `n` positions ahead (0 = next), lexed on demand.
  const Token& peek(size_t n = 0) {
    while (ahead_.size() <= n) ahead_.push_back(lex());
    return ahead_[n];
  }
  Token next() {
    peek();
    Token t = std::move(ahead_.front());
    ahead_.pop_front();
    return t;
  }
  SourceLoc loc(const Token& t) const { return SourceLoc{file_, t.line, t.col}; }
  std::string_view source(size_t begin, size_t end) const { return text_.substr(begin, end - begin); }

 private:
  char at(size_t i) const { return pos_ + i < text_.size() ? text_[pos_ + i] : '\0'; }
  bool done() const { return pos_ >= text_.size(); }
  void advance() {
    if (text_[pos_] == '\n') {
      ++line_;
      col_ = 1;
    } else {
      ++col_;
    }
    ++pos_;
  }

  void skip_space_and_comments() {
    while (!done()) {
      char c = at(0);
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
        advance();
      } else if (c == '/' && at(1) == '/') {
        while (!done() && at(0) != '\n') advance();
      } else {
        break;
      }
    }
  }

  Token lex() {
    skip_space_and_comments();
    Token t;
    t.line = line_;
    t.col = col_;
    t.offset = pos_;
    if (done()) return t;
    char c = at(0);
    if (c == '"') {
      t.kind = TokenKind::string;
      t.text = lex_string(t);
    } else if (is_digit(c) || (c == '-' && is_digit(at(1)))) {
      t.kind = TokenKind::number;
      t.text = lex_number();
    } else if (is_ident_start(c)) {
      t.kind = TokenKind::identifier;
      while (!done() && is_ident_char(at(0))) t.text += at(0), advance();
    } else if ((c == '@' || c == '%' || c == '#' || c == '!' || c == '^') && is_ident_char(at(1))) {
      // Symbols, SSA values, attribute and type aliases: only ever skipped over.
      t.kind = TokenKind::sigil;
      t.text += c;
      advance();
      while (!done() && is_ident_char(at(0))) t.text += at(0), advance();
    } else if (c == '-' && at(1) == '>') {
      t.kind = TokenKind::punct;
      t.text = "->";
      advance(), advance();
    } else {
      t.kind = TokenKind::punct;
      t.text = c;
      advance();
    }
    return t;
  }

  std::string lex_string(const Token& start) {
    auto unterminated = [&] {
      throw_input_error(loc(start), "unterminated string (missing closing '\"' on this line)");
    };
    std::string s;
    advance();  // opening quote
    while (true) {
      if (done() || at(0) == '\n') unterminated();
      char c = at(0);
      if (c == '"') {
        advance();
        return s;
      }
      if (c != '\\') {
        s += c;
        advance();
        continue;
      }
      advance();
      if (done() || at(0) == '\n') unterminated();
      char e = at(0);
      auto hex_value = [](char h) {
        return is_digit(h)              ? h - '0'
               : (h >= 'a' && h <= 'f') ? h - 'a' + 10
               : (h >= 'A' && h <= 'F') ? h - 'A' + 10
                                        : -1;
      };
      if (e == '"' || e == '\\') {
        s += e;
      } else if (e == 'n') {
        s += '\n';
      } else if (e == 't') {
        s += '\t';
      } else if (hex_value(e) >= 0 && hex_value(at(1)) >= 0) {  // MLIR's \XX byte escape
        s += static_cast<char>(hex_value(e) * 16 + hex_value(at(1)));
        advance();
      } else {
        throw_input_error(SourceLoc{file_, line_, col_ - 1}, std::string("unknown escape '\\") + e + "' in string");
      }
      advance();
    }
  }

  // Greedy: the literal's validity is checked by parse_number(), so `12abc` is one bad token.
  std::string lex_number() {
    std::string s;
    s += at(0);
    advance();
    auto is_x = [](char c) { return c == 'x' || c == 'X'; };
    const bool hex = (s == "0" && is_x(at(0))) || (s == "-" && at(0) == '0' && is_x(at(1)));
    while (!done()) {
      char c = at(0);
      char prev = s.back();
      bool exponent_sign = !hex && (c == '+' || c == '-') && (prev == 'e' || prev == 'E');
      if (!(is_ident_char(c) && c != '$') && !exponent_sign) break;
      s += c;
      advance();
    }
    return s;
  }

  std::string_view text_;
  const std::string& file_;
  size_t pos_ = 0;
  int line_ = 1, col_ = 1;
  std::deque<Token> ahead_;
};

bool is_integer_type(std::string_view t) {
  return t == "index" || t == "i1" || t == "i8" || t == "i16" || t == "i32" || t == "i64" || t == "si32" ||
         t == "si64" || t == "ui32" || t == "ui64";
}
// Whether an integer literal fits the integer type it is annotated with, as MLIR checks it:
// iN (signless) holds -2^(N-1) .. 2^N - 1, siN the signed range, uiN 0 .. 2^N - 1, index 64 bits.
bool fits_integer_type(const AttrValue& v, std::string_view t) {
  if (t == "index") t = "i64";
  const size_t digits = t.find_first_of("0123456789");
  const int bits = std::stoi(std::string(t.substr(digits)));
  const std::string_view kind = t.substr(0, digits);
  if (bits >= 64) return kind != "ui" || !v.negative || v.magnitude == 0;
  const uint64_t half = uint64_t(1) << (bits - 1), full = (uint64_t(1) << bits) - 1;
  if (kind == "ui") return (!v.negative && v.magnitude <= full) || v.magnitude == 0;
  if (v.negative) return v.magnitude <= half;
  return v.magnitude <= (kind == "si" ? half - 1 : full);
}

bool is_float_type(std::string_view t) {
  return t == "f16" || t == "bf16" || t == "f32" || t == "f64";
}

class MlirParser {
 public:
  MlirParser(std::string_view text, const std::string& file, std::vector<std::string>* warnings)
      : lexer_(text, file), file_(file), warnings_(warnings) {}

  std::vector<Op> parse() {
    parse_items(nullptr);
    if (ops_.empty())
      throw_input_error(first_module_ ? *first_module_ : SourceLoc{file_}, "no sattn.sparse_attention op found");
    return std::move(ops_);
  }

 private:
  [[noreturn]] void fail(const Token& at, const std::string& message) { throw_input_error(lexer_.loc(at), message); }
  [[noreturn]] void fail_attribute(const Token& at, const std::string& attr, const std::string& what) {
    fail(at, "attribute '" + attr + "': " + what);
  }

  bool next_is(std::string_view punct, size_t n = 0) {
    const Token& t = lexer_.peek(n);
    return t.kind == TokenKind::punct && t.text == punct;
  }

  // Module bodies and the top level: modules and ops, nothing else.
  void parse_items(const Token* open_brace) {
    // Modules nest by recursion here: bound it as every reader bounds nesting.
    if (open_brace && ++module_depth_ > kMaxNesting)
      fail(*open_brace, "modules nested deeper than " + std::to_string(kMaxNesting) + " levels");
    while (true) {
      const Token& t = lexer_.peek();
      if (t.kind == TokenKind::end) {
        if (open_brace)
          fail(t, "missing '}' to close the module opened at " + std::to_string(open_brace->line) + ":" +
                      std::to_string(open_brace->col));
        return;
      }
      if (next_is("}")) {
        if (!open_brace) fail(t, "unexpected '}' (no module is open)");
        lexer_.next();
        --module_depth_;
        return;
      }
      const std::optional<DialectOp> op = parse_dialect_op(t.text);
      if (t.kind == TokenKind::identifier && (t.text == "module" || t.text == "builtin.module")) {
        parse_module();
      } else if (t.kind == TokenKind::string && t.text == "builtin.module") {
        parse_generic_module();
      } else if (op && t.kind == TokenKind::string) {
        parse_op(*op, /*generic=*/true);
      } else if (op && t.kind == TokenKind::identifier) {
        parse_op(*op, /*generic=*/false);
      } else {
        fail(t, "expected \"sattn.sparse_attention\" op, found " + describe(t) +
                    " (the sattn ops are sparse_attention, rvv_call and rocc_call)");
      }
    }
  }

  void parse_module() {
    Token keyword = lexer_.next();
    if (!first_module_) first_module_ = lexer_.loc(keyword);
    if (lexer_.peek().kind == TokenKind::sigil && lexer_.peek().text[0] == '@') lexer_.next();  // module @name
    if (lexer_.peek().kind == TokenKind::identifier && lexer_.peek().text == "attributes") {
      lexer_.next();
      if (!next_is("{")) fail(lexer_.peek(), "expected '{' after 'attributes', found " + describe(lexer_.peek()));
      skip_balanced_braces();
    }
    if (!next_is("{")) fail(lexer_.peek(), "expected '{' after 'module', found " + describe(lexer_.peek()));
    Token open = lexer_.next();
    parse_items(&open);
  }

  // The generic form that `sattn-opt -mlir-print-op-generic` prints:
  //   "builtin.module"() ({ OPS }) [{attributes}] : () -> ()
  void parse_generic_module() {
    Token name = lexer_.next();
    if (!first_module_) first_module_ = lexer_.loc(name);
    expect_sequence({"(", ")", "("}, "'() (' after \"builtin.module\"");
    if (!next_is("{")) fail(lexer_.peek(), "expected '{' (the module's region), found " + describe(lexer_.peek()));
    Token open = lexer_.next();
    parse_items(&open);
    expect_sequence({")"}, "')' after the module's region");
    if (next_is("{")) skip_balanced_braces();
    expect_sequence({":", "(", ")", "->", "(", ")"}, "': () -> ()' after the module");
  }

  // The module's own attribute dictionary can hold any MLIR attribute: skip it whole.
  void skip_balanced_braces() {
    Token open = lexer_.next();
    int depth = 1;
    while (depth > 0) {
      Token t = lexer_.next();
      if (t.kind == TokenKind::end)
        fail(t, "missing '}' to close the attribute dictionary opened at " + std::to_string(open.line) + ":" +
                    std::to_string(open.col));
      if (t.kind == TokenKind::punct && t.text == "{" && ++depth > kMaxNesting)
        fail(t, "attribute dictionary nested deeper than " + std::to_string(kMaxNesting) + " levels");
      if (t.kind == TokenKind::punct && t.text == "}") --depth;
    }
  }

  void expect_sequence(std::initializer_list<std::string_view> puncts, const std::string& what) {
    for (std::string_view p : puncts) {
      if (!next_is(p)) fail(lexer_.peek(), "expected " + what + ", found " + describe(lexer_.peek()));
      lexer_.next();
    }
  }

  // Generic form: "NAME"() {attrs} : () -> (). Custom form: NAME {attrs} (both dictionaries
  // may be absent).
  void parse_op(DialectOp kind, bool generic) {
    Token name = lexer_.next();
    detail::DialectOpBuilder builder(kind, lexer_.loc(name), ops_.size(), warnings_);
    if (generic) expect_sequence({"(", ")"}, "'()' after the op name (the op takes no operands)");
    if (next_is("{")) parse_attr_dict(builder);
    if (generic) expect_sequence({":", "(", ")", "->", "(", ")"}, "': () -> ()' after the op's attributes");
    ops_.push_back(builder.finish());
  }

  void parse_attr_dict(detail::DialectOpBuilder& builder) {
    Token open = lexer_.next();
    if (next_is("}")) {
      lexer_.next();
      return;
    }
    while (true) {
      Token name = lexer_.next();
      if (name.kind == TokenKind::end)
        fail(name, "missing '}' to close the attribute dictionary opened at " + std::to_string(open.line) + ":" +
                       std::to_string(open.col));
      if (name.kind != TokenKind::identifier && name.kind != TokenKind::string)
        fail(name, "expected an attribute name, found " + describe(name));
      SourceLoc name_loc = lexer_.loc(name);
      if (next_is("=")) {
        lexer_.next();
        SourceLoc value_loc = lexer_.loc(lexer_.peek());
        AttrValue value = parse_value(name.text);
        builder.set(name.text, value, name_loc, value_loc);
      } else if (next_is(",") || next_is("}")) {
        builder.set(name.text, AttrValue::boolean(true), name_loc, name_loc);  // a unit attribute: `{causal}`
      } else {
        fail(lexer_.peek(), "expected '=' after attribute '" + name.text + "', found " + describe(lexer_.peek()));
      }
      if (next_is(",")) {
        lexer_.next();
        continue;
      }
      if (next_is("}")) {
        lexer_.next();
        return;
      }
      const Token& t = lexer_.peek();
      if (t.kind == TokenKind::end)
        fail(t, "missing '}' to close the attribute dictionary opened at " + std::to_string(open.line) + ":" +
                    std::to_string(open.col));
      fail(t, "expected ',' or '}' after attribute '" + name.text + "', found " + describe(t));
    }
  }

  AttrValue parse_value(const std::string& attr) {
    Token t = lexer_.next();
    auto fail_attr = [&](const Token& at, const std::string& what) { fail_attribute(at, attr, what); };
    switch (t.kind) {
      case TokenKind::end: fail_attribute(t, attr, "missing value (unexpected end of input)");
      case TokenKind::string: return AttrValue::string(t.text);
      case TokenKind::identifier:
        if (t.text == "true" || t.text == "false") {
          if (next_is(":") && lexer_.peek(1).kind == TokenKind::identifier && lexer_.peek(1).text == "i1")
            lexer_.next(), lexer_.next();  // `true : i1`, as some printers write it
          return AttrValue::boolean(t.text == "true");
        }
        fail_attribute(t, attr, "unsupported value '" + t.text + "'");
      case TokenKind::number: {
        std::string why;
        std::optional<AttrValue> value = detail::parse_number(t.text, &why);
        if (!value) fail_attr(t, why);
        // `: type` annotation; a ':' followed by '(' is the op's `: () -> ()` instead.
        if (next_is(":") && lexer_.peek(1).kind == TokenKind::identifier) {
          lexer_.next();
          Token type = lexer_.next();
          if (is_float_type(type.text)) {
            if (value->kind == AttrValue::Kind::integer)
              *value = AttrValue::floating(value->negative ? -double(value->magnitude) : double(value->magnitude));
          } else if (is_integer_type(type.text)) {
            if (value->kind != AttrValue::Kind::integer)
              fail_attr(t, "float literal '" + t.text + "' with integer type '" + type.text + "'");
            if (!fits_integer_type(*value, type.text))
              fail_attr(t, "integer " + t.text + " does not fit type '" + type.text + "'");
          } else {
            fail_attr(type, "unsupported type '" + type.text + "' (use i64, i32, index, f32 or f64)");
          }
        }
        return *value;
      }
      case TokenKind::punct:
        if (t.text == "[" || t.text == "{" || t.text == "<" || t.text == "(") return skip_nested_value(t);
        fail_attribute(t, attr, "expected a value, found " + describe(t));
      case TokenKind::sigil: break;
    }
    fail_attribute(t, attr, "unsupported value " + describe(t));
  }

  // A nested value (array, dictionary, ...) that no known attribute accepts: kept as source
  // text so that an unknown attribute holding one is only a warning.
  AttrValue skip_nested_value(const Token& open) {
    std::vector<std::string> closers;
    auto closer_of = [](const std::string& o) { return o == "[" ? "]" : o == "{" ? "}" : o == "<" ? ">" : ")"; };
    closers.push_back(closer_of(open.text));
    size_t end = open.offset + 1;
    while (!closers.empty()) {
      Token t = lexer_.next();
      if (t.kind == TokenKind::end) fail(open, "missing '" + closers.back() + "' to close this value");
      if (t.kind != TokenKind::punct) continue;
      if (t.text == closers.back()) {
        closers.pop_back();
        end = t.offset + 1;
      } else if (t.text == "[" || t.text == "{" || t.text == "<" || t.text == "(") {
        // The same bound as JSON and YAML: what is kept here is later printed and re-read.
        if (closers.size() >= size_t(kMaxNesting))
          fail(t, "attribute value nested deeper than " + std::to_string(kMaxNesting) + " levels");
        closers.push_back(closer_of(t.text));
      }
    }
    return AttrValue::other(std::string(lexer_.source(open.offset, end)));
  }

  Lexer lexer_;
  int module_depth_ = 0;
  const std::string& file_;
  std::vector<std::string>* warnings_;
  std::vector<Op> ops_;
  std::optional<SourceLoc> first_module_;
};

}  // namespace

namespace detail {

std::optional<DialectOp> parse_dialect_op(std::string_view name) {
  if (name == "sattn.sparse_attention") return DialectOp::sparse_attention;
  if (name == "sattn.rvv_call") return DialectOp::rvv_call;
  if (name == "sattn.rocc_call") return DialectOp::rocc_call;
  return std::nullopt;
}

namespace {

// The per-spec flags of a backend call and the spec each one stands for.
constexpr std::pair<std::string_view, Spec> kCallFlags[] = {{"blg_enabled", Spec::block_local_global},
                                                            {"nm_enabled", Spec::nm_structured},
                                                            {"topk_enabled", Spec::topk_per_query},
                                                            {"lsh_enabled", Spec::lsh}};

std::string_view op_name(DialectOp kind) {
  switch (kind) {
    case DialectOp::rvv_call: return "sattn.rvv_call";
    case DialectOp::rocc_call: return "sattn.rocc_call";
    case DialectOp::sparse_attention: break;
  }
  return "sattn.sparse_attention";
}

}  // namespace

DialectOpBuilder::DialectOpBuilder(DialectOp kind, SourceLoc op_loc, size_t index, std::vector<std::string>* warnings)
    : kind_(kind), op_loc_(op_loc), builder_(std::move(op_loc), index, warnings) {}

void DialectOpBuilder::set(const std::string& name, const AttrValue& value, const SourceLoc& key_loc,
                           const SourceLoc& value_loc) {
  auto mismatch = [&](const char* expected) {
    throw_input_error(value_loc, "attribute '" + name + "': expected " + expected + ", got " + value.describe());
  };
  if (name == "selection") {
    if (value.kind != AttrValue::Kind::string) mismatch("a string");
    return;
  }
  const bool is_flag = std::any_of(std::begin(kCallFlags), std::end(kCallFlags), [&](auto& f) { return f.first == name; });
  if (!is_flag || kind_ == DialectOp::sparse_attention) return builder_.set(name, value, key_loc, value_loc);
  if (flags_.count(name)) throw_input_error(key_loc, "duplicate attribute '" + name + "'");
  bool flag = value.flag;
  if (value.kind == AttrValue::Kind::integer && !value.negative && value.magnitude <= 1)
    flag = value.magnitude == 1;
  else if (value.kind != AttrValue::Kind::boolean)
    mismatch("a boolean (true/false or 0/1)");
  flags_[name] = {flag, key_loc};
}

Op DialectOpBuilder::finish() {
  Op op = builder_.finish();
  if (kind_ == DialectOp::sparse_attention) return op;
  if (!op.forced_spec)
    throw_input_error(op_loc_, std::string(op_name(kind_)) + " needs a 'spec' attribute (the lowering passes write it)");
  for (const auto& [name, spec] : kCallFlags) {
    auto it = flags_.find(std::string(name));
    if (it == flags_.end() || it->second.first == (*op.forced_spec == spec)) continue;
    throw_input_error(it->second.second, "attribute '" + std::string(name) + "': " +
                                             (it->second.first ? "true" : "false") + " disagrees with spec '" +
                                             std::string(to_string(*op.forced_spec)) + "'");
  }
  return op;
}

}  // namespace detail

std::vector<Op> parse_mlir_ops(std::string_view text, const std::string& filename, std::vector<std::string>* warnings) {
  return MlirParser(text, filename, warnings).parse();
}

}  // namespace sattn
