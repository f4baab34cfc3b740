// engine/cuda/cuda_nn.cu: softmax / log-softmax, layer norm, batch norm and cross-entropy (forward
// and backward), embedding lookup and its gradient.
//
// Row ops run one block per row (block size fixed by the row length), row statistics accumulate in
// double through the fixed shuffle tree of block_reduce. Cross-row sums (layer-norm dgamma/dbeta,
// batch-norm statistics) use fixed chunks whose partials are combined in chunk order by a second
// kernel. The embedding gradient is a gather over positions grouped by a stable radix sort. No
// float atomics anywhere, so every result is bit-reproducible run to run.
// Index checks (cross-entropy targets, embedding indices) run on the device and report the first
// bad position through an ErrorFlag; the op's error (the CPU's message) is thrown at the next
// host synchronisation (see ErrorFlag in cuda_common.h).
#include <cuda_runtime.h>

#include <cmath>
#include <limits>

#include "engine/cuda/cuda_kernels.cuh"

namespace polyhead::cuda {

namespace {

constexpr int64_t kMaxRowBlocks = int64_t(1) << 20;

inline unsigned row_grid(int64_t rows) { return unsigned(std::min<int64_t>(std::max<int64_t>(rows, 1), kMaxRowBlocks)); }

// ---------------------------------------------------------------------------------------------
// softmax
template <class T>
__global__ void softmax_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t rows, int64_t cols, bool log) {
  const T ninf = -INFINITY;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    T mx = ninf;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) mx = xr[c] > mx ? xr[c] : mx;
    mx = block_reduce(mx, MaxIgnoreNanOp(), ninf);
    double sum = 0;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) sum += double(d_exp(xr[c] - mx));
    sum = block_reduce(sum, SumOp(), 0.0);
    if (log) {
      const T lse = T(::log(sum));
      for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) yr[c] = xr[c] - mx - lse;
    } else {
      const T inv = T(1.0 / sum);
      for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) yr[c] = d_exp(xr[c] - mx) * inv;
    }
  }
}

template <class T>
__global__ void softmax_bwd_kernel(const T* __restrict__ y, const T* __restrict__ gy, T* __restrict__ gx, int64_t rows,
                                   int64_t total_rows, int64_t cols, bool log) {
  for (int64_t r = blockIdx.x; r < total_rows; r += gridDim.x) {
    const T* yr = y + (r % rows) * cols;
    const T* gyr = gy + r * cols;
    T* gxr = gx + r * cols;
    double acc = 0;
    if (log) {
      for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) acc += double(gyr[c]);
      const T s = T(block_reduce(acc, SumOp(), 0.0));
      for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) gxr[c] = gyr[c] - d_exp(yr[c]) * s;
    } else {
      for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) acc += double(gyr[c]) * double(yr[c]);
      const T dot = T(block_reduce(acc, SumOp(), 0.0));
      for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) gxr[c] = yr[c] * (gyr[c] - dot);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// layer norm
template <class T>
__global__ void layer_norm_kernel(const T* __restrict__ x, const T* __restrict__ g, const T* __restrict__ b,
                                  T* __restrict__ y, T* __restrict__ mean, T* __restrict__ rstd, int64_t rows,
                                  int64_t cols, double eps) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    double s = 0;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) s += double(xr[c]);
    s = block_reduce(s, SumOp(), 0.0);
    const double m = s / double(cols);
    double ss = 0;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
      const double d = double(xr[c]) - m;
      ss += d * d;
    }
    ss = block_reduce(ss, SumOp(), 0.0);
    const T mu = T(m), rs = T(1.0 / ::sqrt(ss / double(cols) + eps));
    if (threadIdx.x == 0) {
      mean[r] = mu;
      rstd[r] = rs;
    }
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
      T v = (xr[c] - mu) * rs;
      if (g) v *= g[c];
      if (b) v += b[c];
      yr[c] = v;
    }
  }
}

// gx rows (K*rows): gx = rstd * (g - mean(g) - xh * mean(g * xh)), g = gy * gamma
template <class T>
__global__ void layer_norm_bwd_gx_kernel(const T* __restrict__ x, const T* __restrict__ gamma, const T* __restrict__ mean,
                                         const T* __restrict__ rstd, const T* __restrict__ gy, T* __restrict__ gx,
                                         int64_t rows, int64_t total_rows, int64_t cols) {
  for (int64_t r = blockIdx.x; r < total_rows; r += gridDim.x) {
    const int64_t row = r % rows;
    const T* xr = x + row * cols;
    const T* gyr = gy + r * cols;
    T* gxr = gx + r * cols;
    const T mu = mean[row], rs = rstd[row];
    double sg = 0, sgx = 0;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
      const T gv = gamma ? gyr[c] * gamma[c] : gyr[c];
      sg += double(gv);
      sgx += double(gv) * double((xr[c] - mu) * rs);
    }
    sg = block_reduce(sg, SumOp(), 0.0);
    sgx = block_reduce(sgx, SumOp(), 0.0);
    const T mg = T(sg / double(cols)), mgx = T(sgx / double(cols));
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
      const T gv = gamma ? gyr[c] * gamma[c] : gyr[c];
      gxr[c] = rs * (gv - mg - (xr[c] - mu) * rs * mgx);
    }
  }
}

