// engine/cpu/cpu_conv.cpp: 2-D convolution (im2col + GEMM) and max / average pooling, NCHW.
// Work items are whole images (convolution) or whole (n, c) planes (pooling), so every output
// element is computed by one item in a fixed order. The filter gradient sums over images in fixed
// groups whose partial results are combined in order; the groups depend on the sizes only.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "engine/cpu/kernel_util.h"

namespace polyhead::cpu {

namespace {

// t must be a defined, contiguous, 4-D CPU tensor of dtype dt.
void expect4(const Tensor& t, DType dt, const char* op, const char* name) {
  PH_CHECK(t.defined(), op, name << " is undefined");
  PH_CHECK(t.device().is_cpu(), op, name << " must be on the cpu, got " << t.str());
  PH_CHECK(t.dim() == 4, op, name << " must be 4-D (N, C, H, W), got " << t.str());
  PH_CHECK(t.dtype() == dt, op, name << " must be " << dtype_name(dt) << ", got " << t.str());
  PH_CHECK(t.is_contiguous(), op, name << " must be contiguous, got " << t.str());
}

void check_conv_params(const ConvParams& p, const char* op) {
  PH_CHECK(p.kh > 0 && p.kw > 0 && p.sh > 0 && p.sw > 0 && p.dh > 0 && p.dw > 0 && p.ph >= 0 && p.pw >= 0, op,
           "invalid parameters: kernel " << p.kh << "x" << p.kw << ", stride " << p.sh << "x" << p.sw << ", padding "
                                         << p.ph << "x" << p.pw << ", dilation " << p.dh << "x" << p.dw);
}

void check_pool_params(const PoolParams& p, const char* op) {
  PH_CHECK(p.kh > 0 && p.kw > 0 && p.sh > 0 && p.sw > 0 && p.ph >= 0 && p.pw >= 0, op,
           "invalid parameters: kernel " << p.kh << "x" << p.kw << ", stride " << p.sh << "x" << p.sw << ", padding "
                                         << p.ph << "x" << p.pw);
  PH_CHECK_HINT(2 * p.ph <= p.kh && 2 * p.pw <= p.kw, op,
                "padding " << p.ph << "x" << p.pw << " is more than half the kernel " << p.kh << "x" << p.kw,
                "padding must be at most kernel / 2 (as in PyTorch)");
}

// A 1x1 kernel with unit stride and no padding reads the image itself as the column matrix.
bool is_pointwise(const ConvParams& p) {
  return p.kh == 1 && p.kw == 1 && p.sh == 1 && p.sw == 1 && p.ph == 0 && p.pw == 0;
}

// Images per parallel chunk (each chunk allocates one column buffer): up to ~2^24 multiply-adds,
// but at least 16 chunks when there are that many images.
int64_t image_grain(int64_t N, double work_per_image) {
  const int64_t by_work = std::max<int64_t>(1, int64_t(double(1 << 24) / std::max(work_per_image, 1.0)));
  return std::max<int64_t>(1, std::min((N + 15) / 16, by_work));
}

// The output columns ow whose input column ow*sw + off lies in [0, W): [lo, hi).
inline void valid_cols(int64_t off, int64_t sw, int64_t W, int64_t OW, int64_t& lo, int64_t& hi) {
  lo = off >= 0 ? 0 : (-off + sw - 1) / sw;
  hi = W - off <= 0 ? 0 : (W - off + sw - 1) / sw;
  lo = std::min(lo, OW);
  hi = std::clamp(hi, lo, OW);
}

// The row loops below copy runs of a few dozen elements; turned into memmove / memset calls (GCC's
// loop-pattern replacement) the call overhead would dominate, so they stay inline loops.
// The copy / add / compare kernels are also compiled for AVX2 (chosen at load time where the CPU
// has it). They do no multiply-adds, so both versions give bit-identical results.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define PH_INLINE_LOOPS __attribute__((optimize("no-tree-loop-distribute-patterns"), target_clones("avx2", "default")))
#define PH_AVX2_CLONES __attribute__((target_clones("avx2", "default")))
#elif defined(__GNUC__) && !defined(__clang__)
#define PH_INLINE_LOOPS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#define PH_AVX2_CLONES
#else
#define PH_INLINE_LOOPS
#define PH_AVX2_CLONES
#endif

// im2col: one image x (C, H, W) -> col (C*kh*kw, OH*OW); row (c, ki, kj), column (oh, ow) holds
// x[c, oh*sh - ph + ki*dh, ow*sw - pw + kj*dw], or 0 in the padding.
template <class T>
PH_INLINE_LOOPS void im2col(const T* x, int64_t C, int64_t H, int64_t W, const ConvParams& p, int64_t OH, int64_t OW, T* col) {
  for (int64_t c = 0; c < C; ++c)
    for (int64_t ki = 0; ki < p.kh; ++ki)
      for (int64_t kj = 0; kj < p.kw; ++kj) {
        T* row = col + ((c * p.kh + ki) * p.kw + kj) * OH * OW;
        const int64_t off = kj * p.dw - p.pw;  // input column of ow is ow*sw + off
        int64_t lo, hi;
        valid_cols(off, p.sw, W, OW, lo, hi);
        for (int64_t oh = 0; oh < OH; ++oh) {
          T* dst = row + oh * OW;
          const int64_t ih = oh * p.sh - p.ph + ki * p.dh;
          if (ih < 0 || ih >= H) {
            std::fill(dst, dst + OW, T(0));
            continue;
          }
          const T* src = x + (c * H + ih) * W;
          for (int64_t ow = 0; ow < lo; ++ow) dst[ow] = T(0);
          if (p.sw == 1) {
            const T* s1 = src + off;
            for (int64_t ow = lo; ow < hi; ++ow) dst[ow] = s1[ow];
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) dst[ow] = src[ow * p.sw + off];
          }
          for (int64_t ow = hi; ow < OW; ++ow) dst[ow] = T(0);
        }
      }
}

// col2im, the adjoint of im2col: x (C, H, W) += col (C*kh*kw, OH*OW) scattered back. Sequential.
template <class T>
PH_INLINE_LOOPS void col2im(const T* col, int64_t C, int64_t H, int64_t W, const ConvParams& p, int64_t OH, int64_t OW, T* x) {
  for (int64_t c = 0; c < C; ++c)
    for (int64_t ki = 0; ki < p.kh; ++ki)
      for (int64_t kj = 0; kj < p.kw; ++kj) {
        const T* row = col + ((c * p.kh + ki) * p.kw + kj) * OH * OW;
        const int64_t off = kj * p.dw - p.pw;
        int64_t lo, hi;
        valid_cols(off, p.sw, W, OW, lo, hi);
        for (int64_t oh = 0; oh < OH; ++oh) {
          const int64_t ih = oh * p.sh - p.ph + ki * p.dh;
          if (ih < 0 || ih >= H) continue;
          const T* src = row + oh * OW;
          T* dst = x + (c * H + ih) * W;
          if (p.sw == 1) {
            T* d1 = dst + off;
            for (int64_t ow = lo; ow < hi; ++ow) d1[ow] += src[ow];
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) dst[ow * p.sw + off] += src[ow];
          }
        }
      }
}

