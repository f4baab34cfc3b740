// engine/cuda/cuda_elementwise.cu: copies (strided, dtype-converting), fill, arange, Philox random
// numbers, unary / binary / where with broadcasting strides, dropout masks, the SGD and Adam
// updates, and small launchers shared with other files (bias add, matrix scale).
//
// Every output element is written by exactly one thread; nothing is accumulated across threads.
// Strided operands: dims are coalesced as on the CPU; up to 8 dims go to one launch (more are
// iterated on the host); a launch whose operands are all contiguous indexes them directly.
// Philox values use rng.h's PH_HD functions and round-to-nearest intrinsics for the affine maps
// (no FMA contraction), so uniform numbers and dropout masks are bit-identical to the CPU's.
#include <cuda_runtime.h>

#include <cmath>

#include "engine/cuda/cuda_kernels.cuh"
#include "engine/rng.h"

namespace polyhead::cuda {

namespace {

__global__ void probe_kernel() {}

template <class T> __device__ __forceinline__ T gelu_f(T x) { return T(0.5) * x * (T(1) + d_erf(x * T(0.70710678118654752440))); }
template <class T> __device__ __forceinline__ T gelu_d(T x) {
  T cdf = T(0.5) * (T(1) + d_erf(x * T(0.70710678118654752440)));
  T pdf = d_exp(T(-0.5) * x * x) * T(0.39894228040143267794);
  return cdf + x * pdf;
}
template <class T> __device__ __forceinline__ T sigmoid_f(T x) { return T(1) / (T(1) + d_exp(-x)); }

template <class T> __device__ __forceinline__ T unary_f(UnaryOp op, T x, T p, T q) {
  switch (op) {
    case UnaryOp::Neg: return -x;
    case UnaryOp::Exp: return d_exp(x);
    case UnaryOp::Log: return d_log(x);
    case UnaryOp::Sqrt: return d_sqrt(x);
    case UnaryOp::Rsqrt: return T(1) / d_sqrt(x);
    case UnaryOp::Abs: return d_abs(x);
    case UnaryOp::Sign: return T(int(x > T(0)) - int(x < T(0)));
    case UnaryOp::Relu: return x > T(0) ? x : T(0);
    case UnaryOp::Gelu: return gelu_f(x);
    case UnaryOp::Tanh: return d_tanh(x);
    case UnaryOp::Sigmoid: return sigmoid_f(x);
    case UnaryOp::Silu: return x * sigmoid_f(x);
    case UnaryOp::Square: return x * x;
    case UnaryOp::Recip: return T(1) / x;
    case UnaryOp::Sin: return d_sin(x);
    case UnaryOp::Cos: return d_cos(x);
    case UnaryOp::PowScalar: return d_pow(x, p);
    case UnaryOp::Clamp: return x < p ? p : (x > q ? q : x);
    case UnaryOp::Affine: return p * x + q;
    case UnaryOp::GtScalar: return x > p ? T(1) : T(0);
  }
  return x;
}

template <class T> __device__ __forceinline__ T binary_f(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::Add: return a + b;
    case BinaryOp::Sub: return a - b;
    case BinaryOp::Mul: return a * b;
    case BinaryOp::Div: return a / b;
    case BinaryOp::Max: return a > b ? a : b;
    case BinaryOp::Min: return a < b ? a : b;
    case BinaryOp::Pow: return d_pow(a, b);
    case BinaryOp::Eq: return T(a == b);
    case BinaryOp::Ne: return T(a != b);
    case BinaryOp::Lt: return T(a < b);
    case BinaryOp::Le: return T(a <= b);
    case BinaryOp::Gt: return T(a > b);
    case BinaryOp::Ge: return T(a >= b);
    case BinaryOp::ReluBwd: return a > T(0) ? b : T(0);
    case BinaryOp::GeluBwd: return b * gelu_d(a);
    case BinaryOp::TanhBwd: return b * (T(1) - a * a);
    case BinaryOp::SigmoidBwd: return b * a * (T(1) - a);
    case BinaryOp::SiluBwd: { T s = sigmoid_f(a); return b * s * (T(1) + a * (T(1) - s)); }
  }
  return a;
}

// ---- typed implementations (named templates: extended lambdas live inside them) ----
template <class D, class S>
void copy_typed(DeviceContext& ctx, const Coalesced<2>& c, D* d, const S* s, int64_t n) {
  if (c.all_contiguous()) {
    launch_contiguous(ctx, n, [=] __device__(int64_t i) { d[i] = static_cast<D>(s[i]); }, "copy");
    return;
  }
  for (const auto& [L, base] : c.blocks()) {
    D* db = d + base[0];
    const S* sb = s + base[1];
    launch_strided<2>(ctx, L, [=] __device__(const int64_t* off) { db[off[0]] = static_cast<D>(sb[off[1]]); }, "copy");
  }
}

template <class T>
void fill_typed(DeviceContext& ctx, const Coalesced<1>& c, T* d, int64_t n, T v) {
  if (c.all_contiguous()) {
    launch_contiguous(ctx, n, [=] __device__(int64_t i) { d[i] = v; }, "fill");
    return;
  }
  for (const auto& [L, base] : c.blocks()) {
    T* db = d + base[0];
    launch_strided<1>(ctx, L, [=] __device__(const int64_t* off) { db[off[0]] = v; }, "fill");
  }
}

template <class T>
void unary_typed(DeviceContext& ctx, const Coalesced<2>& c, UnaryOp op, T* o, const T* x, int64_t n, T p, T q) {
  if (c.all_contiguous()) {
    launch_contiguous(ctx, n, [=] __device__(int64_t i) { o[i] = unary_f(op, x[i], p, q); }, "unary");
    return;
  }
  for (const auto& [L, base] : c.blocks()) {
    T* ob = o + base[0];
    const T* xb = x + base[1];
    launch_strided<2>(ctx, L, [=] __device__(const int64_t* off) { ob[off[0]] = unary_f(op, xb[off[1]], p, q); }, "unary");
  }
}

template <class T>
void binary_typed(DeviceContext& ctx, const Coalesced<3>& c, BinaryOp op, T* o, const T* a, const T* b, int64_t n) {
  if (c.all_contiguous()) {
    launch_contiguous(ctx, n, [=] __device__(int64_t i) { o[i] = binary_f(op, a[i], b[i]); }, "binary");
    return;
  }
  for (const auto& [L, base] : c.blocks()) {
    T* ob = o + base[0];
    const T* ab = a + base[1];
    const T* bb = b + base[2];
    launch_strided<3>(ctx, L, [=] __device__(const int64_t* off) { ob[off[0]] = binary_f(op, ab[off[1]], bb[off[2]]); },
                      "binary");
  }
}

template <class T>
void where_typed(DeviceContext& ctx, const Coalesced<4>& c, T* o, const uint8_t* cond, const T* a, const T* b, int64_t n) {
  if (c.all_contiguous()) {
    launch_contiguous(ctx, n, [=] __device__(int64_t i) { o[i] = cond[i] ? a[i] : b[i]; }, "where");
    return;
  }
  for (const auto& [L, base] : c.blocks()) {
    T* ob = o + base[0];
    const uint8_t* cb = cond + base[1];
    const T* ab = a + base[2];
    const T* bb = b + base[3];
    launch_strided<4>(ctx, L, [=] __device__(const int64_t* off) { ob[off[0]] = cb[off[1]] ? ab[off[2]] : bb[off[3]]; },
                      "where");
  }
}

template <class T>
void arange_typed(DeviceContext& ctx, T* d, int64_t n, double start, double step) {
  launch_contiguous(ctx, n, [=] __device__(int64_t i) { d[i] = static_cast<T>(__dadd_rn(start, __dmul_rn(double(i), step))); },
                    "arange");
}

template <class T>
void uniform_typed(DeviceContext& ctx, T* d, int64_t n, uint64_t seed, uint64_t offset, double lo, double span) {
  launch_contiguous(ctx, n, [=] __device__(int64_t i) {
    d[i] = T(__dadd_rn(lo, __dmul_rn(span, philox_uniform(seed, offset + uint64_t(i)))));
  }, "random_uniform");
}

template <class T>
void normal_typed(DeviceContext& ctx, T* d, int64_t n, uint64_t seed, uint64_t offset, double mean, double std) {
  launch_contiguous(ctx, n, [=] __device__(int64_t i) {
    d[i] = T(__dadd_rn(mean, __dmul_rn(std, philox_normal(seed, offset + uint64_t(i)))));
  }, "random_normal");
}

template <class T>
void dropout_typed(DeviceContext& ctx, T* m, int64_t n, double p, uint64_t seed, uint64_t offset) {
  const T keep = p >= 1 ? T(0) : T(1.0 / (1.0 - p));
  launch_contiguous(ctx, n, [=] __device__(int64_t i) {
    m[i] = philox_uniform(seed, offset + uint64_t(i)) >= p ? keep : T(0);
  }, "dropout_mask");
}

template <class T>
void sgd_typed(DeviceContext& ctx, T* pp, const T* gp, T* bp, int64_t n, double lr, double momentum, double dampening,
               double weight_decay, bool nesterov, bool first_step) {
  const T tlr = T(lr), tmom = T(momentum), tdamp = T(1.0 - dampening), twd = T(weight_decay);
  const bool wd = weight_decay != 0;
  launch_contiguous(ctx, n, [=] __device__(int64_t i) {
    T d = gp[i];
    if (wd) d += twd * pp[i];
    if (bp) {
      const T b = first_step ? d : tmom * bp[i] + tdamp * d;
      bp[i] = b;
      d = nesterov ? d + tmom * b : b;
    }
    pp[i] -= tlr * d;
  }, "sgd_update");
}

template <class T>
void adam_typed(DeviceContext& ctx, T* pp, const T* gp, T* mp, T* vp, int64_t n, double lr, double beta1, double beta2,
                double eps, double weight_decay, int64_t step, bool decoupled) {
  const double bc1 = 1.0 - std::pow(beta1, double(step)), bc2 = 1.0 - std::pow(beta2, double(step));
  const T step_size = T(lr / bc1), bc2_sqrt = T(std::sqrt(bc2)), teps = T(eps);
  const T b1 = T(beta1), b2 = T(beta2), a1 = T(1.0 - beta1), a2 = T(1.0 - beta2);
  const T twd = T(weight_decay), decay = T(1.0 - lr * weight_decay);
  const bool wd = weight_decay != 0;
  launch_contiguous(ctx, n, [=] __device__(int64_t i) {
    T g = gp[i];
    T p = pp[i];
    if (wd && decoupled) p *= decay;
    if (wd && !decoupled) g += twd * p;
    const T m = b1 * mp[i] + a1 * g;
    const T v = b2 * vp[i] + a2 * g * g;
    mp[i] = m;
    vp[i] = v;
    const T denom = d_sqrt(v) / bc2_sqrt + teps;
    pp[i] = p - step_size * m / denom;
  }, "adam_update");
}

template <class T>
void add_bias_typed(DeviceContext& ctx, T* y, const T* bias, int64_t N, int64_t OC, int64_t L) {
  launch_contiguous(ctx, N * OC * L, [=] __device__(int64_t i) { y[i] += bias[(i / L) % OC]; }, "conv2d bias");
}

template <class T>
void scale_matrix_typed(DeviceContext& ctx, T* C, int64_t M, int64_t N, int64_t ldc, int64_t strideC, int64_t batch, double beta) {
  const T b = T(beta);
  const bool zero = beta == 0;
  launch_contiguous(ctx, batch * M * N, [=] __device__(int64_t i) {
    const int64_t bi = i / (M * N), r = (i / N) % M, j = i % N;
    T* p = C + bi * strideC + r * ldc + j;
    *p = zero ? T(0) : b * *p;
  }, "gemm (K = 0)");
}

template <class F>
void dispatch_all(DType t, F&& f) {
  switch (t) {
    case DType::f32: f(static_cast<float*>(nullptr)); return;
    case DType::f64: f(static_cast<double*>(nullptr)); return;
    case DType::i32: f(static_cast<int32_t*>(nullptr)); return;
    case DType::i64: f(static_cast<int64_t*>(nullptr)); return;
    case DType::u8: f(static_cast<uint8_t*>(nullptr)); return;
  }
}

}  // namespace

