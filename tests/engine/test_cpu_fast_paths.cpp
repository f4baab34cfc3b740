// tests/engine/test_cpu_fast_paths.cpp: the CPU backend's fast paths against plain references
// written here: max pooling's vectorised interior columns (rows wider than one 64-column block,
// ties, several NaNs, padding, strides 1-3), the inner-dimension split of small GEMMs with a long
// inner dimension (the Gramian shape), the block-wise float64 Gramian of a float32 Jacobian, and
// the reuse of large freed blocks. Each is also checked bit-identical with 1 and 2 threads.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "engine/backend.h"
#include "engine/ops.h"
#include "engine/tensor.h"
#include "engine/threading.h"
#include "mtl/per_task_grads.h"

using namespace polyhead;

namespace {

using Vec = std::vector<double>;

Backend& cpu() { return backend_for(Device::cpu()); }

Vec randv(size_t n, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::uniform_real_distribution<double> d(-1.0, 1.0);
  Vec v(n);
  for (auto& x : v) x = d(g);
  return v;
}

// Max pooling by its definition: the window in row-major order, padding excluded, a candidate
// replaces the best when it is larger or NaN.
void max_pool_ref(const Vec& x, int64_t planes, int64_t H, int64_t W, const PoolParams& p, Vec& y,
                  std::vector<int64_t>& idx) {
  const int64_t OH = p.out_h(H), OW = p.out_w(W);
  y.assign(size_t(planes * OH * OW), 0.0);
  idx.assign(y.size(), 0);
  for (int64_t q = 0; q < planes; ++q)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t h0 = std::max<int64_t>(oh * p.sh - p.ph, 0), h1 = std::min<int64_t>(oh * p.sh - p.ph + p.kh, H);
        const int64_t w0 = std::max<int64_t>(ow * p.sw - p.pw, 0), w1 = std::min<int64_t>(ow * p.sw - p.pw + p.kw, W);
        double best = -std::numeric_limits<double>::infinity();
        int64_t bi = h0 * W + w0;
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) {
            const double v = x[size_t((q * H + ih) * W + iw)];
            if (v > best || std::isnan(v)) { best = v; bi = ih * W + iw; }
          }
        y[size_t((q * OH + oh) * OW + ow)] = best;
        idx[size_t((q * OH + oh) * OW + ow)] = bi;
      }
}

PoolParams pool(int kh, int kw, int sh, int sw, int ph, int pw) {
  PoolParams p;
  p.kh = kh; p.kw = kw; p.sh = sh; p.sw = sw; p.ph = ph; p.pw = pw;
  return p;
}

}  // namespace

TEST_CASE("cpu max_pool2d: wide rows, ties and NaNs match the definition exactly") {
  const int64_t planes = 3, H = 7, W = 203;  // interior columns span several 64-column blocks
  Vec x = randv(size_t(planes * H * W), 7);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::round(x[i] * 3.0);  // many ties among 7 values
  for (size_t i = 5; i < x.size(); i += 97) x[i] = std::numeric_limits<double>::quiet_NaN();
  x[size_t(W + 70)] = x[size_t(W + 71)] = std::numeric_limits<double>::quiet_NaN();  // two NaNs in one window
  for (const PoolParams& p : {pool(2, 2, 2, 2, 0, 0), pool(3, 3, 1, 1, 1, 1), pool(3, 4, 2, 3, 1, 2), pool(2, 3, 1, 2, 0, 1)}) {
    Vec yr;
    std::vector<int64_t> ir;
    max_pool_ref(x, planes, H, W, p, yr, ir);
    for (DType dt : {DType::f32, DType::f64}) {
      const int64_t OH = p.out_h(H), OW = p.out_w(W);
      std::vector<Vec> ys;
      std::vector<std::vector<int64_t>> is;
      for (int threads : {1, 2}) {
        set_num_threads(threads);
        Tensor y = Tensor::empty({1, planes, OH, OW}, dt), idx = Tensor::empty({1, planes, OH, OW}, DType::i64);
        cpu().max_pool2d(Tensor::from_vector(x, {1, planes, H, W}).to(dt), p, y, idx);
        ys.push_back(y.to_vector<double>());
        is.push_back(idx.to_vector<int64_t>());
      }
      set_num_threads(0);
      CHECK(is[0] == ir);
      CHECK(is[1] == ir);
      bool same = true;
      for (size_t i = 0; i < yr.size(); ++i) {
        const bool nan = std::isnan(yr[i]);
        for (const Vec& y : ys) same = same && (nan ? std::isnan(y[i]) : y[i] == yr[i]);
      }
      CHECK(same);
    }
  }
}