// Interior output columns [o0, o0 + n) (n <= 64) of one output row, window rows [h0, h1): every
// candidate is compared in the row-major window order of the definition, vectorised over the
// columns (values and int32 plane offsets in local arrays, branch-free selects). SW is the
// column stride when known at compile time (0: use sw).
template <int SW, class T>
PH_AVX2_CLONES void max_pool_cols(const T* xq, int64_t W, const PoolParams& p, int64_t h0, int64_t h1, int64_t o0, int n, T* yr,
                   int64_t* ir) {
  constexpr int kBlock = 64;
  const int64_t sw = SW ? SW : p.sw;
  T bv[kBlock];
  int32_t bi[kBlock];
  const int32_t first = int32_t(h0 * W + o0 * sw - p.pw);
  for (int j = 0; j < n; ++j) {
    bv[j] = -std::numeric_limits<T>::infinity();
    bi[j] = first + int32_t(j * sw);
  }
  for (int64_t ih = h0; ih < h1; ++ih)
    for (int64_t kj = 0; kj < p.kw; ++kj) {
      const int32_t base = int32_t(ih * W + o0 * sw - p.pw + kj);
      const T* xr = xq + base;
      for (int j = 0; j < n; ++j) {
        const T v = xr[j * sw];
        const bool take = (v > bv[j]) | (v != v);
        bv[j] = take ? v : bv[j];
        bi[j] = take ? base + int32_t(j * sw) : bi[j];
      }
    }
  for (int j = 0; j < n; ++j) {
    yr[o0 + j] = bv[j];
    ir[o0 + j] = bi[j];
  }
}