cudaError_t probe_kernel_image() {
  cudaFuncAttributes a{};
  return cudaFuncGetAttributes(&a, probe_kernel);
}

void launch_add_bias(DeviceContext& ctx, DType dt, void* y, const void* bias, int64_t N, int64_t OC, int64_t L) {
  if (N * OC * L == 0) return;
  dispatch_float(dt, "conv2d", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    add_bias_typed<T>(ctx, static_cast<T*>(y), static_cast<const T*>(bias), N, OC, L);
  });
}

void launch_fill(DeviceContext& ctx, DType dt, void* p, int64_t n, double v) {
  if (n <= 0) return;
  const Shape unit{1};
  Coalesced<1> c(Shape{n}, {&unit});
  dispatch_all(dt, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    fill_typed<T>(ctx, c, static_cast<T*>(p), n, static_cast<T>(v));
  });
}

void launch_scale_matrix(DeviceContext& ctx, DType dt, void* C, int64_t M, int64_t N, int64_t ldc, int64_t strideC,
                         int64_t batch, double beta) {
  if (M * N * batch == 0) return;
  dispatch_float(dt, "gemm", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    scale_matrix_typed<T>(ctx, static_cast<T*>(C), M, N, ldc, strideC, batch, beta);
  });
}

// ---------------------------------------------------------------------------------------------
void CudaBackend::copy(const Tensor& src, Tensor& dst) {
  DeviceContext& ctx = context_of(dst, "copy");
  check_same_device(src, ctx, "copy", "src");
  PH_CHECK(src.shape() == dst.shape(), "copy", "shape mismatch " << src.str() << " -> " << dst.str());
  const int64_t n = dst.numel();
  if (n == 0) return;
  if (src.dtype() == dst.dtype() && src.is_contiguous() && dst.is_contiguous()) {
    PH_CUDA_CHECK(cudaMemcpyAsync(dst.raw(), src.raw(), size_t(n) * dst.itemsize(), cudaMemcpyDeviceToDevice, ctx.stream));
    return;
  }
  Coalesced<2> c(dst.shape(), {&dst.strides(), &src.strides()});
  dispatch_all(dst.dtype(), [&](auto* dtag) {
    using D = std::remove_pointer_t<decltype(dtag)>;
    dispatch_all(src.dtype(), [&](auto* stag) {
      using S = std::remove_pointer_t<decltype(stag)>;
      copy_typed<D, S>(ctx, c, static_cast<D*>(dst.raw()), static_cast<const S*>(src.raw()), n);
    });
  });
}

