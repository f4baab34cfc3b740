// engine/tensor.h: Tensor, an n-dimensional strided view over refcounted Storage. No autograd here.
//
// Contract:
//   - shape() and strides() have the same length (the rank); strides count elements, may be 0
//     (broadcast) and are never negative; offset() counts elements from the storage start.
//   - Views (reshape of contiguous data, view, transpose, permute, narrow/slice, expand, squeeze,
//     unsqueeze) share storage; contiguous(), clone() and to() copy when needed.
//   - A default-constructed Tensor is undefined (defined() == false); any op on it throws.
//   - Functions that compute (add, matmul, ...) live in engine/ops.h and dispatch on the device.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "engine/device.h"
#include "engine/dtype.h"
#include "engine/error.h"
#include "engine/storage.h"

namespace polyhead {

using Shape = std::vector<int64_t>;

class Tensor {
public:
  Tensor() = default;
  // Fresh uninitialised contiguous tensor.
  static Tensor empty(const Shape& shape, DType dt = DType::f32, Device dev = Device::cpu());

  // Factories.
  static Tensor zeros(const Shape& shape, DType dt = DType::f32, Device dev = Device::cpu());
  static Tensor ones(const Shape& shape, DType dt = DType::f32, Device dev = Device::cpu());
  static Tensor full(const Shape& shape, double value, DType dt = DType::f32, Device dev = Device::cpu());
  static Tensor arange(double start, double end, double step = 1.0, DType dt = DType::f32, Device dev = Device::cpu());
  // rand: U[0,1); randn: N(0,1), drawn from the global generator (see engine/rng.h).
  static Tensor rand(const Shape& shape, DType dt = DType::f32, Device dev = Device::cpu());
  static Tensor randn(const Shape& shape, DType dt = DType::f32, Device dev = Device::cpu());
  template <class T>
  static Tensor from_vector(const std::vector<T>& v, const Shape& shape, Device dev = Device::cpu());
  template <class T>
  static Tensor from_vector(const std::vector<T>& v) { return from_vector(v, {int64_t(v.size())}); }
  static Tensor scalar(double v, DType dt = DType::f32, Device dev = Device::cpu()) { return full({}, v, dt, dev); }
  // A view of memory owned elsewhere (must outlive the tensor).
  static Tensor from_blob(void* data, const Shape& shape, DType dt, Device dev = Device::cpu());

  // Metadata.
  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  int64_t size(int dim) const { return shape_[wrap_dim(dim)]; }
  int64_t stride(int dim) const { return strides_[wrap_dim(dim)]; }
  int dim() const { return int(shape_.size()); }
  int64_t numel() const;
  int64_t offset() const { return offset_; }
  DType dtype() const { return dtype_; }
  Device device() const;
  size_t itemsize() const { return dtype_size(dtype_); }
  bool is_contiguous() const;
  const StoragePtr& storage() const { return storage_; }
  // Pointer to the first element (storage data + offset).
  void* raw() const;
  template <class T> T* data() const { check_dtype(dtype_of<T>::value, "data"); return static_cast<T*>(raw()); }
  int wrap_dim(int d) const;
  std::string str() const;  // "Tensor[f32, cpu, [2, 3]]"

  // Views (share storage).
  Tensor view(const Shape& shape) const;           // requires compatible strides (contiguous)
  Tensor reshape(const Shape& shape) const;        // view when possible, else copy; one -1 allowed
  Tensor flatten(int start = 0, int end = -1) const;
  Tensor transpose(int a, int b) const;
  Tensor t() const { return transpose(0, 1); }
  Tensor permute(const std::vector<int>& dims) const;
  Tensor narrow(int dim, int64_t start, int64_t length) const;
  Tensor slice(int dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor select(int dim, int64_t index) const;     // removes dim
  Tensor expand(const Shape& shape) const;         // broadcasting view (-1 keeps a size)
  Tensor squeeze(int dim) const;
  Tensor squeeze() const;
  Tensor unsqueeze(int dim) const;
  Tensor as_strided(const Shape& shape, const Shape& strides, int64_t offset) const;

  // Copies.
  Tensor contiguous() const;
  Tensor clone() const;
  Tensor to(Device dev) const;
  Tensor to(DType dt) const;
  // A contiguous copy in page-locked host memory from the backend of `accel` (pinned staging):
  // to(accel) from it does not wait for the copy. Where that backend has no page-locked memory
  // (CPU-only build, no GPU) the result is an ordinary contiguous copy (is_pinned() false).
  Tensor pin_memory(Device accel = Device::cuda(0)) const;
  bool is_pinned() const;
  void copy_(const Tensor& src);  // src broadcast to this shape, dtype converted
  void fill_(double v);
  void zero_() { fill_(0.0); }

  // Scalar access (copies one element to the host).
  double item() const;
  template <class T> std::vector<T> to_vector() const;

  void check_dtype(DType want, const char* op) const;
  void check_defined(const char* op) const;

private:
  StoragePtr storage_;
  Shape shape_, strides_;
  int64_t offset_ = 0;
  DType dtype_ = DType::f32;
};

Shape contiguous_strides(const Shape& shape);
int64_t shape_numel(const Shape& shape);
// Broadcast two shapes (numpy rules); throws naming `op` when incompatible.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

template <class T>
Tensor Tensor::from_vector(const std::vector<T>& v, const Shape& shape, Device dev) {
  PH_CHECK(int64_t(v.size()) == shape_numel(shape), "Tensor::from_vector",
           "vector has " << v.size() << " elements, shape " << shape_str(shape) << " needs " << shape_numel(shape));
  Tensor host = from_blob(const_cast<T*>(v.data()), shape, dtype_of<T>::value);
  return dev.is_cpu() ? host.clone() : host.to(dev);
}

template <class T> std::vector<T> Tensor::to_vector() const {
  Tensor c = to(Device::cpu()).to(dtype_of<T>::value).contiguous();
  const T* p = static_cast<const T*>(c.raw());
  return std::vector<T>(p, p + c.numel());
}

}  // namespace polyhead
