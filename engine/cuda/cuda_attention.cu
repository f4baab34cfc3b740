// engine/cuda/cuda_attention.cu: fused causal self-attention (FlashAttention-style) on the GPU,
// forward and backward, f32 and f64, head size Dh up to 128.
//
// Tiles of kTile = 32 rows; a block of 128 threads gives 4 threads to each tile row: thread t owns
// row r = t / 4 and, within it, the 8 score columns c = part + 4u (part = t % 4, u < 8) and the
// output features d = part + 4e. Row statistics (max, sum) combine the 4 threads of a row with
// two xor shuffles, whose result is the same on all 4 (addition is commutative). Tiles live in
// shared memory with a leading dimension Dh + 1 (rows fall on different banks).
//
//   forward:  one block per (head, query tile); loops over the key tiles at or before the
//             diagonal with the online softmax (running max m, running sum l, output rescaled by
//             exp(m_old - m_new)); writes out = o / l and lse = m + log l. Accumulates in F.
//   backward: D_i = rowsum(dout_i * out_i) (one warp per row, in double), then two kernels that
//             recompute P = exp(scale q k - lse) and dS = P (dP - D), dP = dout v^T:
//             dq: one block per (cotangent block, head, query tile), looping over key tiles;
//             dk, dv: one block per (cotangent block, head, key tile), looping over query tiles.
// Every output element is summed by one thread in a fixed order: no atomics, bit-reproducible.
#include <cuda_runtime.h>

#include <cmath>
#include <limits>

#include "engine/cuda/cuda_kernels.cuh"