void CudaBackend::fill(Tensor& dst, double value) {
  DeviceContext& ctx = context_of(dst, "fill");
  const int64_t n = dst.numel();
  if (n == 0) return;
  Coalesced<1> c(dst.shape(), {&dst.strides()});
  dispatch_all(dst.dtype(), [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    fill_typed<T>(ctx, c, static_cast<T*>(dst.raw()), n, static_cast<T>(value));
  });
}

void CudaBackend::arange(Tensor& dst, double start, double step) {
  DeviceContext& ctx = context_of(dst, "arange");
  expect(dst, ctx, dst.dtype(), dst.numel(), "arange", "dst");
  dispatch_all(dst.dtype(), [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    arange_typed<T>(ctx, static_cast<T*>(dst.raw()), dst.numel(), start, step);
  });
}

void CudaBackend::random_uniform(Tensor& dst, uint64_t seed, uint64_t offset, double lo, double hi) {
  DeviceContext& ctx = context_of(dst, "random_uniform");
  expect(dst, ctx, dst.dtype(), dst.numel(), "random_uniform", "dst");
  dispatch_all(dst.dtype(), [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    uniform_typed<T>(ctx, static_cast<T*>(dst.raw()), dst.numel(), seed, offset, lo, hi - lo);
  });
}

void CudaBackend::random_normal(Tensor& dst, uint64_t seed, uint64_t offset, double mean, double std) {
  DeviceContext& ctx = context_of(dst, "random_normal");
  expect(dst, ctx, dst.dtype(), dst.numel(), "random_normal", "dst");
  dispatch_all(dst.dtype(), [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    normal_typed<T>(ctx, static_cast<T*>(dst.raw()), dst.numel(), seed, offset, mean, std);
  });
}