// dgamma/dbeta partials: thread (k, chunk, c) sums its chunk of rows in order.
template <class T>
__global__ void layer_norm_bwd_param_partial_kernel(const T* __restrict__ x, const T* __restrict__ mean,
                                                    const T* __restrict__ rstd, const T* __restrict__ gy, int64_t rows,
                                                    int64_t cols, int64_t K, int64_t chunk, int64_t nchunk,
                                                    double* __restrict__ pg, double* __restrict__ pb) {
  const int64_t total = K * nchunk * cols;
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = t % cols, u = t / cols;
    const int64_t k = u / nchunk, ch = u % nchunk;
    const int64_t r0 = ch * chunk, r1 = min(rows, r0 + chunk);
    double sg = 0, sb = 0;
    for (int64_t r = r0; r < r1; ++r) {
      const T g = gy[(k * rows + r) * cols + c];
      sg += double(g) * double((x[r * cols + c] - mean[r]) * rstd[r]);
      sb += double(g);
    }
    pg[t] = sg;
    pb[t] = sb;
  }
}

template <class T>
__global__ void layer_norm_bwd_param_finish_kernel(const double* __restrict__ pg, const double* __restrict__ pb,
                                                   int64_t cols, int64_t K, int64_t nchunk, T* __restrict__ dg,
                                                   T* __restrict__ db) {
  const int64_t total = K * cols;
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t k = t / cols, c = t % cols;
    double sg = 0, sb = 0;
    for (int64_t ch = 0; ch < nchunk; ++ch) {
      sg += pg[(k * nchunk + ch) * cols + c];
      sb += pb[(k * nchunk + ch) * cols + c];
    }
    if (dg) dg[t] = T(sg);
    if (db) db[t] = T(sb);
  }
}

// ---------------------------------------------------------------------------------------------
// batch norm: per-(k, c) sums over (n, s) in fixed chunks of the M = N*S values.
struct BnSplit {
  int64_t nsplit, chunk;
};
inline BnSplit bn_split(int64_t groups, int64_t M) {
  int64_t nsplit = 1;
  if (M > 8192) nsplit = std::min<int64_t>((M + 4095) / 4096, std::max<int64_t>(1, 2048 / std::max<int64_t>(groups, 1)));
  const int64_t chunk = (M + nsplit - 1) / nsplit;
  return {(M + chunk - 1) / chunk, chunk};
}

// mode 0: sum x; mode 1: sum (x - mean_d[c])^2. Block b = (c, s).
template <class T>
__global__ void bn_stat_partial_kernel(const T* __restrict__ x, int64_t N, int64_t C, int64_t S, int64_t nsplit,
                                       int64_t chunk, const double* __restrict__ mean_d, double* __restrict__ partial) {
  const int64_t M = N * S;
  for (int64_t b = blockIdx.x; b < C * nsplit; b += gridDim.x) {
    const int64_t c = b / nsplit, s = b % nsplit;
    const int64_t m0 = s * chunk, m1 = min(M, m0 + chunk);
    const double mu = mean_d ? mean_d[c] : 0.0;
    double acc = 0;
    for (int64_t m = m0 + threadIdx.x; m < m1; m += blockDim.x) {
      const int64_t n = m / S, i = m - n * S;
      const double v = double(x[(n * C + c) * S + i]);
      if (mean_d) {
        const double d = v - mu;
        acc += d * d;
      } else {
        acc += v;
      }
    }
    acc = block_reduce(acc, SumOp(), 0.0);
    if (threadIdx.x == 0) partial[b] = acc;
  }
}

template <class T>
__global__ void bn_mean_finish_kernel(const double* __restrict__ partial, int64_t C, int64_t nsplit, int64_t M,
                                      double* __restrict__ mean_d) {
  for (int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; c < C; c += int64_t(gridDim.x) * blockDim.x) {
    double s = 0;
    for (int64_t j = 0; j < nsplit; ++j) s += partial[c * nsplit + j];
    mean_d[c] = s / double(M);
  }
}

