// engine/cpu/cpu_backend.cpp: CPU memory, copies, fills, random numbers, elementwise ops,
// reductions and GEMM. (NN primitives: cpu_nn.cpp, cpu_conv.cpp; embedding, dropout and optimizer updates: cpu_misc.cpp.)
#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/kernel_util.h"

#include <cblas.h>
#include <malloc.h>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/info.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/partitioner.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <mutex>

#include "engine/cpu/strided.h"
#include "engine/rng.h"
#include "engine/threading.h"

namespace polyhead {

static std::unique_ptr<tbb::global_control> g_threads;
static std::mutex g_threads_mu;
void set_num_threads(int n) {
  std::lock_guard<std::mutex> l(g_threads_mu);
  g_threads.reset();
  if (n > 0) g_threads = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism, size_t(n));
}
int num_threads() { return int(tbb::global_control::active_value(tbb::global_control::max_allowed_parallelism)); }

Backend* make_cpu_backend() {
  // Never destroyed: tensors held in function-local statics elsewhere may be released after
  // this function's statics at exit, and must still find their backend.
  static cpu::CpuBackend* b = new cpu::CpuBackend;
  return b;
}

namespace cpu {

CpuBackend::CpuBackend() {
  openblas_set_num_threads(1);
#if defined(__GLIBC__)
  // Training steps allocate and free the same large activations every step. Served by mmap, each
  // would be returned to the system and faulted in again (zeroed page by page); keeping them in
  // the heap lets the next step reuse the memory as is.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // the largest value glibc accepts
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& f) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  if (n <= grain) { f(0, n); return; }
  int64_t chunks = (n + grain - 1) / grain;
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, chunks, 1), [&](const tbb::blocked_range<int64_t>& r) {
    for (int64_t c = r.begin(); c < r.end(); ++c) f(c * grain, std::min(n, (c + 1) * grain));
  }, tbb::simple_partitioner());
}

// ---------- memory ----------
// Blocks of at least 16 MiB are what glibc serves by mmap (the threshold is raised to 32 MiB
// above, its maximum): each would be unmapped on free and faulted in again, zeroed page by page,
// on the next step's identical allocation. Freed big blocks are kept, by exact rounded size, up
// to 256 MiB in all, and handed out again; all of them are released before reporting an
// allocation failure.
namespace {
constexpr size_t kBigBlock = size_t(16) << 20, kBigCacheMax = size_t(256) << 20;
struct BigBlockCache {
  std::mutex mu;
  std::multimap<size_t, void*> free;
  size_t bytes = 0;
};
BigBlockCache& big_cache() {
  static BigBlockCache* c = new BigBlockCache;  // never destroyed: tensors may outlive statics
  return *c;
}
size_t rounded_size(size_t nbytes) {
  size_t n = (nbytes + 63) & ~size_t(63);
  if (n >= kBigBlock) n = (n + (size_t(1) << 20) - 1) & ~((size_t(1) << 20) - 1);
  return n;
}
void release_big_cache() {
  BigBlockCache& c = big_cache();
  std::lock_guard<std::mutex> l(c.mu);
  for (auto& [n, p] : c.free) std::free(p);
  c.free.clear();
  c.bytes = 0;
}
}  // namespace

void* CpuBackend::allocate(size_t nbytes) {
  const size_t n = rounded_size(nbytes);
  if (n >= kBigBlock) {
    BigBlockCache& c = big_cache();
    std::lock_guard<std::mutex> l(c.mu);
    auto it = c.free.find(n);
    if (it != c.free.end()) {
      void* p = it->second;
      c.free.erase(it);
      c.bytes -= n;
      return p;
    }
  }
  void* p = std::aligned_alloc(64, n);
  if (!p && n >= kBigBlock) {
    release_big_cache();
    p = std::aligned_alloc(64, n);
  }
  if (!p) throw Error("cpu allocate", "out of host memory allocating " + std::to_string(nbytes) + " bytes",
                      "reduce the batch size or model size");
  return p;
}
void CpuBackend::deallocate(void* p, size_t nbytes) {
  if (!p) return;
  const size_t n = rounded_size(nbytes);
  if (n >= kBigBlock && n <= kBigCacheMax) {
    BigBlockCache& c = big_cache();
    std::lock_guard<std::mutex> l(c.mu);
    if (c.bytes + n <= kBigCacheMax) {
      c.free.emplace(n, p);
      c.bytes += n;
      return;
    }
  }
  std::free(p);
}
void CpuBackend::copy_from_host(void* dst, const void* src, size_t n) { std::memcpy(dst, src, n); }
void CpuBackend::copy_to_host(void* dst, const void* src, size_t n) { std::memcpy(dst, src, n); }