void CudaBackend::unary(UnaryOp op, const Tensor& x, Tensor& out, double p, double q) {
  DeviceContext& ctx = context_of(out, "unary");
  check_same_device(x, ctx, "unary", "x");
  PH_CHECK(x.shape() == out.shape() && x.dtype() == out.dtype(), "unary", x.str() << " -> " << out.str());
  const int64_t n = out.numel();
  if (n == 0) return;
  Coalesced<2> c(out.shape(), {&out.strides(), &x.strides()});
  dispatch_float(x.dtype(), "unary", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    unary_typed<T>(ctx, c, op, static_cast<T*>(out.raw()), static_cast<const T*>(x.raw()), n, T(p), T(q));
  });
}

void CudaBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  DeviceContext& ctx = context_of(out, "binary");
  check_same_device(a, ctx, "binary", "a");
  check_same_device(b, ctx, "binary", "b");
  PH_CHECK(a.shape() == out.shape() && b.shape() == out.shape() && a.dtype() == out.dtype() && b.dtype() == out.dtype(),
           "binary", a.str() << ", " << b.str() << " -> " << out.str());
  const int64_t n = out.numel();
  if (n == 0) return;
  Coalesced<3> c(out.shape(), {&out.strides(), &a.strides(), &b.strides()});
  dispatch_float(a.dtype(), "binary", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    binary_typed<T>(ctx, c, op, static_cast<T*>(out.raw()), static_cast<const T*>(a.raw()),
                    static_cast<const T*>(b.raw()), n);
  });
}

