// engine/cuda/cuda_reduce.cu: reduce (sum, mean, max, min) and argmax over x viewed as
// (outer, n, inner).
//
// Determinism: the work split depends only on (outer, n, inner). Pass 1 reduces fixed chunks of n
// (a block-wide shuffle tree when inner == 1, a sequential loop per thread otherwise) into
// partials (outer, nsplit, inner); pass 2 combines the partials of each output in chunk order.
// No atomics. Sums accumulate in double for f32 and f64. Max/min propagate NaN as the CPU does.
#include <cuda_runtime.h>

#include <cmath>
#include <limits>

#include "engine/cuda/cuda_kernels.cuh"

namespace polyhead::cuda {

namespace {

template <class A> struct CombSum {
  __device__ __forceinline__ A operator()(A a, A b) const { return a + b; }
};
template <class A> struct CombMax {  // NaN wins
  __device__ __forceinline__ A operator()(A acc, A v) const { return (v > acc || isnan(v)) ? v : acc; }
};
template <class A> struct CombMin {
  __device__ __forceinline__ A operator()(A acc, A v) const { return (v < acc || isnan(v)) ? v : acc; }
};

// Pass 1, inner == 1: block b = (o, s) reduces x[o, s*chunk .. min(n, (s+1)*chunk)).
template <class T, class A, class Comb>
__global__ void reduce_rows_kernel(const T* __restrict__ x, int64_t n, int64_t nsplit, int64_t chunk, A identity,
                                   A* __restrict__ partial, T* __restrict__ out, T scale) {
  const int64_t b = blockIdx.x;
  const int64_t o = b / nsplit, s = b % nsplit;
  const int64_t i0 = s * chunk, i1 = min(n, i0 + chunk);
  const T* row = x + o * n;
  Comb comb;
  A acc = identity;
  for (int64_t i = i0 + threadIdx.x; i < i1; i += blockDim.x) acc = comb(acc, A(row[i]));
  acc = block_reduce(acc, comb, identity);
  if (threadIdx.x == 0) {
    if (out) out[o] = T(acc) * scale;
    else partial[b] = acc;
  }
}

// Pass 1, inner > 1: thread (o, s, j) reduces x[o, i, j] for i in chunk s, sequentially.
template <class T, class A, class Comb>
__global__ void reduce_cols_kernel(const T* __restrict__ x, int64_t outer, int64_t n, int64_t inner, int64_t nsplit,
                                   int64_t chunk, A identity, A* __restrict__ partial, T* __restrict__ out, T scale) {
  const int64_t total = outer * nsplit * inner;
  Comb comb;
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t j = t % inner, s = (t / inner) % nsplit, o = t / (inner * nsplit);
    const int64_t i0 = s * chunk, i1 = min(n, i0 + chunk);
    A acc = identity;
    const T* p = x + (o * n + i0) * inner + j;
    for (int64_t i = i0; i < i1; ++i, p += inner) acc = comb(acc, A(*p));
    if (out) out[o * inner + j] = T(acc) * scale;
    else partial[t] = acc;
  }
}

// Pass 2: out[o, j] = combination of partial[o, s, j] over s in order.
template <class T, class A, class Comb>
__global__ void reduce_finish_kernel(const A* __restrict__ partial, int64_t outer, int64_t nsplit, int64_t inner,
                                     A identity, T* __restrict__ out, T scale) {
  const int64_t total = outer * inner;
  Comb comb;
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t o = t / inner, j = t % inner;
    A acc = identity;
    for (int64_t s = 0; s < nsplit; ++s) acc = comb(acc, partial[(o * nsplit + s) * inner + j]);
    out[t] = T(acc) * scale;
  }
}

template <class T, class A, class Comb>
void reduce_impl(DeviceContext& ctx, const T* x, int64_t outer, int64_t n, int64_t inner, T* out, A identity, T scale) {
  const int64_t outputs = outer * inner;
  // Rows mode (a block per row chunk) for long contiguous rows; else one thread per output chunk.
  const bool rows_mode = inner == 1 && n >= 64 && outer <= (int64_t(1) << 30);
  int64_t nsplit = 1;
  if (rows_mode) {
    if (n > 16384 && outer < 256) nsplit = std::min<int64_t>((n + 8191) / 8192, std::max<int64_t>(1, 1024 / outer));
  } else {
    if (n >= 64 && outputs < 65536) nsplit = std::min<int64_t>((65536 + outputs - 1) / outputs, (n + 31) / 32);
  }
  const int64_t chunk = (n + nsplit - 1) / nsplit;
  nsplit = (n + chunk - 1) / chunk;
  Scratch part;
  A* partial = nullptr;
  if (nsplit > 1) {
    part = Scratch(ctx.index, size_t(outputs * nsplit) * sizeof(A));
    partial = part.as<A>();
  }
  T* direct = nsplit > 1 ? nullptr : out;
  if (rows_mode) {
    reduce_rows_kernel<T, A, Comb><<<unsigned(outer * nsplit), kThreads, 0, ctx.stream>>>(x, n, nsplit, chunk, identity,
                                                                                         partial, direct, scale);
    PH_CUDA_LAUNCH_CHECK("reduce_rows");
  } else {
    const int64_t total = outer * nsplit * inner;
    reduce_cols_kernel<T, A, Comb><<<grid_for(ctx, total), kThreads, 0, ctx.stream>>>(x, outer, n, inner, nsplit, chunk,
                                                                                     identity, partial, direct, scale);
    PH_CUDA_LAUNCH_CHECK("reduce_cols");
  }
  if (nsplit > 1) {
    reduce_finish_kernel<T, A, Comb><<<grid_for(ctx, outputs), kThreads, 0, ctx.stream>>>(partial, outer, nsplit, inner,
                                                                                         identity, out, scale);
    PH_CUDA_LAUNCH_CHECK("reduce_finish");
  }
}

