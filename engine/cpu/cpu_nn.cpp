// engine/cpu/cpu_nn.cpp: softmax, layer norm, batch norm and cross-entropy on the CPU, forward and
// backward. Plain loops, one row (or one channel) per work item; sums are accumulated in double.
// Determinism: every output element is produced by one work item in a fixed order; reductions
// across rows (dgamma, dbeta) use fixed row chunks whose partial sums are combined in order.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "engine/cpu/kernel_util.h"

namespace polyhead::cpu {

namespace {

// Rows per parallel chunk so that a chunk touches about 32k elements.
int64_t row_grain(int64_t cols) { return std::max<int64_t>(1, 32768 / std::max<int64_t>(cols, 1)); }

}  // namespace

// ---------------------------------------------------------------------------------------------
// softmax: x (rows, cols) -> y (rows, cols)
//   plain: y = exp(x - max) / sum exp(x - max)
//   log:   y = x - max - log(sum exp(x - max))
void CpuBackend::softmax(const Tensor& x, int64_t rows, int64_t cols, bool log, Tensor& y) {
  const char* op = log ? "log_softmax" : "softmax";
  expect(x, x.dtype(), rows * cols, op, "x");
  expect(y, x.dtype(), rows * cols, op, "y");
  if (rows * cols == 0) return;
  dispatch_float(x.dtype(), op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* xp = cptr<T>(x);
    T* yp = mptr<T>(y);
    parallel_for(rows, row_grain(cols), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const T* xr = xp + r * cols;
        T* yr = yp + r * cols;
        T mx = -std::numeric_limits<T>::infinity();
        for (int64_t c = 0; c < cols; ++c) mx = xr[c] > mx ? xr[c] : mx;
        double sum = 0;
        for (int64_t c = 0; c < cols; ++c) {
          T e = std::exp(xr[c] - mx);
          if (!log) yr[c] = e;
          sum += double(e);
        }
        if (log) {
          T lse = T(std::log(sum));
          for (int64_t c = 0; c < cols; ++c) yr[c] = xr[c] - mx - lse;
        } else {
          T inv = T(1.0 / sum);
          for (int64_t c = 0; c < cols; ++c) yr[c] *= inv;
        }
      }
    });
  });
}