// One (n, c) plane of max pooling. Columns whose window is clipped by the padding are done one
// by one; the interior columns in blocks by max_pool_cols (same comparisons, same order).
template <class T>
void max_pool_plane(const T* xq, int64_t H, int64_t W, const PoolParams& p, int64_t OH, int64_t OW, T* yq, int64_t* iq) {
  // output columns whose window lies inside [0, W): [olo, ohi); none when offsets could overflow int32
  int64_t olo = std::min<int64_t>(OW, (p.pw + p.sw - 1) / p.sw);
  int64_t ohi = std::max<int64_t>(olo, std::min<int64_t>(OW, W + p.pw - p.kw >= 0 ? (W + p.pw - p.kw) / p.sw + 1 : 0));
  if (H * W >= (int64_t(1) << 31)) olo = ohi = OW;
  for (int64_t oh = 0; oh < OH; ++oh) {
    const int64_t h0 = std::max<int64_t>(oh * p.sh - p.ph, 0), h1 = std::min<int64_t>(oh * p.sh - p.ph + p.kh, H);
    T* yr = yq + oh * OW;
    int64_t* ir = iq + oh * OW;
    auto clipped = [&](int64_t ow) {
      const int64_t w0 = std::max<int64_t>(ow * p.sw - p.pw, 0), w1 = std::min<int64_t>(ow * p.sw - p.pw + p.kw, W);
      T best = -std::numeric_limits<T>::infinity();
      int64_t bi = h0 * W + w0;
      for (int64_t ih = h0; ih < h1; ++ih)
        for (int64_t iw = w0; iw < w1; ++iw) {
          const T v = xq[ih * W + iw];
          if (v > best || v != v) { best = v; bi = ih * W + iw; }
        }
      yr[ow] = best;
      ir[ow] = bi;
    };
    for (int64_t ow = 0; ow < olo; ++ow) clipped(ow);
    for (int64_t ow = ohi; ow < OW; ++ow) clipped(ow);
    for (int64_t o0 = olo; o0 < ohi; o0 += 64) {
      const int n = int(std::min<int64_t>(64, ohi - o0));
      if (p.sw == 2) max_pool_cols<2>(xq, W, p, h0, h1, o0, n, yr, ir);
      else if (p.sw == 1) max_pool_cols<1>(xq, W, p, h0, h1, o0, n, yr, ir);
      else max_pool_cols<0>(xq, W, p, h0, h1, o0, n, yr, ir);
    }
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// conv2d: x (N, C, H, W), w (OC, C, kh, kw), bias (OC) optional -> y (N, OC, OH, OW)
//   per image: y_n (OC, OH*OW) = w (OC, C*kh*kw) @ im2col(x_n) (C*kh*kw, OH*OW) + bias
void CpuBackend::conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const ConvParams& p, Tensor& y) {
  const char* op = "conv2d";
  const DType dt = x.dtype();
  check_conv_params(p, op);
  expect4(x, dt, op, "x");
  expect4(w, dt, op, "weight");
  expect4(y, dt, op, "y");
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), OC = w.size(0);
  const int64_t OH = p.out_h(H), OW = p.out_w(W);
  PH_CHECK(w.shape() == Shape({OC, C, p.kh, p.kw}), op,
           "weight " << w.str() << " does not match input " << x.str() << " and kernel " << p.kh << "x" << p.kw);
  PH_CHECK(OH > 0 && OW > 0, op, "input " << x.str() << " is smaller than the (dilated) kernel");
  PH_CHECK(y.shape() == Shape({N, OC, OH, OW}), op, "output " << y.str() << " should be " << shape_str({N, OC, OH, OW}));
  if (bias.defined()) {
    PH_CHECK(bias.dtype() == dt && bias.is_contiguous() && bias.numel() == OC, op, "bias " << bias.str() << " should be (" << OC << ")");
  }
  if (N == 0 || OC == 0) return;
  const int64_t CKK = C * p.kh * p.kw, L = OH * OW;
  const bool pointwise = is_pointwise(p);
  dispatch_float(dt, op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* xp = static_cast<const T*>(x.raw());
    const T* wp = static_cast<const T*>(w.raw());
    const T* bp = bias.defined() ? static_cast<const T*>(bias.raw()) : nullptr;
    T* yp = static_cast<T*>(y.raw());
    parallel_for(N, image_grain(N, double(OC) * double(CKK) * double(L)), [&](int64_t n0, int64_t n1) {
      std::vector<T> col(pointwise ? 0 : size_t(CKK * L));
      for (int64_t n = n0; n < n1; ++n) {
        const T* xn = xp + n * C * H * W;
        T* yn = yp + n * OC * L;
        const T* cols = xn;
        if (!pointwise) {
          im2col(xn, C, H, W, p, OH, OW, col.data());
          cols = col.data();
        }
        // y_n (OC, L) = w (OC, CKK) @ cols (CKK, L)
        if (CKK == 0) std::fill(yn, yn + OC * L, T(0));
        else gemm_serial<T>(false, false, OC, L, CKK, T(1), wp, CKK, cols, L, T(0), yn, L);
        if (bp)
          for (int64_t oc = 0; oc < OC; ++oc)
            for (int64_t l = 0; l < L; ++l) yn[oc * L + l] += bp[oc];
      }
    });
  });
}

