// engine/cuda/cuda_pool.cu: max / average pooling (forward and backward), the scatter-free index
// inversion used by the max-pool and embedding gradients, and direct convolution kernels (the
// fallback of cudnn_ops.cpp when cuDNN offers no deterministic algorithm).
//
// Pooling is written here rather than with cuDNN: cuDNN's max pooling returns no indices (the
// backend's idx contract: i64 h*W+w within the plane) and its NaN handling differs from the CPU's;
// these kernels reproduce the CPU's loops exactly (same window order, same NaN rule, same divisor),
// so pooling results are bit-identical to the CPU. Backward passes are gathers: each input element
// sums the contributions of its outputs in increasing output order, as the CPU's sequential
// scatter does, so they are bit-identical too and need no atomics.
#include <cuda_runtime.h>

#include <cub/device/device_radix_sort.cuh>
#include <cmath>
#include <limits>

#include "engine/cuda/cuda_kernels.cuh"

namespace polyhead::cuda {

namespace {

void expect4(const Tensor& t, const DeviceContext& ctx, DType dt, const char* op, const char* name) {
  check_same_device(t, ctx, op, name);
  PH_CHECK(t.dim() == 4, op, name << " must be 4-D (N, C, H, W), got " << t.str());
  PH_CHECK(t.dtype() == dt, op, name << " must be " << dtype_name(dt) << ", got " << t.str());
  PH_CHECK(t.is_contiguous(), op, name << " must be contiguous, got " << t.str());
}

void check_pool_params(const PoolParams& p, const char* op) {
  PH_CHECK(p.kh > 0 && p.kw > 0 && p.sh > 0 && p.sw > 0 && p.ph >= 0 && p.pw >= 0, op,
           "invalid parameters: kernel " << p.kh << "x" << p.kw << ", stride " << p.sh << "x" << p.sw << ", padding "
                                         << p.ph << "x" << p.pw);
  PH_CHECK_HINT(2 * p.ph <= p.kh && 2 * p.pw <= p.kw, op,
                "padding " << p.ph << "x" << p.pw << " is more than half the kernel " << p.kh << "x" << p.kw,
                "padding must be at most kernel / 2 (as in PyTorch)");
}

struct PoolGeom {
  int64_t H, W, OH, OW;
  int kh, kw, sh, sw, ph, pw;
  bool count_include_pad;
};

// ---- max pooling ----
template <class T>
__global__ void max_pool_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t* __restrict__ idx, int64_t planes,
                                PoolGeom g) {
  const int64_t total = planes * g.OH * g.OW;
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ow = t % g.OW, oh = (t / g.OW) % g.OH, q = t / (g.OW * g.OH);
    const T* xq = x + q * g.H * g.W;
    const int64_t h0 = imax(oh * g.sh - g.ph, 0), h1 = imin(oh * g.sh - g.ph + g.kh, g.H);
    const int64_t w0 = imax(ow * g.sw - g.pw, 0), w1 = imin(ow * g.sw - g.pw + g.kw, g.W);
    T best = -INFINITY;
    int64_t bi = h0 * g.W + w0;
    for (int64_t ih = h0; ih < h1; ++ih)
      for (int64_t iw = w0; iw < w1; ++iw) {
        const T v = xq[ih * g.W + iw];
        if (v > best || isnan(v)) { best = v; bi = ih * g.W + iw; }
      }
    y[t] = best;
    idx[t] = bi;
  }
}

// keys[q*OHOW + o] = q*HW + idx (checked against [0, HW)).
__global__ void max_pool_keys_kernel(const int64_t* __restrict__ idx, int64_t n, int64_t OHOW, int64_t HW,
                                     uint64_t* __restrict__ keys, unsigned long long* __restrict__ bad) {
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < n; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = idx[t];
    if (i < 0 || i >= HW) {
      atomicMin(bad, (unsigned long long)t);
      keys[t] = 0;
    } else {
      keys[t] = uint64_t((t / OHOW) * HW + i);
    }
  }
}