// ---------- copy / fill / arange / random ----------
void CpuBackend::copy(const Tensor& src, Tensor& dst) {
  PH_CHECK(src.shape() == dst.shape(), "copy", "shape mismatch " << src.str() << " -> " << dst.str());
  if (src.dtype() == dst.dtype() && src.is_contiguous() && dst.is_contiguous()) {
    std::memcpy(dst.raw(), src.raw(), size_t(src.numel()) * src.itemsize());
    return;
  }
  StridedLoop<2> loop(dst.shape(), {&dst.strides(), &src.strides()});
  dispatch_dtype(dst.dtype(), [&](auto* dtag) {
    using D = std::remove_pointer_t<decltype(dtag)>;
    dispatch_dtype(src.dtype(), [&](auto* stag) {
      using S = std::remove_pointer_t<decltype(stag)>;
      D* d = static_cast<D*>(dst.raw());
      const S* s = static_cast<const S*>(src.raw());
      loop.run([&](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& st) {
        D* dp = d + off[0];
        const S* sp = s + off[1];
        for (int64_t i = 0; i < n; ++i) dp[i * st[0]] = D(sp[i * st[1]]);
      });
    });
  });
}

void CpuBackend::fill(Tensor& dst, double v) {
  dispatch_dtype(dst.dtype(), [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    T* p = static_cast<T*>(dst.raw());
    T val = T(v);
    parallel_for(dst.numel(), 1 << 16, [&](int64_t a, int64_t b) { std::fill(p + a, p + b, val); });
  });
}

void CpuBackend::arange(Tensor& dst, double start, double step) {
  dispatch_dtype(dst.dtype(), [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    T* p = static_cast<T*>(dst.raw());
    for (int64_t i = 0; i < dst.numel(); ++i) p[i] = T(start + double(i) * step);
  });
}

void CpuBackend::random_uniform(Tensor& dst, uint64_t seed, uint64_t offset, double lo, double hi) {
  dispatch_dtype(dst.dtype(), [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    T* p = static_cast<T*>(dst.raw());
    parallel_for(dst.numel(), 1 << 14, [&](int64_t a, int64_t b) {
      for (int64_t i = a; i < b; ++i) p[i] = T(lo + (hi - lo) * philox_uniform(seed, offset + uint64_t(i)));
    });
  });
}

void CpuBackend::random_normal(Tensor& dst, uint64_t seed, uint64_t offset, double mean, double std) {
  dispatch_dtype(dst.dtype(), [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    T* p = static_cast<T*>(dst.raw());
    parallel_for(dst.numel(), 1 << 14, [&](int64_t a, int64_t b) {
      for (int64_t i = a; i < b; ++i) p[i] = T(mean + std * philox_normal(seed, offset + uint64_t(i)));
    });
  });
}

// ---------- elementwise ----------
template <class T> static inline T gelu_f(T x) { return T(0.5) * x * (T(1) + std::erf(x * T(0.70710678118654752440))); }
template <class T> static inline T gelu_d(T x) {
  T cdf = T(0.5) * (T(1) + std::erf(x * T(0.70710678118654752440)));
  T pdf = std::exp(T(-0.5) * x * x) * T(0.39894228040143267794);
  return cdf + x * pdf;
}
template <class T> static inline T sigmoid_f(T x) { return T(1) / (T(1) + std::exp(-x)); }

template <class T> static inline T unary_f(UnaryOp op, T x, T p, T q) {
  switch (op) {
    case UnaryOp::Neg: return -x;
    case UnaryOp::Exp: return std::exp(x);
    case UnaryOp::Log: return std::log(x);
    case UnaryOp::Sqrt: return std::sqrt(x);
    case UnaryOp::Rsqrt: return T(1) / std::sqrt(x);
    case UnaryOp::Abs: return std::abs(x);
    case UnaryOp::Sign: return T((x > T(0)) - (x < T(0)));
    case UnaryOp::Relu: return x < T(0) ? T(0) : x;  // NaN propagates
    case UnaryOp::Gelu: return gelu_f(x);
    case UnaryOp::Tanh: return std::tanh(x);
    case UnaryOp::Sigmoid: return sigmoid_f(x);
    case UnaryOp::Silu: return x * sigmoid_f(x);
    case UnaryOp::Square: return x * x;
    case UnaryOp::Recip: return T(1) / x;
    case UnaryOp::Sin: return std::sin(x);
    case UnaryOp::Cos: return std::cos(x);
    case UnaryOp::PowScalar: return std::pow(x, p);
    case UnaryOp::Clamp: return x < p ? p : (x > q ? q : x);
    case UnaryOp::Affine: return p * x + q;
    case UnaryOp::GtScalar: return x > p ? T(1) : T(0);
  }
  return x;
}