template <class T>
__global__ void bn_var_finish_kernel(const double* __restrict__ partial, const double* __restrict__ mean_d, int64_t C,
                                     int64_t nsplit, int64_t M, double eps, T momentum, T* __restrict__ mean,
                                     T* __restrict__ invstd, T* __restrict__ rm, T* __restrict__ rv) {
  for (int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; c < C; c += int64_t(gridDim.x) * blockDim.x) {
    double ss = 0;
    for (int64_t j = 0; j < nsplit; ++j) ss += partial[c * nsplit + j];
    const double m = mean_d[c], var = ss / double(M);
    mean[c] = T(m);
    invstd[c] = T(1.0 / ::sqrt(var + eps));
    if (rm) {
      rm[c] = (T(1) - momentum) * rm[c] + momentum * T(m);
      rv[c] = (T(1) - momentum) * rv[c] + momentum * T(var * double(M) / double(M - 1));
    }
  }
}

template <class T>
__global__ void bn_eval_stats_kernel(const T* __restrict__ rm, const T* __restrict__ rv, int64_t C, double eps,
                                     T* __restrict__ mean, T* __restrict__ invstd) {
  for (int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; c < C; c += int64_t(gridDim.x) * blockDim.x) {
    mean[c] = rm[c];
    invstd[c] = T(1.0 / ::sqrt(double(rv[c]) + eps));
  }
}

// Backward sums: block b = (k, c, s): sum gy and sum gy * xh over its chunk of (n, s).
template <class T>
__global__ void bn_bwd_partial_kernel(const T* __restrict__ x, const T* __restrict__ mean, const T* __restrict__ invstd,
                                      const T* __restrict__ gy, int64_t N, int64_t C, int64_t S, int64_t K,
                                      int64_t nsplit, int64_t chunk, double* __restrict__ pd, double* __restrict__ pdx) {
  const int64_t M = N * S;
  for (int64_t b = blockIdx.x; b < K * C * nsplit; b += gridDim.x) {
    const int64_t kc = b / nsplit, s = b % nsplit;
    const int64_t k = kc / C, c = kc % C;
    const int64_t m0 = s * chunk, m1 = min(M, m0 + chunk);
    const T mu = mean[c], is = invstd[c];
    double sd = 0, sdx = 0;
    for (int64_t m = m0 + threadIdx.x; m < m1; m += blockDim.x) {
      const int64_t n = m / S, i = m - n * S;
      const T g = gy[((k * N + n) * C + c) * S + i];
      const T xv = x[(n * C + c) * S + i];
      sd += double(g);
      sdx += double(g) * double((xv - mu) * is);
    }
    sd = block_reduce(sd, SumOp(), 0.0);
    sdx = block_reduce(sdx, SumOp(), 0.0);
    if (threadIdx.x == 0) {
      pd[b] = sd;
      pdx[b] = sdx;
    }
  }
}

template <class T>
__global__ void bn_bwd_finish_kernel(const double* __restrict__ pd, const double* __restrict__ pdx, int64_t KC,
                                     int64_t nsplit, T* __restrict__ sum_dy, T* __restrict__ sum_dy_xh,
                                     T* __restrict__ dg, T* __restrict__ db) {
  for (int64_t u = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; u < KC; u += int64_t(gridDim.x) * blockDim.x) {
    double sd = 0, sdx = 0;
    for (int64_t j = 0; j < nsplit; ++j) {
      sd += pd[u * nsplit + j];
      sdx += pdx[u * nsplit + j];
    }
    sum_dy[u] = T(sd);
    sum_dy_xh[u] = T(sdx);
    if (db) db[u] = T(sd);
    if (dg) dg[u] = T(sdx);
  }
}

template <class T>
__global__ void bn_normalise_kernel(const T* __restrict__ x, const T* __restrict__ g, const T* __restrict__ b,
                                    const T* __restrict__ mean, const T* __restrict__ invstd, T* __restrict__ y,
                                    int64_t C, int64_t S, int64_t total) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = (i / S) % C;
    const T is = invstd[c];
    const T scale = g ? is * g[c] : is;
    const T shift = b ? b[c] : T(0);
    y[i] = (x[i] - mean[c]) * scale + shift;
  }
}

// gx (K*N, C, S): training: scale * (gy - sum_dy / M - xh * sum_dy_xh / M); eval: scale * gy.
template <class T>
__global__ void bn_bwd_gx_kernel(const T* __restrict__ x, const T* __restrict__ g, const T* __restrict__ mean,
                                 const T* __restrict__ invstd, const T* __restrict__ gy, const T* __restrict__ sum_dy,
                                 const T* __restrict__ sum_dy_xh, T* __restrict__ gx, int64_t N, int64_t C, int64_t S,
                                 int64_t K, T Mt, bool training) {
  const int64_t NC = N * C, total = K * NC * S;
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t pl = e / S, i = e - pl * S;
    const int64_t c = pl % C, k = pl / NC;
    const T mu = mean[c], is = invstd[c];
    const T scale = g ? is * g[c] : is;
    if (training) {
      const T xv = x[(pl % NC) * S + i];
      const T md = sum_dy[k * C + c] / Mt, mdx = sum_dy_xh[k * C + c] / Mt;
      gx[e] = scale * (gy[e] - md - (xv - mu) * is * mdx);
    } else {
      gx[e] = scale * gy[e];
    }
  }
}