// softmax_backward: y (rows, cols) saved; gy, gx (K*rows, cols); row r uses y row r % rows.
//   plain: gx = y * (gy - sum(gy * y))
//   log:   gx = gy - exp(y) * sum(gy)
void CpuBackend::softmax_backward(const Tensor& y, const Tensor& gy, int64_t rows, int64_t cols, int64_t K, bool log,
                                  Tensor& gx) {
  const char* op = log ? "log_softmax_backward" : "softmax_backward";
  expect(y, y.dtype(), rows * cols, op, "y");
  expect(gy, y.dtype(), K * rows * cols, op, "gy");
  expect(gx, y.dtype(), K * rows * cols, op, "gx");
  if (K * rows * cols == 0) return;
  dispatch_float(y.dtype(), op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* yp = cptr<T>(y);
    const T* gyp = cptr<T>(gy);
    T* gxp = mptr<T>(gx);
    parallel_for(K * rows, row_grain(cols), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const T* yr = yp + (r % rows) * cols;
        const T* gyr = gyp + r * cols;
        T* gxr = gxp + r * cols;
        double acc = 0;
        if (log) {
          for (int64_t c = 0; c < cols; ++c) acc += double(gyr[c]);
          T s = T(acc);
          for (int64_t c = 0; c < cols; ++c) gxr[c] = gyr[c] - std::exp(yr[c]) * s;
        } else {
          for (int64_t c = 0; c < cols; ++c) acc += double(gyr[c]) * double(yr[c]);
          T dot = T(acc);
          for (int64_t c = 0; c < cols; ++c) gxr[c] = yr[c] * (gyr[c] - dot);
        }
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------
// layer_norm: x (rows, cols) -> y (rows, cols), mean (rows), rstd (rows); gamma, beta (cols) optional.
//   y = (x - mean) * rstd * gamma + beta,  rstd = 1 / sqrt(biased var + eps)
void CpuBackend::layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, int64_t rows, int64_t cols,
                            double eps, Tensor& y, Tensor& mean, Tensor& rstd) {
  const char* op = "layer_norm";
  const DType dt = x.dtype();
  expect(x, dt, rows * cols, op, "x");
  expect(y, dt, rows * cols, op, "y");
  expect(mean, dt, rows, op, "mean");
  expect(rstd, dt, rows, op, "rstd");
  if (gamma.defined()) expect(gamma, dt, cols, op, "gamma");
  if (beta.defined()) expect(beta, dt, cols, op, "beta");
  PH_CHECK(cols > 0 || rows == 0, op, "normalising over an empty last dimension");
  if (rows == 0) return;
  dispatch_float(dt, op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* xp = cptr<T>(x);
    const T* g = cptr<T>(gamma);
    const T* b = cptr<T>(beta);
    T* yp = mptr<T>(y);
    T* mp = mptr<T>(mean);
    T* rp = mptr<T>(rstd);
    parallel_for(rows, row_grain(cols), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const T* xr = xp + r * cols;
        T* yr = yp + r * cols;
        double s = 0;
        for (int64_t c = 0; c < cols; ++c) s += double(xr[c]);
        const double m = s / double(cols);
        double ss = 0;  // two passes: sum of squared deviations, no cancellation
        for (int64_t c = 0; c < cols; ++c) { double d = double(xr[c]) - m; ss += d * d; }
        const double rs = 1.0 / std::sqrt(ss / double(cols) + eps);
        mp[r] = T(m);
        rp[r] = T(rs);
        for (int64_t c = 0; c < cols; ++c) {
          T v = T((double(xr[c]) - m) * rs);  // in double: the f32-rounded mean would cost digits
          if (g) v *= g[c];
          if (b) v += b[c];
          yr[c] = v;
        }
      }
    });
  });
}