template <class T> static inline T binary_f(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::Add: return a + b;
    case BinaryOp::Sub: return a - b;
    case BinaryOp::Mul: return a * b;
    case BinaryOp::Div: return a / b;
    case BinaryOp::Max: return a > b ? a : b;
    case BinaryOp::Min: return a < b ? a : b;
    case BinaryOp::Pow: return T(std::pow(a, b));
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

void CpuBackend::unary(UnaryOp op, const Tensor& x, Tensor& out, double p, double q) {
  PH_CHECK(x.shape() == out.shape() && x.dtype() == out.dtype(), "unary", x.str() << " -> " << out.str());
  StridedLoop<2> loop(out.shape(), {&out.strides(), &x.strides()});
  dispatch_float(x.dtype(), "unary", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    T* o = static_cast<T*>(out.raw());
    const T* s = static_cast<const T*>(x.raw());
    T tp = T(p), tq = T(q);
    loop.run([&](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& st) {
      T* op_ = o + off[0];
      const T* xp = s + off[1];
      if (st[0] == 1 && st[1] == 1) {
        switch (op) {  // hot cases, vectorisable
          case UnaryOp::Relu: for (int64_t i = 0; i < n; ++i) op_[i] = xp[i] < T(0) ? T(0) : xp[i]; return;
          case UnaryOp::Affine: for (int64_t i = 0; i < n; ++i) op_[i] = tp * xp[i] + tq; return;
          default: for (int64_t i = 0; i < n; ++i) op_[i] = unary_f(op, xp[i], tp, tq); return;
        }
      }
      for (int64_t i = 0; i < n; ++i) op_[i * st[0]] = unary_f(op, xp[i * st[1]], tp, tq);
    });
  });
}

void CpuBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  PH_CHECK(a.shape() == out.shape() && b.shape() == out.shape() && a.dtype() == out.dtype() && b.dtype() == out.dtype(),
           "binary", a.str() << ", " << b.str() << " -> " << out.str());
  StridedLoop<3> loop(out.shape(), {&out.strides(), &a.strides(), &b.strides()});
  dispatch_float(a.dtype(), "binary", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    T* o = static_cast<T*>(out.raw());
    const T* ap = static_cast<const T*>(a.raw());
    const T* bp = static_cast<const T*>(b.raw());
    loop.run([&](const std::array<int64_t, 3>& off, int64_t n, const std::array<int64_t, 3>& st) {
      T* op_ = o + off[0];
      const T* x = ap + off[1];
      const T* y = bp + off[2];
      if (st[0] == 1 && st[1] == 1 && st[2] == 1) {
        switch (op) {
          case BinaryOp::Add: for (int64_t i = 0; i < n; ++i) op_[i] = x[i] + y[i]; return;
          case BinaryOp::Sub: for (int64_t i = 0; i < n; ++i) op_[i] = x[i] - y[i]; return;
          case BinaryOp::Mul: for (int64_t i = 0; i < n; ++i) op_[i] = x[i] * y[i]; return;
          case BinaryOp::ReluBwd: for (int64_t i = 0; i < n; ++i) op_[i] = x[i] > T(0) ? y[i] : T(0); return;
          default: for (int64_t i = 0; i < n; ++i) op_[i] = binary_f(op, x[i], y[i]); return;
        }
      }
      if (st[0] == 1 && st[1] == 1 && st[2] == 0) {
        T yv = y[0];
        for (int64_t i = 0; i < n; ++i) op_[i] = binary_f(op, x[i], yv);
        return;
      }
      for (int64_t i = 0; i < n; ++i) op_[i * st[0]] = binary_f(op, x[i * st[1]], y[i * st[2]]);
    });
  });
}

