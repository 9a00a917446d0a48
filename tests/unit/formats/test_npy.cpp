// .npy reading and writing. Fixtures come from tests/fixtures/npy/make_fixtures.py (numpy);
// the expected values below recompute that script's formulas.
#include <doctest/doctest.h>

#include <cmath>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>

#include "sattn/error.hpp"
#include "formats/npy.hpp"

using namespace sattn;

namespace {

const std::string kNpyDir = std::string(SATTN_FIXTURES_DIR) + "/npy/";
constexpr int kInvalidInput = int(ExitCode::invalid_input);

struct Failure {
  int code = -1;
  std::string file;
  std::string message;
};

template <class F>
Failure failure_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return {int(e.code()), e.loc().file, e.message()};
  }
  return {};
}

bool contains(const std::string& s, std::string_view part) {
  return s.find(part) != std::string::npos;
}

// A .npy file built by hand: magic, version 1.0, the given header dict (padded), then data.
std::vector<uint8_t> npy_bytes(const std::string& dict, size_t data_bytes, uint8_t major = 1) {
  std::string header = dict;
  const size_t length_size = major == 1 ? 2 : 4;
  while ((6 + 2 + length_size + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::vector<uint8_t> out = {0x93, 'N', 'U', 'M', 'P', 'Y', major, 0};
  for (size_t i = 0; i < length_size; ++i) out.push_back(uint8_t((header.size() >> (8 * i)) & 0xFF));
  out.insert(out.end(), header.begin(), header.end());
  out.resize(out.size() + data_bytes, 0);
  return out;
}

Failure parse_failure(const std::vector<uint8_t>& bytes) {
  return failure_of([&] { parse_npy(bytes, "mem.npy"); });
}

}  // namespace

TEST_CASE("npy: reads 4-D float32 arrays written by numpy") {
  NpyArray a = read_npy(kNpyDir + "f32_2x3x4x5.npy");
  CHECK(a.dtype == DType::f32);
  CHECK(a.shape == std::vector<int64_t>{2, 3, 4, 5});
  CHECK(a.size() == 120);
  auto values = a.as<float>();
  REQUIRE(values.size() == 120);
  for (size_t i = 0; i < values.size(); ++i) CHECK(values[i] == float(i) * 0.5f - 7.0f);

  Tensor t = npy_to_tensor(read_npy(kNpyDir + "f32_1x1x3x8.npy"), "f32_1x1x3x8.npy");
  CHECK(t.shape == std::array<int64_t, 4>{1, 1, 3, 8});
  for (int i = 0; i < 3; ++i)
    for (int d = 0; d < 8; ++d) CHECK(t.row(0, 0, i)[d] == float(i * 8 + d) / 8.0f);
}

TEST_CASE("npy: reads format versions 2.0 and 3.0") {
  for (const char* name : {"f32_v2.npy", "f32_v3.npy"}) {
    CAPTURE(name);
    NpyArray a = read_npy(kNpyDir + name);
    CHECK(a.shape == std::vector<int64_t>{2, 3, 4, 5});
    auto values = a.as<float>();
    REQUIRE(values.size() == 120);
    for (size_t i = 0; i < values.size(); ++i) CHECK(values[i] == float(i) * 0.5f - 7.0f);
  }
}

TEST_CASE("npy: reads int32, int8, uint8 and int64 arrays written by numpy") {
  NpyArray i32 = read_npy(kNpyDir + "i32_3x4.npy");
  CHECK(i32.dtype == DType::i32);
  CHECK(i32.shape == std::vector<int64_t>{3, 4});
  for (size_t i = 0; i < 12; ++i) CHECK(i32.as<int32_t>()[i] == int32_t(i) * 1000 - 5000);

  NpyArray i8 = read_npy(kNpyDir + "i8_256.npy");
  CHECK(i8.dtype == DType::i8);
  CHECK(i8.shape == std::vector<int64_t>{256});
  for (size_t i = 0; i < 256; ++i) CHECK(i8.as<int8_t>()[i] == int(i) - 128);

  NpyArray u8 = read_npy(kNpyDir + "u8_256.npy");
  CHECK(u8.dtype == DType::u8);
  for (size_t i = 0; i < 256; ++i) CHECK(u8.as<uint8_t>()[i] == i);

  NpyArray i64 = read_npy(kNpyDir + "i64_5.npy");
  CHECK(i64.dtype == DType::i64);
  for (size_t i = 0; i < 5; ++i) CHECK(i64.as<int64_t>()[i] == int64_t(i) * (int64_t(1) << 40) - 3);
}

TEST_CASE("npy: uint16 bfloat16 bits widen to their float values") {
  NpyArray a = read_npy(kNpyDir + "bf16_1x2x2x4.npy");
  CHECK(a.dtype == DType::u16);
  Tensor t = npy_to_tensor(a, "bf16_1x2x2x4.npy");
  CHECK(t.shape == std::array<int64_t, 4>{1, 2, 2, 4});
  REQUIRE(t.data.size() == 16);
  for (size_t i = 0; i < 16; ++i) CHECK(t.data[i] == (float(i) - 8.0f) * 0.25f);
}

TEST_CASE("npy: float16 widens exactly, subnormals and signed zero included") {
  NpyArray a = read_npy(kNpyDir + "f16_1x2x2x4.npy");
  CHECK(a.dtype == DType::f16);
  Tensor t = npy_to_tensor(a, "f16_1x2x2x4.npy");
  CHECK(t.shape == std::array<int64_t, 4>{1, 2, 2, 4});
  const float want[16] = {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, std::ldexp(1.0f, -14), std::ldexp(1.0f, -24),
                          std::ldexp(1.0f, -20), 0.333251953125f, -1000.0f, 0.5f, 3.140625f,
                          std::ldexp(1.0f, -15), -65504.0f, 1.5f, 100.0f};
  REQUIRE(t.data.size() == 16);
  for (size_t i = 0; i < 16; ++i) CHECK(t.data[i] == want[i]);
  CHECK(std::signbit(t.data[1]));
}

TEST_CASE("npy: float64 is rounded to the nearest float32") {
  NpyArray a = read_npy(kNpyDir + "f64_1x2x2x4.npy");
  CHECK(a.dtype == DType::f64);
  Tensor t = npy_to_tensor(a, "f64_1x2x2x4.npy");
  CHECK(t.shape == std::array<int64_t, 4>{1, 2, 2, 4});
  REQUIRE(t.data.size() == 16);
  for (size_t i = 0; i < 16; ++i) {
    const double want = (double(i) - 8) / 3 + 1e-9 * double(i);  // make_fixtures.py's formula
    CHECK(t.data[i] == static_cast<float>(want));
    // Nearest: no other float32 is closer to the double.
    CHECK(std::fabs(double(t.data[i]) - want) <= std::fabs(double(std::nextafter(t.data[i], 1e9f)) - want));
    CHECK(std::fabs(double(t.data[i]) - want) <= std::fabs(double(std::nextafter(t.data[i], -1e9f)) - want));
  }
  CHECK(npy_conversion_note(DType::f64) == "float64, rounded to float32");
  CHECK(npy_conversion_note(DType::f32).empty());
  CHECK(contains(npy_conversion_note(DType::u16), "bfloat16"));
}

TEST_CASE("npy: a float64 value beyond the float32 range is an input error naming the element") {
  Failure f = failure_of([] { npy_to_tensor(read_npy(kNpyDir + "f64_overflow.npy"), "f64_overflow.npy"); });
  CHECK(f.code == kInvalidInput);
  CHECK(f.file == "f64_overflow.npy");
  CHECK(contains(f.message, "element 2 (1e+39) is outside the float32 range"));
}

TEST_CASE("npy: 0-d and empty arrays") {
  NpyArray scalar = read_npy(kNpyDir + "f32_scalar.npy");
  CHECK(scalar.shape.empty());
  CHECK(scalar.size() == 1);
  CHECK(scalar.as<float>()[0] == 3.5f);
  NpyArray empty = read_npy(kNpyDir + "f32_empty.npy");
  CHECK(empty.shape == std::vector<int64_t>{0, 4});
  CHECK(empty.size() == 0);
  CHECK(empty.bytes.empty());
}

TEST_CASE("npy: every dtype survives serialize -> parse, with a 64-byte aligned header") {
  for (DType dtype : {DType::f32, DType::u16, DType::i8, DType::u8, DType::i32, DType::i64}) {
    CAPTURE(npy_descr(dtype));
    NpyArray a;
    a.dtype = dtype;
    a.shape = {2, 3, 1};
    a.bytes.resize(6 * dtype_size(dtype));
    for (size_t i = 0; i < a.bytes.size(); ++i) a.bytes[i] = uint8_t(i * 37 + 11);
    std::vector<uint8_t> file = serialize_npy(a);
    CHECK((file.size() - a.bytes.size()) % 64 == 0);
    NpyArray b = parse_npy(file, "rt.npy");
    CHECK(b.dtype == a.dtype);
    CHECK(b.shape == a.shape);
    CHECK(b.bytes == a.bytes);
  }
  // 1-D and 0-D shapes are written the way Python spells tuples.
  float one = 1.5f;
  std::vector<uint8_t> scalar = serialize_npy(make_npy(std::span<const float>(&one, 1), {}));
  std::string header(scalar.begin() + 10, scalar.end() - 4);
  CHECK(contains(header, "'shape': ()"));
  std::vector<uint8_t> vec = serialize_npy(make_npy(std::span<const float>(&one, 1), {1}));
  CHECK(contains(std::string(vec.begin() + 10, vec.end() - 4), "'shape': (1,)"));
}

TEST_CASE("npy: make_npy, tensor_to_npy and npy_to_tensor agree") {
  std::vector<int32_t> ints = {1, -2, 3, -4, 5, -6};
  NpyArray a = make_npy(std::span<const int32_t>(ints), {2, 3});
  CHECK(a.dtype == DType::i32);
  CHECK(std::vector<int32_t>(a.as<int32_t>().begin(), a.as<int32_t>().end()) == ints);
  std::vector<int64_t> longs = {int64_t(1) << 50, -7};
  CHECK(make_npy(std::span<const int64_t>(longs), {2}).as<int64_t>()[0] == int64_t(1) << 50);
  std::vector<float> wrong(5);
  CHECK(int(failure_of([&] { make_npy(std::span<const float>(wrong), {2, 3}); }).code) == int(ExitCode::runtime));

  Tensor t(1, 2, 3, 4);
  for (size_t i = 0; i < t.data.size(); ++i) t.data[i] = float(i) - 0.25f;
  NpyArray n = tensor_to_npy(t);
  CHECK(n.shape == std::vector<int64_t>{1, 2, 3, 4});
  Tensor back = npy_to_tensor(parse_npy(serialize_npy(n), "t.npy"), "t.npy");
  CHECK(back.shape == t.shape);
  CHECK(back.data == t.data);
}

TEST_CASE("npy: write_npy writes the file atomically and read_npy reads it back") {
  auto dir = std::filesystem::temp_directory_path() / ("sattn_npy_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::string path = (dir / "a.npy").string();
  std::vector<float> values = {0.5f, -1.0f, 2.0f, 4.0f};
  write_npy(path, make_npy(std::span<const float>(values), {1, 1, 2, 2}));
  NpyArray a = read_npy(path);
  CHECK(a.shape == std::vector<int64_t>{1, 1, 2, 2});
  CHECK(std::vector<float>(a.as<float>().begin(), a.as<float>().end()) == values);
  int entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++entries;
  CHECK(entries == 1);  // no temporary file left behind
  std::filesystem::remove_all(dir);
}

TEST_CASE("npy: header keys in any order, either quote style, Python 2 longs") {
  auto bytes = npy_bytes("{'shape': (2L, 2L), \"fortran_order\": False, 'descr': '<i4'}", 16);
  NpyArray a = parse_npy(bytes, "mem.npy");
  CHECK(a.dtype == DType::i32);
  CHECK(a.shape == std::vector<int64_t>{2, 2});
  CHECK(parse_npy(npy_bytes("{'descr': '<i1', 'fortran_order': False, 'shape': (3,), }", 3), "m").dtype == DType::i8);
  CHECK(parse_npy(npy_bytes("{'descr': '|u1', 'fortran_order': False, 'shape': (3,)}", 3, 2), "m").size() == 3);
}

TEST_CASE("npy: bad magic and unknown versions") {
  std::vector<uint8_t> text = {'h', 'e', 'l', 'l', 'o', ',', ' ', 'w', 'o', 'r', 'l', 'd'};
  Failure f = parse_failure(text);
  CHECK(f.code == kInvalidInput);
  CHECK(f.file == "mem.npy");
  CHECK(contains(f.message, "bad magic"));
  CHECK(contains(parse_failure({}).message, "bad magic"));
  auto v9 = npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", 4);
  v9[6] = 9;
  CHECK(contains(parse_failure(v9).message, "unsupported .npy format version 9.0"));
}

TEST_CASE("npy: truncated header") {
  auto bytes = npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", 0);
  bytes.resize(40);
  Failure f = parse_failure(bytes);
  CHECK(f.code == kInvalidInput);
  CHECK(contains(f.message, "truncated .npy header"));
  CHECK(contains(parse_failure({0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 5}).message, "truncated .npy header"));
}

TEST_CASE("npy: truncated data (fixture cut short by numpy's script)") {
  std::string path = kNpyDir + "bad_truncated.npy";
  Failure f = failure_of([&] { read_npy(path); });
  CHECK(f.code == kInvalidInput);
  CHECK(f.file == path);
  CHECK(contains(f.message, "truncated data"));
  CHECK(contains(f.message, "needs 480 bytes, 470 present"));
}

TEST_CASE("npy: data longer than the shape") {
  Failure f = parse_failure(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", 12));
  CHECK(f.code == kInvalidInput);
  CHECK(contains(f.message, "4 extra bytes"));
}

TEST_CASE("npy: huge declared shapes are rejected before any allocation") {
  // 2^62 * 2^62 elements overflows int64; 2^61 float32 elements overflow the byte count.
  Failure overflow = parse_failure(
      npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4611686018427387904)}", 8));
  CHECK(overflow.code == kInvalidInput);
  CHECK(contains(overflow.message, "too large"));
  Failure bytes_overflow =
      parse_failure(npy_bytes("{'descr': '<i8', 'fortran_order': False, 'shape': (4611686018427387904,)}", 8));
  CHECK(contains(bytes_overflow.message, "too large"));
  Failure big = parse_failure(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 1024)}", 8));
  CHECK(contains(big.message, "truncated data"));
  Failure dim =
      parse_failure(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", 8));
  CHECK(contains(dim.message, "too large"));
}

TEST_CASE("npy: Fortran-order arrays are rejected") {
  Failure f = failure_of([] { read_npy(kNpyDir + "bad_fortran.npy"); });
  CHECK(f.code == kInvalidInput);
  CHECK(f.file == kNpyDir + "bad_fortran.npy");
  CHECK(contains(f.message, "Fortran-order"));
}

TEST_CASE("npy: big-endian data is rejected, naming the dtype") {
  Failure f = failure_of([] { read_npy(kNpyDir + "bad_big_endian.npy"); });
  CHECK(f.code == kInvalidInput);
  CHECK(contains(f.message, "big-endian dtype '>f4'"));
}

TEST_CASE("npy: unsupported dtypes are rejected, naming the dtype") {
  Failure f = failure_of([] { read_npy(kNpyDir + "bad_complex64.npy"); });
  CHECK(f.code == kInvalidInput);
  CHECK(contains(f.message, "unsupported dtype '<c8'"));
  CHECK(contains(f.message, "<f8"));  // the list of supported dtypes names float64
  Failure structured = parse_failure(npy_bytes("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}", 4));
  CHECK(contains(structured.message, "structured arrays are not supported"));
}

TEST_CASE("npy: object arrays are rejected") {
  Failure f = failure_of([] { read_npy(kNpyDir + "bad_object.npy"); });
  CHECK(f.code == kInvalidInput);
  CHECK(contains(f.message, "object arrays"));
}

TEST_CASE("npy: malformed header dicts") {
  CHECK(contains(parse_failure(npy_bytes("{'descr': '<f4', 'fortran_order': False}", 4)).message,
                 "'descr', 'fortran_order' and 'shape' are all required"));
  CHECK(contains(parse_failure(npy_bytes("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,)}", 4)).message,
                 "expected True or False"));
  CHECK(contains(parse_failure(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}", 4)).message,
                 "bad .npy header"));
  CHECK(contains(parse_failure(npy_bytes("not a dict", 4)).message, "bad .npy header"));
  CHECK(contains(parse_failure(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} x", 4)).message,
                 "unexpected text after the header dict"));
}

TEST_CASE("npy: npy_to_tensor needs a 4-D float32 or bf16 array") {
  Failure rank = failure_of([] { npy_to_tensor(read_npy(kNpyDir + "i32_3x4.npy"), "i32_3x4.npy"); });
  CHECK(rank.code == kInvalidInput);
  CHECK(rank.file == "i32_3x4.npy");
  CHECK(contains(rank.message, "got int32 with shape (3, 4)"));
  Failure not_4d = failure_of([] { npy_to_tensor(read_npy(kNpyDir + "f32_scalar.npy"), "s.npy"); });
  CHECK(contains(not_4d.message, "expected a 4-D float32"));
}