// gx[k, q, i] = sum of gy[k, q, o] over the outputs o of plane q whose idx is i, in increasing o.
template <class T>
__global__ void max_pool_bwd_kernel(const T* __restrict__ gy, const int64_t* __restrict__ order,
                                    const int64_t* __restrict__ start, int64_t dests, int64_t outs, int64_t K,
                                    T* __restrict__ gx) {
  const int64_t total = K * dests;
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t k = e / dests, dsti = e - k * dests;
    const T* gyk = gy + k * outs;
    T acc = T(0);
    const int64_t j1 = start[dsti + 1];
    for (int64_t j = start[dsti]; j < j1; ++j) acc += gyk[order[j]];
    gx[e] = acc;
  }
}

// ---- average pooling ----
__device__ __forceinline__ int64_t avg_divisor(const PoolGeom& g, int64_t oh, int64_t ow, int64_t& h0, int64_t& h1,
                                               int64_t& w0, int64_t& w1) {
  h0 = oh * g.sh - g.ph;
  w0 = ow * g.sw - g.pw;
  h1 = imin(h0 + g.kh, g.H + g.ph);
  w1 = imin(w0 + g.kw, g.W + g.pw);
  const int64_t padded = (h1 - h0) * (w1 - w0);
  h0 = imax(h0, 0);
  w0 = imax(w0, 0);
  h1 = imin(h1, g.H);
  w1 = imin(w1, g.W);
  return g.count_include_pad ? padded : (h1 - h0) * (w1 - w0);
}

template <class T>
__global__ void avg_pool_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t planes, PoolGeom g) {
  const int64_t total = planes * g.OH * g.OW;
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ow = t % g.OW, oh = (t / g.OW) % g.OH, q = t / (g.OW * g.OH);
    const T* xq = x + q * g.H * g.W;
    int64_t h0, h1, w0, w1;
    const int64_t div = avg_divisor(g, oh, ow, h0, h1, w0, w1);
    T s = T(0);
    for (int64_t ih = h0; ih < h1; ++ih)
      for (int64_t iw = w0; iw < w1; ++iw) s += xq[ih * g.W + iw];
    y[t] = s / T(div);
  }
}

// gx[q, ih, iw] = sum over the outputs (oh, ow) whose window holds (ih, iw), row-major, of gy / divisor.
template <class T>
__global__ void avg_pool_bwd_kernel(const T* __restrict__ gy, T* __restrict__ gx, int64_t planes, PoolGeom g) {
  const int64_t total = planes * g.H * g.W;
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t iw = t % g.W, ih = (t / g.W) % g.H, q = t / (g.W * g.H);
    const T* gyq = gy + q * g.OH * g.OW;
    // oh with oh*sh - ph <= ih < oh*sh - ph + kh
    const int64_t ah = ih + g.ph - g.kh + 1, aw = iw + g.pw - g.kw + 1;
    const int64_t oh0 = imax(0, ah <= 0 ? 0 : (ah + g.sh - 1) / g.sh);
    const int64_t oh1 = imin(g.OH - 1, (ih + g.ph) / g.sh);
    const int64_t ow0 = imax(0, aw <= 0 ? 0 : (aw + g.sw - 1) / g.sw);
    const int64_t ow1 = imin(g.OW - 1, (iw + g.pw) / g.sw);
    T acc = T(0);
    for (int64_t oh = oh0; oh <= oh1; ++oh)
      for (int64_t ow = ow0; ow <= ow1; ++ow) {
        int64_t h0, h1, w0, w1;
        const int64_t div = avg_divisor(g, oh, ow, h0, h1, w0, w1);
        if (ih < h0 || ih >= h1 || iw < w0 || iw >= w1) continue;
        acc += gyq[oh * g.OW + ow] / T(div);
      }
    gx[t] = acc;
  }
}