void CpuBackend::where(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& out) {
  PH_CHECK(cond.dtype() == DType::u8, "where", "condition must be u8, got " << cond.str());
  StridedLoop<4> loop(out.shape(), {&out.strides(), &cond.strides(), &a.strides(), &b.strides()});
  dispatch_float(out.dtype(), "where", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    T* o = static_cast<T*>(out.raw());
    const uint8_t* c = static_cast<const uint8_t*>(cond.raw());
    const T* ap = static_cast<const T*>(a.raw());
    const T* bp = static_cast<const T*>(b.raw());
    loop.run([&](const std::array<int64_t, 4>& off, int64_t n, const std::array<int64_t, 4>& st) {
      for (int64_t i = 0; i < n; ++i)
        o[off[0] + i * st[0]] = c[off[1] + i * st[1]] ? ap[off[2] + i * st[2]] : bp[off[3] + i * st[3]];
    });
  });
}

// ---------- reductions ----------
// Each output element is reduced sequentially, except a full reduction of a long vector, which is
// summed in fixed 4096-element chunks combined in order. Both are independent of thread count.
void CpuBackend::reduce(ReduceOp op, const Tensor& x, int64_t outer, int64_t n, int64_t inner, Tensor& out) {
  PH_CHECK(x.is_contiguous() && out.is_contiguous(), "reduce", "needs contiguous tensors");
  dispatch_float(x.dtype(), "reduce", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* xp = static_cast<const T*>(x.raw());
    T* o = static_cast<T*>(out.raw());
    auto init = [&]() -> T {
      if (op == ReduceOp::Max) return -std::numeric_limits<T>::infinity();
      if (op == ReduceOp::Min) return std::numeric_limits<T>::infinity();
      return T(0);
    };
    auto comb = [&](T acc, T v) -> T {
      if (op == ReduceOp::Max) return v > acc || std::isnan(v) ? v : acc;
      if (op == ReduceOp::Min) return v < acc || std::isnan(v) ? v : acc;
      return acc + v;
    };
    const T scale = op == ReduceOp::Mean ? T(1) / T(std::max<int64_t>(n, 1)) : T(1);
    if (inner == 1 && outer == 1 && n > 8192) {
      const int64_t chunk = 4096, nc = (n + chunk - 1) / chunk;
      std::vector<T> part(size_t(nc), init());
      parallel_for(nc, 1, [&](int64_t c0, int64_t c1) {
        for (int64_t c = c0; c < c1; ++c) {
          T acc = init();
          for (int64_t i = c * chunk; i < std::min(n, (c + 1) * chunk); ++i) acc = comb(acc, xp[i]);
          part[size_t(c)] = acc;
        }
      });
      T acc = init();
      for (T v : part) acc = comb(acc, v);
      o[0] = acc * scale;
      return;
    }
    if (inner == 1) {
      parallel_for(outer, std::max<int64_t>(1, 16384 / std::max<int64_t>(n, 1)), [&](int64_t a, int64_t b) {
        for (int64_t r = a; r < b; ++r) {
          const T* row = xp + r * n;
          T acc = init();
          for (int64_t i = 0; i < n; ++i) acc = comb(acc, row[i]);
          o[r] = acc * scale;
        }
      });
      return;
    }
    parallel_for(outer, std::max<int64_t>(1, 16384 / std::max<int64_t>(n * inner, 1)), [&](int64_t a, int64_t b) {
      for (int64_t r = a; r < b; ++r) {
        T* orow = o + r * inner;
        for (int64_t j = 0; j < inner; ++j) orow[j] = init();
        for (int64_t i = 0; i < n; ++i) {
          const T* row = xp + (r * n + i) * inner;
          for (int64_t j = 0; j < inner; ++j) orow[j] = comb(orow[j], row[j]);
        }
        if (scale != T(1)) for (int64_t j = 0; j < inner; ++j) orow[j] *= scale;
      }
    });
  });
}

void CpuBackend::argmax(const Tensor& x, int64_t outer, int64_t n, int64_t inner, Tensor& out) {
  PH_CHECK(out.dtype() == DType::i64, "argmax", "output must be i64");
  dispatch_float(x.dtype(), "argmax", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* xp = static_cast<const T*>(x.raw());
    int64_t* o = static_cast<int64_t*>(out.raw());
    for (int64_t r = 0; r < outer; ++r)
      for (int64_t j = 0; j < inner; ++j) {
        int64_t best = 0;
        T bv = xp[(r * n) * inner + j];
        for (int64_t i = 1; i < n; ++i) {
          T v = xp[(r * n + i) * inner + j];
          if (v > bv) { bv = v; best = i; }
        }
        o[r * inner + j] = best;
      }
  });
}

