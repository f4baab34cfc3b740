// tests/engine/test_cpu_nn.cpp: the CPU neural-network primitives (cpu_nn.cpp, cpu_conv.cpp,
// cpu_misc.cpp) against naive double-precision references written here, central finite
// differences (f64) for every backward primitive, K-batched backward == K single calls, optimizer
// updates against the PyTorch formulas, and bit-identical results with 1 and 2 threads.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/rng.h"
#include "engine/tensor.h"
#include "engine/threading.h"

using namespace polyhead;

namespace {

using Vec = std::vector<double>;

Backend& cpu() { return backend_for(Device::cpu()); }

Vec randv(size_t n, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  std::mt19937_64 g(seed);
  std::uniform_real_distribution<double> d(lo, hi);
  Vec v(n);
  for (auto& x : v) x = d(g);
  return v;
}

Tensor tens(const Vec& v, const Shape& s, DType dt = DType::f64) { return Tensor::from_vector(v, s).to(dt); }
Tensor itens(const std::vector<int64_t>& v) { return Tensor::from_vector(v, {int64_t(v.size())}); }
Vec vals(const Tensor& t) { return t.to_vector<double>(); }
Tensor empty(const Shape& s, DType dt) { return Tensor::empty(s, dt); }

// worst |got - want| / (1 + |want|) must not exceed tol
void expect_close(const Vec& got, const Vec& want, double tol, const std::string& what) {
  REQUIRE_MESSAGE(got.size() == want.size(), what << ": size " << got.size() << " vs " << want.size());
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    double e = std::abs(got[i] - want[i]) / (1.0 + std::abs(want[i]));
    if (std::isnan(e)) e = std::numeric_limits<double>::infinity();
    if (e > worst) { worst = e; at = i; }
  }
  INFO(what << ": worst relative error " << worst << " at " << at << " (got " << (got.empty() ? 0 : got[at])
            << ", want " << (want.empty() ? 0 : want[at]) << ")");
  CHECK(worst <= tol);
}

void expect_equal(const Vec& a, const Vec& b, const std::string& what) {
  REQUIRE(a.size() == b.size());
  size_t bad = 0;
  for (size_t i = 0; i < a.size(); ++i) bad += !(a[i] == b[i]);
  INFO(what << ": " << bad << " of " << a.size() << " elements differ");
  CHECK(bad == 0);
}

double tol_for(DType dt) { return dt == DType::f32 ? 2e-5 : 1e-12; }

// central differences of f at x
Vec numgrad(const std::function<double(const Vec&)>& f, Vec x, double h = 1e-6) {
  Vec g(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double x0 = x[i];
    x[i] = x0 + h;
    const double fp = f(x);
    x[i] = x0 - h;
    const double fm = f(x);
    x[i] = x0;
    g[i] = (fp - fm) / (2 * h);
  }
  return g;
}

double dotv(const Vec& a, const Vec& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// block k of a (K * n)-element vector
Vec block(const Vec& v, size_t k, size_t n) { return Vec(v.begin() + long(k * n), v.begin() + long((k + 1) * n)); }
Vec concat(const std::vector<Vec>& vs) {
  Vec r;
  for (auto& v : vs) r.insert(r.end(), v.begin(), v.end());
  return r;
}

const DType kFloatTypes[] = {DType::f32, DType::f64};

// ---------------------------------------------------------------------------------------------
// naive references

Vec softmax_ref(const Vec& x, int64_t rows, int64_t cols, bool log) {
  Vec y(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    double mx = -INFINITY, s = 0;
    for (int64_t c = 0; c < cols; ++c) mx = std::max(mx, x[r * cols + c]);
    for (int64_t c = 0; c < cols; ++c) s += std::exp(x[r * cols + c] - mx);
    for (int64_t c = 0; c < cols; ++c)
      y[r * cols + c] = log ? x[r * cols + c] - mx - std::log(s) : std::exp(x[r * cols + c] - mx) / s;
  }
  return y;
}

struct NormRef { Vec y, mean, rstd; };
NormRef layer_norm_ref(const Vec& x, const Vec* g, const Vec* b, int64_t rows, int64_t cols, double eps) {
  NormRef r{Vec(x.size()), Vec(size_t(rows)), Vec(size_t(rows))};
  for (int64_t i = 0; i < rows; ++i) {
    double m = 0, v = 0;
    for (int64_t c = 0; c < cols; ++c) m += x[i * cols + c];
    m /= double(cols);
    for (int64_t c = 0; c < cols; ++c) v += (x[i * cols + c] - m) * (x[i * cols + c] - m);
    v /= double(cols);
    r.mean[i] = m;
    r.rstd[i] = 1 / std::sqrt(v + eps);
    for (int64_t c = 0; c < cols; ++c)
      r.y[i * cols + c] = (x[i * cols + c] - m) * r.rstd[i] * (g ? (*g)[c] : 1.0) + (b ? (*b)[c] : 0.0);
  }
  return r;
}

struct BnRef { Vec y, mean, var, var_unbiased; };
BnRef batch_norm_ref(const Vec& x, const Vec& g, const Vec& b, int64_t N, int64_t C, int64_t S, double eps) {
  BnRef r{Vec(x.size()), Vec(size_t(C)), Vec(size_t(C)), Vec(size_t(C))};
  const double M = double(N * S);
  for (int64_t c = 0; c < C; ++c) {
    double m = 0, v = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) m += x[(n * C + c) * S + s];
    m /= M;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) v += std::pow(x[(n * C + c) * S + s] - m, 2);
    r.mean[c] = m;
    r.var[c] = v / M;
    r.var_unbiased[c] = v / (M - 1);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) {
        const int64_t i = (n * C + c) * S + s;
        r.y[i] = (x[i] - m) / std::sqrt(r.var[c] + eps) * g[c] + b[c];
      }
  }
  return r;
}

// per-row loss with explicit log-probabilities
Vec cross_entropy_ref(const Vec& x, const std::vector<int64_t>& t, int64_t N, int64_t C, int64_t ignore, double eps,
                      Vec* lse_out = nullptr) {
  Vec loss(static_cast<size_t>(N)), logp = softmax_ref(x, N, C, true);
  if (lse_out) lse_out->assign(size_t(N), 0.0);
  for (int64_t n = 0; n < N; ++n) {
    if (lse_out) (*lse_out)[n] = x[n * C] - logp[n * C];
    if (t[n] == ignore) continue;
    double smooth = 0;
    for (int64_t c = 0; c < C; ++c) smooth += -logp[n * C + c];
    loss[n] = (1 - eps) * -logp[n * C + t[n]] + eps * smooth / double(C);
  }
  return loss;
}

struct Dims { int64_t N, C, H, W; };

// direct convolution: y[n, o, i, j] = b[o] + sum_{c, u, v} w[o, c, u, v] x[n, c, i*sh - ph + u*dh, j*sw - pw + v*dw]
Vec conv_ref(const Vec& x, const Vec& w, const Vec* bias, Dims d, int64_t OC, const ConvParams& p) {
  const int64_t OH = p.out_h(d.H), OW = p.out_w(d.W);
  Vec y(size_t(d.N * OC * OH * OW));
  for (int64_t n = 0; n < d.N; ++n)
    for (int64_t o = 0; o < OC; ++o)
      for (int64_t i = 0; i < OH; ++i)
        for (int64_t j = 0; j < OW; ++j) {
          double s = bias ? (*bias)[o] : 0.0;
          for (int64_t c = 0; c < d.C; ++c)
            for (int64_t u = 0; u < p.kh; ++u)
              for (int64_t v = 0; v < p.kw; ++v) {
                const int64_t ih = i * p.sh - p.ph + u * p.dh, iw = j * p.sw - p.pw + v * p.dw;
                if (ih < 0 || ih >= d.H || iw < 0 || iw >= d.W) continue;
                s += w[((o * d.C + c) * p.kh + u) * p.kw + v] * x[((n * d.C + c) * d.H + ih) * d.W + iw];
              }
          y[((n * OC + o) * OH + i) * OW + j] = s;
        }
  return y;
}

