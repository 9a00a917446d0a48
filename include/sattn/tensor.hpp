// A dense float tensor shaped [batch, heads, len, head_dim], C order.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

namespace sattn {

struct Tensor {
  std::array<int64_t, 4> shape{0, 0, 0, 0};  // batch, heads, len, head_dim
  std::vector<float> data;

  Tensor() = default;
  Tensor(int64_t batch, int64_t heads, int64_t len, int64_t dim)
      : shape{batch, heads, len, dim}, data(static_cast<size_t>(batch * heads * len * dim), 0.0f) {}

  int64_t batch() const { return shape[0]; }
  int64_t heads() const { return shape[1]; }
  int64_t len() const { return shape[2]; }
  int64_t dim() const { return shape[3]; }
  // Pointer to row `i` of head `h` in batch `b` (head_dim contiguous floats).
  float* row(int64_t b, int64_t h, int64_t i) { return data.data() + ((b * shape[1] + h) * shape[2] + i) * shape[3]; }
  const float* row(int64_t b, int64_t h, int64_t i) const {
    return data.data() + ((b * shape[1] + h) * shape[2] + i) * shape[3];
  }
};

// Non-owning view of a C-order contiguous [batch, heads, len, head_dim] float array (a Tensor, or
// caller memory such as a numpy/PyTorch buffer). Views never copy; the memory must outlive them.
struct TensorView {
  std::array<int64_t, 4> shape{0, 0, 0, 0};
  const float* data = nullptr;

  TensorView() = default;
  TensorView(const Tensor& t) : shape(t.shape), data(t.data.data()) {}  // NOLINT: implicit on purpose
  TensorView(const float* d, std::array<int64_t, 4> s) : shape(s), data(d) {}

  int64_t batch() const { return shape[0]; }
  int64_t heads() const { return shape[1]; }
  int64_t len() const { return shape[2]; }
  int64_t dim() const { return shape[3]; }
  int64_t size() const { return shape[0] * shape[1] * shape[2] * shape[3]; }
  const float* row(int64_t b, int64_t h, int64_t i) const { return data + ((b * shape[1] + h) * shape[2] + i) * shape[3]; }
};

// The writable twin of TensorView (outputs, gradients).
struct MutableTensorView {
  std::array<int64_t, 4> shape{0, 0, 0, 0};
  float* data = nullptr;

  MutableTensorView() = default;
  MutableTensorView(Tensor& t) : shape(t.shape), data(t.data.data()) {}  // NOLINT: implicit on purpose
  MutableTensorView(float* d, std::array<int64_t, 4> s) : shape(s), data(d) {}

  int64_t size() const { return shape[0] * shape[1] * shape[2] * shape[3]; }
  float* row(int64_t b, int64_t h, int64_t i) const { return data + ((b * shape[1] + h) * shape[2] + i) * shape[3]; }
  operator TensorView() const { return TensorView(data, shape); }  // NOLINT
};

// One op's inputs.
struct QKV {
  Tensor q, k, v;  // q: [batch, heads, seq_len, head_dim]; k, v: [batch, kv_heads, kv_len, head_dim]
};

}  // namespace sattn