// ---------------------------------------------------------------------------------------------
// cross-entropy
template <class T>
__global__ void cross_entropy_kernel(const T* __restrict__ x, const int64_t* __restrict__ target, int64_t N, int64_t C,
                                     int64_t ignore_index, double eps, T* __restrict__ loss, T* __restrict__ lse,
                                     unsigned long long* __restrict__ bad) {
  const T ninf = -INFINITY;
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    const T* xr = x + n * C;
    const int64_t t = target[n];
    const bool valid = t == ignore_index || (t >= 0 && t < C);
    T mx = ninf;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) mx = xr[c] > mx ? xr[c] : mx;
    mx = block_reduce(mx, MaxIgnoreNanOp(), ninf);
    double se = 0, sx = 0;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      se += double(d_exp(xr[c] - mx));
      sx += double(xr[c]);
    }
    se = block_reduce(se, SumOp(), 0.0);
    sx = block_reduce(sx, SumOp(), 0.0);
    if (threadIdx.x == 0) {
      const double l = double(mx) + ::log(se);
      lse[n] = T(l);
      if (!valid) {
        atomicMin(bad, (unsigned long long)n);
        loss[n] = T(0);
      } else if (t == ignore_index) {
        loss[n] = T(0);
      } else {
        double v = (1.0 - eps) * (l - double(xr[t]));
        if (eps > 0) v += eps * (l - sx / double(C));
        loss[n] = T(v);
      }
    }
  }
}

template <class T>
__global__ void cross_entropy_bwd_kernel(const T* __restrict__ x, const int64_t* __restrict__ target,
                                         const T* __restrict__ lse, const T* __restrict__ gloss, int64_t N, int64_t C,
                                         int64_t KN, int64_t ignore_index, T off, T hit, T* __restrict__ gx,
                                         unsigned long long* __restrict__ bad) {
  for (int64_t r = blockIdx.x; r < KN; r += gridDim.x) {
    const int64_t n = r % N, t = target[n];
    T* gr = gx + r * C;
    const bool valid = t == ignore_index || (t >= 0 && t < C);
    if (!valid && threadIdx.x == 0) atomicMin(bad, (unsigned long long)n);
    if (!valid || t == ignore_index) {
      for (int64_t c = threadIdx.x; c < C; c += blockDim.x) gr[c] = T(0);
      continue;
    }
    const T* xr = x + n * C;
    const T l = lse[n], go = gloss[r];
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      T v = go * (d_exp(xr[c] - l) - off);
      if (c == t) v -= go * hit;
      gr[c] = v;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// embedding
template <class T>
__global__ void embedding_kernel(const T* __restrict__ w, const int64_t* __restrict__ idx, int64_t n, int64_t V,
                                 int64_t D, T* __restrict__ out, unsigned long long* __restrict__ bad) {
  const int64_t total = n * D;
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = t / D, d = t - i * D;
    const int64_t v = idx[i];
    if (v < 0 || v >= V) {
      atomicMin(bad, (unsigned long long)i);
      out[t] = T(0);
    } else {
      out[t] = w[v * D + d];
    }
  }
}

__global__ void index_keys_kernel(const int64_t* __restrict__ idx, int64_t n, int64_t V, uint64_t* __restrict__ keys,
                                  unsigned long long* __restrict__ bad) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t v = idx[i];
    if (v < 0 || v >= V) {
      atomicMin(bad, (unsigned long long)i);
      keys[i] = 0;
    } else {
      keys[i] = uint64_t(v);
    }
  }
}

// gw[k, v, d] = sum over the positions of row v (increasing) of gy[k, pos, d]; 0 for unused rows.
template <class T>
__global__ void embedding_bwd_kernel(const T* __restrict__ gy, const int64_t* __restrict__ order,
                                     const int64_t* __restrict__ start, int64_t n, int64_t V, int64_t D, int64_t K,
                                     T* __restrict__ gw) {
  const int64_t total = K * V * D;
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t d = t % D, u = t / D;
    const int64_t v = u % V, k = u / V;
    T acc = T(0);
    const int64_t j1 = start[v + 1];
    for (int64_t j = start[v]; j < j1; ++j) acc += gy[(k * n + order[j]) * D + d];
    gw[t] = acc;
  }
}

}  // namespace

// =============================================================================================
void CudaBackend::softmax(const Tensor& x, int64_t rows, int64_t cols, bool log, Tensor& y) {
  const char* op = log ? "log_softmax" : "softmax";
  DeviceContext& ctx = context_of(x, op);
  expect(x, ctx, x.dtype(), rows * cols, op, "x");
  expect(y, ctx, x.dtype(), rows * cols, op, "y");
  if (rows * cols == 0) return;
  dispatch_float(x.dtype(), op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    softmax_kernel<T><<<row_grid(rows), row_threads(cols), 0, ctx.stream>>>(cptr<T>(x), mptr<T>(y), rows, cols, log);
    PH_CUDA_LAUNCH_CHECK("softmax");
  });
}