void max_pool_ref(const Vec& x, Dims d, const PoolParams& p, Vec& y, std::vector<int64_t>& idx) {
  const int64_t OH = p.out_h(d.H), OW = p.out_w(d.W);
  y.assign(size_t(d.N * d.C * OH * OW), 0.0);
  idx.assign(y.size(), -1);
  for (int64_t q = 0; q < d.N * d.C; ++q)
    for (int64_t i = 0; i < OH; ++i)
      for (int64_t j = 0; j < OW; ++j) {
        double best = -INFINITY;
        int64_t bi = -1;
        for (int64_t u = 0; u < p.kh; ++u)
          for (int64_t v = 0; v < p.kw; ++v) {
            const int64_t ih = i * p.sh - p.ph + u, iw = j * p.sw - p.pw + v;
            if (ih < 0 || ih >= d.H || iw < 0 || iw >= d.W) continue;  // padding is -inf
            if (x[q * d.H * d.W + ih * d.W + iw] > best) { best = x[q * d.H * d.W + ih * d.W + iw]; bi = ih * d.W + iw; }
          }
        y[(q * OH + i) * OW + j] = best;
        idx[(q * OH + i) * OW + j] = bi;
      }
}

Vec avg_pool_ref(const Vec& x, Dims d, const PoolParams& p) {
  const int64_t OH = p.out_h(d.H), OW = p.out_w(d.W);
  Vec y(size_t(d.N * d.C * OH * OW));
  for (int64_t q = 0; q < d.N * d.C; ++q)
    for (int64_t i = 0; i < OH; ++i)
      for (int64_t j = 0; j < OW; ++j) {
        double s = 0;
        int64_t inside = 0, padded = 0;
        for (int64_t u = 0; u < p.kh; ++u)
          for (int64_t v = 0; v < p.kw; ++v) {
            const int64_t ih = i * p.sh - p.ph + u, iw = j * p.sw - p.pw + v;
            if (ih < d.H + p.ph && iw < d.W + p.pw) ++padded;  // within the padded image
            if (ih < 0 || ih >= d.H || iw < 0 || iw >= d.W) continue;
            s += x[q * d.H * d.W + ih * d.W + iw];
            ++inside;
          }
        y[(q * OH + i) * OW + j] = s / double(p.count_include_pad ? padded : inside);
      }
  return y;
}

// ---------------------------------------------------------------------------------------------
// thin wrappers running one primitive on vectors

Vec run_softmax(const Vec& x, int64_t rows, int64_t cols, bool log, DType dt) {
  Tensor y = empty({rows, cols}, dt);
  cpu().softmax(tens(x, {rows, cols}, dt), rows, cols, log, y);
  return vals(y);
}

Vec run_softmax_bwd(const Vec& y, const Vec& gy, int64_t rows, int64_t cols, int64_t K, bool log, DType dt) {
  Tensor gx = empty({K * rows, cols}, dt);
  cpu().softmax_backward(tens(y, {rows, cols}, dt), tens(gy, {K * rows, cols}, dt), rows, cols, K, log, gx);
  return vals(gx);
}

struct LnOut { Vec y, mean, rstd; };
LnOut run_layer_norm(const Vec& x, const Vec* g, const Vec* b, int64_t rows, int64_t cols, double eps, DType dt) {
  Tensor y = empty({rows, cols}, dt), m = empty({rows}, dt), r = empty({rows}, dt);
  cpu().layer_norm(tens(x, {rows, cols}, dt), g ? tens(*g, {cols}, dt) : Tensor(), b ? tens(*b, {cols}, dt) : Tensor(),
                   rows, cols, eps, y, m, r);
  return {vals(y), vals(m), vals(r)};
}

struct GradOut { Vec gx, dg, db; };
GradOut run_layer_norm_bwd(const Vec& x, const Vec* g, const LnOut& f, const Vec& gy, int64_t rows, int64_t cols,
                           int64_t K, DType dt) {
  Tensor gx = empty({K * rows, cols}, dt), dg = empty({K, cols}, dt), db = empty({K, cols}, dt);
  cpu().layer_norm_backward(tens(x, {rows, cols}, dt), g ? tens(*g, {cols}, dt) : Tensor(), tens(f.mean, {rows}, dt),
                            tens(f.rstd, {rows}, dt), tens(gy, {K * rows, cols}, dt), rows, cols, K, gx, dg, db);
  return {vals(gx), vals(dg), vals(db)};
}

struct BnOut { Vec y, mean, invstd, rm, rv; };
BnOut run_batch_norm(const Vec& x, const Vec& g, const Vec& b, const Vec* rm, const Vec* rv, bool training,
                     double momentum, double eps, int64_t N, int64_t C, int64_t S, DType dt) {
  Tensor y = empty({N, C, S}, dt), m = empty({C}, dt), is = empty({C}, dt);
  Tensor trm = rm ? tens(*rm, {C}, dt) : Tensor(), trv = rv ? tens(*rv, {C}, dt) : Tensor();
  cpu().batch_norm(tens(x, {N, C, S}, dt), tens(g, {C}, dt), tens(b, {C}, dt), trm, trv, training, momentum, eps, N, C,
                   S, y, m, is);
  return {vals(y), vals(m), vals(is), rm ? vals(trm) : Vec(), rv ? vals(trv) : Vec()};
}

GradOut run_batch_norm_bwd(const Vec& x, const Vec& g, const BnOut& f, const Vec& gy, int64_t N, int64_t C, int64_t S,
                           int64_t K, bool training, DType dt) {
  Tensor gx = empty({K * N, C, S}, dt), dg = empty({K, C}, dt), db = empty({K, C}, dt);
  cpu().batch_norm_backward(tens(x, {N, C, S}, dt), tens(g, {C}, dt), tens(f.mean, {C}, dt), tens(f.invstd, {C}, dt),
                            tens(gy, {K * N, C, S}, dt), N, C, S, K, training, gx, dg, db);
  return {vals(gx), vals(dg), vals(db)};
}

Vec run_ce(const Vec& x, const std::vector<int64_t>& t, int64_t N, int64_t C, int64_t ignore, double eps, DType dt,
           Vec* lse = nullptr) {
  Tensor loss = empty({N}, dt), l = empty({N}, dt);
  cpu().cross_entropy(tens(x, {N, C}, dt), itens(t), N, C, ignore, eps, loss, l);
  if (lse) *lse = vals(l);
  return vals(loss);
}

Vec run_ce_bwd(const Vec& x, const std::vector<int64_t>& t, const Vec& lse, const Vec& gl, int64_t N, int64_t C,
               int64_t K, int64_t ignore, double eps, DType dt) {
  Tensor g = empty({K, N, C}, dt);
  cpu().cross_entropy_backward(tens(x, {N, C}, dt), itens(t), tens(lse, {N}, dt), tens(gl, {K, N}, dt), N, C, K, ignore,
                               eps, g);
  return vals(g);
}

Vec run_conv(const Vec& x, const Vec& w, const Vec* b, Dims d, int64_t OC, const ConvParams& p, DType dt) {
  Tensor y = empty({d.N, OC, p.out_h(d.H), p.out_w(d.W)}, dt);
  cpu().conv2d(tens(x, {d.N, d.C, d.H, d.W}, dt), tens(w, {OC, d.C, p.kh, p.kw}, dt), b ? tens(*b, {OC}, dt) : Tensor(),
               p, y);
  return vals(y);
}

