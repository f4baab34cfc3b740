// tests/mtl/test_properties.cpp: torchjd-style property tests of the solver-family methods
// (tests/unit/aggregation/_asserts.py of torchjd), on random task-gradient matrices G drawn with a
// fixed std::mt19937 seed:
//   - non-conflicting: G d >= 0 (UPGrad, DualProj, exact MGDA, ConFIG with full row rank);
//   - permutation invariance: permuting the rows of G leaves d unchanged;
//   - linearity under scaling: d(a G) = a d(G), and torchjd's
//     A(diag(a c1 + b c2) G) = a A(diag(c1) G) + b A(diag(c2) G) for UPGrad and ConFIG;
//   - structure: finite d (and weights) for G scaled by 1e-5 .. 1e5 and for rank-deficient G
//     (duplicate rows, a zero row, more tasks than parameters).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "mtl/linalg.h"
#include "mtl/method.h"

using namespace polyhead::mtl;
using polyhead::mtl::linalg::Vec;

namespace {

struct Config {
  std::string name;
  Options opts;
  std::string label() const {
    std::string s = name;
    for (const auto& [k, v] : opts.items()) s += " " + k + "=" + v;
    return s;
  }
};

// Every solver-family method and convention.
std::vector<Config> all_configs() {
  return {{"mgda", {{"solver", "libmtl"}}},
          {"mgda", {{"solver", "torchjd"}}},
          {"mgda", {{"solver", "exact"}}},
          {"mgda", {{"solver", "exact"}, {"gn", "loss"}}},
          {"cagrad", {}},
          {"cagrad", {{"scale", "torchjd"}}},
          {"nash_mtl", {}},
          {"fairgrad", {}},
          {"fairgrad", {{"alpha", "2"}}},
          {"aligned_mtl", {}},
          {"aligned_mtl", {{"scale", "torchjd"}}},
          {"upgrad", {}},
          {"dualproj", {}},
          {"config", {}},
          {"imtl_g", {}}};
}

Mat random_G(std::mt19937& rng, int K, int P, double scale = 1.0) {
  std::normal_distribution<double> N(0.0, 1.0);
  Mat G(K, P);
  for (double& v : G.a) v = scale * N(rng);
  return G;
}

// The golden files' "conflict" regime: centred simplex directions (K >= 3) with 10% noise and
// norms 0.5..2, or for K = 2 a row and minus a noisy copy of it.
Mat conflict_G(std::mt19937& rng, int K, int P) {
  std::normal_distribution<double> N(0.0, 1.0);
  std::uniform_real_distribution<double> U(0.5, 2.0);
  Mat B = random_G(rng, K, P);
  Mat G(K, P);
  if (K == 2) {
    for (int p = 0; p < P; ++p) {
      G(0, p) = B(0, p);
      G(1, p) = -(B(0, p) + 0.25 * N(rng)) * 0.7;
    }
    return G;
  }
  for (int p = 0; p < P; ++p) {
    double m = 0;
    for (int k = 0; k < K; ++k) m += B(k, p) / K;
    for (int k = 0; k < K; ++k) G(k, p) = B(k, p) - m + 0.1 * N(rng);
  }
  for (int k = 0; k < K; ++k) {
    double n = linalg::norm2(G.row(k)), s = U(rng);
    for (int p = 0; p < P; ++p) G(k, p) *= s / n;
  }
  return G;
}

struct Out {
  Vec d, w;
};

Out aggregate(const Config& c, const Mat& G, const Vec& L = {}) {
  auto m = make_method(c.name, G.rows, c.opts);
  Mat M = linalg::gram(G);
  StepInput in;
  in.K = G.rows;
  in.G = &G;
  in.M = &M;
  in.L = L.empty() ? Vec(G.rows, 1.0) : L;
  StepOutput o = m->step(in);
  Out r;
  r.w = o.w;
  r.d = o.d.empty() ? linalg::matTvec(G, o.w) : o.d;
  return r;
}

double max_abs(const Vec& v) { return linalg::norm_inf(v); }

double max_diff(const Vec& a, const Vec& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

Mat scaled(const Mat& G, double a) {
  Mat S = G;
  for (double& v : S.a) v *= a;
  return S;
}

Mat row_scaled(const Mat& G, const Vec& c) {
  Mat S = G;
  for (int k = 0; k < G.rows; ++k)
    for (int p = 0; p < G.cols; ++p) S(k, p) *= c[k];
  return S;
}

// The test matrices: gaussian and conflicting, K = 2..6, P from K to 3K (full row rank).
std::vector<Mat> full_rank_cases(unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<Mat> out;
  for (int K = 2; K <= 6; ++K)
    for (int P : {K, K + 3, 3 * K}) {
      out.push_back(random_G(rng, K, P));
      out.push_back(conflict_G(rng, K, P));
    }
  return out;
}

}  // namespace

TEST_CASE("properties: non-conflicting aggregators give G d >= 0") {
  for (const Mat& G : full_rank_cases(1234)) {
    const int K = G.rows;
    Mat M = linalg::gram(G);
    const double tr = linalg::trace(M);
    CAPTURE(K);
    CAPTURE(G.cols);
    // UPGrad / DualProj with the default reg_eps: (M w)_k >= -reg_eps tr(M) w_k by the projection's
    // KKT conditions on M / tr(M) + reg_eps I; with reg_eps = 0: G d >= 0.
    for (const char* name : {"upgrad", "dualproj"}) {
      CAPTURE(name);
      Out o = aggregate({name, {}}, G);
      Vec Gd = linalg::matvec(G, o.d);
      for (int k = 0; k < K; ++k) {
        CHECK(o.w[k] >= 1.0 / K - 1e-15);
        CHECK(Gd[k] >= -1e-4 * tr * o.w[k] - 1e-12 * tr);
      }
      Out o0 = aggregate({name, {{"reg_eps", "0"}}}, G);
      Vec Gd0 = linalg::matvec(G, o0.d);
      for (int k = 0; k < K; ++k) CHECK(Gd0[k] >= -1e-11 * tr);
    }
    // exact MGDA: g_k . d >= |d|^2
    {
      Out o = aggregate({"mgda", {{"solver", "exact"}}}, G);
      Vec Gd = linalg::matvec(G, o.d);
      double dd = linalg::dot(o.d, o.d);
      for (int k = 0; k < K; ++k) CHECK(Gd[k] >= dd - 1e-13 * tr);
    }
    // ConFIG with full row rank: every u_k . d equal and positive
    {
      Out o = aggregate({"config", {}}, G);
      Vec Gd = linalg::matvec(G, o.d);
      for (int k = 0; k < K; ++k) CHECK(Gd[k] > 0.0);
    }
  }
}

TEST_CASE("properties: permutation invariance of d") {
  std::mt19937 prng(77);
  const std::vector<Config> configs{{"mgda", {{"solver", "exact"}}},
                                    {"upgrad", {}},
                                    {"dualproj", {}},
                                    {"config", {}},
                                    {"imtl_g", {}},
                                    {"aligned_mtl", {}},
                                    {"aligned_mtl", {{"scale", "torchjd"}}},
                                    {"cagrad", {}},
                                    {"cagrad", {{"scale", "torchjd"}}},
                                    {"fairgrad", {}},
                                    {"nash_mtl", {{"max_norm", "0"}}}};
  for (const Mat& G : full_rank_cases(99)) {
    const int K = G.rows;
    std::vector<int> perm(K);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), prng);
    if (std::is_sorted(perm.begin(), perm.end())) std::swap(perm[0], perm[K - 1]);
    Mat Gp(K, G.cols);
    for (int k = 0; k < K; ++k)
      for (int p = 0; p < G.cols; ++p) Gp(k, p) = G(perm[k], p);
    for (const Config& c : configs) {
      CAPTURE(c.label());
      CAPTURE(K);
      CAPTURE(G.cols);
      Out a = aggregate(c, G), b = aggregate(c, Gp);
      const double tol = (c.name == "cagrad" ? 1e-8 : 1e-10) * std::max(max_abs(a.d), 1e-300);
      CHECK(max_diff(a.d, b.d) <= tol);
      if (!a.w.empty())  // the weights permute along
        for (int k = 0; k < K; ++k)
          CHECK(std::fabs(b.w[k] - a.w[perm[k]]) <= (c.name == "cagrad" ? 1e-7 : 1e-9) * std::max(max_abs(a.w), 1e-300));
    }
  }
}