namespace polyhead::cuda {

namespace {

constexpr int kTile = 32;              // rows of a query tile and of a key tile
constexpr int kAttnThreads = 128;      // 4 threads per tile row
constexpr int kPer = kTile / 4;        // score columns per thread
constexpr int kMaxHead = 128;          // largest supported head size
constexpr unsigned kFull = 0xffffffffu;

template <class F> __device__ __forceinline__ F fmax2(F a, F b) { return a > b ? a : b; }

// Copies rows [row0, row0 + kTile) of a (T, Dh) matrix into a shared tile (leading dim Dh + 1);
// rows at or beyond T are zero.
template <class F>
__device__ __forceinline__ void load_tile(F* __restrict__ tile, const F* __restrict__ src, int64_t row0, int64_t T,
                                          int Dh) {
  const int ld = Dh + 1;
  for (int e = threadIdx.x; e < kTile * Dh; e += blockDim.x) {
    const int r = e / Dh, d = e - r * Dh;
    const int64_t row = row0 + r;
    tile[r * ld + d] = row < T ? src[row * Dh + d] : F(0);
  }
}

// ---------------------------------------------------------------------------------------------
// forward: block = (head h, query tile); dynamic shared memory: Qs, Ks, Vs (kTile x ld), Ps (kTile x (kTile+1))
template <class F, int DMAX>
__global__ void __launch_bounds__(kAttnThreads)
attn_fwd_kernel(const F* __restrict__ q, const F* __restrict__ k, const F* __restrict__ v, F* __restrict__ out,
                F* __restrict__ lse, int64_t T, int Dh, F scale) {
  extern __shared__ __align__(16) unsigned char attn_smem[];
  const int ld = Dh + 1, lp = kTile + 1;
  F* Qs = reinterpret_cast<F*>(attn_smem);
  F* Ks = Qs + kTile * ld;
  F* Vs = Ks + kTile * ld;
  F* Ps = Vs + kTile * ld;

  const int64_t ntiles = (T + kTile - 1) / kTile;
  const int64_t h = int64_t(blockIdx.x) / ntiles;
  const int64_t tile = ntiles - 1 - int64_t(blockIdx.x) % ntiles;  // the longest rows first
  const int64_t i0 = tile * kTile;
  const int r = threadIdx.x >> 2, part = threadIdx.x & 3;
  const int64_t i = i0 + r;
  const F* qh = q + h * T * Dh;
  const F* kh = k + h * T * Dh;
  const F* vh = v + h * T * Dh;

  load_tile(Qs, qh, i0, T, Dh);
  F m = -INFINITY, l = 0;
  F o[DMAX / 4];
#pragma unroll
  for (int e = 0; e < DMAX / 4; ++e) o[e] = 0;

  const int64_t jend = imin(i0 + kTile, T);  // keys [0, jend) reach this tile's rows
  for (int64_t j0 = 0; j0 < jend; j0 += kTile) {
    __syncthreads();  // the previous tile's Ks, Vs, Ps are no longer read
    load_tile(Ks, kh, j0, T, Dh);
    load_tile(Vs, vh, j0, T, Dh);
    __syncthreads();
    F s[kPer];
#pragma unroll
    for (int u = 0; u < kPer; ++u) s[u] = 0;
    for (int d = 0; d < Dh; ++d) {
      const F qd = Qs[r * ld + d];
#pragma unroll
      for (int u = 0; u < kPer; ++u) s[u] += qd * Ks[(part + 4 * u) * ld + d];
    }
    F tmax = -INFINITY;
#pragma unroll
    for (int u = 0; u < kPer; ++u) {
      const int64_t j = j0 + part + 4 * u;
      s[u] = (j <= i && j < T) ? s[u] * scale : F(-INFINITY);
      tmax = fmax2(tmax, s[u]);
    }
    tmax = fmax2(tmax, __shfl_xor_sync(kFull, tmax, 1));
    tmax = fmax2(tmax, __shfl_xor_sync(kFull, tmax, 2));
    const F mnew = fmax2(m, tmax);
    F psum = 0;
#pragma unroll
    for (int u = 0; u < kPer; ++u) {
      s[u] = s[u] == F(-INFINITY) ? F(0) : d_exp(s[u] - mnew);
      psum += s[u];
    }
    psum += __shfl_xor_sync(kFull, psum, 1);
    psum += __shfl_xor_sync(kFull, psum, 2);
    const F alpha = m == F(-INFINITY) ? F(0) : d_exp(m - mnew);
    l = l * alpha + psum;
    m = mnew;
#pragma unroll
    for (int u = 0; u < kPer; ++u) Ps[r * lp + part + 4 * u] = s[u];
    __syncwarp();  // a row's 4 threads are lanes of one warp
#pragma unroll
    for (int e = 0; e < DMAX / 4; ++e) o[e] *= alpha;
    for (int c = 0; c < kTile; ++c) {
      const F p = Ps[r * lp + c];
#pragma unroll
      for (int e = 0; e < DMAX / 4; ++e) {
        const int d = part + 4 * e;
        if (d < Dh) o[e] += p * Vs[c * ld + d];
      }
    }
  }
  if (i < T) {
    const F inv = F(1) / l;
#pragma unroll
    for (int e = 0; e < DMAX / 4; ++e) {
      const int d = part + 4 * e;
      if (d < Dh) out[(h * T + i) * Dh + d] = o[e] * inv;
    }
    if (part == 0) lse[h * T + i] = m + d_log(l);
  }
}

// ---------------------------------------------------------------------------------------------
// backward, step 1: Dv[kb, i] = sum_d dout[kb, i, d] * out[kb % BH, i, d]; one warp per row.
template <class F>
__global__ void attn_bwd_dot_kernel(const F* __restrict__ out, const F* __restrict__ dout, F* __restrict__ Dv,
                                    int64_t BH, int64_t T, int Dh, int64_t rows) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = int64_t(gridDim.x) * (blockDim.x >> 5);
  for (int64_t w = int64_t(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5); w < rows; w += warps) {
    const int64_t kb = w / T, i = w - kb * T, h = kb % BH;
    const F* o = out + (h * T + i) * Dh;
    const F* g = dout + w * Dh;
    double acc = 0;
    for (int d = lane; d < Dh; d += 32) acc += double(g[d]) * double(o[d]);
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) acc += __shfl_xor_sync(kFull, acc, off);
    if (lane == 0) Dv[w] = F(acc);
  }
}