// layer_norm_backward: x (rows, cols), mean, rstd (rows), gamma (cols) optional;
// gy, gx (K*rows, cols); dgamma, dbeta (K, cols), each optional (undefined = not wanted).
//   xh = (x - mean) * rstd, g = gy * gamma
//   gx = rstd * (g - mean_c(g) - xh * mean_c(g * xh))
//   dgamma[k] = sum_rows gy * xh, dbeta[k] = sum_rows gy
// Work items are (k, chunk of rows); each writes its rows of gx and its own partial dgamma/dbeta,
// which are then summed over the chunks in order. Chunks depend on the sizes only.
void CpuBackend::layer_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& rstd,
                                     const Tensor& gy, int64_t rows, int64_t cols, int64_t K, Tensor& gx,
                                     Tensor& dgamma, Tensor& dbeta) {
  const char* op = "layer_norm_backward";
  const DType dt = x.dtype();
  expect(x, dt, rows * cols, op, "x");
  expect(mean, dt, rows, op, "mean");
  expect(rstd, dt, rows, op, "rstd");
  expect(gy, dt, K * rows * cols, op, "gy");
  if (gamma.defined()) expect(gamma, dt, cols, op, "gamma");
  if (gx.defined()) expect(gx, dt, K * rows * cols, op, "gx");
  if (dgamma.defined()) expect(dgamma, dt, K * cols, op, "dgamma");
  if (dbeta.defined()) expect(dbeta, dt, K * cols, op, "dbeta");
  dispatch_float(dt, op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* xp = cptr<T>(x);
    const T* g = cptr<T>(gamma);
    const T* mp = cptr<T>(mean);
    const T* rp = cptr<T>(rstd);
    const T* gyp = cptr<T>(gy);
    T* gxp = mptr<T>(gx);
    T* dg = mptr<T>(dgamma);
    T* db = mptr<T>(dbeta);
    const bool want_params = dg || db;
    // at most 64 chunks per k: bounded partial buffers, plenty of parallelism
    const int64_t chunk = std::max(row_grain(cols), (rows + 63) / 64);
    const int64_t nchunk = rows == 0 ? 0 : (rows + chunk - 1) / chunk;
    std::vector<double> part_g(want_params ? size_t(K * nchunk * cols) : 0, 0.0);
    std::vector<double> part_b(want_params ? size_t(K * nchunk * cols) : 0, 0.0);
    parallel_for(K * nchunk, 1, [&](int64_t u0, int64_t u1) {
      std::vector<T> gbuf(static_cast<size_t>(cols));
      for (int64_t u = u0; u < u1; ++u) {
        const int64_t k = u / nchunk, c0 = (u % nchunk) * chunk, c1 = std::min(rows, c0 + chunk);
        double* pg = want_params ? part_g.data() + u * cols : nullptr;
        double* pb = want_params ? part_b.data() + u * cols : nullptr;
        for (int64_t r = c0; r < c1; ++r) {
          const T* xr = xp + r * cols;
          const T* gyr = gyp + (k * rows + r) * cols;
          const T mu = mp[r], rs = rp[r];
          if (want_params)
            for (int64_t c = 0; c < cols; ++c) {
              pg[c] += double(gyr[c]) * double((xr[c] - mu) * rs);
              pb[c] += double(gyr[c]);
            }
          if (!gxp) continue;
          double sg = 0, sgx = 0;
          for (int64_t c = 0; c < cols; ++c) {
            T gv = g ? gyr[c] * g[c] : gyr[c];
            gbuf[size_t(c)] = gv;
            sg += double(gv);
            sgx += double(gv) * double((xr[c] - mu) * rs);
          }
          const T mg = T(sg / double(cols)), mgx = T(sgx / double(cols));
          T* gxr = gxp + (k * rows + r) * cols;
          for (int64_t c = 0; c < cols; ++c) gxr[c] = rs * (gbuf[size_t(c)] - mg - (xr[c] - mu) * rs * mgx);
        }
      }
    });
    if (!want_params) return;
    // dgamma, dbeta (K, cols): sum the chunk partials in chunk order
    parallel_for(K * cols, 4096, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t k = i / cols, c = i % cols;
        double sgv = 0, sbv = 0;
        for (int64_t ch = 0; ch < nchunk; ++ch) {
          sgv += part_g[size_t((k * nchunk + ch) * cols + c)];
          sbv += part_b[size_t((k * nchunk + ch) * cols + c)];
        }
        if (dg) dg[i] = T(sgv);
        if (db) db[i] = T(sbv);
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------
// batch_norm: x (N, C, S) -> y (N, C, S), mean, invstd (C); gamma, beta (C) optional.
//   training: mean, biased var over (N, S) normalise; running_mean/var (C, optional) updated as
//             r = (1 - momentum) * r + momentum * stat with the unbiased variance (PyTorch).
//   eval:     running statistics; mean/invstd are still written (the backward uses them).
//   y = (x - mean) * invstd * gamma + beta
void CpuBackend::batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& running_mean,
                            Tensor& running_var, bool training, double momentum, double eps, int64_t N, int64_t C,
                            int64_t S, Tensor& y, Tensor& mean, Tensor& invstd) {
  const char* op = "batch_norm";
  const DType dt = x.dtype();
  expect(x, dt, N * C * S, op, "x");
  expect(y, dt, N * C * S, op, "y");
  expect(mean, dt, C, op, "mean");
  expect(invstd, dt, C, op, "invstd");
  if (gamma.defined()) expect(gamma, dt, C, op, "gamma");
  if (beta.defined()) expect(beta, dt, C, op, "beta");
  PH_CHECK(running_mean.defined() == running_var.defined(), op, "running_mean and running_var must both be given or both undefined");
  if (running_mean.defined()) {
    expect(running_mean, dt, C, op, "running_mean");
    expect(running_var, dt, C, op, "running_var");
  }
  const int64_t M = N * S;  // values per channel
  if (training) {
    PH_CHECK_HINT(M > 1, op, "expected more than 1 value per channel when training, got input of " << N << " x " << C << " x " << S,
                  "use a batch larger than 1 or call eval()");
  } else {
    PH_CHECK_HINT(running_mean.defined(), op, "eval mode needs running statistics", "train with track_running_stats, or stay in training mode");
  }
  if (C == 0) return;
  dispatch_float(dt, op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* xp = cptr<T>(x);
    const T* g = cptr<T>(gamma);
    const T* b = cptr<T>(beta);
    T* rm = mptr<T>(running_mean);
    T* rv = mptr<T>(running_var);
    T* yp = mptr<T>(y);
    T* mp = mptr<T>(mean);
    T* ip = mptr<T>(invstd);
    // per-channel statistics, one channel per work item; kept in double for the normalisation
    std::vector<double> mean_d(static_cast<size_t>(C)), invstd_d(static_cast<size_t>(C));
    parallel_for(C, row_grain(M), [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        if (!training) {
          mean_d[size_t(c)] = double(rm[c]);
          invstd_d[size_t(c)] = 1.0 / std::sqrt(double(rv[c]) + eps);
          mp[c] = rm[c];
          ip[c] = T(invstd_d[size_t(c)]);
          continue;
        }
        double s = 0;
        for (int64_t n = 0; n < N; ++n) {
          const T* xc = xp + (n * C + c) * S;
          for (int64_t i = 0; i < S; ++i) s += double(xc[i]);
        }
        const double m = s / double(M);
        double ss = 0;
        for (int64_t n = 0; n < N; ++n) {
          const T* xc = xp + (n * C + c) * S;
          for (int64_t i = 0; i < S; ++i) { double d = double(xc[i]) - m; ss += d * d; }
        }
        const double var = ss / double(M);
        mean_d[size_t(c)] = m;
        invstd_d[size_t(c)] = 1.0 / std::sqrt(var + eps);
        mp[c] = T(m);
        ip[c] = T(invstd_d[size_t(c)]);
        if (rm) {
          const T mom = T(momentum);
          rm[c] = (T(1) - mom) * rm[c] + mom * T(m);
          rv[c] = (T(1) - mom) * rv[c] + mom * T(var * double(M) / double(M - 1));
        }
      }
    });
    // normalise, one (n, c) plane per work item
    parallel_for(N * C, row_grain(S), [&](int64_t p0, int64_t p1) {
      for (int64_t pl = p0; pl < p1; ++pl) {
        const int64_t c = pl % C;
        const double mu = mean_d[size_t(c)], scale = g ? invstd_d[size_t(c)] * double(g[c]) : invstd_d[size_t(c)];
        const double shift = b ? double(b[c]) : 0.0;
        const T* xc = xp + pl * S;
        T* yc = yp + pl * S;
        for (int64_t i = 0; i < S; ++i) yc[i] = T((double(xc[i]) - mu) * scale + shift);
      }
    });
  });
}