Vec run_conv_bwd_data(const Vec& gy, const Vec& w, Dims d, int64_t OC, const ConvParams& p, DType dt) {
  Tensor gx = empty({d.N, d.C, d.H, d.W}, dt);
  cpu().conv2d_backward_data(tens(gy, {d.N, OC, p.out_h(d.H), p.out_w(d.W)}, dt), tens(w, {OC, d.C, p.kh, p.kw}, dt),
                             p, gx);
  return vals(gx);
}

Vec run_conv_bwd_filter(const Vec& x, const Vec& gy, Dims d, int64_t OC, const ConvParams& p, DType dt) {
  Tensor gw = empty({OC, d.C, p.kh, p.kw}, dt);
  cpu().conv2d_backward_filter(tens(x, {d.N, d.C, d.H, d.W}, dt), tens(gy, {d.N, OC, p.out_h(d.H), p.out_w(d.W)}, dt),
                               p, gw);
  return vals(gw);
}

void run_max_pool(const Vec& x, Dims d, const PoolParams& p, DType dt, Vec& y, std::vector<int64_t>& idx) {
  Tensor ty = empty({d.N, d.C, p.out_h(d.H), p.out_w(d.W)}, dt), ti = empty(ty.shape(), DType::i64);
  cpu().max_pool2d(tens(x, {d.N, d.C, d.H, d.W}, dt), p, ty, ti);
  y = vals(ty);
  idx = ti.to_vector<int64_t>();
}

Vec run_max_pool_bwd(const Vec& gy, const std::vector<int64_t>& idx, Dims d, const PoolParams& p, int64_t K, DType dt) {
  const int64_t OH = p.out_h(d.H), OW = p.out_w(d.W);
  Tensor gx = Tensor::full({K * d.N, d.C, d.H, d.W}, 123.0, dt);  // the callee zeroes it
  cpu().max_pool2d_backward(tens(gy, {K * d.N, d.C, OH, OW}, dt),
                            Tensor::from_vector(idx, {d.N, d.C, OH, OW}), K, gx);
  return vals(gx);
}

Vec run_avg_pool(const Vec& x, Dims d, const PoolParams& p, DType dt) {
  Tensor y = empty({d.N, d.C, p.out_h(d.H), p.out_w(d.W)}, dt);
  cpu().avg_pool2d(tens(x, {d.N, d.C, d.H, d.W}, dt), p, y);
  return vals(y);
}

Vec run_avg_pool_bwd(const Vec& gy, Dims d, const PoolParams& p, DType dt) {
  Tensor gx = Tensor::full({d.N, d.C, d.H, d.W}, 7.0, dt);
  cpu().avg_pool2d_backward(tens(gy, {d.N, d.C, p.out_h(d.H), p.out_w(d.W)}, dt), p, gx);
  return vals(gx);
}

Vec run_embedding(const Vec& w, const std::vector<int64_t>& idx, int64_t V, int64_t D, DType dt) {
  Tensor out = empty({int64_t(idx.size()), D}, dt);
  cpu().embedding(tens(w, {V, D}, dt), itens(idx), out);
  return vals(out);
}

Vec run_embedding_bwd(const Vec& gy, const std::vector<int64_t>& idx, int64_t K, int64_t V, int64_t D, DType dt) {
  Tensor gw = Tensor::full({K, V, D}, -5.0, dt);  // the callee zeroes it
  cpu().embedding_backward(tens(gy, {K, int64_t(idx.size()), D}, dt), itens(idx), K, V, D, gw);
  return vals(gw);
}

struct ConvCase { Dims d; int64_t OC; ConvParams p; bool bias; };
std::vector<ConvCase> conv_cases() {
  ConvParams a; a.kh = 3; a.kw = 2; a.sh = 1; a.sw = 2; a.ph = 1; a.pw = 0; a.dh = 1; a.dw = 2;
  ConvParams pw;  // 1x1, stride 1: the no-im2col path
  pw.kh = 1; pw.kw = 1;
  ConvParams c; c.kh = 3; c.kw = 3; c.sh = 2; c.sw = 2; c.ph = 2; c.pw = 1; c.dh = 2; c.dw = 2;
  ConvParams s1; s1.kh = 1; s1.kw = 1; s1.sh = 2; s1.sw = 3;  // 1x1 but strided
  ConvParams big; big.kh = 5; big.kw = 4; big.ph = 2; big.pw = 3;
  ConvParams tiny;  // padding and dilation larger than the image: whole kernel rows fall outside
  tiny.kh = 3; tiny.kw = 3; tiny.ph = 3; tiny.pw = 3; tiny.dh = 3; tiny.dw = 3; tiny.sw = 2;
  return {{{2, 3, 7, 9}, 4, a, true}, {{3, 5, 4, 5}, 2, pw, false}, {{2, 2, 9, 8}, 3, c, true},
          {{2, 3, 7, 5}, 3, s1, true}, {{1, 2, 6, 7}, 5, big, false}, {{2, 2, 3, 2}, 3, tiny, true}};
}

std::string conv_name(const ConvCase& k) {
  return "conv k" + std::to_string(k.p.kh) + "x" + std::to_string(k.p.kw) + " s" + std::to_string(k.p.sh) + "x" +
         std::to_string(k.p.sw) + " p" + std::to_string(k.p.ph) + "x" + std::to_string(k.p.pw) + " d" +
         std::to_string(k.p.dh) + "x" + std::to_string(k.p.dw);
}

PoolParams pool(int kh, int kw, int sh, int sw, int ph, int pw, bool include_pad = true) {
  PoolParams p;
  p.kh = kh; p.kw = kw; p.sh = sh; p.sw = sw; p.ph = ph; p.pw = pw; p.count_include_pad = include_pad;
  return p;
}

}  // namespace

// =============================================================================================
TEST_CASE("softmax and log_softmax match an explicit reference") {
  const int64_t rows = 7, cols = 13;
  Vec x = randv(size_t(rows * cols), 1, -4, 4);
  x[5] = 60;  // large values: the max subtraction keeps exp finite
  x[6] = 61;
  for (DType dt : kFloatTypes)
    for (bool log : {false, true}) {
      Vec y = run_softmax(x, rows, cols, log, dt);
      expect_close(y, softmax_ref(x, rows, cols, log), tol_for(dt), std::string(log ? "log_softmax " : "softmax ") + dtype_name(dt));
    }
}

TEST_CASE("softmax_backward: finite differences and K batching") {
  const int64_t rows = 5, cols = 11, K = 3;
  const Vec x = randv(size_t(rows * cols), 2, -2, 2), gy = randv(size_t(K * rows * cols), 3);
  for (bool log : {false, true}) {
    const Vec y = run_softmax(x, rows, cols, log, DType::f64);
    const Vec gy0 = block(gy, 0, size_t(rows * cols));
    Vec num = numgrad([&](const Vec& xv) { return dotv(run_softmax(xv, rows, cols, log, DType::f64), gy0); }, x);
    expect_close(run_softmax_bwd(y, gy0, rows, cols, 1, log, DType::f64), num, 1e-7, log ? "log_softmax fd" : "softmax fd");
    for (DType dt : kFloatTypes) {
      Vec batched = run_softmax_bwd(y, gy, rows, cols, K, log, dt);
      std::vector<Vec> single;
      for (int64_t k = 0; k < K; ++k)
        single.push_back(run_softmax_bwd(y, block(gy, size_t(k), size_t(rows * cols)), rows, cols, 1, log, dt));
      expect_equal(batched, concat(single), "softmax_backward K");
    }
  }
}

