// .npy files (NumPy format 1.0/2.0/3.0): a magic string, a version, a header length, a Python
// dict literal {'descr': ..., 'fortran_order': ..., 'shape': (...)}, then the raw data.
// Sizes in a file are untrusted: every product is checked for overflow and against the bytes
// actually present before anything is allocated.
#include "formats/npy.hpp"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>
#include <string_view>

#include "sattn/error.hpp"
#include "support/io.hpp"
#include "core/quant.hpp"

namespace sattn {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;

struct DTypeName {
  DType dtype;
  std::string_view descr;
};
constexpr DTypeName kDTypes[] = {{DType::f32, "<f4"}, {DType::u16, "<u2"}, {DType::i8, "|i1"}, {DType::u8, "|u1"},
                                 {DType::i32, "<i4"}, {DType::i64, "<i8"}, {DType::f16, "<f2"}, {DType::f64, "<f8"},
                                 {DType::i16, "<i2"}};

// IEEE 754 binary16 to float32: exact (every half value is a float value).
float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);  // inf, NaN
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);  // normal: rebias 15 -> 127
  } else if (mant == 0) {
    bits = sign;  // +-0
  } else {  // subnormal: normalize
    int e = -1;
    uint32_t m = mant;
    do {
      ++e;
      m <<= 1;
    } while ((m & 0x400u) == 0);
    bits = sign | (uint32_t(112 - e) << 23) | ((m & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

std::string dtype_list() {
  std::string s;
  for (const auto& d : kDTypes) s += (s.empty() ? "" : ", ") + std::string(d.descr);
  return s;
}

// Tokenizer for the header's dict literal: strings, True/False, integers, punctuation.
class HeaderParser {
 public:
  // `offset`: where the header text starts in the file, so errors give the byte they stopped at.
  HeaderParser(std::string_view text, const std::string& file, size_t offset)
      : text_(text), file_(file), offset_(offset) {}

  struct Header {
    std::optional<std::string> descr;
    std::optional<bool> fortran_order;
    std::optional<std::vector<int64_t>> shape;
  };

  Header parse() {
    Header h;
    expect('{');
    while (!peek_is('}')) {
      std::string key = parse_string();
      expect(':');
      if (key == "descr") {
        if (peek_is('['))
          fail("unsupported dtype: structured arrays are not supported (supported: " + dtype_list() + ")");
        h.descr = parse_string();
      } else if (key == "fortran_order") {
        h.fortran_order = parse_bool();
      } else if (key == "shape") {
        h.shape = parse_shape();
      } else {
        fail("unknown header key '" + key + "'");
      }
      if (!peek_is(',')) break;
      expect(',');
    }
    expect('}');
    skip_space();
    if (pos_ != text_.size()) fail("unexpected text after the header dict");
    return h;
  }

 private:
  [[noreturn]] void fail(const std::string& what) {
    throw_input_error(SourceLoc{file_}, "bad .npy header at byte " + std::to_string(offset_ + pos_) + ": " + what);
  }
  void skip_space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\n' || text_[pos_] == '\t')) ++pos_;
  }
  bool peek_is(char c) {
    skip_space();
    return pos_ < text_.size() && text_[pos_] == c;
  }
  void expect(char c) {
    if (!peek_is(c)) fail(std::string("expected '") + c + "'");
    ++pos_;
  }
  std::string parse_string() {
    skip_space();
    if (pos_ >= text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"')) fail("expected a quoted string");
    char quote = text_[pos_++];
    size_t end = text_.find(quote, pos_);
    if (end == std::string_view::npos) fail("unterminated string");
    std::string s(text_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return s;
  }
  bool parse_bool() {
    skip_space();
    for (auto [word, value] :
         {std::pair{std::string_view("True"), true}, std::pair{std::string_view("False"), false}}) {
      if (text_.substr(pos_, word.size()) == word) {
        pos_ += word.size();
        return value;
      }
    }
    fail("expected True or False for 'fortran_order'");
  }
  std::vector<int64_t> parse_shape() {
    std::vector<int64_t> shape;
    expect('(');
    while (!peek_is(')')) {
      size_t start = pos_;
      uint64_t dim = 0;
      while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
        unsigned digit = unsigned(text_[pos_] - '0');
        if (dim > (uint64_t(std::numeric_limits<int64_t>::max()) - digit) / 10) fail("shape dimension too large");
        dim = dim * 10 + digit;
        ++pos_;
      }
      if (pos_ == start) fail("expected a non-negative integer in 'shape'");
      if (pos_ < text_.size() && text_[pos_] == 'L') ++pos_;  // Python 2 longs: (3L, 4L)
      shape.push_back(static_cast<int64_t>(dim));
      if (!peek_is(',')) break;
      expect(',');
    }
    expect(')');
    return shape;
  }

  std::string_view text_;
  const std::string& file_;
  size_t offset_ = 0;
  size_t pos_ = 0;
};

DType dtype_from_descr(const std::string& descr, const std::string& file) {
  for (const auto& d : kDTypes)
    if (d.descr == descr) return d.dtype;
  // Single-byte types have no byte order: numpy writes '|', but '<' and '>' mean the same.
  if (descr.size() == 3 && (descr[0] == '<' || descr[0] == '>' || descr[0] == '=') && descr[2] == '1') {
    if (descr[1] == 'i') return DType::i8;
    if (descr[1] == 'u') return DType::u8;
  }
  if (descr.find('O') != std::string::npos)
    throw_input_error(SourceLoc{file}, "object arrays (dtype '" + descr + "') are not supported");
  if (!descr.empty() && descr[0] == '>')
    throw_input_error(SourceLoc{file}, "big-endian dtype '" + descr + "' is not supported (save it with arr.astype('<" +
                                           descr.substr(1) + "'))");
  throw_input_error(SourceLoc{file}, "unsupported dtype '" + descr + "' (supported: " + dtype_list() + ")");
}

uint32_t read_le(const uint8_t* p, size_t n) {
  uint32_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= uint32_t(p[i]) << (8 * i);
  return v;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

// Element count of `shape`, or nullopt if it overflows int64.
std::optional<int64_t> checked_product(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return std::nullopt;
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d) return std::nullopt;
    n *= d;
  }
  return n;
}

}  // namespace

std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::f64: return "float64";
    case DType::f32: return "float32";
    case DType::u16: return "uint16";
    case DType::i16: return "int16";
    case DType::f16: return "float16";
    case DType::i8: return "int8";
    case DType::u8: return "uint8";
    case DType::i32: return "int32";
    case DType::i64: return "int64";
  }
  return "?";
}

