// engine/cuda/cuda_kernels.cuh: device-side helpers shared by the .cu files: launch geometry,
// strided N-d indexing, and a deterministic block reduction (fixed shuffle tree, no atomics).
#pragma once
#include <cuda_runtime.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <functional>
#include <type_traits>
#include <utility>
#include <vector>

#include "engine/cuda/cuda_common.h"

namespace polyhead::cuda {

constexpr int kThreads = 256;  // default block size of elementwise kernels
constexpr int kMaxDims = 8;    // dims of a strided operand after coalescing (more: split on the host)

inline unsigned grid_for(const DeviceContext& ctx, int64_t n, int threads = kThreads) {
  int64_t b = (n + threads - 1) / threads;
  if (b < 1) b = 1;
  int64_t cap = max_blocks(ctx);
  return unsigned(b < cap ? b : cap);
}

// Accumulator type of sums: double for both float and double inputs.
template <class T> struct Acc { using type = double; };

// ---- strided layout: shape and per-operand strides after dropping size-1 dims and merging ----
template <int NOPS>
struct Layout {
  int nd = 0;
  int64_t shape[kMaxDims] = {};
  int64_t st[NOPS][kMaxDims] = {};
};

// Host: coalesce dims (as the CPU's StridedLoop does). Returns the full coalesced description.
template <int NOPS>
struct Coalesced {
  std::vector<int64_t> shape;
  std::array<std::vector<int64_t>, NOPS> strides;
  Coalesced(const Shape& s, const std::array<const Shape*, NOPS>& st) {
    for (size_t d = 0; d < s.size(); ++d) {
      if (s[d] == 1) continue;
      if (!shape.empty()) {
        bool merge = true;
        for (int o = 0; o < NOPS; ++o)
          if (strides[o].back() != (*st[o])[d] * s[d]) { merge = false; break; }
        if (merge) {
          shape.back() *= s[d];
          for (int o = 0; o < NOPS; ++o) strides[o].back() = (*st[o])[d];
          continue;
        }
      }
      shape.push_back(s[d]);
      for (int o = 0; o < NOPS; ++o) strides[o].push_back((*st[o])[d]);
    }
  }
  bool all_contiguous() const {  // one dim with unit strides (or no dims: a single element)
    if (shape.empty()) return true;
    if (shape.size() != 1) return false;
    for (int o = 0; o < NOPS; ++o) if (strides[o][0] != 1) return false;
    return true;
  }
  // The launches needed: one (layout, base offsets) per index of the leading dims beyond
  // kMaxDims (iterated on the host); usually exactly one.
  std::vector<std::pair<Layout<NOPS>, std::array<int64_t, NOPS>>> blocks() const {
    std::vector<std::pair<Layout<NOPS>, std::array<int64_t, NOPS>>> out;
    for_each([&](const Layout<NOPS>& L, const std::array<int64_t, NOPS>& base) { out.emplace_back(L, base); });
    return out;
  }
  template <class F>
  void for_each(F&& f) const {
    const int nd = int(shape.size());
    const int lead = nd > kMaxDims ? nd - kMaxDims : 0;
    Layout<NOPS> L;
    L.nd = nd - lead;
    for (int d = 0; d < L.nd; ++d) {
      L.shape[d] = shape[size_t(lead + d)];
      for (int o = 0; o < NOPS; ++o) L.st[o][d] = strides[o][size_t(lead + d)];
    }
    std::vector<int64_t> idx(size_t(lead), 0);
    while (true) {
      std::array<int64_t, NOPS> base{};
      for (int d = 0; d < lead; ++d)
        for (int o = 0; o < NOPS; ++o) base[o] += idx[size_t(d)] * strides[o][size_t(d)];
      f(L, base);
      int d = lead - 1;
      for (; d >= 0; --d) {
        if (++idx[size_t(d)] < shape[size_t(d)]) break;
        idx[size_t(d)] = 0;
      }
      if (d < 0) break;
    }
  }
};

template <int NOPS>
inline int64_t layout_numel(const Layout<NOPS>& L) {
  int64_t n = 1;
  for (int d = 0; d < L.nd; ++d) n *= L.shape[d];
  return n;
}

// Device: element offsets of linear index i (row-major over the layout's shape).
template <int NOPS, class IndexT>
__device__ __forceinline__ void layout_offsets(const Layout<NOPS>& L, IndexT i, int64_t (&off)[NOPS]) {
#pragma unroll
  for (int o = 0; o < NOPS; ++o) off[o] = 0;
  for (int d = L.nd - 1; d >= 0; --d) {
    const IndexT s = IndexT(L.shape[d]);
    const IndexT q = i / s;
    const int64_t id = int64_t(i - q * s);
    i = q;
#pragma unroll
    for (int o = 0; o < NOPS; ++o) off[o] += id * L.st[o][d];
  }
}

// Grid-stride kernels taking a functor: contiguous (f(i)) and strided (f(offsets)).
template <class F>
__global__ void contiguous_kernel(int64_t n, F f) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) f(i);
}
template <int NOPS, class IndexT, class F>
__global__ void strided_kernel(Layout<NOPS> L, int64_t n, F f) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[NOPS];
    layout_offsets<NOPS, IndexT>(L, IndexT(i), off);
    f(off);
  }
}