// ---- index inversion ----
__global__ void iota_kernel(int64_t* __restrict__ v, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) v[i] = i;
}
// start[k] = first j with sorted[j] >= k (k in [0, dests]).
__global__ void segment_start_kernel(const uint64_t* __restrict__ sorted, int64_t n, int64_t dests,
                                     int64_t* __restrict__ start) {
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k <= dests; k += int64_t(gridDim.x) * blockDim.x) {
    int64_t lo = 0, hi = n;
    const uint64_t key = uint64_t(k);
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (sorted[mid] < key) lo = mid + 1;
      else hi = mid;
    }
    start[k] = lo;
  }
}

// ---- direct convolution (fallback) ----
struct ConvGeom {
  int64_t N, C, H, W, OC, OH, OW;
  int kh, kw, sh, sw, ph, pw, dh, dw;
};

template <class T>
__global__ void conv_fwd_direct_kernel(const T* __restrict__ x, const T* __restrict__ w, T* __restrict__ y, ConvGeom g) {
  const int64_t total = g.N * g.OC * g.OH * g.OW;
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ow = t % g.OW, oh = (t / g.OW) % g.OH, oc = (t / (g.OW * g.OH)) % g.OC, n = t / (g.OW * g.OH * g.OC);
    double acc = 0;
    for (int64_t c = 0; c < g.C; ++c)
      for (int ki = 0; ki < g.kh; ++ki) {
        const int64_t ih = oh * g.sh - g.ph + int64_t(ki) * g.dh;
        if (ih < 0 || ih >= g.H) continue;
        for (int kj = 0; kj < g.kw; ++kj) {
          const int64_t iw = ow * g.sw - g.pw + int64_t(kj) * g.dw;
          if (iw < 0 || iw >= g.W) continue;
          acc += double(w[((oc * g.C + c) * g.kh + ki) * g.kw + kj]) * double(x[((n * g.C + c) * g.H + ih) * g.W + iw]);
        }
      }
    y[t] = T(acc);
  }
}

template <class T>
__global__ void conv_bwd_data_direct_kernel(const T* __restrict__ gy, const T* __restrict__ w, T* __restrict__ gx,
                                            ConvGeom g) {
  const int64_t total = g.N * g.C * g.H * g.W;
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t iw = t % g.W, ih = (t / g.W) % g.H, c = (t / (g.W * g.H)) % g.C, n = t / (g.W * g.H * g.C);
    double acc = 0;
    for (int64_t oc = 0; oc < g.OC; ++oc)
      for (int ki = 0; ki < g.kh; ++ki) {
        const int64_t hh = ih + g.ph - int64_t(ki) * g.dh;  // = oh * sh
        if (hh < 0 || hh % g.sh != 0) continue;
        const int64_t oh = hh / g.sh;
        if (oh >= g.OH) continue;
        for (int kj = 0; kj < g.kw; ++kj) {
          const int64_t ww = iw + g.pw - int64_t(kj) * g.dw;
          if (ww < 0 || ww % g.sw != 0) continue;
          const int64_t ow = ww / g.sw;
          if (ow >= g.OW) continue;
          acc += double(w[((oc * g.C + c) * g.kh + ki) * g.kw + kj]) * double(gy[((n * g.OC + oc) * g.OH + oh) * g.OW + ow]);
        }
      }
    gx[t] = T(acc);
  }
}

// One block per filter element; the (n, oh, ow) sum is split over the threads and combined by the
// fixed block tree.
template <class T>
__global__ void conv_bwd_filter_direct_kernel(const T* __restrict__ x, const T* __restrict__ gy, T* __restrict__ gw,
                                              ConvGeom g) {
  const int64_t total = g.OC * g.C * g.kh * g.kw, L = g.OH * g.OW, work = g.N * L;
  for (int64_t e = blockIdx.x; e < total; e += gridDim.x) {
    const int kj = int(e % g.kw), ki = int((e / g.kw) % g.kh);
    const int64_t c = (e / (int64_t(g.kw) * g.kh)) % g.C, oc = e / (int64_t(g.kw) * g.kh * g.C);
    double acc = 0;
    for (int64_t u = threadIdx.x; u < work; u += blockDim.x) {
      const int64_t n = u / L, l = u - n * L, oh = l / g.OW, ow = l - oh * g.OW;
      const int64_t ih = oh * g.sh - g.ph + int64_t(ki) * g.dh, iw = ow * g.sw - g.pw + int64_t(kj) * g.dw;
      if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
      acc += double(gy[((n * g.OC + oc) * g.OH + oh) * g.OW + ow]) * double(x[((n * g.C + c) * g.H + ih) * g.W + iw]);
    }
    acc = block_reduce(acc, SumOp(), 0.0);
    if (threadIdx.x == 0) gw[e] = T(acc);
  }
}