// step 2: dq. Block = (cotangent block kb, query tile). Shared: Qs, Gs (dout), Ks, Vs, Ss (dS).
template <class F, int DMAX>
__global__ void __launch_bounds__(kAttnThreads)
attn_bwd_dq_kernel(const F* __restrict__ q, const F* __restrict__ k, const F* __restrict__ v,
                   const F* __restrict__ lse, const F* __restrict__ dout, const F* __restrict__ Dv, F* __restrict__ dq,
                   int64_t BH, int64_t T, int Dh, F scale) {
  extern __shared__ __align__(16) unsigned char attn_smem[];
  const int ld = Dh + 1, lp = kTile + 1;
  F* Qs = reinterpret_cast<F*>(attn_smem);
  F* Gs = Qs + kTile * ld;
  F* Ks = Gs + kTile * ld;
  F* Vs = Ks + kTile * ld;
  F* Ss = Vs + kTile * ld;

  const int64_t ntiles = (T + kTile - 1) / kTile;
  const int64_t kb = int64_t(blockIdx.x) / ntiles, h = kb % BH;
  const int64_t tile = ntiles - 1 - int64_t(blockIdx.x) % ntiles;
  const int64_t i0 = tile * kTile;
  const int r = threadIdx.x >> 2, part = threadIdx.x & 3;
  const int64_t i = i0 + r;
  const F* kh = k + h * T * Dh;
  const F* vh = v + h * T * Dh;

  load_tile(Qs, q + h * T * Dh, i0, T, Dh);
  load_tile(Gs, dout + kb * T * Dh, i0, T, Dh);
  const F li = i < T ? lse[h * T + i] : F(0);
  const F Di = i < T ? Dv[kb * T + i] : F(0);
  F acc[DMAX / 4];
#pragma unroll
  for (int e = 0; e < DMAX / 4; ++e) acc[e] = 0;

  const int64_t jend = imin(i0 + kTile, T);
  for (int64_t j0 = 0; j0 < jend; j0 += kTile) {
    __syncthreads();
    load_tile(Ks, kh, j0, T, Dh);
    load_tile(Vs, vh, j0, T, Dh);
    __syncthreads();
    F s[kPer], dp[kPer];
#pragma unroll
    for (int u = 0; u < kPer; ++u) s[u] = dp[u] = 0;
    for (int d = 0; d < Dh; ++d) {
      const F qd = Qs[r * ld + d], gd = Gs[r * ld + d];
#pragma unroll
      for (int u = 0; u < kPer; ++u) {
        const int c = part + 4 * u;
        s[u] += qd * Ks[c * ld + d];
        dp[u] += gd * Vs[c * ld + d];
      }
    }
#pragma unroll
    for (int u = 0; u < kPer; ++u) {
      const int64_t j = j0 + part + 4 * u;
      const bool valid = i < T && j <= i;
      const F p = valid ? d_exp(s[u] * scale - li) : F(0);
      Ss[r * lp + part + 4 * u] = valid ? p * (dp[u] - Di) : F(0);
    }
    __syncwarp();
    for (int c = 0; c < kTile; ++c) {
      const F ds = Ss[r * lp + c];
#pragma unroll
      for (int e = 0; e < DMAX / 4; ++e) {
        const int d = part + 4 * e;
        if (d < Dh) acc[e] += ds * Ks[c * ld + d];
      }
    }
  }
  if (i < T) {
#pragma unroll
    for (int e = 0; e < DMAX / 4; ++e) {
      const int d = part + 4 * e;
      if (d < Dh) dq[(kb * T + i) * Dh + d] = acc[e] * scale;
    }
  }
}