TEST_CASE("properties: linearity under scaling") {
  std::vector<Config> linear{{"mgda", {{"solver", "exact"}}},
                             {"upgrad", {}},
                             {"dualproj", {}},
                             {"config", {}},
                             {"imtl_g", {}},
                             {"aligned_mtl", {}},
                             {"aligned_mtl", {{"scale", "torchjd"}}},
                             {"cagrad", {{"scale", "torchjd"}}}};
  const auto infos = list_methods();
  if (std::any_of(infos.begin(), infos.end(), [](const MethodInfo& i) { return i.name == "mean"; }))
    linear.push_back({"mean", {}});
  for (const Mat& G : full_rank_cases(555)) {
    for (const Config& c : linear) {
      CAPTURE(c.label());
      CAPTURE(G.rows);
      CAPTURE(G.cols);
      Out base = aggregate(c, G);
      const double sc = std::max(max_abs(base.d), 1e-300);
      for (double a : {1e-2, 0.5, 3.0, 1e3, -2.0}) {
        CAPTURE(a);
        Out o = aggregate(c, scaled(G, a));
        Vec ad = base.d;
        for (double& v : ad) v *= a;
        double tol = (c.name == "cagrad" ? 1e-7 : 1e-10) * std::fabs(a) * sc;
        CHECK(max_diff(o.d, ad) <= tol);
      }
    }
  }
  // torchjd's assert_linear_under_scaling for UPGrad (exact without the reg_eps ridge) and ConFIG:
  // A(diag(a c1 + b c2) G) = a A(diag(c1) G) + b A(diag(c2) G), c1, c2 > 0, a, b > 0.
  std::mt19937 rng(8);
  std::uniform_real_distribution<double> U(0.1, 3.0);
  for (const Mat& G : full_rank_cases(4321)) {
    const int K = G.rows;
    Vec c1(K), c2(K), c12(K);
    for (int k = 0; k < K; ++k) c1[k] = U(rng), c2[k] = U(rng);
    const double a = U(rng), b = U(rng);
    for (int k = 0; k < K; ++k) c12[k] = a * c1[k] + b * c2[k];
    for (const Config& c : std::vector<Config>{{"upgrad", {{"reg_eps", "0"}}}, {"config", {}}}) {
      CAPTURE(c.label());
      CAPTURE(K);
      Out o12 = aggregate(c, row_scaled(G, c12));
      Out o1 = aggregate(c, row_scaled(G, c1));
      Out o2 = aggregate(c, row_scaled(G, c2));
      Vec lin(o12.d.size());
      for (size_t p = 0; p < lin.size(); ++p) lin[p] = a * o1.d[p] + b * o2.d[p];
      CHECK(max_diff(o12.d, lin) <= 1e-9 * std::max(max_abs(o12.d), 1e-300));
    }
  }
}

