// bench/profile_backend.cpp: see profile_backend.h.
#include "bench/profile_backend.h"

#include <algorithm>
#include <chrono>
#include <vector>

namespace polyhead::benchprof {

namespace {
std::string shp(const Tensor& t) { return t.defined() ? shape_str(t.shape()) : std::string("-"); }
std::string num(int64_t v) { return std::to_string(v); }
}  // namespace

ProfilingBackend::ProfilingBackend(Backend& inner) : inner_(inner) {
  std::vector<double> v;
  for (int i = 0; i < 50; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    inner_.synchronize();
    v.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(v.begin(), v.end());
  sync_ms_ = v[v.size() / 2];
}

template <class F> void ProfilingBackend::timed(const std::string& key, F&& f) {
  inner_.synchronize();
  auto t0 = std::chrono::steady_clock::now();
  f();
  inner_.synchronize();
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() - sync_ms_;
  Stat& s = stats_[key];
  ++s.calls;
  s.ms += std::max(ms, 0.0);
}

void ProfilingBackend::copy(const Tensor& src, Tensor& dst) {
  timed("copy " + shp(dst) + (src.is_contiguous() ? "" : " strided") + (src.dtype() != dst.dtype() ? " cast" : ""),
        [&] { inner_.copy(src, dst); });
}
void ProfilingBackend::fill(Tensor& dst, double value) { timed("fill " + shp(dst), [&] { inner_.fill(dst, value); }); }
void ProfilingBackend::arange(Tensor& dst, double start, double step) { timed("arange", [&] { inner_.arange(dst, start, step); }); }
void ProfilingBackend::random_uniform(Tensor& dst, uint64_t seed, uint64_t offset, double lo, double hi) {
  timed("random_uniform", [&] { inner_.random_uniform(dst, seed, offset, lo, hi); });
}
void ProfilingBackend::random_normal(Tensor& dst, uint64_t seed, uint64_t offset, double mean, double std) {
  timed("random_normal", [&] { inner_.random_normal(dst, seed, offset, mean, std); });
}
void ProfilingBackend::unary(UnaryOp op, const Tensor& x, Tensor& out, double p, double q) {
  timed("unary" + num(int(op)) + " " + shp(out), [&] { inner_.unary(op, x, out, p, q); });
}
void ProfilingBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  timed("binary" + num(int(op)) + " " + shp(out), [&] { inner_.binary(op, a, b, out); });
}
void ProfilingBackend::where(const Tensor& c, const Tensor& a, const Tensor& b, Tensor& out) {
  timed("where " + shp(out), [&] { inner_.where(c, a, b, out); });
}
void ProfilingBackend::reduce(ReduceOp op, const Tensor& x, int64_t outer, int64_t n, int64_t inner, Tensor& out) {
  timed("reduce" + num(int(op)) + " " + num(outer) + "x" + num(n) + "x" + num(inner), [&] { inner_.reduce(op, x, outer, n, inner, out); });
}
void ProfilingBackend::argmax(const Tensor& x, int64_t outer, int64_t n, int64_t inner, Tensor& out) {
  timed("argmax", [&] { inner_.argmax(x, outer, n, inner, out); });
}
void ProfilingBackend::gemm(bool tA, bool tB, int64_t M, int64_t N, int64_t K, double alpha, const Tensor& A, int64_t lda,
                            int64_t sA, const Tensor& B, int64_t ldb, int64_t sB, double beta, Tensor& C, int64_t ldc,
                            int64_t sC, int64_t batch) {
  timed("gemm " + std::string(tA ? "T" : "N") + (tB ? "T" : "N") + " " + num(M) + "x" + num(N) + "x" + num(K) + " b" + num(batch) +
            (beta != 0 ? " beta" : ""),
        [&] { inner_.gemm(tA, tB, M, N, K, alpha, A, lda, sA, B, ldb, sB, beta, C, ldc, sC, batch); });
}
void ProfilingBackend::softmax(const Tensor& x, int64_t rows, int64_t cols, bool log, Tensor& y) {
  timed("softmax " + num(rows) + "x" + num(cols), [&] { inner_.softmax(x, rows, cols, log, y); });
}
void ProfilingBackend::softmax_backward(const Tensor& y, const Tensor& gy, int64_t rows, int64_t cols, int64_t K, bool log,
                                        Tensor& gx) {
  timed("softmax_backward " + num(rows) + "x" + num(cols), [&] { inner_.softmax_backward(y, gy, rows, cols, K, log, gx); });
}
void ProfilingBackend::layer_norm(const Tensor& x, const Tensor& g, const Tensor& b, int64_t rows, int64_t cols, double eps,
                                  Tensor& y, Tensor& mean, Tensor& rstd) {
  timed("layer_norm " + num(rows) + "x" + num(cols), [&] { inner_.layer_norm(x, g, b, rows, cols, eps, y, mean, rstd); });
}
void ProfilingBackend::layer_norm_backward(const Tensor& x, const Tensor& g, const Tensor& mean, const Tensor& rstd,
                                           const Tensor& gy, int64_t rows, int64_t cols, int64_t K, Tensor& gx,
                                           Tensor& dg, Tensor& db) {
  timed("layer_norm_backward " + num(rows) + "x" + num(cols),
        [&] { inner_.layer_norm_backward(x, g, mean, rstd, gy, rows, cols, K, gx, dg, db); });
}
void ProfilingBackend::batch_norm(const Tensor& x, const Tensor& g, const Tensor& b, Tensor& rm, Tensor& rv, bool tr,
                                  double mom, double eps, int64_t N, int64_t C, int64_t S, Tensor& y, Tensor& mean,
                                  Tensor& invstd) {
  timed("batch_norm", [&] { inner_.batch_norm(x, g, b, rm, rv, tr, mom, eps, N, C, S, y, mean, invstd); });
}
void ProfilingBackend::batch_norm_backward(const Tensor& x, const Tensor& g, const Tensor& mean, const Tensor& invstd,
                                           const Tensor& gy, int64_t N, int64_t C, int64_t S, int64_t K, bool tr,
                                           Tensor& gx, Tensor& dg, Tensor& db) {
  timed("batch_norm_backward", [&] { inner_.batch_norm_backward(x, g, mean, invstd, gy, N, C, S, K, tr, gx, dg, db); });
}
void ProfilingBackend::cross_entropy(const Tensor& l, const Tensor& t, int64_t N, int64_t C, int64_t ig, double ls,
                                     Tensor& loss, Tensor& lse) {
  timed("cross_entropy " + num(N) + "x" + num(C), [&] { inner_.cross_entropy(l, t, N, C, ig, ls, loss, lse); });
}
void ProfilingBackend::cross_entropy_backward(const Tensor& l, const Tensor& t, const Tensor& lse, const Tensor& gl,
                                              int64_t N, int64_t C, int64_t K, int64_t ig, double ls, Tensor& g) {
  timed("cross_entropy_backward " + num(N) + "x" + num(C), [&] { inner_.cross_entropy_backward(l, t, lse, gl, N, C, K, ig, ls, g); });
}
void ProfilingBackend::attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, int64_t BH, int64_t T,
                                         int64_t Dh, double scale, Tensor& o, Tensor& lse) {
  timed("attention_forward " + num(BH) + "x" + num(T) + "x" + num(Dh),
        [&] { inner_.attention_forward(q, k, v, BH, T, Dh, scale, o, lse); });
}
void ProfilingBackend::attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& o,
                                          const Tensor& lse, const Tensor& go, int64_t BH, int64_t T, int64_t Dh,
                                          int64_t K, double scale, Tensor& gq, Tensor& gk, Tensor& gv) {
  timed("attention_backward " + num(K) + "x" + num(BH) + "x" + num(T) + "x" + num(Dh),
        [&] { inner_.attention_backward(q, k, v, o, lse, go, BH, T, Dh, K, scale, gq, gk, gv); });
}
void ProfilingBackend::conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const ConvParams& p, Tensor& y) {
  timed("conv2d " + shp(x) + " w" + shp(w), [&] { inner_.conv2d(x, w, b, p, y); });
}
void ProfilingBackend::conv2d_backward_data(const Tensor& gy, const Tensor& w, const ConvParams& p, Tensor& gx) {
  timed("conv2d_backward_data " + shp(gx), [&] { inner_.conv2d_backward_data(gy, w, p, gx); });
}
void ProfilingBackend::conv2d_backward_filter(const Tensor& x, const Tensor& gy, const ConvParams& p, Tensor& gw) {
  timed("conv2d_backward_filter " + shp(gw), [&] { inner_.conv2d_backward_filter(x, gy, p, gw); });
}
void ProfilingBackend::max_pool2d(const Tensor& x, const PoolParams& p, Tensor& y, Tensor& idx) {
  timed("max_pool2d " + shp(x), [&] { inner_.max_pool2d(x, p, y, idx); });
}
void ProfilingBackend::max_pool2d_backward(const Tensor& gy, const Tensor& idx, int64_t K, Tensor& gx) {
  timed("max_pool2d_backward " + shp(gx), [&] { inner_.max_pool2d_backward(gy, idx, K, gx); });
}
void ProfilingBackend::avg_pool2d(const Tensor& x, const PoolParams& p, Tensor& y) { timed("avg_pool2d", [&] { inner_.avg_pool2d(x, p, y); }); }
void ProfilingBackend::avg_pool2d_backward(const Tensor& gy, const PoolParams& p, Tensor& gx) {
  timed("avg_pool2d_backward", [&] { inner_.avg_pool2d_backward(gy, p, gx); });
}
void ProfilingBackend::embedding(const Tensor& w, const Tensor& idx, Tensor& out) {
  timed("embedding " + shp(out), [&] { inner_.embedding(w, idx, out); });
}
void ProfilingBackend::embedding_backward(const Tensor& gy, const Tensor& idx, int64_t K, int64_t V, int64_t D, Tensor& gw) {
  timed("embedding_backward " + shp(gw), [&] { inner_.embedding_backward(gy, idx, K, V, D, gw); });
}
void ProfilingBackend::dropout_mask(Tensor& mask, double p, uint64_t seed, uint64_t offset) {
  timed("dropout_mask", [&] { inner_.dropout_mask(mask, p, seed, offset); });
}
void ProfilingBackend::sgd_update(Tensor& param, const Tensor& grad, Tensor& buf, double lr, double m, double d, double wd,
                                  bool nesterov, bool first) {
  timed("sgd_update " + shp(param), [&] { inner_.sgd_update(param, grad, buf, lr, m, d, wd, nesterov, first); });
}
void ProfilingBackend::adam_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, double lr, double b1, double b2,
                                   double eps, double wd, int64_t step, bool dec) {
  timed("adam_update " + shp(param), [&] { inner_.adam_update(param, grad, m, v, lr, b1, b2, eps, wd, step, dec); });
}

}  // namespace polyhead::benchprof