namespace {

template <class T>
NpyArray make_from(std::span<const T> values, std::vector<int64_t> shape, DType dtype) {
  auto count = checked_product(shape);
  if (!count || static_cast<uint64_t>(*count) != values.size())
    throw_runtime_error("make_npy: shape " + shape_text(shape) + " does not hold " + std::to_string(values.size()) +
                        " elements");
  NpyArray a;
  a.dtype = dtype;
  a.shape = std::move(shape);
  a.bytes.resize(values.size_bytes());
  if (!values.empty()) std::memcpy(a.bytes.data(), values.data(), values.size_bytes());
  return a;
}

}  // namespace

std::string_view npy_descr(DType t) {
  for (const auto& d : kDTypes)
    if (d.dtype == t) return d.descr;
  return "?";
}

size_t dtype_size(DType t) {
  switch (t) {
    case DType::i8:
    case DType::u8: return 1;
    case DType::u16:
    case DType::i16:
    case DType::f16: return 2;
    case DType::f32:
    case DType::i32: return 4;
    case DType::i64:
    case DType::f64: return 8;
  }
  return 1;
}

int64_t NpyArray::size() const {
  return checked_product(shape).value_or(-1);
}

NpyArray parse_npy(std::span<const uint8_t> bytes, const std::string& filename) {
  const SourceLoc loc{filename};
  if (bytes.size() < kMagicSize + 2 || std::memcmp(bytes.data(), kMagic, kMagicSize) != 0)
    throw_input_error(loc, "not a .npy file (bad magic in bytes 0-7)");
  const unsigned major = bytes[6], minor = bytes[7];
  if (major < 1 || major > 3 || minor != 0)
    throw_input_error(loc, "unsupported .npy format version " + std::to_string(major) + "." + std::to_string(minor));
  const size_t length_size = major == 1 ? 2 : 4;
  const size_t prefix = kMagicSize + 2 + length_size;
  if (bytes.size() < prefix)
    throw_input_error(loc, "truncated .npy header: the file ends at byte " + std::to_string(bytes.size()) +
                               ", before the header length (bytes 8-" + std::to_string(prefix - 1) + ")");
  const size_t header_len = read_le(bytes.data() + kMagicSize + 2, length_size);
  if (bytes.size() - prefix < header_len)
    throw_input_error(loc, "truncated .npy header (declares " + std::to_string(header_len) + " bytes, " +
                               std::to_string(bytes.size() - prefix) + " present): the file ends at byte " +
                               std::to_string(bytes.size()));
  std::string_view header(reinterpret_cast<const char*>(bytes.data() + prefix), header_len);
  HeaderParser::Header h = HeaderParser(header, filename, prefix).parse();
  if (!h.descr || !h.fortran_order || !h.shape)
    throw_input_error(loc, "bad .npy header: 'descr', 'fortran_order' and 'shape' are all required");
  if (*h.fortran_order)
    throw_input_error(loc, "Fortran-order arrays are not supported (save np.ascontiguousarray(arr) instead)");

  NpyArray a;
  a.dtype = dtype_from_descr(*h.descr, filename);
  a.shape = std::move(*h.shape);
  const size_t data_size = bytes.size() - prefix - header_len;
  const auto count = checked_product(a.shape);
  const size_t item = dtype_size(a.dtype);
  if (!count || static_cast<uint64_t>(*count) > std::numeric_limits<uint64_t>::max() / item)
    throw_input_error(loc, "shape " + shape_text(a.shape) + " is too large");
  const uint64_t expected = static_cast<uint64_t>(*count) * item;
  if (expected > data_size)
    throw_input_error(loc, "truncated data: shape " + shape_text(a.shape) + " of " + std::string(npy_descr(a.dtype)) +
                               " needs " + std::to_string(expected) + " bytes, " + std::to_string(data_size) +
                               " present (the data starts at byte " + std::to_string(prefix + header_len) +
                               ", the file ends at byte " + std::to_string(bytes.size()) + ")");
  if (expected < data_size)
    throw_input_error(loc, "data size does not match shape " + shape_text(a.shape) + ": " +
                               std::to_string(data_size - expected) + " extra bytes from byte " +
                               std::to_string(prefix + header_len + expected));
  a.bytes.assign(bytes.begin() + static_cast<std::ptrdiff_t>(prefix + header_len), bytes.end());
  return a;
}