void CudaBackend::softmax_backward(const Tensor& y, const Tensor& gy, int64_t rows, int64_t cols, int64_t K, bool log,
                                   Tensor& gx) {
  const char* op = log ? "log_softmax_backward" : "softmax_backward";
  DeviceContext& ctx = context_of(y, op);
  expect(y, ctx, y.dtype(), rows * cols, op, "y");
  expect(gy, ctx, y.dtype(), K * rows * cols, op, "gy");
  expect(gx, ctx, y.dtype(), K * rows * cols, op, "gx");
  if (K * rows * cols == 0) return;
  dispatch_float(y.dtype(), op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    softmax_bwd_kernel<T><<<row_grid(K * rows), row_threads(cols), 0, ctx.stream>>>(cptr<T>(y), cptr<T>(gy), mptr<T>(gx),
                                                                                    rows, K * rows, cols, log);
    PH_CUDA_LAUNCH_CHECK("softmax_backward");
  });
}

void CudaBackend::layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, int64_t rows, int64_t cols,
                             double eps, Tensor& y, Tensor& mean, Tensor& rstd) {
  const char* op = "layer_norm";
  DeviceContext& ctx = context_of(x, op);
  const DType dt = x.dtype();
  expect(x, ctx, dt, rows * cols, op, "x");
  expect(y, ctx, dt, rows * cols, op, "y");
  expect(mean, ctx, dt, rows, op, "mean");
  expect(rstd, ctx, dt, rows, op, "rstd");
  if (gamma.defined()) expect(gamma, ctx, dt, cols, op, "gamma");
  if (beta.defined()) expect(beta, ctx, dt, cols, op, "beta");
  PH_CHECK(cols > 0 || rows == 0, op, "normalising over an empty last dimension");
  if (rows == 0) return;
  dispatch_float(dt, op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    layer_norm_kernel<T><<<row_grid(rows), row_threads(cols), 0, ctx.stream>>>(
        cptr<T>(x), cptr<T>(gamma), cptr<T>(beta), mptr<T>(y), mptr<T>(mean), mptr<T>(rstd), rows, cols, eps);
    PH_CUDA_LAUNCH_CHECK("layer_norm");
  });
}

void CudaBackend::layer_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& rstd,
                                      const Tensor& gy, int64_t rows, int64_t cols, int64_t K, Tensor& gx,
                                      Tensor& dgamma, Tensor& dbeta) {
  const char* op = "layer_norm_backward";
  DeviceContext& ctx = context_of(x, op);
  const DType dt = x.dtype();
  expect(x, ctx, dt, rows * cols, op, "x");
  expect(mean, ctx, dt, rows, op, "mean");
  expect(rstd, ctx, dt, rows, op, "rstd");
  expect(gy, ctx, dt, K * rows * cols, op, "gy");
  if (gamma.defined()) expect(gamma, ctx, dt, cols, op, "gamma");
  if (gx.defined()) expect(gx, ctx, dt, K * rows * cols, op, "gx");
  if (dgamma.defined()) expect(dgamma, ctx, dt, K * cols, op, "dgamma");
  if (dbeta.defined()) expect(dbeta, ctx, dt, K * cols, op, "dbeta");
  dispatch_float(dt, op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    if (gx.defined() && K * rows * cols > 0) {
      layer_norm_bwd_gx_kernel<T><<<row_grid(K * rows), row_threads(cols), 0, ctx.stream>>>(
          cptr<T>(x), cptr<T>(gamma), cptr<T>(mean), cptr<T>(rstd), cptr<T>(gy), mptr<T>(gx), rows, K * rows, cols);
      PH_CUDA_LAUNCH_CHECK("layer_norm_backward (gx)");
    }
    if (!(dgamma.defined() || dbeta.defined()) || K * cols == 0) return;
    // chunks of rows fixed by the sizes: at most 256 per k
    const int64_t chunk = std::max<int64_t>(32, (rows + 255) / 256);
    const int64_t nchunk = rows == 0 ? 0 : (rows + chunk - 1) / chunk;
    if (nchunk == 0) {  // no rows: the sums are zero
      if (dgamma.defined()) launch_fill(ctx, dt, dgamma.raw(), K * cols, 0.0);
      if (dbeta.defined()) launch_fill(ctx, dt, dbeta.raw(), K * cols, 0.0);
      return;
    }
    const int64_t np = K * nchunk * cols;
    Scratch pg(ctx.index, size_t(np) * sizeof(double)), pb(ctx.index, size_t(np) * sizeof(double));
    layer_norm_bwd_param_partial_kernel<T><<<grid_for(ctx, np), kThreads, 0, ctx.stream>>>(
        cptr<T>(x), cptr<T>(mean), cptr<T>(rstd), cptr<T>(gy), rows, cols, K, chunk, nchunk, pg.as<double>(),
        pb.as<double>());
    PH_CUDA_LAUNCH_CHECK("layer_norm_backward (param partials)");
    layer_norm_bwd_param_finish_kernel<T><<<grid_for(ctx, K * cols), kThreads, 0, ctx.stream>>>(
        pg.as<double>(), pb.as<double>(), cols, K, nchunk, mptr<T>(dgamma), mptr<T>(dbeta));
    PH_CUDA_LAUNCH_CHECK("layer_norm_backward (params)");
  });
}