TEST_CASE("layer_norm matches the reference, with and without affine parameters") {
  const int64_t rows = 6, cols = 17;
  const double eps = 1e-5;
  Vec x = randv(size_t(rows * cols), 4, -3, 3);
  for (int64_t c = 0; c < cols; ++c) x[size_t(cols + c)] = 1000.0 + 0.01 * double(c);  // large mean, small spread
  const Vec g = randv(size_t(cols), 5, 0.5, 1.5), b = randv(size_t(cols), 6);
  for (DType dt : kFloatTypes)
    for (bool affine : {true, false}) {
      LnOut o = run_layer_norm(x, affine ? &g : nullptr, affine ? &b : nullptr, rows, cols, eps, dt);
      // the reference sees the inputs as rounded to dt (1000.01 is not exact in f32)
      const Vec xd = vals(tens(x, {rows, cols}, dt)), gd = vals(tens(g, {cols}, dt)), bd = vals(tens(b, {cols}, dt));
      NormRef r = layer_norm_ref(xd, affine ? &gd : nullptr, affine ? &bd : nullptr, rows, cols, eps);
      const double tol = dt == DType::f32 ? 1e-4 : 1e-10;
      expect_close(o.y, r.y, tol, std::string("layer_norm y ") + dtype_name(dt));
      expect_close(o.mean, r.mean, tol_for(dt), "layer_norm mean");
      expect_close(o.rstd, r.rstd, tol, "layer_norm rstd");
    }
}

TEST_CASE("layer_norm_backward: finite differences and K batching") {
  const int64_t rows = 5, cols = 9, K = 3;
  const double eps = 1e-5;
  const Vec x = randv(size_t(rows * cols), 7, -2, 2), g = randv(size_t(cols), 8, 0.5, 1.5), b = randv(size_t(cols), 9);
  const Vec gy = randv(size_t(K * rows * cols), 10);
  const Vec gy0 = block(gy, 0, size_t(rows * cols));
  auto f = [&](const Vec& xv, const Vec& gv, const Vec& bv) {
    return dotv(run_layer_norm(xv, &gv, &bv, rows, cols, eps, DType::f64).y, gy0);
  };
  LnOut fwd = run_layer_norm(x, &g, &b, rows, cols, eps, DType::f64);
  GradOut got = run_layer_norm_bwd(x, &g, fwd, gy0, rows, cols, 1, DType::f64);
  expect_close(got.gx, numgrad([&](const Vec& v) { return f(v, g, b); }, x), 1e-7, "layer_norm gx fd");
  expect_close(got.dg, numgrad([&](const Vec& v) { return f(x, v, b); }, g), 1e-7, "layer_norm dgamma fd");
  expect_close(got.db, numgrad([&](const Vec& v) { return f(x, g, v); }, b), 1e-7, "layer_norm dbeta fd");
  // without gamma
  LnOut fwd0 = run_layer_norm(x, nullptr, nullptr, rows, cols, eps, DType::f64);
  GradOut got0 = run_layer_norm_bwd(x, nullptr, fwd0, gy0, rows, cols, 1, DType::f64);
  expect_close(got0.gx,
               numgrad([&](const Vec& v) { return dotv(run_layer_norm(v, nullptr, nullptr, rows, cols, eps, DType::f64).y, gy0); }, x),
               1e-7, "layer_norm (no affine) gx fd");
  for (DType dt : kFloatTypes) {
    LnOut fd = run_layer_norm(x, &g, &b, rows, cols, eps, dt);
    GradOut all = run_layer_norm_bwd(x, &g, fd, gy, rows, cols, K, dt);
    for (int64_t k = 0; k < K; ++k) {
      GradOut one = run_layer_norm_bwd(x, &g, fd, block(gy, size_t(k), size_t(rows * cols)), rows, cols, 1, dt);
      expect_equal(block(all.gx, size_t(k), size_t(rows * cols)), one.gx, "layer_norm K gx");
      expect_equal(block(all.dg, size_t(k), size_t(cols)), one.dg, "layer_norm K dgamma");
      expect_equal(block(all.db, size_t(k), size_t(cols)), one.db, "layer_norm K dbeta");
    }
  }
}

TEST_CASE("batch_norm: training statistics, running buffers (unbiased), eval mode") {
  const int64_t N = 3, C = 4, S = 5;
  const double eps = 1e-5, mom = 0.1;
  const Vec x = randv(size_t(N * C * S), 11, -2, 3), g = randv(size_t(C), 12, 0.5, 1.5), b = randv(size_t(C), 13);
  const Vec rm0 = randv(size_t(C), 14), rv0 = randv(size_t(C), 15, 0.5, 2);
  const BnRef r = batch_norm_ref(x, g, b, N, C, S, eps);
  for (DType dt : kFloatTypes) {
    const double tol = dt == DType::f32 ? 1e-5 : 1e-11;
    BnOut o = run_batch_norm(x, g, b, &rm0, &rv0, true, mom, eps, N, C, S, dt);
    expect_close(o.y, r.y, tol, std::string("batch_norm train y ") + dtype_name(dt));
    expect_close(o.mean, r.mean, tol, "batch_norm mean");
    Vec invstd(static_cast<size_t>(C)), rm(static_cast<size_t>(C)), rv(static_cast<size_t>(C));
    for (int64_t c = 0; c < C; ++c) {
      invstd[c] = 1 / std::sqrt(r.var[c] + eps);
      rm[c] = (1 - mom) * rm0[c] + mom * r.mean[c];
      rv[c] = (1 - mom) * rv0[c] + mom * r.var_unbiased[c];
    }
    expect_close(o.invstd, invstd, tol, "batch_norm invstd");
    expect_close(o.rm, rm, tol, "batch_norm running_mean");
    expect_close(o.rv, rv, tol, "batch_norm running_var (unbiased)");
    // training without running buffers
    BnOut o2 = run_batch_norm(x, g, b, nullptr, nullptr, true, mom, eps, N, C, S, dt);
    expect_equal(o2.y, o.y, "batch_norm without running buffers");
    // eval: running statistics, buffers untouched
    BnOut e = run_batch_norm(x, g, b, &rm0, &rv0, false, mom, eps, N, C, S, dt);
    Vec ye(x.size());
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t s = 0; s < S; ++s) {
          const size_t i = size_t((n * C + c) * S + s);
          ye[i] = (x[i] - rm0[c]) / std::sqrt(rv0[c] + eps) * g[c] + b[c];
        }
    expect_close(e.y, ye, tol, "batch_norm eval y");
    expect_close(e.rm, rm0, tol_for(dt), "batch_norm eval keeps running_mean");
    expect_close(e.rv, rv0, tol_for(dt), "batch_norm eval keeps running_var");
  }
  // one value per channel cannot be normalised in training
  Tensor y = empty({1, 2, 1}, DType::f32), m = empty({2}, DType::f32), is = empty({2}, DType::f32), none;
  CHECK_THROWS_AS(cpu().batch_norm(Tensor::ones({1, 2, 1}), none, none, none, none, true, 0.1, 1e-5, 1, 2, 1, y, m, is),
                  Error);
}