TEST_CASE("cpu gemm: small products over a long inner dimension (split in chunks) match a double reference") {
  const int64_t M = 3, N = 4, K = 100003;  // 4 chunks, the last one short
  const Vec a = randv(size_t(M * K), 11), b = randv(size_t(K * N), 12), c0 = randv(size_t(M * N), 13);
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (DType dt : {DType::f32, DType::f64}) {
        // A as stored: (M, K) or, transposed, (K, M); B: (K, N) or (N, K)
        Vec as(a.size()), bs(b.size());
        for (int64_t i = 0; i < M; ++i)
          for (int64_t k = 0; k < K; ++k) as[size_t(ta ? k * M + i : i * K + k)] = a[size_t(i * K + k)];
        for (int64_t k = 0; k < K; ++k)
          for (int64_t j = 0; j < N; ++j) bs[size_t(tb ? j * K + k : k * N + j)] = b[size_t(k * N + j)];
        Tensor A = Tensor::from_vector(as, {int64_t(as.size())}).to(dt);
        Tensor B = Tensor::from_vector(bs, {int64_t(bs.size())}).to(dt);
        std::vector<Vec> outs;
        for (int threads : {1, 2}) {
          set_num_threads(threads);
          Tensor C = Tensor::from_vector(c0, {M, N}).to(dt);
          cpu().gemm(ta, tb, M, N, K, 0.5, A, ta ? M : K, 0, B, tb ? K : N, 0, 2.0, C, N, 0, 1);
          outs.push_back(C.to_vector<double>());
        }
        set_num_threads(0);
        CHECK(outs[0] == outs[1]);
        const Vec Ar = A.to_vector<double>(), Br = B.to_vector<double>();
        for (int64_t i = 0; i < M; ++i)
          for (int64_t j = 0; j < N; ++j) {
            double s = 0;
            for (int64_t k = 0; k < K; ++k)
              s += Ar[size_t(ta ? k * M + i : i * K + k)] * Br[size_t(tb ? j * K + k : k * N + j)];
            const double want = 0.5 * s + 2.0 * c0[size_t(i * N + j)];
            CHECK(outs[0][size_t(i * N + j)] == doctest::Approx(want).epsilon(dt == DType::f32 ? 1e-4 : 1e-12));
          }
      }
  // beta = 0 ignores what C held, NaN included
  Tensor A = Tensor::from_vector(a, {M, K}), B = Tensor::from_vector(b, {K, N});
  Tensor C = Tensor::full({M, N}, std::numeric_limits<double>::quiet_NaN(), DType::f64);
  cpu().gemm(false, false, M, N, K, 1.0, A.to(DType::f64), K, 0, B.to(DType::f64), N, 0, 0.0, C, N, 0, 1);
  CHECK(ops::all_finite(C));
}

TEST_CASE("gramian of a float32 Jacobian (column blocks, float64 sums) matches the double reference") {
  const int64_t K = 3, P = 1000003;  // several column blocks, the last one short
  const Vec g = randv(size_t(K * P), 21);
  Tensor G = Tensor::from_vector(g, {K, P}).to(DType::f32);
  const Vec gf = G.to_vector<double>();  // the float32 values, exactly
  mtl::Mat M = mtl::gramian(G);
  REQUIRE(M.rows == K);
  REQUIRE(M.cols == K);
  for (int i = 0; i < K; ++i)
    for (int j = 0; j < K; ++j) {
      long double s = 0;
      for (int64_t p = 0; p < P; ++p) s += (long double)gf[size_t(i * P + p)] * gf[size_t(j * P + p)];
      CHECK(M(i, j) == doctest::Approx(double(s)).epsilon(1e-12));
    }
  CHECK(M(0, 1) == M(1, 0));
  set_num_threads(1);
  mtl::Mat M1 = mtl::gramian(G);
  set_num_threads(2);
  mtl::Mat M2 = mtl::gramian(G);
  set_num_threads(0);
  CHECK(M1.a == M2.a);
}

TEST_CASE("cpu allocate: freed large blocks are reused with fresh contents") {
  const int64_t n = (int64_t(24) << 20) / 4;  // 24 MiB of f32, above the reuse size
  for (int round = 0; round < 3; ++round) {
    Tensor t = Tensor::full({n}, double(round + 1), DType::f32);
    Tensor u = Tensor::full({n}, -double(round + 1), DType::f32);  // a second block alive at once
    CHECK(t.to_vector<float>()[size_t(n - 1)] == float(round + 1));
    CHECK(u.to_vector<float>()[0] == -float(round + 1));
    CHECK(ops::sum(t).item() == doctest::Approx(double(n) * (round + 1)));
  }
}