// conv2d_backward_data: gy (N, OC, OH, OW), w (OC, C, kh, kw) -> gx (N, C, H, W)
//   per image: col (C*kh*kw, OH*OW) = w^T (C*kh*kw, OC) @ gy_n (OC, OH*OW);  gx_n = col2im(col)
// (A K-batched caller passes N = K * images.)
void CpuBackend::conv2d_backward_data(const Tensor& gy, const Tensor& w, const ConvParams& p, Tensor& gx) {
  const char* op = "conv2d_backward_data";
  const DType dt = gy.dtype();
  check_conv_params(p, op);
  expect4(gy, dt, op, "gy");
  expect4(w, dt, op, "weight");
  expect4(gx, dt, op, "gx");
  const int64_t N = gx.size(0), C = gx.size(1), H = gx.size(2), W = gx.size(3), OC = w.size(0);
  const int64_t OH = p.out_h(H), OW = p.out_w(W);
  PH_CHECK(w.shape() == Shape({OC, C, p.kh, p.kw}), op,
           "weight " << w.str() << " does not match gx " << gx.str() << " and kernel " << p.kh << "x" << p.kw);
  PH_CHECK(gy.shape() == Shape({N, OC, OH, OW}), op, "gy " << gy.str() << " should be " << shape_str({N, OC, OH, OW}));
  if (gx.numel() == 0) return;
  const int64_t CKK = C * p.kh * p.kw, L = OH * OW;
  const bool pointwise = is_pointwise(p);
  dispatch_float(dt, op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* gyp = static_cast<const T*>(gy.raw());
    const T* wp = static_cast<const T*>(w.raw());
    T* gxp = static_cast<T*>(gx.raw());
    parallel_for(N, image_grain(N, double(OC) * double(CKK) * double(L)), [&](int64_t n0, int64_t n1) {
      std::vector<T> col(pointwise ? 0 : size_t(CKK * L));
      for (int64_t n = n0; n < n1; ++n) {
        const T* gyn = gyp + n * OC * L;
        T* gxn = gxp + n * C * H * W;
        T* cols = pointwise ? gxn : col.data();
        // cols (CKK, L) = w^T (CKK, OC) @ gy_n (OC, L)
        if (OC == 0) std::fill(cols, cols + CKK * L, T(0));
        else gemm_serial<T>(true, false, CKK, L, OC, T(1), wp, CKK, gyn, L, T(0), cols, L);
        if (!pointwise) {
          std::fill(gxn, gxn + C * H * W, T(0));
          col2im(col.data(), C, H, W, p, OH, OW, gxn);
        }
      }
    });
  });
}