TEST_CASE("batch_norm_backward: finite differences (training and eval) and K batching") {
  const int64_t N = 3, C = 2, S = 5, K = 2;
  const double eps = 1e-5;
  const Vec x = randv(size_t(N * C * S), 16, -2, 2), g = randv(size_t(C), 17, 0.5, 1.5), b = randv(size_t(C), 18);
  const Vec rm = randv(size_t(C), 19), rv = randv(size_t(C), 20, 0.5, 2);
  const Vec gy = randv(size_t(K * N * C * S), 21);
  const Vec gy0 = block(gy, 0, size_t(N * C * S));
  for (bool training : {true, false}) {
    auto f = [&](const Vec& xv, const Vec& gv, const Vec& bv) {
      return dotv(run_batch_norm(xv, gv, bv, &rm, &rv, training, 0.1, eps, N, C, S, DType::f64).y, gy0);
    };
    BnOut fwd = run_batch_norm(x, g, b, &rm, &rv, training, 0.1, eps, N, C, S, DType::f64);
    GradOut got = run_batch_norm_bwd(x, g, fwd, gy0, N, C, S, 1, training, DType::f64);
    const std::string mode = training ? "train" : "eval";
    expect_close(got.gx, numgrad([&](const Vec& v) { return f(v, g, b); }, x), 1e-7, "batch_norm gx fd " + mode);
    expect_close(got.dg, numgrad([&](const Vec& v) { return f(x, v, b); }, g), 1e-7, "batch_norm dgamma fd " + mode);
    expect_close(got.db, numgrad([&](const Vec& v) { return f(x, g, v); }, b), 1e-7, "batch_norm dbeta fd " + mode);
    for (DType dt : kFloatTypes) {
      BnOut fd = run_batch_norm(x, g, b, &rm, &rv, training, 0.1, eps, N, C, S, dt);
      GradOut all = run_batch_norm_bwd(x, g, fd, gy, N, C, S, K, training, dt);
      for (int64_t k = 0; k < K; ++k) {
        GradOut one = run_batch_norm_bwd(x, g, fd, block(gy, size_t(k), size_t(N * C * S)), N, C, S, 1, training, dt);
        expect_equal(block(all.gx, size_t(k), size_t(N * C * S)), one.gx, "batch_norm K gx " + mode);
        expect_equal(block(all.dg, size_t(k), size_t(C)), one.dg, "batch_norm K dgamma");
        expect_equal(block(all.db, size_t(k), size_t(C)), one.db, "batch_norm K dbeta");
      }
    }
  }
}

TEST_CASE("cross_entropy: reference, ignore_index, label smoothing, bad targets") {
  const int64_t N = 7, C = 5, ignore = -100;
  Vec x = randv(size_t(N * C), 22, -3, 3);
  x[3] = 80;  // stable for large logits
  const std::vector<int64_t> t = {0, 4, ignore, 2, 1, 3, ignore};
  for (DType dt : kFloatTypes)
    for (double eps : {0.0, 0.1, 0.3}) {
      Vec lse, lse_ref;
      Vec loss = run_ce(x, t, N, C, ignore, eps, dt, &lse);
      expect_close(loss, cross_entropy_ref(x, t, N, C, ignore, eps, &lse_ref), tol_for(dt) * 5,
                   "cross_entropy eps=" + std::to_string(eps) + " " + dtype_name(dt));
      expect_close(lse, lse_ref, tol_for(dt), "cross_entropy lse");
      CHECK(loss[2] == 0.0);
      CHECK(loss[6] == 0.0);
    }
  // an ignore_index inside [0, C) masks that class's rows
  {
    const std::vector<int64_t> t2 = {0, 1, 2, 1, 1, 0, 2};
    Vec loss = run_ce(x, t2, N, C, 1, 0.0, DType::f64);
    expect_close(loss, cross_entropy_ref(x, t2, N, C, 1, 0.0), 1e-12, "cross_entropy ignore_index=1");
  }
  const std::vector<int64_t> bad = {0, 5, 1, 1, 1, 1, 1};
  CHECK_THROWS_AS(run_ce(x, bad, N, C, ignore, 0.0, DType::f32), Error);
}

TEST_CASE("cross_entropy_backward: finite differences and K batching") {
  const int64_t N = 6, C = 4, K = 3, ignore = 2;
  const Vec x = randv(size_t(N * C), 23, -2, 2), gl = randv(size_t(K * N), 24);
  const std::vector<int64_t> t = {0, 2, 3, 1, 2, 3};
  for (double eps : {0.0, 0.2}) {
    const Vec gl0 = block(gl, 0, size_t(N));
    Vec lse;
    run_ce(x, t, N, C, ignore, eps, DType::f64, &lse);
    Vec num = numgrad([&](const Vec& v) { return dotv(run_ce(v, t, N, C, ignore, eps, DType::f64), gl0); }, x);
    expect_close(run_ce_bwd(x, t, lse, gl0, N, C, 1, ignore, eps, DType::f64), num, 1e-7,
                 "cross_entropy fd eps=" + std::to_string(eps));
    for (DType dt : kFloatTypes) {
      Vec l;
      run_ce(x, t, N, C, ignore, eps, dt, &l);
      Vec all = run_ce_bwd(x, t, l, gl, N, C, K, ignore, eps, dt);
      std::vector<Vec> single;
      for (int64_t k = 0; k < K; ++k) single.push_back(run_ce_bwd(x, t, l, block(gl, size_t(k), size_t(N)), N, C, 1, ignore, eps, dt));
      expect_equal(all, concat(single), "cross_entropy_backward K");
    }
  }
}

// ---------------------------------------------------------------------------------------------
TEST_CASE("conv2d matches direct convolution") {
  for (const ConvCase& k : conv_cases()) {
    const Vec x = randv(size_t(k.d.N * k.d.C * k.d.H * k.d.W), 30), w = randv(size_t(k.OC * k.d.C * k.p.kh * k.p.kw), 31);
    const Vec b = randv(size_t(k.OC), 32);
    const Vec want = conv_ref(x, w, k.bias ? &b : nullptr, k.d, k.OC, k.p);
    for (DType dt : kFloatTypes)
      expect_close(run_conv(x, w, k.bias ? &b : nullptr, k.d, k.OC, k.p, dt), want, dt == DType::f32 ? 1e-5 : 1e-12,
                   conv_name(k) + " " + dtype_name(dt));
  }
}

TEST_CASE("conv2d backward data and filter: finite differences, direct references, K batching") {
  for (const ConvCase& k : conv_cases()) {
    const Dims d = k.d;
    const int64_t OH = k.p.out_h(d.H), OW = k.p.out_w(d.W), K = 2;
    const size_t nx = size_t(d.N * d.C * d.H * d.W), nw = size_t(k.OC * d.C * k.p.kh * k.p.kw), ny = size_t(d.N * k.OC * OH * OW);
    const Vec x = randv(nx, 33), w = randv(nw, 34), gy = randv(K * ny, 35);
    const Vec gy0 = block(gy, 0, ny);
    const std::string name = conv_name(k);
    // the convolution is linear: central differences are exact up to rounding
    Vec gx_num = numgrad([&](const Vec& v) { return dotv(conv_ref(v, w, nullptr, d, k.OC, k.p), gy0); }, x, 1e-3);
    Vec gw_num = numgrad([&](const Vec& v) { return dotv(conv_ref(x, v, nullptr, d, k.OC, k.p), gy0); }, w, 1e-3);
    expect_close(run_conv_bwd_data(gy0, w, d, k.OC, k.p, DType::f64), gx_num, 1e-9, name + " gx fd");
    expect_close(run_conv_bwd_filter(x, gy0, d, k.OC, k.p, DType::f64), gw_num, 1e-9, name + " gw fd");
    // also against the primitive forward itself
    Vec gx_num2 = numgrad([&](const Vec& v) { return dotv(run_conv(v, w, nullptr, d, k.OC, k.p, DType::f64), gy0); }, x, 1e-3);
    expect_close(run_conv_bwd_data(gy0, w, d, k.OC, k.p, DType::f64), gx_num2, 1e-9, name + " gx fd (primitive)");
    for (DType dt : kFloatTypes) {
      const double tol = dt == DType::f32 ? 1e-5 : 1e-12;
      expect_close(run_conv_bwd_data(gy0, w, d, k.OC, k.p, dt), gx_num, tol * 10, name + " gx " + dtype_name(dt));
      // K rows for the data gradient: a batch of K*N images
      Dims dk = d;
      dk.N = K * d.N;
      Vec all = run_conv_bwd_data(gy, w, dk, k.OC, k.p, dt);
      std::vector<Vec> single;
      for (int64_t j = 0; j < K; ++j) single.push_back(run_conv_bwd_data(block(gy, size_t(j), ny), w, d, k.OC, k.p, dt));
      expect_equal(all, concat(single), name + " gx K");
      // K rows for the filter gradient: folded into OC, gy (N, K*OC, OH, OW) -> gw (K*OC, ...)
      Vec folded(K * ny);
      for (int64_t n = 0; n < d.N; ++n)
        for (int64_t j = 0; j < K; ++j)
          for (size_t i = 0; i < size_t(k.OC * OH * OW); ++i)
            folded[size_t((n * K + j) * k.OC * OH * OW) + i] = gy[size_t(j) * ny + size_t(n * k.OC * OH * OW) + i];
      Vec gw_all = run_conv_bwd_filter(x, folded, d, K * k.OC, k.p, dt);
      for (int64_t j = 0; j < K; ++j)
        expect_close(block(gw_all, size_t(j), nw), run_conv_bwd_filter(x, block(gy, size_t(j), ny), d, k.OC, k.p, dt), tol,
                     name + " gw K");
    }
  }
}