TEST_CASE("properties: non-degenerate output of UPGrad (strong stationarity)") {
  // d = 0 only if some w > 0 gives G^T w = 0; random full-rank G never does.
  for (const Mat& G : full_rank_cases(2468)) {
    Out o = aggregate({"upgrad", {}}, G);
    CHECK(linalg::norm2(o.d) > 1e-6 * std::sqrt(linalg::trace(linalg::gram(G))));
  }
}

TEST_CASE("properties: finite output for scaled and rank-deficient matrices") {
  std::mt19937 rng(13579);
  std::vector<std::pair<std::string, Mat>> cases;
  for (double s : {1e-5, 1e-3, 1.0, 1e3, 1e5}) {
    cases.push_back({"gaussian x" + std::to_string(s), random_G(rng, 3, 7, s)});
    cases.push_back({"conflict x" + std::to_string(s), scaled(conflict_G(rng, 4, 6), s)});
  }
  {
    Mat D = random_G(rng, 4, 6);
    for (int p = 0; p < 6; ++p) D(3, p) = D(1, p);
    cases.push_back({"duplicate rows", D});
    Mat D2 = random_G(rng, 2, 5);
    for (int p = 0; p < 5; ++p) D2(1, p) = D2(0, p);
    cases.push_back({"two identical rows", D2});
  }
  {
    Mat Z = random_G(rng, 3, 6);
    for (int p = 0; p < 6; ++p) Z(2, p) = 0.0;
    cases.push_back({"zero row", Z});
    Mat Z2 = random_G(rng, 2, 4);
    for (int p = 0; p < 4; ++p) Z2(0, p) = 0.0;
    cases.push_back({"zero row K=2", Z2});
  }
  cases.push_back({"K > P", random_G(rng, 6, 3)});
  {
    Mat O = random_G(rng, 2, 4);
    for (int p = 0; p < 4; ++p) O(1, p) = -O(0, p);
    cases.push_back({"opposite rows", O});
  }
  cases.push_back({"one row x1000", [&] {
                     Mat S = random_G(rng, 3, 8);
                     for (int p = 0; p < 8; ++p) S(1, p) *= 1000.0;
                     return S;
                   }()});
  for (const auto& [label, G] : cases)
    for (const Config& c : all_configs()) {
      CAPTURE(label);
      CAPTURE(c.label());
      Vec L(G.rows);
      for (int k = 0; k < G.rows; ++k) L[k] = 0.5 + 0.3 * k;
      Out o;
      REQUIRE_NOTHROW(o = aggregate(c, G, L));
      CHECK(linalg::all_finite(o.d));
      CHECK(linalg::all_finite(o.w));
      CHECK(o.d.size() == size_t(G.cols));
    }
}