void CudaBackend::batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& running_mean,
                             Tensor& running_var, bool training, double momentum, double eps, int64_t N, int64_t C,
                             int64_t S, Tensor& y, Tensor& mean, Tensor& invstd) {
  const char* op = "batch_norm";
  DeviceContext& ctx = context_of(x, op);
  const DType dt = x.dtype();
  expect(x, ctx, dt, N * C * S, op, "x");
  expect(y, ctx, dt, N * C * S, op, "y");
  expect(mean, ctx, dt, C, op, "mean");
  expect(invstd, ctx, dt, C, op, "invstd");
  if (gamma.defined()) expect(gamma, ctx, dt, C, op, "gamma");
  if (beta.defined()) expect(beta, ctx, dt, C, op, "beta");
  PH_CHECK(running_mean.defined() == running_var.defined(), op,
           "running_mean and running_var must both be given or both undefined");
  if (running_mean.defined()) {
    expect(running_mean, ctx, dt, C, op, "running_mean");
    expect(running_var, ctx, dt, C, op, "running_var");
  }
  const int64_t M = N * S;
  if (training) {
    PH_CHECK_HINT(M > 1, op, "expected more than 1 value per channel when training, got input of " << N << " x " << C << " x " << S,
                  "use a batch larger than 1 or call eval()");
  } else {
    PH_CHECK_HINT(running_mean.defined(), op, "eval mode needs running statistics",
                  "train with track_running_stats, or stay in training mode");
  }
  if (C == 0) return;
  dispatch_float(dt, op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    T* mp = mptr<T>(mean);
    T* ip = mptr<T>(invstd);
    if (training) {
      const BnSplit sp = bn_split(C, M);
      Scratch part(ctx.index, size_t(C * sp.nsplit) * sizeof(double)), mean_d(ctx.index, size_t(C) * sizeof(double));
      const unsigned sgrid = row_grid(C * sp.nsplit);
      bn_stat_partial_kernel<T><<<sgrid, kThreads, 0, ctx.stream>>>(cptr<T>(x), N, C, S, sp.nsplit, sp.chunk, nullptr,
                                                                     part.as<double>());
      PH_CUDA_LAUNCH_CHECK("batch_norm (sum)");
      bn_mean_finish_kernel<T><<<grid_for(ctx, C), kThreads, 0, ctx.stream>>>(part.as<double>(), C, sp.nsplit, M,
                                                                               mean_d.as<double>());
      PH_CUDA_LAUNCH_CHECK("batch_norm (mean)");
      bn_stat_partial_kernel<T><<<sgrid, kThreads, 0, ctx.stream>>>(cptr<T>(x), N, C, S, sp.nsplit, sp.chunk,
                                                                     mean_d.as<double>(), part.as<double>());
      PH_CUDA_LAUNCH_CHECK("batch_norm (sum of squares)");
      bn_var_finish_kernel<T><<<grid_for(ctx, C), kThreads, 0, ctx.stream>>>(
          part.as<double>(), mean_d.as<double>(), C, sp.nsplit, M, eps, T(momentum), mp, ip, mptr<T>(running_mean),
          mptr<T>(running_var));
      PH_CUDA_LAUNCH_CHECK("batch_norm (variance)");
    } else {
      bn_eval_stats_kernel<T><<<grid_for(ctx, C), kThreads, 0, ctx.stream>>>(cptr<T>(running_mean), cptr<T>(running_var),
                                                                              C, eps, mp, ip);
      PH_CUDA_LAUNCH_CHECK("batch_norm (eval statistics)");
    }
    bn_normalise_kernel<T><<<grid_for(ctx, N * C * S), kThreads, 0, ctx.stream>>>(
        cptr<T>(x), cptr<T>(gamma), cptr<T>(beta), mp, ip, mptr<T>(y), C, S, N * C * S);
    PH_CUDA_LAUNCH_CHECK("batch_norm (normalise)");
  });
}