TEST_CASE("conv2d_backward_filter sums many images in a fixed order") {
  // N > 16: several image groups are combined
  const Dims d{37, 2, 6, 5};
  ConvParams p;
  p.kh = 3; p.kw = 3; p.ph = 1; p.pw = 1;
  const int64_t OC = 3;
  const Vec x = randv(size_t(d.N * d.C * d.H * d.W), 36), gy = randv(size_t(d.N * OC * d.H * d.W), 37);
  Vec want(size_t(OC * d.C * 9), 0.0);
  for (size_t i = 0; i < want.size(); ++i) {
    Vec e(want.size(), 0.0);
    e[i] = 1;
    want[i] = dotv(conv_ref(x, e, nullptr, d, OC, p), gy);
  }
  expect_close(run_conv_bwd_filter(x, gy, d, OC, p, DType::f64), want, 1e-12, "gw N=37");
  expect_close(run_conv_bwd_filter(x, gy, d, OC, p, DType::f32), want, 1e-5, "gw N=37 f32");
}

TEST_CASE("conv2d rejects mismatched shapes and integer dtypes") {
  ConvParams p;
  p.kh = 3; p.kw = 3;
  Tensor x = Tensor::zeros({1, 2, 5, 5}), w = Tensor::zeros({4, 3, 3, 3}), y = Tensor::zeros({1, 4, 3, 3});
  CHECK_THROWS_AS(cpu().conv2d(x, w, Tensor(), p, y), Error);
  Tensor xi = Tensor::zeros({1, 2, 5, 5}, DType::i32), wi = Tensor::zeros({4, 2, 3, 3}, DType::i32),
         yi = Tensor::zeros({1, 4, 3, 3}, DType::i32);
  CHECK_THROWS_AS(cpu().conv2d(xi, wi, Tensor(), p, yi), Error);
}

// ---------------------------------------------------------------------------------------------
TEST_CASE("max_pool2d: values and indices, padding as -inf, backward") {
  struct Case { Dims d; PoolParams p; };
  const std::vector<Case> cases = {{{2, 3, 7, 6}, pool(3, 2, 2, 1, 1, 1)}, {{1, 2, 6, 5}, pool(2, 2, 2, 2, 0, 0)},
                                   {{2, 1, 5, 8}, pool(3, 3, 1, 2, 1, 0)}};
  for (const Case& c : cases) {
    const Dims d = c.d;
    const int64_t OH = c.p.out_h(d.H), OW = c.p.out_w(d.W), K = 3;
    const size_t nx = size_t(d.N * d.C * d.H * d.W), ny = size_t(d.N * d.C * OH * OW);
    Vec x = randv(nx, 40, -1, 1);
    for (size_t i = 0; i < nx; i += 3) x[i] = -5 - double(i);  // negative values next to the padding
    Vec yr;
    std::vector<int64_t> ir;
    max_pool_ref(x, d, c.p, yr, ir);
    for (DType dt : kFloatTypes) {
      Vec y;
      std::vector<int64_t> idx;
      run_max_pool(x, d, c.p, dt, y, idx);
      expect_close(y, yr, tol_for(dt), std::string("max_pool y ") + dtype_name(dt));
      CHECK(idx == ir);
    }
    // backward: gradient routed to the argmax; finite differences of the forward (distinct values)
    const Vec gy = randv(K * ny, 41);
    const Vec gy0 = block(gy, 0, ny);
    auto f = [&](const Vec& v) {
      Vec y;
      std::vector<int64_t> idx;
      run_max_pool(v, d, c.p, DType::f64, y, idx);
      return dotv(y, gy0);
    };
    expect_close(run_max_pool_bwd(gy0, ir, d, c.p, 1, DType::f64), numgrad(f, x), 1e-7, "max_pool backward fd");
    for (DType dt : kFloatTypes) {
      Vec all = run_max_pool_bwd(gy, ir, d, c.p, K, dt);
      std::vector<Vec> single;
      for (int64_t k = 0; k < K; ++k) single.push_back(run_max_pool_bwd(block(gy, size_t(k), ny), ir, d, c.p, 1, dt));
      expect_equal(all, concat(single), "max_pool backward K");
    }
  }
  // NaN propagates
  Vec x = {1, NAN, 3, 4};
  Vec y;
  std::vector<int64_t> idx;
  run_max_pool(x, {1, 1, 2, 2}, pool(2, 2, 2, 2, 0, 0), DType::f32, y, idx);
  CHECK(std::isnan(y[0]));
  CHECK(idx[0] == 1);
  // padding larger than half the kernel is rejected (PyTorch)
  Tensor ty = empty({1, 1, 3, 3}, DType::f32), ti = empty({1, 1, 3, 3}, DType::i64);
  CHECK_THROWS_AS(cpu().max_pool2d(Tensor::zeros({1, 1, 2, 2}), pool(2, 2, 1, 1, 2, 2), ty, ti), Error);
}

TEST_CASE("avg_pool2d: count_include_pad both ways, backward") {
  struct Case { Dims d; PoolParams p; };
  std::vector<Case> cases;
  for (bool inc : {true, false}) {
    cases.push_back({{2, 3, 7, 6}, pool(3, 2, 2, 1, 1, 1, inc)});
    cases.push_back({{1, 2, 6, 5}, pool(2, 2, 2, 2, 0, 0, inc)});
    cases.push_back({{2, 1, 8, 7}, pool(5, 3, 3, 2, 2, 1, inc)});  // windows past the padded edge
  }
  for (const Case& c : cases) {
    const Dims d = c.d;
    const size_t nx = size_t(d.N * d.C * d.H * d.W), ny = size_t(d.N * d.C * c.p.out_h(d.H) * c.p.out_w(d.W));
    const Vec x = randv(nx, 42);
    const std::string name = std::string("avg_pool count_include_pad=") + (c.p.count_include_pad ? "1" : "0");
    for (DType dt : kFloatTypes) expect_close(run_avg_pool(x, d, c.p, dt), avg_pool_ref(x, d, c.p), tol_for(dt), name);
    const Vec gy = randv(ny, 43);
    Vec num = numgrad([&](const Vec& v) { return dotv(avg_pool_ref(v, d, c.p), gy); }, x, 1e-3);
    expect_close(run_avg_pool_bwd(gy, d, c.p, DType::f64), num, 1e-9, name + " backward fd");
    Vec num2 = numgrad([&](const Vec& v) { return dotv(run_avg_pool(v, d, c.p, DType::f64), gy); }, x, 1e-3);
    expect_close(run_avg_pool_bwd(gy, d, c.p, DType::f32), num2, 1e-5, name + " backward f32");
  }
}