// ---- argmax ----
// Sequential semantics of the CPU: best = x[0]; for i >= 1: if x[i] > best then take i. So a NaN
// at position 0 wins, and NaNs elsewhere are never taken. Equivalently: 0 if x[0] is NaN, else the
// first position of the maximum among the non-NaN values (0 when all are NaN).
template <class T>
__global__ void argmax_rows_kernel(const T* __restrict__ x, int64_t n, int64_t* __restrict__ out) {
  __shared__ T sv[32];
  __shared__ int64_t si[32];
  const int64_t o = blockIdx.x;
  const T* row = x + o * n;
  T bv = T(0);
  int64_t bi = -1;  // -1: nothing seen (all NaN so far)
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const T v = row[i];
    if (isnan(v)) continue;
    if (bi < 0 || v > bv) { bv = v; bi = i; }
  }
  auto better = [](T av, int64_t ai, T bv2, int64_t bi2) -> bool {  // is (bv2, bi2) better than (av, ai)?
    if (bi2 < 0) return false;
    if (ai < 0) return true;
    if (bv2 > av) return true;
    if (av > bv2) return false;
    return bi2 < ai;
  };
  for (int off = 16; off > 0; off >>= 1) {
    const T ov = __shfl_down_sync(0xffffffffu, bv, off);
    const int64_t oi = __shfl_down_sync(0xffffffffu, bi, off);
    if (better(bv, bi, ov, oi)) { bv = ov; bi = oi; }
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  if (lane == 0) { sv[warp] = bv; si[warp] = bi; }
  __syncthreads();
  if (warp == 0) {
    bv = lane < nwarps ? sv[lane] : T(0);
    bi = lane < nwarps ? si[lane] : -1;
    for (int off = 16; off > 0; off >>= 1) {
      const T ov = __shfl_down_sync(0xffffffffu, bv, off);
      const int64_t oi = __shfl_down_sync(0xffffffffu, bi, off);
      if (better(bv, bi, ov, oi)) { bv = ov; bi = oi; }
    }
    if (lane == 0) out[o] = (isnan(row[0]) || bi < 0) ? 0 : bi;
  }
}

template <class T>
__global__ void argmax_cols_kernel(const T* __restrict__ x, int64_t outer, int64_t n, int64_t inner,
                                   int64_t* __restrict__ out) {
  const int64_t total = outer * inner;
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t o = t / inner, j = t % inner;
    const T* p = x + o * n * inner + j;
    int64_t best = 0;
    T bv = p[0];
    for (int64_t i = 1; i < n; ++i) {
      const T v = p[i * inner];
      if (v > bv) { bv = v; best = i; }
    }
    out[t] = best;
  }
}

}  // namespace

void CudaBackend::reduce(ReduceOp op, const Tensor& x, int64_t outer, int64_t n, int64_t inner, Tensor& out) {
  DeviceContext& ctx = context_of(x, "reduce");
  expect(x, ctx, x.dtype(), outer * n * inner, "reduce", "x");
  expect(out, ctx, x.dtype(), outer * inner, "reduce", "out");
  if (outer * inner == 0) return;
  dispatch_float(x.dtype(), "reduce", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* xp = static_cast<const T*>(x.raw());
    T* o = static_cast<T*>(out.raw());
    const T inf = std::numeric_limits<T>::infinity();
    if (n == 0) {  // as the CPU: the identity (times 1 for mean)
      const double v = op == ReduceOp::Max ? -double(inf) : op == ReduceOp::Min ? double(inf) : 0.0;
      launch_fill(ctx, x.dtype(), o, outer * inner, v);
      return;
    }
    switch (op) {
      case ReduceOp::Sum: reduce_impl<T, double, CombSum<double>>(ctx, xp, outer, n, inner, o, 0.0, T(1)); break;
      case ReduceOp::Mean: reduce_impl<T, double, CombSum<double>>(ctx, xp, outer, n, inner, o, 0.0, T(1) / T(n)); break;
      case ReduceOp::Max: reduce_impl<T, T, CombMax<T>>(ctx, xp, outer, n, inner, o, -inf, T(1)); break;
      case ReduceOp::Min: reduce_impl<T, T, CombMin<T>>(ctx, xp, outer, n, inner, o, inf, T(1)); break;
    }
  });
}

void CudaBackend::argmax(const Tensor& x, int64_t outer, int64_t n, int64_t inner, Tensor& out) {
  DeviceContext& ctx = context_of(x, "argmax");
  expect(x, ctx, x.dtype(), outer * n * inner, "argmax", "x");
  expect(out, ctx, DType::i64, outer * inner, "argmax", "output");
  if (outer * inner == 0) return;
  PH_CHECK(n > 0, "argmax", "empty dimension in " << x.str());
  dispatch_float(x.dtype(), "argmax", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* xp = static_cast<const T*>(x.raw());
    int64_t* o = static_cast<int64_t*>(out.raw());
    if (inner == 1 && n >= 64 && outer <= (int64_t(1) << 30)) {
      argmax_rows_kernel<T><<<unsigned(outer), kThreads, 0, ctx.stream>>>(xp, n, o);
      PH_CUDA_LAUNCH_CHECK("argmax_rows");
    } else {
      argmax_cols_kernel<T><<<grid_for(ctx, outer * inner), kThreads, 0, ctx.stream>>>(xp, outer, n, inner, o);
      PH_CUDA_LAUNCH_CHECK("argmax_cols");
    }
  });
}

}  // namespace polyhead::cuda