// ---------- GEMM ----------
template <>
void gemm_serial<float>(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                        const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(M), int(N), int(K),
              alpha, A, int(lda), B, int(ldb), beta, C, int(ldc));
}
template <>
void gemm_serial<double>(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t lda,
                         const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(M), int(N), int(K),
              alpha, A, int(lda), B, int(ldb), beta, C, int(ldc));
}

void CpuBackend::gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const Tensor& A, int64_t lda,
                      int64_t sA, const Tensor& B, int64_t ldb, int64_t sB, double beta, Tensor& C, int64_t ldc,
                      int64_t sC, int64_t batch) {
  if (M == 0 || N == 0 || batch == 0) return;
  dispatch_float(C.dtype(), "gemm", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* a = static_cast<const T*>(A.raw());
    const T* b = static_cast<const T*>(B.raw());
    T* c = static_cast<T*>(C.raw());
    if (K == 0) {  // C = beta C
      for (int64_t i = 0; i < batch; ++i)
        for (int64_t r = 0; r < M; ++r)
          for (int64_t j = 0; j < N; ++j) c[i * sC + r * ldc + j] = beta == 0 ? T(0) : T(beta) * c[i * sC + r * ldc + j];
      return;
    }
    // A small product over a long inner dimension (a Gramian G G^T): fixed inner chunks of 32768
    // run in parallel into their own buffers, which are then summed in chunk order.
    constexpr int64_t kChunk = 32768;
    if (batch == 1 && M * N <= 4096 && K >= 2 * kChunk) {
      const int64_t nc = (K + kChunk - 1) / kChunk;
      std::vector<T> part(size_t(nc * M * N));
      parallel_for(nc, 1, [&](int64_t c0, int64_t c1) {
        for (int64_t ci = c0; ci < c1; ++ci) {
          const int64_t k0 = ci * kChunk, len = std::min(kChunk, K - k0);
          const T* ab = ta ? a + k0 * lda : a + k0;
          const T* bb = tb ? b + k0 : b + k0 * ldb;
          gemm_serial<T>(ta, tb, M, N, len, T(1), ab, lda, bb, ldb, T(0), part.data() + ci * M * N, N);
        }
      });
      for (int64_t r = 0; r < M; ++r)
        for (int64_t j = 0; j < N; ++j) {
          T acc = part[size_t(r * N + j)];
          for (int64_t ci = 1; ci < nc; ++ci) acc += part[size_t((ci * M + r) * N + j)];
          T& cv = c[r * ldc + j];
          cv = beta == 0 ? T(alpha) * acc : T(alpha) * acc + T(beta) * cv;
        }
      return;
    }
    // Work units: (batch, row block) or (batch, column block). Blocks are fixed by the shape.
    // Few large blocks: each BLAS call packs its operands again, and small blocks run below the
    // kernel's efficiency. At most 4 blocks of at least 128 rows/columns per product.
    const double flops = double(M) * double(N) * double(K);
    int64_t split = 1;
    if (batch < 4 && flops > 4e6) split = std::min<int64_t>(4, int64_t(flops / 2e6));
    bool by_rows = M >= N;
    int64_t extent = by_rows ? M : N;
    int64_t blk = std::max<int64_t>(128, (extent + split - 1) / split);
    blk = (blk + 15) / 16 * 16;
    int64_t nblk = (extent + blk - 1) / blk;
    parallel_for(batch * nblk, 1, [&](int64_t u0, int64_t u1) {
      for (int64_t u = u0; u < u1; ++u) {
        int64_t i = u / nblk, k0 = (u % nblk) * blk, len = std::min(blk, extent - k0);
        const T* ai = a + i * sA;
        const T* bi = b + i * sB;
        T* ci = c + i * sC;
        if (by_rows) {
          const T* ab = ta ? ai + k0 : ai + k0 * lda;
          gemm_serial<T>(ta, tb, len, N, K, T(alpha), ab, lda, bi, ldb, T(beta), ci + k0 * ldc, ldc);
        } else {
          const T* bb = tb ? bi + k0 * ldb : bi + k0;
          gemm_serial<T>(ta, tb, M, len, K, T(alpha), ai, lda, bb, ldb, T(beta), ci + k0, ldc);
        }
      }
    });
  });
}

}  // namespace cpu
}  // namespace polyhead