// conv2d_backward_filter: x (N, C, H, W), gy (N, OC, OH, OW) -> gw (OC, C, kh, kw)
//   gw (OC, C*kh*kw) = sum_n gy_n (OC, OH*OW) @ im2col(x_n)^T (OH*OW, C*kh*kw)
// Images are split into at most 16 consecutive groups (fewer when gw is large); each group
// accumulates its images in order into its own buffer, and the buffers are added in group order.
// (A K-batched caller folds K into OC: gy (N, K*OC, ...), gw (K*OC, ...).)
void CpuBackend::conv2d_backward_filter(const Tensor& x, const Tensor& gy, const ConvParams& p, Tensor& gw) {
  const char* op = "conv2d_backward_filter";
  const DType dt = x.dtype();
  check_conv_params(p, op);
  expect4(x, dt, op, "x");
  expect4(gy, dt, op, "gy");
  expect4(gw, dt, op, "gw");
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), OC = gw.size(0);
  const int64_t OH = p.out_h(H), OW = p.out_w(W);
  PH_CHECK(gw.shape() == Shape({OC, C, p.kh, p.kw}), op,
           "gw " << gw.str() << " does not match input " << x.str() << " and kernel " << p.kh << "x" << p.kw);
  PH_CHECK(gy.shape() == Shape({N, OC, OH, OW}), op, "gy " << gy.str() << " should be " << shape_str({N, OC, OH, OW}));
  if (gw.numel() == 0) return;
  const int64_t CKK = C * p.kh * p.kw, L = OH * OW, WN = OC * CKK;
  const bool pointwise = is_pointwise(p);
  dispatch_float(dt, op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* xp = static_cast<const T*>(x.raw());
    const T* gyp = static_cast<const T*>(gy.raw());
    T* gwp = static_cast<T*>(gw.raw());
    if (N == 0 || L == 0) { std::fill(gwp, gwp + WN, T(0)); return; }
    // groups of images: at most 16, and at most ~8M buffered elements in all
    const int64_t max_groups = std::max<int64_t>(1, std::min<int64_t>(16, (int64_t(1) << 23) / WN));
    const int64_t per = (N + std::min(N, max_groups) - 1) / std::min(N, max_groups);
    const int64_t G = (N + per - 1) / per;
    // group 0 accumulates straight into gw, the others into part (G-1, OC, CKK)
    std::vector<T> part(size_t((G - 1) * WN));
    parallel_for(G, 1, [&](int64_t g0, int64_t g1) {
      std::vector<T> col(pointwise ? 0 : size_t(CKK * L));
      for (int64_t g = g0; g < g1; ++g) {
        T* acc = g == 0 ? gwp : part.data() + (g - 1) * WN;
        for (int64_t n = g * per; n < std::min(N, (g + 1) * per); ++n) {
          const T* xn = xp + n * C * H * W;
          const T* cols = xn;
          if (!pointwise) {
            im2col(xn, C, H, W, p, OH, OW, col.data());
            cols = col.data();
          }
          // acc (OC, CKK) (+)= gy_n (OC, L) @ cols^T (L, CKK)
          gemm_serial<T>(false, true, OC, CKK, L, T(1), gyp + n * OC * L, L, cols, L, n == g * per ? T(0) : T(1), acc, CKK);
        }
      }
    });
    if (G > 1)
      parallel_for(WN, 1 << 14, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
          T s = gwp[i];
          for (int64_t g = 1; g < G; ++g) s += part[size_t((g - 1) * WN + i)];
          gwp[i] = s;
        }
      });
  });
}