// ---------------------------------------------------------------------------------------------
TEST_CASE("embedding: lookup, out-of-range error, deterministic backward") {
  const int64_t V = 7, D = 5, K = 3;
  const std::vector<int64_t> idx = {3, 0, 6, 3, 3, 1, 0, 5, 3};  // repeats; rows 2 and 4 unused
  const int64_t n = int64_t(idx.size());
  const Vec w = randv(size_t(V * D), 50);
  Vec want;
  for (int64_t i : idx) want.insert(want.end(), w.begin() + i * D, w.begin() + (i + 1) * D);
  for (DType dt : kFloatTypes) expect_close(run_embedding(w, idx, V, D, dt), want, tol_for(dt), "embedding");
  try {
    run_embedding(w, {1, 7, 2}, V, D, DType::f32);
    FAIL("no exception for index 7 with V = 7");
  } catch (const Error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("7") != std::string::npos);
    CHECK(msg.find("index 7") != std::string::npos);
    CHECK(msg.find("of 7 rows") != std::string::npos);
  }
  CHECK_THROWS_AS(run_embedding(w, {-1}, V, D, DType::f64), Error);
  // backward: reference sum, finite differences (linear), K batching
  const Vec gy = randv(size_t(K * n * D), 51);
  const Vec gy0 = block(gy, 0, size_t(n * D));
  Vec ref(size_t(V * D), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t d = 0; d < D; ++d) ref[size_t(idx[size_t(i)] * D + d)] += gy0[size_t(i * D + d)];
  Vec num = numgrad([&](const Vec& v) { return dotv(run_embedding(v, idx, V, D, DType::f64), gy0); }, w, 1e-3);
  for (DType dt : kFloatTypes) {
    Vec got = run_embedding_bwd(gy0, idx, 1, V, D, dt);
    expect_close(got, ref, tol_for(dt), std::string("embedding_backward ") + dtype_name(dt));
    expect_close(got, num, dt == DType::f32 ? 1e-5 : 1e-9, "embedding_backward fd");
    Vec all = run_embedding_bwd(gy, idx, K, V, D, dt);
    std::vector<Vec> single;
    for (int64_t k = 0; k < K; ++k) single.push_back(run_embedding_bwd(block(gy, size_t(k), size_t(n * D)), idx, 1, V, D, dt));
    expect_equal(all, concat(single), "embedding_backward K");
  }
  // exact order: the sum over repeats is taken in increasing position order
  {
    const std::vector<int64_t> rep(5, 0);
    const Vec g = {1e8, 1, -1e8, 1, 0.5};  // f32: ((1e8 + 1) - 1e8) + 1 + 0.5 = 1.5 in that order
    Vec got = run_embedding_bwd(g, rep, 1, 1, 1, DType::f32);
    float s = 0;
    for (double v : g) s += float(v);
    CHECK(got[0] == double(s));
  }
}

TEST_CASE("dropout_mask follows the Philox stream") {
  const int64_t n = 1001;
  const uint64_t seed = 1234, offset = 40;
  for (DType dt : kFloatTypes)
    for (double p : {0.0, 0.25, 0.5, 1.0}) {
      Tensor m = empty({n}, dt);
      cpu().dropout_mask(m, p, seed, offset);
      Vec got = vals(m);
      Vec want(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i)
        want[size_t(i)] = p >= 1 ? 0.0 : (philox_uniform(seed, offset + uint64_t(i)) >= p ? 1.0 / (1.0 - p) : 0.0);
      expect_close(got, want, tol_for(dt), "dropout p=" + std::to_string(p));
      if (p == 0.5) {
        double mean = 0;
        for (double v : got) mean += v / double(n);
        CHECK(mean == doctest::Approx(1.0).epsilon(0.1));
      }
    }
  Tensor m = empty({4}, DType::f32);
  CHECK_THROWS_AS(cpu().dropout_mask(m, 1.5, 1, 0), Error);
}

// ---------------------------------------------------------------------------------------------
namespace {

// torch.optim.SGD, one parameter tensor, in double
struct SgdRef {
  double lr, mom, damp, wd;
  bool nesterov;
  Vec buf;
  void step(Vec& p, const Vec& g) {
    const bool first = buf.empty();
    if (first) buf.assign(p.size(), 0.0);
    for (size_t i = 0; i < p.size(); ++i) {
      double d = g[i] + wd * p[i];
      if (mom != 0) {
        buf[i] = first ? d : mom * buf[i] + (1 - damp) * d;
        d = nesterov ? d + mom * buf[i] : buf[i];
      }
      p[i] -= lr * d;
    }
  }
};

// torch.optim.Adam / AdamW
struct AdamRef {
  double lr, b1, b2, eps, wd;
  bool decoupled;
  Vec m, v;
  int64_t t = 0;
  void step(Vec& p, const Vec& grad) {
    if (m.empty()) { m.assign(p.size(), 0.0); v.assign(p.size(), 0.0); }
    ++t;
    for (size_t i = 0; i < p.size(); ++i) {
      double g = grad[i];
      if (decoupled) p[i] *= 1 - lr * wd;
      else g += wd * p[i];
      m[i] = b1 * m[i] + (1 - b1) * g;
      v[i] = b2 * v[i] + (1 - b2) * g * g;
      const double mhat = m[i] / (1 - std::pow(b1, double(t))), vhat = v[i] / (1 - std::pow(b2, double(t)));
      p[i] -= lr * mhat / (std::sqrt(vhat) + eps);
    }
  }
};

}  // namespace

TEST_CASE("sgd_update: hand-computed values and the PyTorch formula over 3 steps") {
  // p = 1, g = 0.5, lr = 0.1, momentum 0.9: buf 0.5, 0.95, 1.355; p 0.95, 0.855, 0.7195
  {
    Tensor p = Tensor::full({1}, 1.0, DType::f64), g = Tensor::full({1}, 0.5, DType::f64), b = Tensor::zeros({1}, DType::f64);
    const double want[3] = {0.95, 0.855, 0.7195};
    for (int s = 0; s < 3; ++s) {
      cpu().sgd_update(p, g, b, 0.1, 0.9, 0.0, 0.0, false, s == 0);
      CHECK(p.item() == doctest::Approx(want[s]).epsilon(1e-14));
    }
  }
  struct Cfg { double mom, damp, wd; bool nesterov; };
  const Cfg cfgs[] = {{0, 0, 0, false}, {0, 0, 0.01, false}, {0.9, 0, 0, false}, {0.9, 0.3, 0.05, false}, {0.8, 0, 0.02, true}};
  const int64_t n = 37;
  for (const Cfg& c : cfgs)
    for (DType dt : kFloatTypes) {
      Vec p = randv(size_t(n), 60), gs[3] = {randv(size_t(n), 61), randv(size_t(n), 62), randv(size_t(n), 63)};
      SgdRef ref{0.05, c.mom, c.damp, c.wd, c.nesterov, {}};
      Tensor tp = tens(p, {n}, dt), tb = c.mom != 0 ? empty({n}, dt) : Tensor();
      for (int s = 0; s < 3; ++s) {
        ref.step(p, gs[s]);
        cpu().sgd_update(tp, tens(gs[s], {n}, dt), tb, 0.05, c.mom, c.damp, c.wd, c.nesterov, s == 0);
      }
      expect_close(vals(tp), p, dt == DType::f32 ? 1e-6 : 1e-14, "sgd param");
      if (c.mom != 0) expect_close(vals(tb), ref.buf, dt == DType::f32 ? 1e-6 : 1e-14, "sgd momentum buffer");
    }
  Tensor p = Tensor::zeros({2}), g = Tensor::zeros({2}), b = Tensor::zeros({2});
  CHECK_THROWS_AS(cpu().sgd_update(p, g, b, 0.1, 0.9, 0.5, 0, true, true), Error);  // nesterov with dampening
}