ConvGeom conv_geom(int64_t N, int64_t C, int64_t H, int64_t W, int64_t OC, int64_t OH, int64_t OW, const ConvParams& p) {
  return ConvGeom{N, C, H, W, OC, OH, OW, p.kh, p.kw, p.sh, p.sw, p.ph, p.pw, p.dh, p.dw};
}

}  // namespace

// =============================================================================================
InverseIndex invert_index(DeviceContext& ctx, const uint64_t* keys, int64_t n, int64_t num_dest) {
  InverseIndex r;
  r.order = Scratch(ctx.index, size_t(imax(n, 1)) * sizeof(int64_t));
  r.start = Scratch(ctx.index, size_t(num_dest + 1) * sizeof(int64_t));
  if (n == 0) {
    launch_fill(ctx, DType::i64, r.start.get(), num_dest + 1, 0.0);
    return r;
  }
  Scratch vals(ctx.index, size_t(n) * sizeof(int64_t)), sorted(ctx.index, size_t(n) * sizeof(uint64_t));
  iota_kernel<<<grid_for(ctx, n), kThreads, 0, ctx.stream>>>(vals.as<int64_t>(), n);
  PH_CUDA_LAUNCH_CHECK("iota");
  int end_bit = 1;
  while (end_bit < 64 && (uint64_t(1) << end_bit) < uint64_t(num_dest)) ++end_bit;
  size_t temp_bytes = 0;
  PH_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, keys, sorted.as<uint64_t>(), vals.as<int64_t>(),
                                                r.order.as<int64_t>(), n, 0, end_bit, ctx.stream));
  Scratch temp(ctx.index, std::max<size_t>(temp_bytes, 1));
  PH_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp.get(), temp_bytes, keys, sorted.as<uint64_t>(), vals.as<int64_t>(),
                                                r.order.as<int64_t>(), n, 0, end_bit, ctx.stream));
  segment_start_kernel<<<grid_for(ctx, num_dest + 1), kThreads, 0, ctx.stream>>>(sorted.as<uint64_t>(), n, num_dest,
                                                                                 r.start.as<int64_t>());
  PH_CUDA_LAUNCH_CHECK("segment_start");
  return r;
}

void launch_conv2d_direct(DeviceContext& ctx, DType dt, const void* x, const void* w, void* y, int64_t N, int64_t C,
                          int64_t H, int64_t W, int64_t OC, int64_t OH, int64_t OW, const ConvParams& p) {
  const ConvGeom g = conv_geom(N, C, H, W, OC, OH, OW, p);
  const int64_t total = N * OC * OH * OW;
  if (total == 0) return;
  dispatch_float(dt, "conv2d", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    conv_fwd_direct_kernel<T><<<grid_for(ctx, total), kThreads, 0, ctx.stream>>>(
        static_cast<const T*>(x), static_cast<const T*>(w), static_cast<T*>(y), g);
    PH_CUDA_LAUNCH_CHECK("conv2d (direct)");
  });
}