// step 3: dk, dv. Block = (cotangent block kb, key tile); thread row c is key j0 + c. Shared: Ks,
// Vs (this key tile), Qs, Gs (the current query tile), Pt, St (P and dS transposed: [key][query]),
// Ls, Ds (lse and D of the query tile's rows).
template <class F, int DMAX>
__global__ void __launch_bounds__(kAttnThreads)
attn_bwd_dkdv_kernel(const F* __restrict__ q, const F* __restrict__ k, const F* __restrict__ v,
                     const F* __restrict__ lse, const F* __restrict__ dout, const F* __restrict__ Dv,
                     F* __restrict__ dk, F* __restrict__ dv, int64_t BH, int64_t T, int Dh, F scale) {
  extern __shared__ __align__(16) unsigned char attn_smem[];
  const int ld = Dh + 1, lp = kTile + 1;
  F* Ks = reinterpret_cast<F*>(attn_smem);
  F* Vs = Ks + kTile * ld;
  F* Qs = Vs + kTile * ld;
  F* Gs = Qs + kTile * ld;
  F* Pt = Gs + kTile * ld;
  F* St = Pt + kTile * lp;
  F* Ls = St + kTile * lp;
  F* Ds = Ls + kTile;

  const int64_t ntiles = (T + kTile - 1) / kTile;
  const int64_t kb = int64_t(blockIdx.x) / ntiles, h = kb % BH;
  const int64_t tile = int64_t(blockIdx.x) % ntiles;  // the first key tiles see the most queries
  const int64_t j0 = tile * kTile;
  const int c = threadIdx.x >> 2, part = threadIdx.x & 3;
  const int64_t j = j0 + c;
  const F* qh = q + h * T * Dh;
  const F* gh = dout + kb * T * Dh;

  load_tile(Ks, k + h * T * Dh, j0, T, Dh);
  load_tile(Vs, v + h * T * Dh, j0, T, Dh);
  F gk[DMAX / 4], gv[DMAX / 4];
#pragma unroll
  for (int e = 0; e < DMAX / 4; ++e) gk[e] = gv[e] = 0;

  for (int64_t i0 = j0; i0 < T; i0 += kTile) {  // query tiles at or after the diagonal
    __syncthreads();
    load_tile(Qs, qh, i0, T, Dh);
    load_tile(Gs, gh, i0, T, Dh);
    if (threadIdx.x < kTile) {
      const int64_t row = i0 + threadIdx.x;
      Ls[threadIdx.x] = row < T ? lse[h * T + row] : F(0);
      Ds[threadIdx.x] = row < T ? Dv[kb * T + row] : F(0);
    }
    __syncthreads();
    F s[kPer], dp[kPer];
#pragma unroll
    for (int u = 0; u < kPer; ++u) s[u] = dp[u] = 0;
    for (int d = 0; d < Dh; ++d) {
      const F kd = Ks[c * ld + d], vd = Vs[c * ld + d];
#pragma unroll
      for (int u = 0; u < kPer; ++u) {
        const int rr = part + 4 * u;
        s[u] += Qs[rr * ld + d] * kd;
        dp[u] += Gs[rr * ld + d] * vd;
      }
    }
#pragma unroll
    for (int u = 0; u < kPer; ++u) {
      const int rr = part + 4 * u;
      const int64_t i = i0 + rr;
      const bool valid = i < T && j <= i;
      const F p = valid ? d_exp(s[u] * scale - Ls[rr]) : F(0);
      Pt[c * lp + rr] = p;
      St[c * lp + rr] = valid ? p * (dp[u] - Ds[rr]) : F(0);
    }
    __syncwarp();
    for (int rr = 0; rr < kTile; ++rr) {
      const F p = Pt[c * lp + rr], ds = St[c * lp + rr];
#pragma unroll
      for (int e = 0; e < DMAX / 4; ++e) {
        const int d = part + 4 * e;
        if (d < Dh) {
          gv[e] += p * Gs[rr * ld + d];
          gk[e] += ds * Qs[rr * ld + d];
        }
      }
    }
  }
  if (j < T) {
#pragma unroll
    for (int e = 0; e < DMAX / 4; ++e) {
      const int d = part + 4 * e;
      if (d < Dh) {
        dk[(kb * T + j) * Dh + d] = gk[e] * scale;
        dv[(kb * T + j) * Dh + d] = gv[e];
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// host side
void check_sizes(int64_t BH, int64_t T, int64_t Dh, int64_t K, const char* op) {
  PH_CHECK(BH >= 0 && T >= 0 && K >= 0, op, "negative size: BH " << BH << ", T " << T << ", K " << K);
  PH_CHECK_HINT(Dh > 0 && Dh <= kMaxHead, op, "head size Dh = " << Dh << " not supported on cuda (1 to " << kMaxHead << ")",
                "use n_head so that d_model / n_head <= 128, or run on the cpu");
}

// Blocks of K*BH heads x tiles, as one 1-d grid.
unsigned attn_grid(int64_t heads, int64_t T, const char* op) {
  const int64_t n = heads * ((T + kTile - 1) / kTile);
  PH_CHECK(n <= int64_t(0x7fffffff), op, "too many (head, tile) blocks: " << n);
  return unsigned(n);
}

// Allows `bytes` of dynamic shared memory for `kernel` (above the 48 KiB default).
template <class Kernel>
void allow_smem(const DeviceContext& ctx, Kernel kernel, size_t bytes, int64_t Dh, DType dt, const char* op) {
  PH_CHECK_HINT(bytes <= size_t(ctx.prop.sharedMemPerBlockOptin), op,
                "needs " << bytes << " bytes of shared memory per block for Dh = " << Dh << " (" << dtype_name(dt)
                         << "), the device allows " << ctx.prop.sharedMemPerBlockOptin,
                "use f32 or a smaller head size");
  if (bytes > 48 * 1024)
    PH_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
}

template <class F, int DMAX>
void launch_forward(DeviceContext& ctx, const F* q, const F* k, const F* v, F* out, F* lse, int64_t BH, int64_t T,
                    int Dh, F scale) {
  const char* op = "attention_forward";
  const size_t smem = size_t(3 * kTile * (Dh + 1) + kTile * (kTile + 1)) * sizeof(F);
  allow_smem(ctx, attn_fwd_kernel<F, DMAX>, smem, Dh, sizeof(F) == 4 ? DType::f32 : DType::f64, op);
  attn_fwd_kernel<F, DMAX><<<attn_grid(BH, T, op), kAttnThreads, smem, ctx.stream>>>(q, k, v, out, lse, T, Dh, scale);
  PH_CUDA_LAUNCH_CHECK("attention_forward");
}

template <class F, int DMAX>
void launch_backward(DeviceContext& ctx, const F* q, const F* k, const F* v, const F* out, const F* lse,
                     const F* dout, F* dq, F* dk, F* dv, int64_t BH, int64_t T, int Dh, int64_t K, F scale) {
  const char* op = "attention_backward";
  const DType dt = sizeof(F) == 4 ? DType::f32 : DType::f64;
  const int64_t rows = K * BH * T;
  Scratch Dbuf(ctx.index, size_t(rows) * sizeof(F));
  {
    const int threads = 256, per_block = threads / 32;
    const int64_t blocks = imin((rows + per_block - 1) / per_block, max_blocks(ctx));
    attn_bwd_dot_kernel<F><<<unsigned(blocks), threads, 0, ctx.stream>>>(out, dout, Dbuf.as<F>(), BH, T, Dh, rows);
    PH_CUDA_LAUNCH_CHECK("attention_backward (dout . out)");
  }
  const unsigned grid = attn_grid(K * BH, T, op);
  const size_t smem_dq = size_t(4 * kTile * (Dh + 1) + kTile * (kTile + 1)) * sizeof(F);
  allow_smem(ctx, attn_bwd_dq_kernel<F, DMAX>, smem_dq, Dh, dt, op);
  attn_bwd_dq_kernel<F, DMAX><<<grid, kAttnThreads, smem_dq, ctx.stream>>>(q, k, v, lse, dout, Dbuf.as<F>(), dq, BH, T,
                                                                           Dh, scale);
  PH_CUDA_LAUNCH_CHECK("attention_backward (dq)");
  const size_t smem_kv = size_t(4 * kTile * (Dh + 1) + 2 * kTile * (kTile + 1) + 2 * kTile) * sizeof(F);
  allow_smem(ctx, attn_bwd_dkdv_kernel<F, DMAX>, smem_kv, Dh, dt, op);
  attn_bwd_dkdv_kernel<F, DMAX><<<grid, kAttnThreads, smem_kv, ctx.stream>>>(q, k, v, lse, dout, Dbuf.as<F>(), dk, dv,
                                                                             BH, T, Dh, scale);
  PH_CUDA_LAUNCH_CHECK("attention_backward (dk, dv)");
}

// Calls f(std::integral_constant<int, DMAX>) with the smallest DMAX in {32, 64, 128} >= Dh.
template <class Fn>
void with_head_bound(int64_t Dh, Fn&& f) {
  if (Dh <= 32) f(std::integral_constant<int, 32>());
  else if (Dh <= 64) f(std::integral_constant<int, 64>());
  else f(std::integral_constant<int, 128>());
}

}  // namespace

void CudaBackend::attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, int64_t BH, int64_t T,
                                    int64_t Dh, double scale, Tensor& out, Tensor& lse) {
  const char* op = "attention_forward";
  DeviceContext& ctx = context_of(q, op);
  check_sizes(BH, T, Dh, 1, op);
  const DType dt = q.dtype();
  expect_float(dt, op);
  const int64_t n = BH * T * Dh;
  expect(q, ctx, dt, n, op, "q");
  expect(k, ctx, dt, n, op, "k");
  expect(v, ctx, dt, n, op, "v");
  expect(out, ctx, dt, n, op, "out");
  expect(lse, ctx, dt, BH * T, op, "lse");
  if (n == 0) return;
  dispatch_float(dt, op, [&](auto* tag) {
    using F = std::remove_pointer_t<decltype(tag)>;
    with_head_bound(Dh, [&](auto bound) {
      launch_forward<F, decltype(bound)::value>(ctx, cptr<F>(q), cptr<F>(k), cptr<F>(v), mptr<F>(out), mptr<F>(lse), BH,
                                                T, int(Dh), F(scale));
    });
  });
}

void CudaBackend::attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                                     const Tensor& lse, const Tensor& dout, int64_t BH, int64_t T, int64_t Dh,
                                     int64_t K, double scale, Tensor& dq, Tensor& dk, Tensor& dv) {
  const char* op = "attention_backward";
  DeviceContext& ctx = context_of(q, op);
  check_sizes(BH, T, Dh, K, op);
  const DType dt = q.dtype();
  expect_float(dt, op);
  const int64_t n = BH * T * Dh;
  expect(q, ctx, dt, n, op, "q");
  expect(k, ctx, dt, n, op, "k");
  expect(v, ctx, dt, n, op, "v");
  expect(out, ctx, dt, n, op, "out");
  expect(lse, ctx, dt, BH * T, op, "lse");
  expect(dout, ctx, dt, K * n, op, "dout");
  expect(dq, ctx, dt, K * n, op, "dq");
  expect(dk, ctx, dt, K * n, op, "dk");
  expect(dv, ctx, dt, K * n, op, "dv");
  if (K * n == 0) return;
  dispatch_float(dt, op, [&](auto* tag) {
    using F = std::remove_pointer_t<decltype(tag)>;
    with_head_bound(Dh, [&](auto bound) {
      launch_backward<F, decltype(bound)::value>(ctx, cptr<F>(q), cptr<F>(k), cptr<F>(v), cptr<F>(out), cptr<F>(lse),
                                                 cptr<F>(dout), mptr<F>(dq), mptr<F>(dk), mptr<F>(dv), BH, T, int(Dh),
                                                 K, F(scale));
    });
  });
}

}  // namespace polyhead::cuda