// batch_norm_backward: x (N, C, S), mean, invstd (C) as written by batch_norm, gamma (C) optional;
// gy, gx (K*N, C, S); dgamma, dbeta (K, C), each optional.
//   xh = (x - mean) * invstd, M = N * S
//   dbeta[k, c] = sum gy, dgamma[k, c] = sum gy * xh (over n, s)
//   training: gx = gamma * invstd * (gy - dbeta / M - xh * dgamma / M)
//   eval:     gx = gamma * invstd * gy
void CpuBackend::batch_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& invstd,
                                     const Tensor& gy, int64_t N, int64_t C, int64_t S, int64_t K, bool training,
                                     Tensor& gx, Tensor& dgamma, Tensor& dbeta) {
  const char* op = "batch_norm_backward";
  const DType dt = x.dtype();
  expect(x, dt, N * C * S, op, "x");
  expect(mean, dt, C, op, "mean");
  expect(invstd, dt, C, op, "invstd");
  expect(gy, dt, K * N * C * S, op, "gy");
  if (gamma.defined()) expect(gamma, dt, C, op, "gamma");
  if (gx.defined()) expect(gx, dt, K * N * C * S, op, "gx");
  if (dgamma.defined()) expect(dgamma, dt, K * C, op, "dgamma");
  if (dbeta.defined()) expect(dbeta, dt, K * C, op, "dbeta");
  const int64_t M = N * S;
  if (K * C == 0) return;
  dispatch_float(dt, op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* xp = cptr<T>(x);
    const T* g = cptr<T>(gamma);
    const T* mp = cptr<T>(mean);
    const T* ip = cptr<T>(invstd);
    const T* gyp = cptr<T>(gy);
    T* gxp = mptr<T>(gx);
    T* dg = mptr<T>(dgamma);
    T* db = mptr<T>(dbeta);
    // per (k, c): sum gy and sum gy * xh over (n, s)
    std::vector<T> sum_dy(size_t(K * C)), sum_dy_xh(size_t(K * C));
    parallel_for(K * C, row_grain(M), [&](int64_t u0, int64_t u1) {
      for (int64_t u = u0; u < u1; ++u) {
        const int64_t k = u / C, c = u % C;
        const T mu = mp[c], is = ip[c];
        double sd = 0, sdx = 0;
        for (int64_t n = 0; n < N; ++n) {
          const T* xc = xp + (n * C + c) * S;
          const T* gc = gyp + ((k * N + n) * C + c) * S;
          for (int64_t i = 0; i < S; ++i) {
            sd += double(gc[i]);
            sdx += double(gc[i]) * double((xc[i] - mu) * is);
          }
        }
        sum_dy[size_t(u)] = T(sd);
        sum_dy_xh[size_t(u)] = T(sdx);
        if (db) db[u] = T(sd);
        if (dg) dg[u] = T(sdx);
      }
    });
    if (!gxp) return;
    // gx, one (k, n, c) plane per work item
    parallel_for(K * N * C, row_grain(S), [&](int64_t p0, int64_t p1) {
      for (int64_t pl = p0; pl < p1; ++pl) {
        const int64_t c = pl % C, k = pl / (N * C);
        const T mu = mp[c], is = ip[c];
        const T scale = g ? is * g[c] : is;
        const T* xc = xp + (pl % (N * C)) * S;
        const T* gc = gyp + pl * S;
        T* gxc = gxp + pl * S;
        if (training) {
          const T md = sum_dy[size_t(k * C + c)] / T(M), mdx = sum_dy_xh[size_t(k * C + c)] / T(M);
          for (int64_t i = 0; i < S; ++i) gxc[i] = scale * (gc[i] - md - (xc[i] - mu) * is * mdx);
        } else {
          for (int64_t i = 0; i < S; ++i) gxc[i] = scale * gc[i];
        }
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------
// cross_entropy: logits (N, C), target (N, i64) -> loss (N), lse (N)
//   lse = log sum_c exp(x_c);  nll = lse - x_t
//   loss = (1 - eps) * nll + eps * mean_c(lse - x_c)     (eps = label_smoothing; PyTorch)
//   rows with target == ignore_index: loss 0 (lse is still written).
void CpuBackend::cross_entropy(const Tensor& logits, const Tensor& target, int64_t N, int64_t C, int64_t ignore_index,
                               double label_smoothing, Tensor& loss, Tensor& lse) {
  const char* op = "cross_entropy";
  const DType dt = logits.dtype();
  expect(logits, dt, N * C, op, "logits");
  expect(target, DType::i64, N, op, "target");
  expect(loss, dt, N, op, "loss");
  expect(lse, dt, N, op, "lse");
  PH_CHECK(label_smoothing >= 0 && label_smoothing <= 1, op, "label_smoothing must be in [0, 1], got " << label_smoothing);
  PH_CHECK(C > 0 || N == 0, op, "no classes");
  const int64_t* tp = cptr<int64_t>(target);
  for (int64_t n = 0; n < N; ++n)
    PH_CHECK_HINT(tp[n] == ignore_index || (tp[n] >= 0 && tp[n] < C), op,
                  "target " << tp[n] << " at row " << n << " is outside [0, " << C << ")",
                  "targets are class indices; check the number of classes of the model");
  if (N == 0) return;
  dispatch_float(dt, op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* xp = cptr<T>(logits);
    T* lp = mptr<T>(loss);
    T* sp = mptr<T>(lse);
    const double eps = label_smoothing;
    parallel_for(N, row_grain(C), [&](int64_t r0, int64_t r1) {
      for (int64_t n = r0; n < r1; ++n) {
        const T* xr = xp + n * C;
        T mx = -std::numeric_limits<T>::infinity();
        for (int64_t c = 0; c < C; ++c) mx = xr[c] > mx ? xr[c] : mx;
        double se = 0, sx = 0;
        for (int64_t c = 0; c < C; ++c) {
          se += double(std::exp(xr[c] - mx));
          sx += double(xr[c]);
        }
        const double l = double(mx) + std::log(se);
        sp[n] = T(l);
        const int64_t t = tp[n];
        if (t == ignore_index) { lp[n] = T(0); continue; }
        double v = (1.0 - eps) * (l - double(xr[t]));
        if (eps > 0) v += eps * (l - sx / double(C));
        lp[n] = T(v);
      }
    });
  });
}

// cross_entropy_backward: logits (N, C), target (N), lse (N) saved; gloss (K, N) -> glogits (K, N, C)
//   glogits = gloss * (softmax(x)_c - eps / C - (1 - eps) [c == t]); 0 on ignored rows.
void CpuBackend::cross_entropy_backward(const Tensor& logits, const Tensor& target, const Tensor& lse,
                                        const Tensor& gloss, int64_t N, int64_t C, int64_t K, int64_t ignore_index,
                                        double label_smoothing, Tensor& glogits) {
  const char* op = "cross_entropy_backward";
  const DType dt = logits.dtype();
  expect(logits, dt, N * C, op, "logits");
  expect(target, DType::i64, N, op, "target");
  expect(lse, dt, N, op, "lse");
  expect(gloss, dt, K * N, op, "gloss");
  expect(glogits, dt, K * N * C, op, "glogits");
  const int64_t* tp = cptr<int64_t>(target);
  for (int64_t n = 0; n < N; ++n)
    PH_CHECK(tp[n] == ignore_index || (tp[n] >= 0 && tp[n] < C), op,
             "target " << tp[n] << " at row " << n << " is outside [0, " << C << ")");
  if (K * N * C == 0) return;
  dispatch_float(dt, op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* xp = cptr<T>(logits);
    const T* sp = cptr<T>(lse);
    const T* glp = cptr<T>(gloss);
    T* gp = mptr<T>(glogits);
    const T off = T(label_smoothing / double(C)), hit = T(1.0 - label_smoothing);
    parallel_for(K * N, row_grain(C), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t n = r % N, t = tp[n];
        T* gr = gp + r * C;
        if (t == ignore_index) {
          for (int64_t c = 0; c < C; ++c) gr[c] = T(0);
          continue;
        }
        const T* xr = xp + n * C;
        const T l = sp[n], go = glp[r];
        for (int64_t c = 0; c < C; ++c) gr[c] = go * (std::exp(xr[c] - l) - off);
        gr[t] -= go * hit;
      }
    });
  });
}

}  // namespace polyhead::cpu