void CudaBackend::batch_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& invstd,
                                      const Tensor& gy, int64_t N, int64_t C, int64_t S, int64_t K, bool training,
                                      Tensor& gx, Tensor& dgamma, Tensor& dbeta) {
  const char* op = "batch_norm_backward";
  DeviceContext& ctx = context_of(x, op);
  const DType dt = x.dtype();
  expect(x, ctx, dt, N * C * S, op, "x");
  expect(mean, ctx, dt, C, op, "mean");
  expect(invstd, ctx, dt, C, op, "invstd");
  expect(gy, ctx, dt, K * N * C * S, op, "gy");
  if (gamma.defined()) expect(gamma, ctx, dt, C, op, "gamma");
  if (gx.defined()) expect(gx, ctx, dt, K * N * C * S, op, "gx");
  if (dgamma.defined()) expect(dgamma, ctx, dt, K * C, op, "dgamma");
  if (dbeta.defined()) expect(dbeta, ctx, dt, K * C, op, "dbeta");
  const int64_t M = N * S;
  if (K * C == 0) return;
  dispatch_float(dt, op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const int64_t KC = K * C;
    const BnSplit sp = bn_split(KC, std::max<int64_t>(M, 1));
    Scratch pd(ctx.index, size_t(KC * sp.nsplit) * sizeof(double)), pdx(ctx.index, size_t(KC * sp.nsplit) * sizeof(double));
    Scratch sdy(ctx.index, size_t(KC) * sizeof(T)), sdyx(ctx.index, size_t(KC) * sizeof(T));
    bn_bwd_partial_kernel<T><<<row_grid(KC * sp.nsplit), kThreads, 0, ctx.stream>>>(
        cptr<T>(x), cptr<T>(mean), cptr<T>(invstd), cptr<T>(gy), N, C, S, K, sp.nsplit, sp.chunk, pd.as<double>(),
        pdx.as<double>());
    PH_CUDA_LAUNCH_CHECK("batch_norm_backward (partials)");
    bn_bwd_finish_kernel<T><<<grid_for(ctx, KC), kThreads, 0, ctx.stream>>>(pd.as<double>(), pdx.as<double>(), KC,
                                                                             sp.nsplit, sdy.as<T>(), sdyx.as<T>(),
                                                                             mptr<T>(dgamma), mptr<T>(dbeta));
    PH_CUDA_LAUNCH_CHECK("batch_norm_backward (sums)");
    if (!gx.defined() || K * N * C * S == 0) return;
    bn_bwd_gx_kernel<T><<<grid_for(ctx, K * N * C * S), kThreads, 0, ctx.stream>>>(
        cptr<T>(x), cptr<T>(gamma), cptr<T>(mean), cptr<T>(invstd), cptr<T>(gy), sdy.as<T>(), sdyx.as<T>(), mptr<T>(gx),
        N, C, S, K, T(M), training);
    PH_CUDA_LAUNCH_CHECK("batch_norm_backward (gx)");
  });
}

void CudaBackend::cross_entropy(const Tensor& logits, const Tensor& target, int64_t N, int64_t C, int64_t ignore_index,
                                double label_smoothing, Tensor& loss, Tensor& lse) {
  const char* op = "cross_entropy";
  DeviceContext& ctx = context_of(logits, op);
  const DType dt = logits.dtype();
  expect(logits, ctx, dt, N * C, op, "logits");
  expect(target, ctx, DType::i64, N, op, "target");
  expect(loss, ctx, dt, N, op, "loss");
  expect(lse, ctx, dt, N, op, "lse");
  PH_CHECK(label_smoothing >= 0 && label_smoothing <= 1, op, "label_smoothing must be in [0, 1], got " << label_smoothing);
  PH_CHECK(C > 0 || N == 0, op, "no classes");
  if (N == 0) return;
  ErrorFlag bad(ctx);
  dispatch_float(dt, op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    cross_entropy_kernel<T><<<row_grid(N), row_threads(C), 0, ctx.stream>>>(
        cptr<T>(logits), cptr<int64_t>(target), N, C, ignore_index, label_smoothing, mptr<T>(loss), mptr<T>(lse),
        bad.ptr());
    PH_CUDA_LAUNCH_CHECK("cross_entropy");
  });
  bad.check([&ctx, target, C, op](int64_t row) {
    const int64_t t = read_i64(ctx, cptr<int64_t>(target) + row);
    PH_CHECK_HINT(false, op, "target " << t << " at row " << row << " is outside [0, " << C << ")",
                  "targets are class indices; check the number of classes of the model");
  });
}