void launch_conv2d_bwd_data_direct(DeviceContext& ctx, DType dt, const void* gy, const void* w, void* gx, int64_t N,
                                   int64_t C, int64_t H, int64_t W, int64_t OC, int64_t OH, int64_t OW,
                                   const ConvParams& p) {
  const ConvGeom g = conv_geom(N, C, H, W, OC, OH, OW, p);
  const int64_t total = N * C * H * W;
  if (total == 0) return;
  dispatch_float(dt, "conv2d_backward_data", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    conv_bwd_data_direct_kernel<T><<<grid_for(ctx, total), kThreads, 0, ctx.stream>>>(
        static_cast<const T*>(gy), static_cast<const T*>(w), static_cast<T*>(gx), g);
    PH_CUDA_LAUNCH_CHECK("conv2d_backward_data (direct)");
  });
}

void launch_conv2d_bwd_filter_direct(DeviceContext& ctx, DType dt, const void* x, const void* gy, void* gw,
                                     int64_t N, int64_t C, int64_t H, int64_t W, int64_t OC, int64_t OH, int64_t OW,
                                     const ConvParams& p) {
  const ConvGeom g = conv_geom(N, C, H, W, OC, OH, OW, p);
  const int64_t total = OC * C * p.kh * p.kw;
  if (total == 0) return;
  dispatch_float(dt, "conv2d_backward_filter", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    conv_bwd_filter_direct_kernel<T><<<unsigned(imin(total, int64_t(1) << 20)), kThreads, 0, ctx.stream>>>(
        static_cast<const T*>(x), static_cast<const T*>(gy), static_cast<T*>(gw), g);
    PH_CUDA_LAUNCH_CHECK("conv2d_backward_filter (direct)");
  });
}

// =============================================================================================
void CudaBackend::max_pool2d(const Tensor& x, const PoolParams& p, Tensor& y, Tensor& idx) {
  const char* op = "max_pool2d";
  DeviceContext& ctx = context_of(x, op);
  const DType dt = x.dtype();
  check_pool_params(p, op);
  expect4(x, ctx, dt, op, "x");
  expect4(y, ctx, dt, op, "y");
  expect4(idx, ctx, DType::i64, op, "indices");
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t OH = p.out_h(H), OW = p.out_w(W);
  PH_CHECK(OH > 0 && OW > 0, op, "input " << x.str() << " is smaller than the kernel " << p.kh << "x" << p.kw);
  PH_CHECK(y.shape() == Shape({N, C, OH, OW}) && idx.shape() == y.shape(), op,
           "outputs " << y.str() << ", " << idx.str() << " should be " << shape_str({N, C, OH, OW}));
  const int64_t total = N * C * OH * OW;
  if (total == 0) return;
  const PoolGeom g{H, W, OH, OW, p.kh, p.kw, p.sh, p.sw, p.ph, p.pw, p.count_include_pad};
  dispatch_float(dt, op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    max_pool_kernel<T><<<grid_for(ctx, total), kThreads, 0, ctx.stream>>>(
        static_cast<const T*>(x.raw()), static_cast<T*>(y.raw()), static_cast<int64_t*>(idx.raw()), N * C, g);
    PH_CUDA_LAUNCH_CHECK("max_pool2d");
  });
}

