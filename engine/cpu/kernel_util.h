// engine/cpu/kernel_util.h: small helpers shared by the CPU kernel files: dtype dispatch over
// f32/f64, the argument contract of flat-buffer kernels, and typed data pointers.
#pragma once
#include <string>

#include "engine/cpu/cpu_backend.h"

namespace polyhead::cpu {

// Calls f with a null pointer of the element type (float* or double*); other dtypes are an error.
template <class F>
void dispatch_float(DType t, const char* op, F&& f) {
  if (t == DType::f32) f(static_cast<float*>(nullptr));
  else if (t == DType::f64) f(static_cast<double*>(nullptr));
  else throw Error(op, std::string("dtype ") + dtype_name(t) + " not supported", "use f32 or f64");
}

// t must be a defined, contiguous CPU tensor of dtype dt with n elements.
inline void expect(const Tensor& t, DType dt, int64_t n, const char* op, const char* name) {
  PH_CHECK(t.defined(), op, name << " is undefined");
  PH_CHECK(t.device().is_cpu(), op, name << " must be on the cpu, got " << t.str());
  PH_CHECK(t.dtype() == dt, op, name << " must be " << dtype_name(dt) << ", got " << t.str());
  PH_CHECK(t.is_contiguous(), op, name << " must be contiguous, got " << t.str());
  PH_CHECK(t.numel() == n, op, name << " must have " << n << " elements, got " << t.str());
}

// Typed data pointers (nullptr for an undefined tensor).
template <class T> const T* cptr(const Tensor& t) { return t.defined() ? static_cast<const T*>(t.raw()) : nullptr; }
template <class T> T* mptr(Tensor& t) { return t.defined() ? static_cast<T*>(t.raw()) : nullptr; }

}  // namespace polyhead::cpu