NpyArray read_npy(const std::string& path) {
  // A regular file is bounded by its size (and its shape by the memory estimate); a pipe by the
  // input limit. Devices are refused by InputFile.
  InputFile in(path);
  std::string contents = in.read_all(in.regular() ? 0 : input_limit());
  std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(contents.data()), contents.size());
  return parse_npy(bytes, path == "-" ? "<stdin>" : path);
}

std::string npy_header(DType dtype, const std::vector<int64_t>& shape) {
  std::string dict = "{'descr': '" + std::string(npy_descr(dtype)) +
                     "', 'fortran_order': False, 'shape': " + shape_text(shape) + ", }";
  // Pad with spaces and end with '\n' so that the data starts on a 64-byte boundary.
  const size_t length_size = dict.size() + 1 + kMagicSize + 4 > 65535 ? 4 : 2;
  const size_t prefix = kMagicSize + 2 + length_size;
  const size_t total = (prefix + dict.size() + 1 + 63) / 64 * 64;
  dict.append(total - prefix - dict.size() - 1, ' ');
  dict += '\n';

  std::string out(kMagic, kMagicSize);
  out += char(length_size == 2 ? 1 : 2);  // version 1.0, or 2.0 for a huge header
  out += char(0);
  for (size_t i = 0; i < length_size; ++i) out += static_cast<char>((dict.size() >> (8 * i)) & 0xFF);
  return out + dict;
}