void CudaBackend::where(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& out) {
  DeviceContext& ctx = context_of(out, "where");
  check_same_device(cond, ctx, "where", "cond");
  check_same_device(a, ctx, "where", "a");
  check_same_device(b, ctx, "where", "b");
  PH_CHECK(cond.dtype() == DType::u8, "where", "condition must be u8, got " << cond.str());
  PH_CHECK(a.dtype() == out.dtype() && b.dtype() == out.dtype(), "where",
           "dtype mismatch: " << a.str() << ", " << b.str() << " -> " << out.str());
  PH_CHECK(cond.shape() == out.shape() && a.shape() == out.shape() && b.shape() == out.shape(), "where",
           "operands must be expanded to the output shape: " << cond.str() << ", " << a.str() << ", " << b.str()
                                                             << " -> " << out.str());
  const int64_t n = out.numel();
  if (n == 0) return;
  Coalesced<4> c(out.shape(), {&out.strides(), &cond.strides(), &a.strides(), &b.strides()});
  dispatch_float(out.dtype(), "where", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    where_typed<T>(ctx, c, static_cast<T*>(out.raw()), static_cast<const uint8_t*>(cond.raw()),
                   static_cast<const T*>(a.raw()), static_cast<const T*>(b.raw()), n);
  });
}

void CudaBackend::dropout_mask(Tensor& mask, double p, uint64_t seed, uint64_t offset) {
  const char* op = "dropout_mask";
  DeviceContext& ctx = context_of(mask, op);
  expect(mask, ctx, mask.dtype(), mask.numel(), op, "mask");
  PH_CHECK(p >= 0 && p <= 1, op, "dropout probability must be in [0, 1], got " << p);
  dispatch_float(mask.dtype(), op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    dropout_typed<T>(ctx, static_cast<T*>(mask.raw()), mask.numel(), p, seed, offset);
  });
}

void CudaBackend::sgd_update(Tensor& param, const Tensor& grad, Tensor& momentum_buf, double lr, double momentum,
                             double dampening, double weight_decay, bool nesterov, bool first_step) {
  const char* op = "sgd_update";
  DeviceContext& ctx = context_of(param, op);
  const DType dt = param.dtype();
  const int64_t n = param.numel();
  expect(param, ctx, dt, n, op, "param");
  expect(grad, ctx, dt, n, op, "grad");
  if (momentum != 0) expect(momentum_buf, ctx, dt, n, op, "momentum_buf");
  PH_CHECK(!nesterov || (momentum > 0 && dampening == 0), op, "Nesterov momentum requires a momentum and zero dampening");
  dispatch_float(dt, op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    sgd_typed<T>(ctx, static_cast<T*>(param.raw()), static_cast<const T*>(grad.raw()),
                 momentum != 0 ? static_cast<T*>(momentum_buf.raw()) : nullptr, n, lr, momentum, dampening,
                 weight_decay, nesterov, first_step);
  });
}

void CudaBackend::adam_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, double lr, double beta1,
                              double beta2, double eps, double weight_decay, int64_t step, bool decoupled) {
  const char* op = decoupled ? "adamw_update" : "adam_update";
  DeviceContext& ctx = context_of(param, op);
  const DType dt = param.dtype();
  const int64_t n = param.numel();
  expect(param, ctx, dt, n, op, "param");
  expect(grad, ctx, dt, n, op, "grad");
  expect(m, ctx, dt, n, op, "exp_avg");
  expect(v, ctx, dt, n, op, "exp_avg_sq");
  PH_CHECK(step >= 1, op, "step counts from 1, got " << step);
  dispatch_float(dt, op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    adam_typed<T>(ctx, static_cast<T*>(param.raw()), static_cast<const T*>(grad.raw()), static_cast<T*>(m.raw()),
                  static_cast<T*>(v.raw()), n, lr, beta1, beta2, eps, weight_decay, step, decoupled);
  });
}

}  // namespace polyhead::cuda