// ---------------------------------------------------------------------------------------------
// max_pool2d: x (N, C, H, W) -> y (N, C, OH, OW), idx (N, C, OH, OW) i64 = ih*W + iw of the max.
// Padding acts as -inf: only in-image positions are candidates. NaN wins (propagates) as in
// PyTorch; ties between numbers keep the first position in row-major window order.
void CpuBackend::max_pool2d(const Tensor& x, const PoolParams& p, Tensor& y, Tensor& idx) {
  const char* op = "max_pool2d";
  const DType dt = x.dtype();
  check_pool_params(p, op);
  expect4(x, dt, op, "x");
  expect4(y, dt, op, "y");
  expect4(idx, DType::i64, op, "indices");
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t OH = p.out_h(H), OW = p.out_w(W);
  PH_CHECK(OH > 0 && OW > 0, op, "input " << x.str() << " is smaller than the kernel " << p.kh << "x" << p.kw);
  PH_CHECK(y.shape() == Shape({N, C, OH, OW}) && idx.shape() == y.shape(), op,
           "outputs " << y.str() << ", " << idx.str() << " should be " << shape_str({N, C, OH, OW}));
  dispatch_float(dt, op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* xp = static_cast<const T*>(x.raw());
    T* yp = static_cast<T*>(y.raw());
    int64_t* ip = static_cast<int64_t*>(idx.raw());
    parallel_for(N * C, std::max<int64_t>(1, 32768 / (OH * OW * p.kh * p.kw)), [&](int64_t q0, int64_t q1) {
      for (int64_t q = q0; q < q1; ++q)  // one (n, c) plane
        max_pool_plane(xp + q * H * W, H, W, p, OH, OW, yp + q * OH * OW, ip + q * OH * OW);
    });
  });
}

// max_pool2d_backward: gy (K*N, C, OH, OW), idx (N, C, OH, OW) shared by the K blocks
//   -> gx (K*N, C, H, W), zeroed here; gx[plane][idx] += gy, sequentially per plane.
void CpuBackend::max_pool2d_backward(const Tensor& gy, const Tensor& idx, int64_t K, Tensor& gx) {
  const char* op = "max_pool2d_backward";
  const DType dt = gy.dtype();
  expect4(gy, dt, op, "gy");
  expect4(idx, DType::i64, op, "indices");
  expect4(gx, dt, op, "gx");
  const int64_t N = idx.size(0), C = idx.size(1), OH = idx.size(2), OW = idx.size(3), H = gx.size(2), W = gx.size(3);
  PH_CHECK(gy.shape() == Shape({K * N, C, OH, OW}), op, "gy " << gy.str() << " should be " << shape_str({K * N, C, OH, OW}));
  PH_CHECK(gx.size(0) == K * N && gx.size(1) == C, op, "gx " << gx.str() << " should be (" << K * N << ", " << C << ", H, W)");
  dispatch_float(dt, op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* gyp = static_cast<const T*>(gy.raw());
    const int64_t* ip = static_cast<const int64_t*>(idx.raw());
    T* gxp = static_cast<T*>(gx.raw());
    const int64_t planes = N * C;
    parallel_for(K * planes, std::max<int64_t>(1, 32768 / std::max<int64_t>(H * W + OH * OW, 1)), [&](int64_t q0, int64_t q1) {
      for (int64_t q = q0; q < q1; ++q) {  // one (k, n, c) plane
        T* gxq = gxp + q * H * W;
        const T* gyq = gyp + q * OH * OW;
        const int64_t* iq = ip + (q % planes) * OH * OW;
        std::fill(gxq, gxq + H * W, T(0));
        for (int64_t o = 0; o < OH * OW; ++o) {
          const int64_t i = iq[o];
          PH_CHECK(i >= 0 && i < H * W, op, "index " << i << " outside the " << H << "x" << W << " plane");
          gxq[i] += gyq[o];
        }
      }
    });
  });
}