TEST_CASE("adam_update: hand-computed values and the PyTorch Adam / AdamW formulas over 3 steps") {
  // constant gradient: m_hat = g, v_hat = g^2, every step moves by lr * g / (|g| + eps)
  {
    Tensor p = Tensor::full({1}, 1.0, DType::f64), g = Tensor::full({1}, 0.5, DType::f64);
    Tensor m = Tensor::zeros({1}, DType::f64), v = Tensor::zeros({1}, DType::f64);
    for (int s = 1; s <= 3; ++s) {
      cpu().adam_update(p, g, m, v, 0.1, 0.9, 0.999, 1e-8, 0.0, s, false);
      CHECK(p.item() == doctest::Approx(1.0 - s * 0.1 * 0.5 / (0.5 + 1e-8)).epsilon(1e-13));
    }
    // after step 1: m = 0.05, v = 0.00025 (then 0.095, 0.0004995 after step 2, ...)
    CHECK(m.item() == doctest::Approx(0.1355).epsilon(1e-14));
    CHECK(v.item() == doctest::Approx(0.25 * (1 - std::pow(0.999, 3))).epsilon(1e-13));
  }
  // AdamW, one step by hand: p = 2, g = -1, lr = 0.01, wd = 0.1: p = 2 * 0.999 = 1.998, then - 0.01 * (-1) / (1 + eps)
  {
    Tensor p = Tensor::full({1}, 2.0, DType::f64), g = Tensor::full({1}, -1.0, DType::f64);
    Tensor m = Tensor::zeros({1}, DType::f64), v = Tensor::zeros({1}, DType::f64);
    cpu().adam_update(p, g, m, v, 0.01, 0.9, 0.999, 1e-8, 0.1, 1, true);
    CHECK(p.item() == doctest::Approx(1.998 + 0.01 / (1 + 1e-8)).epsilon(1e-14));
  }
  const int64_t n = 29;
  for (bool decoupled : {false, true})
    for (double wd : {0.0, 0.05})
      for (DType dt : kFloatTypes) {
        Vec p = randv(size_t(n), 70), gs[3] = {randv(size_t(n), 71), randv(size_t(n), 72), randv(size_t(n), 73)};
        AdamRef ref{0.01, 0.9, 0.99, 1e-6, wd, decoupled, {}, {}};
        Tensor tp = tens(p, {n}, dt), tm = Tensor::zeros({n}, dt), tv = Tensor::zeros({n}, dt);
        for (int s = 0; s < 3; ++s) {
          ref.step(p, gs[s]);
          cpu().adam_update(tp, tens(gs[s], {n}, dt), tm, tv, 0.01, 0.9, 0.99, 1e-6, wd, s + 1, decoupled);
        }
        const double tol = dt == DType::f32 ? 1e-6 : 1e-13;
        const std::string name = std::string(decoupled ? "adamw" : "adam") + " wd=" + std::to_string(wd);
        expect_close(vals(tp), p, tol, name + " param");
        expect_close(vals(tm), ref.m, tol, name + " m");
        expect_close(vals(tv), ref.v, tol, name + " v");
      }
}

// ---------------------------------------------------------------------------------------------
TEST_CASE("nn primitives are bit-identical with 1 and 2 threads") {
  // sizes large enough that the parallel loops split into many chunks
  auto run_all = [](DType dt) {
    std::vector<Vec> out;
    const int64_t rows = 300, cols = 257, K = 2;
    const Vec x = randv(size_t(rows * cols), 80), gy = randv(size_t(K * rows * cols), 81);
    const Vec g = randv(size_t(cols), 82), b = randv(size_t(cols), 83);
    Vec y = run_softmax(x, rows, cols, false, dt);
    out.push_back(y);
    out.push_back(run_softmax_bwd(y, gy, rows, cols, K, false, dt));
    LnOut ln = run_layer_norm(x, &g, &b, rows, cols, 1e-5, dt);
    out.push_back(ln.y);
    GradOut lg = run_layer_norm_bwd(x, &g, ln, gy, rows, cols, K, dt);
    out.insert(out.end(), {lg.gx, lg.dg, lg.db});
    // batch norm: (N, C, S) = (30, 10, 257)
    const Vec bg = randv(10, 84), bb = randv(10, 85), rm(10, 0.0), rv(10, 1.0);
    BnOut bn = run_batch_norm(x, bg, bb, &rm, &rv, true, 0.1, 1e-5, 30, 10, 257, dt);
    out.insert(out.end(), {bn.y, bn.rm, bn.rv});
    GradOut bgr = run_batch_norm_bwd(x, bg, bn, gy, 30, 10, 257, K, true, dt);
    out.insert(out.end(), {bgr.gx, bgr.dg, bgr.db});
    // cross-entropy on (rows, cols)
    std::vector<int64_t> t(static_cast<size_t>(rows));
    for (int64_t i = 0; i < rows; ++i) t[size_t(i)] = (i * 7) % cols;
    Vec lse;
    out.push_back(run_ce(x, t, rows, cols, -100, 0.1, dt, &lse));
    out.push_back(run_ce_bwd(x, t, lse, randv(size_t(K * rows), 86), rows, cols, K, -100, 0.1, dt));
    // convolution on 40 images
    ConvParams p;
    p.kh = 3; p.kw = 3; p.ph = 1; p.pw = 1; p.sw = 2;
    const Dims d{40, 3, 12, 11};
    const int64_t OC = 5;
    const Vec cx = randv(size_t(d.N * d.C * d.H * d.W), 87), cw = randv(size_t(OC * d.C * 9), 88), cb = randv(size_t(OC), 89);
    const Vec cgy = randv(size_t(d.N * OC * p.out_h(d.H) * p.out_w(d.W)), 90);
    out.push_back(run_conv(cx, cw, &cb, d, OC, p, dt));
    out.push_back(run_conv_bwd_data(cgy, cw, d, OC, p, dt));
    out.push_back(run_conv_bwd_filter(cx, cgy, d, OC, p, dt));
    // pooling
    Vec my;
    std::vector<int64_t> mi;
    const PoolParams pp = pool(3, 3, 2, 2, 1, 1);
    run_max_pool(cx, d, pp, dt, my, mi);
    out.push_back(my);
    out.push_back(run_max_pool_bwd(randv(my.size(), 91), mi, d, pp, 1, dt));
    out.push_back(run_avg_pool(cx, d, pp, dt));
    out.push_back(run_avg_pool_bwd(randv(my.size(), 92), d, pp, dt));
    // embedding with many repeats
    std::vector<int64_t> idx(5000);
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = int64_t((i * 31) % 97);
    out.push_back(run_embedding_bwd(randv(K * 5000 * 16, 93), idx, K, 97, 16, dt));
    return out;
  };
  for (DType dt : kFloatTypes) {
    set_num_threads(1);
    auto one = run_all(dt);
    set_num_threads(2);
    auto two = run_all(dt);
    set_num_threads(0);
    REQUIRE(one.size() == two.size());
    for (size_t i = 0; i < one.size(); ++i) expect_equal(one[i], two[i], "output " + std::to_string(i) + " " + dtype_name(dt));
  }
}

TEST_CASE("nn primitives reject integer dtypes") {
  Tensor xi = Tensor::zeros({2, 3}, DType::i32), yi = Tensor::zeros({2, 3}, DType::i32);
  CHECK_THROWS_AS(cpu().softmax(xi, 2, 3, false, yi), Error);
  Tensor mi = Tensor::zeros({2}, DType::i32), ri = Tensor::zeros({2}, DType::i32);
  CHECK_THROWS_AS(cpu().layer_norm(xi, Tensor(), Tensor(), 2, 3, 1e-5, yi, mi, ri), Error);
  Tensor p = Tensor::zeros({3}, DType::i64), g = Tensor::zeros({3}, DType::i64), none;
  CHECK_THROWS_AS(cpu().sgd_update(p, g, none, 0.1, 0, 0, 0, false, true), Error);
  Tensor mask = Tensor::zeros({3}, DType::u8);
  CHECK_THROWS_AS(cpu().dropout_mask(mask, 0.5, 1, 0), Error);
}