template <class F>
void launch_contiguous(DeviceContext& ctx, int64_t n, F f, const char* name) {
  if (n <= 0) return;
  contiguous_kernel<<<grid_for(ctx, n), kThreads, 0, ctx.stream>>>(n, f);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) throw_cuda_error(e, name, __FILE__, __LINE__);
}

// f(int64_t off[NOPS]) over a strided layout; uses 32-bit index arithmetic when it fits.
template <int NOPS, class F>
void launch_strided(DeviceContext& ctx, const Layout<NOPS>& L, F f, const char* name) {
  const int64_t n = layout_numel(L);
  if (n <= 0) return;
  if (n < (int64_t(1) << 31))
    strided_kernel<NOPS, uint32_t><<<grid_for(ctx, n), kThreads, 0, ctx.stream>>>(L, n, f);
  else
    strided_kernel<NOPS, uint64_t><<<grid_for(ctx, n), kThreads, 0, ctx.stream>>>(L, n, f);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) throw_cuda_error(e, name, __FILE__, __LINE__);
}

// ---- integer helpers (host and device) ----
__host__ __device__ __forceinline__ int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }
__host__ __device__ __forceinline__ int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }

// ---- device math (float / double overloads) ----
__device__ __forceinline__ float d_exp(float x) { return expf(x); }
__device__ __forceinline__ double d_exp(double x) { return exp(x); }
__device__ __forceinline__ float d_log(float x) { return logf(x); }
__device__ __forceinline__ double d_log(double x) { return log(x); }
__device__ __forceinline__ float d_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double d_sqrt(double x) { return sqrt(x); }
__device__ __forceinline__ float d_abs(float x) { return fabsf(x); }
__device__ __forceinline__ double d_abs(double x) { return fabs(x); }
__device__ __forceinline__ float d_tanh(float x) { return tanhf(x); }
__device__ __forceinline__ double d_tanh(double x) { return tanh(x); }
__device__ __forceinline__ float d_sin(float x) { return sinf(x); }
__device__ __forceinline__ double d_sin(double x) { return sin(x); }
__device__ __forceinline__ float d_cos(float x) { return cosf(x); }
__device__ __forceinline__ double d_cos(double x) { return cos(x); }
__device__ __forceinline__ float d_erf(float x) { return erff(x); }
__device__ __forceinline__ double d_erf(double x) { return erf(x); }
__device__ __forceinline__ float d_pow(float x, float y) { return powf(x, y); }
__device__ __forceinline__ double d_pow(double x, double y) { return pow(x, y); }

// ---- deterministic block reduction: fixed shuffle tree within warps, then over warps ----
// blockDim.x must be a multiple of 32 (at most 1024). Every thread gets the result.
template <class A, class Op>
__device__ __forceinline__ A block_reduce(A v, Op op, A identity) {
  __shared__ A ph_red_smem[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_down_sync(0xffffffffu, v, o));
  __syncthreads();  // ph_red_smem may still be read by a previous call
  if (lane == 0) ph_red_smem[warp] = v;
  __syncthreads();
  if (warp == 0) {
    A w = lane < nwarps ? ph_red_smem[lane] : identity;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) w = op(w, __shfl_down_sync(0xffffffffu, w, o));
    if (lane == 0) ph_red_smem[0] = w;
  }
  __syncthreads();
  return ph_red_smem[0];
}

struct SumOp {
  template <class A> __device__ __forceinline__ A operator()(A a, A b) const { return a + b; }
};
// max ignoring NaN (as the CPU's `x > m ? x : m` scans do)
struct MaxIgnoreNanOp {
  template <class A> __device__ __forceinline__ A operator()(A a, A b) const { return b > a ? b : a; }
};

// Block size for one-block-per-row kernels: a power of two in [32, 512], fixed by cols alone.
inline int row_threads(int64_t cols) {
  int t = 32;
  while (t < 512 && t < cols) t <<= 1;
  return t;
}

}  // namespace polyhead::cuda