void CudaBackend::cross_entropy_backward(const Tensor& logits, const Tensor& target, const Tensor& lse,
                                         const Tensor& gloss, int64_t N, int64_t C, int64_t K, int64_t ignore_index,
                                         double label_smoothing, Tensor& glogits) {
  const char* op = "cross_entropy_backward";
  DeviceContext& ctx = context_of(logits, op);
  const DType dt = logits.dtype();
  expect(logits, ctx, dt, N * C, op, "logits");
  expect(target, ctx, DType::i64, N, op, "target");
  expect(lse, ctx, dt, N, op, "lse");
  expect(gloss, ctx, dt, K * N, op, "gloss");
  expect(glogits, ctx, dt, K * N * C, op, "glogits");
  if (K * N * C == 0) return;
  ErrorFlag bad(ctx);
  dispatch_float(dt, op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T off = T(label_smoothing / double(C)), hit = T(1.0 - label_smoothing);
    cross_entropy_bwd_kernel<T><<<row_grid(K * N), row_threads(C), 0, ctx.stream>>>(
        cptr<T>(logits), cptr<int64_t>(target), cptr<T>(lse), cptr<T>(gloss), N, C, K * N, ignore_index, off, hit,
        mptr<T>(glogits), bad.ptr());
    PH_CUDA_LAUNCH_CHECK("cross_entropy_backward");
  });
  bad.check([&ctx, target, C, op](int64_t row) {
    const int64_t t = read_i64(ctx, cptr<int64_t>(target) + row);
    PH_CHECK(false, op, "target " << t << " at row " << row << " is outside [0, " << C << ")");
  });
}

void CudaBackend::embedding(const Tensor& weight, const Tensor& idx, Tensor& out) {
  const char* op = "embedding";
  DeviceContext& ctx = context_of(weight, op);
  const DType dt = weight.dtype();
  PH_CHECK(weight.dim() == 2, op, "weight must be 2-D (V, D), got " << weight.str());
  const int64_t V = weight.size(0), D = weight.size(1), n = idx.defined() ? idx.numel() : 0;
  expect(weight, ctx, dt, V * D, op, "weight");
  expect(idx, ctx, DType::i64, n, op, "indices");
  expect(out, ctx, dt, n * D, op, "out");
  if (n == 0) return;
  ErrorFlag bad(ctx);
  dispatch_float(dt, op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    embedding_kernel<T><<<grid_for(ctx, std::max<int64_t>(n * D, 1)), kThreads, 0, ctx.stream>>>(
        cptr<T>(weight), cptr<int64_t>(idx), n, V, D, mptr<T>(out), bad.ptr());
    PH_CUDA_LAUNCH_CHECK("embedding");
  });
  if (D == 0) {  // no element was read: check the indices on their own
    Scratch keys(ctx.index, size_t(n) * sizeof(uint64_t));
    index_keys_kernel<<<grid_for(ctx, n), kThreads, 0, ctx.stream>>>(cptr<int64_t>(idx), n, V, keys.as<uint64_t>(), bad.ptr());
    PH_CUDA_LAUNCH_CHECK("embedding (index check)");
  }
  bad.check([&ctx, idx, V, op](int64_t pos) {
    const int64_t v = read_i64(ctx, cptr<int64_t>(idx) + pos);
    PH_CHECK_HINT(false, op, "index " << v << " at position " << pos << " is out of range for an embedding of " << V << " rows",
                  "indices must lie in [0, num_embeddings); check the vocabulary size");
  });
}

void CudaBackend::embedding_backward(const Tensor& gy, const Tensor& idx, int64_t K, int64_t V, int64_t D, Tensor& gw) {
  const char* op = "embedding_backward";
  DeviceContext& ctx = context_of(gy, op);
  const DType dt = gy.dtype();
  const int64_t n = idx.defined() ? idx.numel() : 0;
  expect(idx, ctx, DType::i64, n, op, "indices");
  expect(gy, ctx, dt, K * n * D, op, "gy");
  expect(gw, ctx, dt, K * V * D, op, "gw");
  // positions grouped by row: keys (checked), then a stable sort
  Scratch keys(ctx.index, size_t(std::max<int64_t>(n, 1)) * sizeof(uint64_t));
  if (n > 0) {
    ErrorFlag bad(ctx);
    index_keys_kernel<<<grid_for(ctx, n), kThreads, 0, ctx.stream>>>(cptr<int64_t>(idx), n, V, keys.as<uint64_t>(), bad.ptr());
    PH_CUDA_LAUNCH_CHECK("embedding_backward (index check)");
    bad.check([&ctx, idx, V, op](int64_t pos) {
      const int64_t v = read_i64(ctx, cptr<int64_t>(idx) + pos);
      PH_CHECK_HINT(false, op, "index " << v << " at position " << pos << " is out of range for an embedding of " << V << " rows",
                    "indices must lie in [0, num_embeddings); check the vocabulary size");
    });
  }
  if (K * V * D == 0) return;
  InverseIndex inv = invert_index(ctx, keys.as<uint64_t>(), n, V);
  dispatch_float(dt, op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    embedding_bwd_kernel<T><<<grid_for(ctx, K * V * D), kThreads, 0, ctx.stream>>>(
        cptr<T>(gy), inv.order.as<int64_t>(), inv.start.as<int64_t>(), n, V, D, K, mptr<T>(gw));
    PH_CUDA_LAUNCH_CHECK("embedding_backward");
  });
}

}  // namespace polyhead::cuda