// avg_pool2d: x (N, C, H, W) -> y (N, C, OH, OW), PyTorch semantics: the window is clipped to the
// padded image [-ph, H + ph) for the divisor when count_include_pad, else to the image itself.
void CpuBackend::avg_pool2d(const Tensor& x, const PoolParams& p, Tensor& y) {
  const char* op = "avg_pool2d";
  const DType dt = x.dtype();
  check_pool_params(p, op);
  expect4(x, dt, op, "x");
  expect4(y, dt, op, "y");
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t OH = p.out_h(H), OW = p.out_w(W);
  PH_CHECK(OH > 0 && OW > 0, op, "input " << x.str() << " is smaller than the kernel " << p.kh << "x" << p.kw);
  PH_CHECK(y.shape() == Shape({N, C, OH, OW}), op, "output " << y.str() << " should be " << shape_str({N, C, OH, OW}));
  dispatch_float(dt, op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* xp = static_cast<const T*>(x.raw());
    T* yp = static_cast<T*>(y.raw());
    parallel_for(N * C, std::max<int64_t>(1, 32768 / (OH * OW * p.kh * p.kw)), [&](int64_t q0, int64_t q1) {
      for (int64_t q = q0; q < q1; ++q) {
        const T* xq = xp + q * H * W;
        T* yq = yp + q * OH * OW;
        for (int64_t oh = 0; oh < OH; ++oh)
          for (int64_t ow = 0; ow < OW; ++ow) {
            int64_t h0 = oh * p.sh - p.ph, w0 = ow * p.sw - p.pw;
            int64_t h1 = std::min<int64_t>(h0 + p.kh, H + p.ph), w1 = std::min<int64_t>(w0 + p.kw, W + p.pw);
            const int64_t padded = (h1 - h0) * (w1 - w0);
            h0 = std::max<int64_t>(h0, 0); w0 = std::max<int64_t>(w0, 0);
            h1 = std::min<int64_t>(h1, H); w1 = std::min<int64_t>(w1, W);
            const int64_t div = p.count_include_pad ? padded : (h1 - h0) * (w1 - w0);
            T s = T(0);
            for (int64_t ih = h0; ih < h1; ++ih)
              for (int64_t iw = w0; iw < w1; ++iw) s += xq[ih * W + iw];
            yq[oh * OW + ow] = s / T(div);
          }
      }
    });
  });
}

// avg_pool2d_backward: gy (M, C, OH, OW) -> gx (M, C, H, W), zeroed here; each output's gradient
// gy / divisor is added to the in-image positions of its window, sequentially per plane.
void CpuBackend::avg_pool2d_backward(const Tensor& gy, const PoolParams& p, Tensor& gx) {
  const char* op = "avg_pool2d_backward";
  const DType dt = gy.dtype();
  check_pool_params(p, op);
  expect4(gy, dt, op, "gy");
  expect4(gx, dt, op, "gx");
  const int64_t M = gx.size(0), C = gx.size(1), H = gx.size(2), W = gx.size(3);
  const int64_t OH = p.out_h(H), OW = p.out_w(W);
  PH_CHECK(gy.shape() == Shape({M, C, OH, OW}), op, "gy " << gy.str() << " should be " << shape_str({M, C, OH, OW}));
  dispatch_float(dt, op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* gyp = static_cast<const T*>(gy.raw());
    T* gxp = static_cast<T*>(gx.raw());
    parallel_for(M * C, std::max<int64_t>(1, 32768 / std::max<int64_t>(H * W + OH * OW * p.kh * p.kw, 1)), [&](int64_t q0, int64_t q1) {
      for (int64_t q = q0; q < q1; ++q) {
        const T* gyq = gyp + q * OH * OW;
        T* gxq = gxp + q * H * W;
        std::fill(gxq, gxq + H * W, T(0));
        for (int64_t oh = 0; oh < OH; ++oh)
          for (int64_t ow = 0; ow < OW; ++ow) {
            int64_t h0 = oh * p.sh - p.ph, w0 = ow * p.sw - p.pw;
            int64_t h1 = std::min<int64_t>(h0 + p.kh, H + p.ph), w1 = std::min<int64_t>(w0 + p.kw, W + p.pw);
            const int64_t padded = (h1 - h0) * (w1 - w0);
            h0 = std::max<int64_t>(h0, 0); w0 = std::max<int64_t>(w0, 0);
            h1 = std::min<int64_t>(h1, H); w1 = std::min<int64_t>(w1, W);
            const int64_t div = p.count_include_pad ? padded : (h1 - h0) * (w1 - w0);
            const T g = gyq[oh * OW + ow] / T(div);
            for (int64_t ih = h0; ih < h1; ++ih)
              for (int64_t iw = w0; iw < w1; ++iw) gxq[ih * W + iw] += g;
          }
      }
    });
  });
}

}  // namespace polyhead::cpu