std::vector<uint8_t> serialize_npy(const NpyArray& a) {
  auto count = checked_product(a.shape);
  if (!count || static_cast<uint64_t>(*count) * dtype_size(a.dtype) != a.bytes.size())
    throw_runtime_error("serialize_npy: shape " + shape_text(a.shape) + " does not match " +
                        std::to_string(a.bytes.size()) + " bytes of data");
  const std::string header = npy_header(a.dtype, a.shape);
  std::vector<uint8_t> out(header.begin(), header.end());
  out.insert(out.end(), a.bytes.begin(), a.bytes.end());
  return out;
}

void write_npy(const std::string& path, const NpyArray& a) {
  std::vector<uint8_t> bytes = serialize_npy(a);
  write_atomic(path, std::string(bytes.begin(), bytes.end()));
}

NpyArray make_npy(std::span<const float> v, std::vector<int64_t> shape) {
  return make_from(v, std::move(shape), DType::f32);
}
NpyArray make_npy(std::span<const int32_t> v, std::vector<int64_t> shape) {
  return make_from(v, std::move(shape), DType::i32);
}
NpyArray make_npy(std::span<const int64_t> v, std::vector<int64_t> shape) {
  return make_from(v, std::move(shape), DType::i64);
}

NpyArray tensor_to_npy(const Tensor& t) {
  return make_npy(std::span<const float>(t.data), {t.shape[0], t.shape[1], t.shape[2], t.shape[3]});
}

Tensor npy_to_tensor(const NpyArray& a, const std::string& filename) {
  if (a.shape.size() != 4 ||
      (a.dtype != DType::f32 && a.dtype != DType::u16 && a.dtype != DType::f16 && a.dtype != DType::f64))
    throw_input_error(SourceLoc{filename}, "expected a 4-D float32 (or float16, float64, or uint16 bfloat16) array, got " +
                                               std::string(dtype_name(a.dtype)) + " with shape " + shape_text(a.shape));
  auto count = checked_product(a.shape);
  if (!count || static_cast<uint64_t>(*count) * dtype_size(a.dtype) != a.bytes.size())
    throw_input_error(SourceLoc{filename}, "array data does not match its shape " + shape_text(a.shape));
  Tensor t(a.shape[0], a.shape[1], a.shape[2], a.shape[3]);
  if (a.dtype == DType::f32) {
    if (!t.data.empty()) std::memcpy(t.data.data(), a.bytes.data(), a.bytes.size());
  } else if (a.dtype == DType::f16) {
    std::span<const uint16_t> bits = a.as<uint16_t>();
    for (size_t i = 0; i < bits.size(); ++i) t.data[i] = half_to_float(bits[i]);
  } else if (a.dtype == DType::f64) {
    for (size_t i = 0; i < t.data.size(); ++i) {
      double d;
      std::memcpy(&d, a.bytes.data() + i * sizeof d, sizeof d);  // the data need not be 8-byte aligned
      // A finite double that rounds to inf would otherwise read as "element n is Inf".
      t.data[i] = float(d);
      if (std::isfinite(d) && std::isinf(t.data[i])) {
        char text[32];
        std::snprintf(text, sizeof text, "%.6g", d);
        throw_input_error(SourceLoc{filename}, "element " + std::to_string(i) + " (" + text +
                                                   ") is outside the float32 range (float64 data is rounded to float32)");
      }
    }
  } else {
    std::span<const uint16_t> bits = a.as<uint16_t>();
    for (size_t i = 0; i < bits.size(); ++i) t.data[i] = bf16_to_float(bits[i]);
  }
  return t;
}

std::string npy_conversion_note(DType t) {
  switch (t) {
    case DType::f64: return "float64, rounded to float32";
    case DType::f16: return "float16, widened to float32 (exact)";
    case DType::u16: return "uint16, read as bfloat16 bit patterns (the upper 16 bits of float32) and widened (exact)";
    default: return "";
  }
}

}  // namespace sattn
