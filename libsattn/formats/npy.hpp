// .npy files (NumPy format 1.0/2.0/3.0, little-endian, C order), read and written.
// dtypes: float32 '<f4', float16 '<f2' (read, widened exactly to float32), float64 '<f8' (read,
// rounded to the nearest float32), bfloat16 stored as uint16 '<u2' (numpy has no bfloat16: the
// array holds the upper 16 bits of each float32), int8 '|i1', uint8 '|u1', int32 '<i4', int64 '<i8'.
// Fortran order, big-endian data and other dtypes are input errors.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "sattn/tensor.hpp"

namespace sattn {

enum class DType { f32, u16, i8, u8, i32, i64, f16, f64, i16 };
std::string_view dtype_name(DType);  // "float32", "uint16", ...
std::string_view npy_descr(DType);  // "<f4", ...
size_t dtype_size(DType);

struct NpyArray {
  DType dtype = DType::f32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;  // raw little-endian element data
  int64_t size() const;        // number of elements

  template <class T>
  std::span<const T> as() const {
    return {reinterpret_cast<const T*>(bytes.data()), bytes.size() / sizeof(T)};
  }
};

// Throws Error(invalid_input) with the file name for malformed, truncated or unsupported files
// (including a declared shape whose size does not match the data), Error(runtime) for I/O.
NpyArray read_npy(const std::string& path);
NpyArray parse_npy(std::span<const uint8_t> bytes, const std::string& filename);
std::vector<uint8_t> serialize_npy(const NpyArray&);
// The header alone (magic, version, dict, padding so data starts on a 64-byte boundary), for
// writers that stream the data after it.
std::string npy_header(DType, const std::vector<int64_t>& shape);
// Written atomically (temporary file + rename).
void write_npy(const std::string& path, const NpyArray&);

NpyArray make_npy(std::span<const float>, std::vector<int64_t> shape);
NpyArray make_npy(std::span<const int32_t>, std::vector<int64_t> shape);
NpyArray make_npy(std::span<const int64_t>, std::vector<int64_t> shape);
NpyArray tensor_to_npy(const Tensor&);
// A 4-D float32 array as a Tensor; float16 and uint16 bf16 bits are widened exactly, float64 is
// rounded to nearest (a finite value beyond the float32 range is an input error naming the file
// and element). Other ranks or dtypes are input errors naming the file.
Tensor npy_to_tensor(const NpyArray&, const std::string& filename);
// What npy_to_tensor does to an array of this dtype, for the one note a tool prints per user file
// ("float64, rounded to float32"); empty for float32, which is read as is.
std::string npy_conversion_note(DType);

}  // namespace sattn