void CudaBackend::max_pool2d_backward(const Tensor& gy, const Tensor& idx, int64_t K, Tensor& gx) {
  const char* op = "max_pool2d_backward";
  DeviceContext& ctx = context_of(gy, op);
  const DType dt = gy.dtype();
  expect4(gy, ctx, dt, op, "gy");
  expect4(idx, ctx, DType::i64, op, "indices");
  expect4(gx, ctx, dt, op, "gx");
  const int64_t N = idx.size(0), C = idx.size(1), OH = idx.size(2), OW = idx.size(3), H = gx.size(2), W = gx.size(3);
  PH_CHECK(gy.shape() == Shape({K * N, C, OH, OW}), op, "gy " << gy.str() << " should be " << shape_str({K * N, C, OH, OW}));
  PH_CHECK(gx.size(0) == K * N && gx.size(1) == C, op, "gx " << gx.str() << " should be (" << K * N << ", " << C << ", H, W)");
  if (gx.numel() == 0) return;
  const int64_t planes = N * C, outs = planes * OH * OW, dests = planes * H * W;
  Scratch keys(ctx.index, size_t(imax(outs, 1)) * sizeof(uint64_t));
  if (outs > 0) {
    ErrorFlag bad(ctx);
    max_pool_keys_kernel<<<grid_for(ctx, outs), kThreads, 0, ctx.stream>>>(static_cast<const int64_t*>(idx.raw()), outs,
                                                                          OH * OW, H * W, keys.as<uint64_t>(), bad.ptr());
    PH_CUDA_LAUNCH_CHECK("max_pool2d_backward (index check)");
    bad.check([&ctx, idx, H, W, op](int64_t pos) {
      const int64_t i = read_i64(ctx, static_cast<const int64_t*>(idx.raw()) + pos);
      PH_CHECK(false, op, "index " << i << " outside the " << H << "x" << W << " plane");
    });
  }
  InverseIndex inv = invert_index(ctx, keys.as<uint64_t>(), outs, dests);
  dispatch_float(dt, op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    max_pool_bwd_kernel<T><<<grid_for(ctx, K * dests), kThreads, 0, ctx.stream>>>(
        static_cast<const T*>(gy.raw()), inv.order.as<int64_t>(), inv.start.as<int64_t>(), dests, outs, K,
        static_cast<T*>(gx.raw()));
    PH_CUDA_LAUNCH_CHECK("max_pool2d_backward");
  });
}

void CudaBackend::avg_pool2d(const Tensor& x, const PoolParams& p, Tensor& y) {
  const char* op = "avg_pool2d";
  DeviceContext& ctx = context_of(x, op);
  const DType dt = x.dtype();
  check_pool_params(p, op);
  expect4(x, ctx, dt, op, "x");
  expect4(y, ctx, dt, op, "y");
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t OH = p.out_h(H), OW = p.out_w(W);
  PH_CHECK(OH > 0 && OW > 0, op, "input " << x.str() << " is smaller than the kernel " << p.kh << "x" << p.kw);
  PH_CHECK(y.shape() == Shape({N, C, OH, OW}), op, "output " << y.str() << " should be " << shape_str({N, C, OH, OW}));
  const int64_t total = N * C * OH * OW;
  if (total == 0) return;
  const PoolGeom g{H, W, OH, OW, p.kh, p.kw, p.sh, p.sw, p.ph, p.pw, p.count_include_pad};
  dispatch_float(dt, op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    avg_pool_kernel<T><<<grid_for(ctx, total), kThreads, 0, ctx.stream>>>(static_cast<const T*>(x.raw()),
                                                                           static_cast<T*>(y.raw()), N * C, g);
    PH_CUDA_LAUNCH_CHECK("avg_pool2d");
  });
}

void CudaBackend::avg_pool2d_backward(const Tensor& gy, const PoolParams& p, Tensor& gx) {
  const char* op = "avg_pool2d_backward";
  DeviceContext& ctx = context_of(gy, op);
  const DType dt = gy.dtype();
  check_pool_params(p, op);
  expect4(gy, ctx, dt, op, "gy");
  expect4(gx, ctx, dt, op, "gx");
  const int64_t M = gx.size(0), C = gx.size(1), H = gx.size(2), W = gx.size(3);
  const int64_t OH = p.out_h(H), OW = p.out_w(W);
  PH_CHECK(gy.shape() == Shape({M, C, OH, OW}), op, "gy " << gy.str() << " should be " << shape_str({M, C, OH, OW}));
  const int64_t total = M * C * H * W;
  if (total == 0) return;
  const PoolGeom g{H, W, OH, OW, p.kh, p.kw, p.sh, p.sw, p.ph, p.pw, p.count_include_pad};
  dispatch_float(dt, op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    avg_pool_bwd_kernel<T><<<grid_for(ctx, total), kThreads, 0, ctx.stream>>>(static_cast<const T*>(gy.raw()),
                                                                               static_cast<T*>(gx.raw()), M * C, g);
    PH_CUDA_LAUNCH_CHECK("avg_pool2d_backward");
  });
}

}  // namespace polyhead::cuda
