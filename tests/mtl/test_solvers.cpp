// tests/mtl/test_solvers.cpp: the solver family of MTL methods (MGDA, CAGrad, Nash-MTL, FairGrad,
// Aligned-MTL, UPGrad, DualProj, ConFIG, IMTL-G) and their float64 helpers (mtl/linalg.h,
// mtl/solvers/*), on hand-computed / closed-form cases and the fixed values of the spec
// (shared/specs/mtl-methods.md section 9: torchjd's unit-test values and a numpy transcription).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "mtl/linalg.h"
#include "mtl/method.h"
#include "mtl/methods/cagrad.h"
#include "mtl/methods/fairgrad.h"
#include "mtl/solvers/box_qp.h"
#include "mtl/solvers/cagrad_dual.h"
#include "mtl/solvers/fairgrad_solve.h"
#include "mtl/solvers/min_norm.h"
#include "mtl/solvers/nash.h"

using namespace polyhead::mtl;
using polyhead::mtl::linalg::Vec;

namespace {

Mat from_rows(std::initializer_list<std::initializer_list<double>> rows) {
  int r = int(rows.size()), c = int(rows.begin()->size());
  Mat m(r, c);
  int i = 0;
  for (const auto& row : rows) {
    int j = 0;
    for (double v : row) m(i, j++) = v;
    ++i;
  }
  return m;
}

// J_base and J3 of the spec, section 9.
Mat j_base() { return from_rows({{-4, 1, 1}, {6, 1, 1}}); }
Mat j3() {
  return from_rows({{0.1257, -0.1321, 0.6404, 0.1049, -0.5357},
                    {0.173, 1.5022, -0.0136, -0.8611, -0.4619},
                    {-0.6233, 0.0413, -2.325, -0.2188, -1.2459}});
}

Mat random_matrix(std::mt19937& rng, int r, int c, double scale = 1.0) {
  std::normal_distribution<double> N(0.0, 1.0);
  Mat m(r, c);
  for (double& v : m.a) v = scale * N(rng);
  return m;
}

struct Run {
  StepOutput out;
  Vec d;
};

// Runs a method on G (its Gramian and, when asked, G itself and the losses), returns d too.
Run run(Method& m, const Mat& G, const Vec& L = {}) {
  Mat M = linalg::gram(G);
  StepInput in;
  in.K = G.rows;
  in.G = &G;
  in.M = &M;
  in.L = L.empty() ? Vec(G.rows, 1.0) : L;
  Run r;
  r.out = m.step(in);
  if (!r.out.d.empty()) {
    r.d = r.out.d;
  } else {
    r.d = linalg::matTvec(G, r.out.w);
  }
  return r;
}

Run run(const std::string& name, const Mat& G, const Options& o = {}, const Vec& L = {}) {
  auto m = make_method(name, G.rows, o);
  return run(*m, G, L);
}

void check_vec(const Vec& x, std::initializer_list<double> ref, double tol) {
  REQUIRE(x.size() == ref.size());
  size_t i = 0;
  for (double r : ref) {
    CHECK_MESSAGE(std::fabs(x[i] - r) <= tol, "entry " << i << ": " << x[i] << " vs " << r << " (tol " << tol << ")");
    ++i;
  }
}

double max_abs_diff(const Vec& a, const Vec& b) {
  double m = 0.0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

}  // namespace

// ---------------------------------------------------------------- linalg

TEST_CASE("linalg: symmetric Jacobi eigen solver on known matrices") {
  SUBCASE("2 x 2") {
    auto e = linalg::sym_eig(from_rows({{2, 1}, {1, 2}}));
    CHECK(e.values[0] == doctest::Approx(3.0).epsilon(1e-15));
    CHECK(e.values[1] == doctest::Approx(1.0).epsilon(1e-15));
    CHECK(std::fabs(std::fabs(e.vectors(0, 0)) - std::sqrt(0.5)) < 1e-15);
    CHECK(e.vectors(0, 0) * e.vectors(1, 0) > 0);  // (1, 1) direction for 3
  }
  SUBCASE("Hilbert 4 x 4: the smallest eigenvalue to high relative accuracy") {
    Mat H(4, 4);
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 4; ++j) H(i, j) = 1.0 / (i + j + 1);
    auto e = linalg::sym_eig(H);
    CHECK(e.values[0] == doctest::Approx(1.500214280059243).epsilon(1e-13));
    CHECK(e.values[1] == doctest::Approx(0.1691412202214500).epsilon(1e-12));
    CHECK(e.values[2] == doctest::Approx(0.006738273605760748).epsilon(1e-11));
    CHECK(e.values[3] == doctest::Approx(9.670230402258689e-05).epsilon(1e-10));
  }
  SUBCASE("random symmetric 7 x 7: V diag(l) V^T = A, V orthogonal, sorted") {
    std::mt19937 rng(7);
    Mat B = random_matrix(rng, 7, 7);
    Mat A = linalg::symmetrize(B);
    auto e = linalg::sym_eig(A);
    for (int j = 0; j + 1 < 7; ++j) CHECK(e.values[j] >= e.values[j + 1]);
    for (int i = 0; i < 7; ++i)
      for (int j = 0; j < 7; ++j) {
        double r = 0.0, o = 0.0;
        for (int k = 0; k < 7; ++k) {
          r += e.vectors(i, k) * e.values[k] * e.vectors(j, k);
          o += e.vectors(k, i) * e.vectors(k, j);
        }
        CHECK(std::fabs(r - A(i, j)) < 1e-13);
        CHECK(std::fabs(o - (i == j ? 1.0 : 0.0)) < 1e-13);
      }
  }
  SUBCASE("rank-deficient Gramian: the null eigenvalues are at rounding level") {
    Mat G = from_rows({{1, 2, 3}, {1, 2, 3}, {0, 1, 0}, {2, 5, 6}});  // rank 2
    auto e = linalg::sym_eig(linalg::gram(G));
    CHECK(e.values[1] > 0.1);
    CHECK(std::fabs(e.values[2]) < 1e-13 * e.values[0]);
    CHECK(std::fabs(e.values[3]) < 1e-13 * e.values[0]);
  }
  CHECK_THROWS_AS(linalg::sym_eig(Mat(2, 3)), polyhead::Error);
}

TEST_CASE("linalg: Cholesky and LU solves, pseudo-inverses, SVD") {
  std::mt19937 rng(3);
  Mat B = random_matrix(rng, 5, 5);
  Mat A = linalg::gram(B);
  for (int i = 0; i < 5; ++i) A(i, i) += 0.5;
  Vec b{1, -2, 3, 0.5, -1};
  Mat L;
  REQUIRE(linalg::cholesky(A, L));
  Vec x = linalg::cholesky_solve(L, b);
  Vec Ax = linalg::matvec(A, x);
  CHECK(max_abs_diff(Ax, b) < 1e-12);
  Vec y;
  REQUIRE(linalg::lu_solve(B, b, y));
  CHECK(max_abs_diff(linalg::matvec(B, y), b) < 1e-12);
  CHECK_FALSE(linalg::lu_solve(from_rows({{1, 2}, {2, 4}}), Vec{1, 1}, y));
  CHECK_FALSE(linalg::cholesky(from_rows({{1, 2}, {2, 1}}), L));

  // Penrose conditions of pinv_sym on a rank-2 PSD matrix and of pinv on a 3 x 5 matrix.
  auto penrose = [](const Mat& A, const Mat& P) {
    Mat APA = linalg::matmul(linalg::matmul(A, P), A);
    Mat PAP = linalg::matmul(linalg::matmul(P, A), P);
    Mat AP = linalg::matmul(A, P), PA = linalg::matmul(P, A);
    double s = linalg::max_abs(A), sp = linalg::max_abs(P);
    for (size_t i = 0; i < APA.a.size(); ++i) CHECK(std::fabs(APA.a[i] - A.a[i]) < 1e-12 * s);
    for (size_t i = 0; i < PAP.a.size(); ++i) CHECK(std::fabs(PAP.a[i] - P.a[i]) < 1e-12 * sp);
    Mat APt = linalg::transpose(AP), PAt = linalg::transpose(PA);
    for (size_t i = 0; i < AP.a.size(); ++i) CHECK(std::fabs(AP.a[i] - APt.a[i]) < 1e-12);
    for (size_t i = 0; i < PA.a.size(); ++i) CHECK(std::fabs(PA.a[i] - PAt.a[i]) < 1e-12);
  };
  Mat R2 = linalg::gram(from_rows({{1, 2, 3}, {1, 2, 3}, {0, 1, 0}}));
  penrose(R2, linalg::pinv_sym(R2));
  Mat J = j3();
  penrose(J, linalg::pinv(J));
  auto s = linalg::svd_jacobi(linalg::transpose(J));
  // singular values of J = square roots of the eigenvalues of J J^T
  auto e = linalg::sym_eig(linalg::gram(J));
  for (int k = 0; k < 3; ++k) CHECK(s.s[k] == doctest::Approx(std::sqrt(e.values[k])).epsilon(1e-12));
}

TEST_CASE("linalg: simplex projection") {
  check_vec(linalg::project_simplex(Vec{0.5, 0.5}), {0.5, 0.5}, 1e-15);
  check_vec(linalg::project_simplex(Vec{2, 0}), {1, 0}, 1e-15);
  check_vec(linalg::project_simplex(Vec{0.2, 0.2, 0.2}), {1.0 / 3, 1.0 / 3, 1.0 / 3}, 1e-15);
  check_vec(linalg::project_simplex(Vec{-1, 0.5, 3}), {0, 0, 1}, 1e-15);
  std::mt19937 rng(11);
  std::normal_distribution<double> N(0, 2);
  for (int t = 0; t < 20; ++t) {
    Vec y(6);
    for (double& v : y) v = N(rng);
    Vec w = linalg::project_simplex(y);
    CHECK(linalg::sum(w) == doctest::Approx(1.0).epsilon(1e-14));
    // KKT: y - w = theta on the support, y <= theta off it.
    double theta = 0;
    for (size_t i = 0; i < w.size(); ++i)
      if (w[i] > 0) theta = y[i] - w[i];
    for (size_t i = 0; i < w.size(); ++i) {
      CHECK(w[i] >= 0.0);
      if (w[i] > 0)
        CHECK(y[i] - w[i] == doctest::Approx(theta).epsilon(1e-12));
      else
        CHECK(y[i] <= theta + 1e-12);
    }
  }
}

// ---------------------------------------------------------------- MGDA

TEST_CASE("mgda: spec values on J_base and J3 for the three solvers") {
  for (const char* solver : {"libmtl", "torchjd", "exact"}) {
    CAPTURE(solver);
    Run r = run("mgda", j_base(), {{"solver", solver}});
    check_vec(*r.out.reported, {0.6, 0.4}, 1e-12);
    check_vec(r.d, {0.0, 1.0, 1.0}, 1e-12);
  }
  Run lib = run("mgda", j3(), {{"solver", "libmtl"}});
  check_vec(*lib.out.reported, {0.7538, 0.1049, 0.1414}, 1e-4);
  Run tj = run("mgda", j3(), {{"solver", "torchjd"}});
  check_vec(*tj.out.reported, {0.7518, 0.1074, 0.1409}, 1e-4);
  Run ex = run("mgda", j3(), {{"solver", "exact"}});
  check_vec(*ex.out.reported, {0.7538, 0.1049, 0.1414}, 1e-4);
  check_vec(ex.d, {0.0248, 0.0638, 0.1526, -0.0422, -0.6284}, 1e-4);
  CHECK(solvers::min_norm_gap(linalg::gram(j3()), *ex.out.reported) < 1e-14);
}

TEST_CASE("mgda: LibMTL's 0.999 / 0.001 clamp, and the exact solver's true vertex") {
  // g1 . g2 >= |g1|^2: the min-norm point is g1 itself.
  Mat G = from_rows({{1, 0}, {2, 1}});
  check_vec(*run("mgda", G, {{"solver", "libmtl"}}).out.reported, {0.999, 0.001}, 1e-15);
  check_vec(*run("mgda", G, {{"solver", "exact"}}).out.reported, {1.0, 0.0}, 1e-15);
  // zero row: the exact min-norm element is 0 (weight 1 on the zero row); LibMTL keeps 0.001.
  Mat Z = from_rows({{1, 2}, {0, 0}});
  Run lz = run("mgda", Z, {{"solver", "libmtl"}});
  check_vec(*lz.out.reported, {0.001, 0.999}, 1e-15);
  Run ez = run("mgda", Z, {{"solver", "exact"}});
  CHECK(linalg::norm2(ez.d) < 1e-15);
}

TEST_CASE("mgda: normalisers and their weights") {
  Mat G = from_rows({{3, 0}, {0, 1}});
  Vec L{2.0, 0.5};
  // gn = l2: unit rows, w* = [0.5, 0.5] on the normalised rows, so w = w* / |g_k|.
  Run r = run("mgda", G, {{"gn", "l2"}}, L);
  check_vec(*r.out.reported, {0.5, 0.5}, 1e-12);
  check_vec(r.out.w, {0.5 / 3, 0.5}, 1e-12);
  check_vec(r.d, {0.5, 0.5}, 1e-12);
  // gn = loss: rows [1.5, 0], [0, 2]: min-norm weights 16/25, 9/25.
  Run rl = run("mgda", G, {{"gn", "loss"}, {"solver", "exact"}}, L);
  check_vec(*rl.out.reported, {0.64, 0.36}, 1e-12);
  check_vec(rl.out.w, {0.32, 0.72}, 1e-12);
  // loss normalisers need the losses
  CHECK((make_method("mgda", 2, {{"gn", "loss+"}})->needs() & kNeedLosses) != 0);
  CHECK((make_method("mgda", 2)->needs() & kNeedLosses) == 0);
  // zero row with l2 / loss+: 0/0 -> polyhead::Error (K = 2 and K = 3)
  for (int K : {2, 3}) {
    Mat Gz(K, 3, 1.0);
    for (int p = 0; p < 3; ++p) Gz(K - 1, p) = 0.0;
    Gz(0, 1) = -2.0;
    for (const char* gn : {"l2", "loss+"}) {
      auto m = make_method("mgda", K, {{"gn", gn}});
      CHECK_THROWS_AS(run(*m, Gz, Vec(K, 1.0)), polyhead::Error);
    }
  }
}

TEST_CASE("mgda: exact solver satisfies the min-norm optimality conditions on random Gramians") {
  std::mt19937 rng(2024);
  for (int t = 0; t < 60; ++t) {
    int K = 2 + t % 7, P = 1 + (t * 7) % 9;  // includes K > P (rank-deficient)
    Mat G = random_matrix(rng, K, P);
    if (t % 5 == 0) {  // duplicate a row
      for (int p = 0; p < P; ++p) G(K - 1, p) = G(0, p);
    }
    Mat M = linalg::gram(G);
    auto r = solvers::min_norm_exact(M);
    CAPTURE(t);
    CHECK(r.converged);
    CHECK(linalg::sum(r.w) == doctest::Approx(1.0).epsilon(1e-14));
    for (double v : r.w) CHECK(v >= 0.0);
    // g_k . d >= |d|^2 for all k, with equality on the support
    Vec Mw = linalg::matvec(M, r.w);
    double dd = linalg::dot(r.w, Mw);
    double s = 0;
    for (int k = 0; k < K; ++k) s = std::max(s, M(k, k));
    for (int k = 0; k < K; ++k) {
      CHECK(Mw[k] >= dd - 1e-13 * s);
      if (r.w[k] > 1e-9) CHECK(std::fabs(Mw[k] - dd) <= 1e-12 * s);
    }
    // LibMTL's and torchjd's solvers never beat the exact one
    auto lib = solvers::min_norm_libmtl(M);
    auto tj = solvers::min_norm_torchjd(M);
    CHECK(linalg::quad(M, lib.w) >= dd - 1e-13 * s);
    CHECK(linalg::quad(M, tj.w) >= dd - 1e-13 * s);
  }
}

// ---------------------------------------------------------------- box QP, UPGrad, DualProj

TEST_CASE("nnqp: hand case and KKT conditions on random problems") {
  auto r = solvers::nnqp(from_rows({{1, 0}, {0, 1}}), Vec{-1, 2});
  check_vec(r.x, {1, 0}, 1e-15);
  auto r2 = solvers::nnqp(from_rows({{2, 1}, {1, 2}}), Vec{-1, -1});
  check_vec(r2.x, {1.0 / 3, 1.0 / 3}, 1e-15);
  std::mt19937 rng(5);
  std::normal_distribution<double> N(0, 1);
  for (int t = 0; t < 50; ++t) {
    int n = 2 + t % 9;
    Mat B = random_matrix(rng, n, n + (t % 3) - 1 > 0 ? n + (t % 3) - 1 : 1);
    Mat Q = linalg::gram(B);
    for (int i = 0; i < n; ++i) Q(i, i) += 1e-4;
    Vec q(n);
    for (double& v : q) v = N(rng);
    auto res = solvers::nnqp(Q, q);
    Vec g = linalg::matvec(Q, res.x);
    double sc = linalg::norm_inf(q) + linalg::max_abs(Q) * linalg::norm_inf(res.x);
    for (int i = 0; i < n; ++i) {
      g[i] += q[i];
      CHECK(res.x[i] >= 0.0);
      CHECK(g[i] >= -1e-12 * sc);
      if (res.x[i] > 0) CHECK(std::fabs(g[i]) <= 1e-12 * sc);
    }
    CHECK(res.kkt_residual <= 1e-12 * sc);
  }
  CHECK_THROWS_AS(solvers::nnqp(from_rows({{1, 2}, {2, 1}}), Vec{-1}), polyhead::Error);
  CHECK_THROWS_AS(solvers::nnqp(from_rows({{1, 0}, {0, 1}}), Vec{-1, std::nan("")}), polyhead::Error);
}

TEST_CASE("upgrad / dualproj: spec values (torchjd unit tests) and the cone property") {
  Run up = run("upgrad", j_base());
  check_vec(up.out.w, {1.1109, 0.7894}, 1e-4);
  check_vec(up.d, {0.2929, 1.9004, 1.9004}, 1e-4);
  Run up3 = run("upgrad", j3());
  check_vec(up3.out.w, {0.7628, 0.3333, 0.3752}, 1e-4);
  check_vec(up3.d, {-0.0803, 0.4155, -0.3883, -0.2891, -1.0300}, 1e-4);
  check_vec(linalg::matvec(j3(), up3.d), {0.2078, 1.3402, 2.3166}, 1e-4);
  Run dp = run("dualproj", j_base());
  check_vec(dp.out.w, {0.6109, 0.5000}, 1e-4);
  check_vec(dp.d, {0.5563, 1.1109, 1.1109}, 1e-4);
  Run dp3 = run("dualproj", j3());
  check_vec(dp3.out.w, {0.4294, 0.3333, 0.3333}, 1e-4);
  check_vec(dp3.d, {-0.0961, 0.4578, -0.5045, -0.3149, -0.7993}, 1e-4);
  // KKT of the projection (reg_eps = 0): v >= u, M v >= 0, (v - u) . M v = 0.
  Mat M = linalg::gram(j3());
  for (int i = 0; i < 3; ++i) {
    Vec u(3, 0.0);
    u[i] = 1.0 / 3;
    solvers::NnqpResult info;
    Vec v = solvers::dual_cone_weights(M, u, &info);
    Vec Mv = linalg::matvec(M, v);
    for (int k = 0; k < 3; ++k) {
      CHECK(v[k] >= u[k]);
      CHECK(Mv[k] >= -1e-13);
      CHECK(std::fabs((v[k] - u[k]) * Mv[k]) < 1e-13);
    }
  }
  // K = 2 with the sum preference UPGrad equals PCGrad: here mean preference = PCGrad / 2
  // (PCGrad weights [2.2222, 1.5789] in the spec), up to reg_eps.
  check_vec(run("upgrad", j_base(), {{"reg_eps", "0"}}).out.w, {2.2222 / 2, 1.5789 / 2}, 1e-4);
}

// ---------------------------------------------------------------- CAGrad

TEST_CASE("cagrad: spec values of the LibMTL and torchjd conventions") {
  Run lib = run("cagrad", j_base());
  check_vec(*lib.out.reported, {1.0, 0.0}, 1e-9);
  check_vec(lib.d, {0.1468, 0.9633, 0.9633}, 1e-4);
  Run lib3 = run("cagrad", j3());
  check_vec(*lib3.out.reported, {1.0, 0.0, 0.0}, 1e-9);
  check_vec(lib3.d, {-0.0221, 0.3086, -0.1245, -0.2062, -0.8730}, 1e-4);
  Run tj = run("cagrad", j_base(), {{"scale", "torchjd"}});
  check_vec(tj.out.w, {0.7041, 0.5000}, 1e-4);
  check_vec(tj.d, {0.1835, 1.2041, 1.2041}, 1e-4);
  Run tj3 = run("cagrad", j3(), {{"scale", "torchjd"}});
  check_vec(tj3.out.w, {0.9743, 0.3333, 0.3333}, 1e-4);
  // rescale = 0 / 2 divide differently; calpha = 0 gives the mean gradient
  Run r0 = run("cagrad", j_base(), {{"rescale", "0"}});
  for (int p = 0; p < 3; ++p) CHECK(r0.d[p] == doctest::Approx(lib.d[p] * 1.25).epsilon(1e-12));
  Run c0 = run("cagrad", j_base(), {{"calpha", "0"}});
  check_vec(c0.d, {1, 1, 1}, 1e-7);
  CHECK_THROWS_AS(make_method("cagrad", 2, {{"rescale", "3"}}), polyhead::Error);
  CHECK_THROWS_AS(make_method("cagrad", 2, {{"scale", "official"}}), polyhead::Error);
}

TEST_CASE("cagrad dual: the solver reaches the optimum (sampled points never do better)") {
  std::mt19937 rng(99);
  std::uniform_real_distribution<double> U(0.0, 1.0);
  for (int t = 0; t < 30; ++t) {
    int K = 2 + t % 5, P = 2 + (t * 3) % 7;
    Mat G = random_matrix(rng, K, P, t % 4 == 0 ? 100.0 : 1.0);
    if (t % 6 == 1)
      for (int p = 0; p < P; ++p) G(0, p) *= 1000.0;  // the "scaled" regime of the golden files
    Mat A = linalg::gram(G);
    Vec b(K, 1.0 / K);
    Vec p = linalg::matvec(A, b);
    double c = 0.5 * std::sqrt(linalg::sum(A.a) / (K * K) + 1e-8) + 1e-8;
    auto r = solvers::cagrad_dual(A, p, c, 1e-8);
    CAPTURE(t);
    CHECK(r.converged);
    CHECK(linalg::sum(r.w) == doctest::Approx(1.0).epsilon(1e-13));
    const double amax = linalg::max_abs(A);
    double best = r.objective;
    // vertices, edges' midpoints and random points of the simplex
    for (int s = 0; s < 4000; ++s) {
      Vec w(K);
      if (s < K) {
        std::fill(w.begin(), w.end(), 0.0);
        w[s] = 1.0;
      } else {
        double tot = 0;
        for (double& v : w) tot += (v = -std::log(U(rng) + 1e-300));
        for (double& v : w) v /= tot;
      }
      best = std::min(best, solvers::cagrad_objective(A, p, c, 1e-8, w));
    }
    CHECK(r.objective <= best + 1e-13 * amax);
    // first-order optimality on the simplex: the gradient is >= its value at the support
    Vec Aw = linalg::matvec(A, r.w);
    double sroot = std::sqrt(std::max(linalg::quad(A, r.w), 0.0) + 1e-8);
    Vec g(K);
    for (int k = 0; k < K; ++k) g[k] = p[k] + c * Aw[k] / sroot;
    double gw = linalg::dot(g, r.w);
    for (int k = 0; k < K; ++k) CHECK(g[k] >= gw - 1e-9 * (linalg::norm_inf(g) + 1.0));
  }
}

// ---------------------------------------------------------------- FairGrad

TEST_CASE("fairgrad: spec values and a zero residual") {
  check_vec(run("fairgrad", j_base()).out.w, {0.5915, 0.4071}, 1e-4);
  check_vec(run("fairgrad", j_base(), {{"alpha", "2"}}).out.w, {0.4714, 0.3195}, 1e-4);
  check_vec(run("fairgrad", j3()).out.w, {1.4818, 0.5127, 0.4408}, 1e-4);
  check_vec(run("fairgrad", j3(), {{"alpha", "2"}}).out.w, {1.5643, 0.4091, 0.3755}, 1e-4);
  std::mt19937 rng(17);
  for (int t = 0; t < 40; ++t) {
    int K = 2 + t % 6, P = K + t % 4;
    Mat G = random_matrix(rng, K, P, std::pow(10.0, (t % 5) - 2));
    double alpha = t % 3 == 0 ? 1.0 : (t % 3 == 1 ? 2.0 : 0.5);
    Mat A = linalg::gram(G);
    auto r = solvers::fairgrad_solve(A, alpha);
    CAPTURE(t);
    CHECK(r.converged);
    Vec Ax = linalg::matvec(A, r.x);
    for (int k = 0; k < K; ++k) {
      CHECK(r.x[k] > 0);
      double rhs = std::pow(r.x[k], -1.0 / alpha);
      CHECK(std::fabs(Ax[k] - rhs) <= 1e-12 * rhs);
    }
  }
  // a zero row has no equation: the others are solved, its weight is finite
  Mat Z = from_rows({{1, 0, 2}, {0, 0, 0}, {0.5, 1, 0}});
  Run rz = run("fairgrad", Z);
  Mat AZ = linalg::gram(Z);
  Vec AxZ = linalg::matvec(AZ, rz.out.w);
  CHECK(std::fabs(AxZ[0] - 1 / rz.out.w[0]) < 1e-12 / rz.out.w[0]);
  CHECK(std::fabs(AxZ[2] - 1 / rz.out.w[2]) < 1e-12 / rz.out.w[2]);
  CHECK(std::isfinite(rz.out.w[1]));
  CHECK(make_method("fairgrad", 2)->head_grad() == HeadGrad::Weighted);
  CHECK_THROWS_AS(make_method("fairgrad", 2, {{"alpha", "0"}}), polyhead::Error);
}

// ---------------------------------------------------------------- Nash-MTL

TEST_CASE("nash_mtl: torchjd's unit-test value and the Nash condition") {
  // torchjd test: NashMTL(n_tasks=2) on J_base gives d = [0.0542, 0.7061, 0.7061] (clipped to 1).
  auto m = make_method("nash_mtl", 2);
  Run r = run(*m, j_base());
  check_vec(r.d, {0.0542, 0.7061, 0.7061}, 1e-4);
  // alpha is the Nash point of the raw Gramian: alpha_k (M alpha)_k = 1, i.e. the FairGrad
  // alpha = 1 point [0.5915, 0.4071] (spec), and |d| = 1 after clipping.
  check_vec(*r.out.reported, {0.5915, 0.4071}, 1e-4);
  CHECK(solvers::nash_residual(linalg::gram(j_base()), *r.out.reported) < 1e-5);
  CHECK(linalg::norm2(r.d) == doctest::Approx(1.0 / (1.0 + 1e-6 / std::sqrt(2.0))).epsilon(1e-6));
  // J3: the spec's d (normalised alpha direction, clipped to norm 1)
  auto m3 = make_method("nash_mtl", 3);
  Run r3 = run(*m3, j3());
  check_vec(r3.d, {0.0001, 0.3422, -0.0478, -0.2208, -0.9121}, 2e-4);
  // warm-started further steps on the same M converge to the Nash point tightly
  Mat M3 = linalg::gram(j3());
  for (int s = 0; s < 3; ++s) r3 = run(*m3, j3());
  CHECK(solvers::nash_residual(M3, *r3.out.reported) < 1e-8);
  // and it agrees with FairGrad (alpha = 1) on the raw Gramian
  auto fg = solvers::fairgrad_solve(M3, 1.0);
  for (int k = 0; k < 3; ++k) CHECK((*r3.out.reported)[k] == doctest::Approx(fg.x[k]).epsilon(1e-7));
}

TEST_CASE("nash_mtl: CCP on random problems satisfies the Nash condition where feasible") {
  std::mt19937 rng(31);
  int checked = 0;
  for (int t = 0; t < 30; ++t) {
    int K = 2 + t % 5, P = K + 2;
    Mat G = random_matrix(rng, K, P, std::pow(10.0, (t % 3) - 1));
    Mat M = linalg::gram(G);
    Vec alpha(K, 1.0);
    solvers::NashResult r;
    for (int step = 0; step < 5; ++step) {
      r = solvers::nash_ccp(M, alpha, 20);
      alpha = r.alpha;
    }
    CAPTURE(t);
    REQUIRE(r.feasible);
    for (double a : alpha) CHECK(a > 0);
    CHECK(solvers::nash_residual(M, alpha) < 1e-8);
    ++checked;
  }
  CHECK(checked == 30);
  // infeasible: 0 in the convex hull of the gradients (exactly opposite rows) -> alpha unchanged
  Mat Gop = from_rows({{1, 2}, {-1, -2}});
  auto r = solvers::nash_ccp(linalg::gram(Gop), Vec{1, 1}, 20);
  CHECK_FALSE(r.feasible);
  check_vec(r.alpha, {1, 1}, 0);
}

TEST_CASE("nash_mtl: state round trip, update_weights_every, clipping") {
  auto a = make_method("nash_mtl", 3);
  run(*a, j3());
  auto b = make_method("nash_mtl", 3);
  b->load_state(a->state());
  std::mt19937 rng(4);
  Mat G2 = random_matrix(rng, 3, 5);
  Run ra = run(*a, G2), rb = run(*b, G2);
  CHECK(max_abs_diff(ra.out.w, rb.out.w) == 0.0);
  CHECK(a->state().at("step").a[0] == 2.0);
  // every 2 steps: the second step reuses alpha
  auto e = make_method("nash_mtl", 3, {{"update_weights_every", "2"}});
  Run e1 = run(*e, j3());
  Run e2 = run(*e, G2);
  CHECK(max_abs_diff(*e1.out.reported, *e2.out.reported) == 0.0);
  // no clipping with max_norm = 0: |d|^2 = alpha^T M alpha = K at the Nash point
  auto nc = make_method("nash_mtl", 3, {{"max_norm", "0"}});
  Run rn = run(*nc, j3());
  for (int s = 0; s < 3; ++s) rn = run(*nc, j3());
  CHECK(linalg::norm2(rn.d) == doctest::Approx(std::sqrt(3.0)).epsilon(1e-7));
  CHECK(nc->head_grad() == HeadGrad::Weighted);
  StateDict bad;
  bad["alpha"] = Mat(1, 2, 1.0);
  bad["step"] = Mat(1, 1, 0.0);
  CHECK_THROWS_AS(a->load_state(bad), polyhead::Error);
}

// ---------------------------------------------------------------- Aligned-MTL, IMTL-G, ConFIG

TEST_CASE("aligned_mtl: spec values (LibMTL / official and torchjd scales, three scale modes)") {
  check_vec(run("aligned_mtl", j_base()).out.w, {1.1181, 0.8165}, 1e-4);
  Run tj = run("aligned_mtl", j_base(), {{"scale", "torchjd"}});
  check_vec(tj.out.w, {0.5591, 0.4083}, 1e-4);
  check_vec(tj.d, {0.2133, 0.9673, 0.9673}, 1e-4);
  check_vec(run("aligned_mtl", j3()).out.w, {1.0707, 0.3984, 0.3696}, 1e-4);
  check_vec(run("aligned_mtl", j3(), {{"scale_mode", "median"}}).out.w, {2.4162, 0.8990, 0.8339}, 1e-4);
  check_vec(run("aligned_mtl", j3(), {{"scale_mode", "rmse"}}).out.w, {2.6653, 0.9916, 0.9199}, 1e-4);
  // Balanced system: G_aligned = B G has orthogonal rows of norm sqrt(lambda_min) (full rank).
  Mat G = j3();
  Mat M = linalg::gram(G);
  auto e = linalg::sym_eig(M);
  // B = sqrt(l_min) V L^-1/2 V^T; B M B = l_min I
  Mat B(3, 3);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 3; ++k)
        B(i, j) += std::sqrt(e.values[2]) * e.vectors(i, k) * e.vectors(j, k) / std::sqrt(e.values[k]);
  Mat BMB = linalg::matmul(linalg::matmul(B, M), B);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) CHECK(std::fabs(BMB(i, j) - (i == j ? e.values[2] : 0.0)) < 1e-12 * e.values[0]);
  // rank cut: duplicated rows give rank 1 and finite weights
  Mat D = from_rows({{1, 2, 3}, {1, 2, 3}});
  Run rd = run("aligned_mtl", D);
  for (double v : rd.out.w) CHECK(std::isfinite(v));
  // all zero: identity transformation (torchjd): w = 1 / K
  check_vec(run("aligned_mtl", Mat(2, 3), {{"scale", "torchjd"}}).out.w, {0.5, 0.5}, 0);
}

TEST_CASE("imtl_g: spec values and the equal-projection property") {
  Run r = run("imtl_g", j_base());
  check_vec(r.out.w, {0.5923, 0.4077}, 1e-4);
  check_vec(r.d, {0.0767, 1.0, 1.0}, 1e-4);
  Run r3 = run("imtl_g", j3());
  check_vec(r3.out.w, {0.6522, 0.1538, 0.1940}, 1e-4);
  // d . g_k / |g_k| is the same for every task
  Mat G = j3();
  Vec proj(3);
  for (int k = 0; k < 3; ++k) proj[k] = linalg::dot(r3.d, G.row(k)) / linalg::norm2(G.row(k));
  CHECK(proj[1] == doctest::Approx(proj[0]).epsilon(1e-12));
  CHECK(proj[2] == doctest::Approx(proj[0]).epsilon(1e-12));
  // all-zero gradients: weights 0
  check_vec(run("imtl_g", Mat(2, 3)).out.w, {0, 0}, 0);
}

TEST_CASE("config: spec values and equal unit projections") {
  Run r = run("config", j_base());
  CHECK(r.out.w.empty());
  check_vec(r.d, {0.1588, 2.0706, 2.0706}, 1e-4);
  Run r3 = run("config", j3());
  check_vec(r3.d, {-0.0486, 0.6020, -0.1397, -0.4193, -2.6083}, 1e-4);
  Mat G = j3();
  Vec proj(3);
  for (int k = 0; k < 3; ++k) proj[k] = linalg::dot(r3.d, G.row(k)) / linalg::norm2(G.row(k));
  CHECK(proj[0] > 0);
  CHECK(proj[1] == doctest::Approx(proj[0]).epsilon(1e-12));
  CHECK(proj[2] == doctest::Approx(proj[0]).epsilon(1e-12));
  CHECK(make_method("config", 3)->needs() == kNeedJacobian);
}

// ---------------------------------------------------------------- validation and registry

TEST_CASE("solver methods: registry entries and input validation") {
  const std::vector<std::string> names{"mgda", "cagrad", "nash_mtl", "fairgrad", "aligned_mtl",
                                       "upgrad", "dualproj", "config", "imtl_g"};
  auto infos = list_methods();
  for (const auto& n : names) {
    auto it = std::find_if(infos.begin(), infos.end(), [&](const MethodInfo& i) { return i.name == n; });
    REQUIRE_MESSAGE(it != infos.end(), n);
    CHECK(!it->summary.empty());
    CHECK((it->kind == "gramian" || it->kind == "full"));
    auto m = make_method(n, 3);
    CHECK(m->name() == n);
    // unknown option
    CHECK_THROWS_AS(make_method(n, 3, {{"no_such_option", "1"}}), polyhead::Error);
    Mat G = j3();
    Mat M = linalg::gram(G);
    // wrong K in the step input
    {
      StepInput in;
      in.K = 2;
      in.G = &G;
      in.M = &M;
      in.L = {1, 1};
      CHECK_THROWS_AS(m->step(in), polyhead::Error);
    }
    // wrong shape / missing inputs / NaN
    {
      Mat M2(2, 2, 1.0), G2(2, 5, 1.0);
      StepInput in;
      in.K = 3;
      in.L = {1, 1, 1};
      in.G = (m->needs() & kNeedJacobian) ? &G2 : &G;
      in.M = (m->needs() & kNeedGramian) ? &M2 : &M;
      try {
        m->step(in);
        FAIL_CHECK(n << " accepted a wrong shape");
      } catch (const polyhead::Error& e) {
        CHECK(!e.hint().empty());
      }
      StepInput none;
      none.K = 3;
      none.L = {1, 1, 1};
      CHECK_THROWS_AS(m->step(none), polyhead::Error);
      Mat Mn = M, Gn = G;
      Mn(1, 1) = std::nan("");
      Gn(1, 1) = std::nan("");
      StepInput nan_in;
      nan_in.K = 3;
      nan_in.L = {1, 1, 1};
      nan_in.G = &Gn;
      nan_in.M = &Mn;
      CHECK_THROWS_AS(m->step(nan_in), polyhead::Error);
    }
  }
  CHECK_THROWS_AS(make_method("mgda", 3, {{"gn", "l1"}}), polyhead::Error);
  CHECK_THROWS_AS(make_method("mgda", 3, {{"solver", "cvx"}}), polyhead::Error);
  CHECK_THROWS_AS(make_method("nash_mtl", 3, {{"optim_niter", "0"}}), polyhead::Error);
  // a non-symmetric "Gramian" (e.g. G passed by mistake with K = P) is rejected
  Mat bad = from_rows({{1, 2}, {0, 1}});
  StepInput in;
  in.K = 2;
  in.M = &bad;
  CHECK_THROWS_AS(make_method("upgrad", 2)->step(in), polyhead::Error);
  // the losses are needed for gn = loss
  Mat G = j_base();
  Mat M = linalg::gram(G);
  StepInput nl;
  nl.K = 2;
  nl.M = &M;
  CHECK_THROWS_AS(make_method("mgda", 2, {{"gn", "loss"}})->step(nl), polyhead::Error);
}

TEST_CASE("solver methods: a single task gets its own gradient direction") {
  Mat G = from_rows({{3, -4}});
  for (const char* n : {"mgda", "cagrad", "nash_mtl", "fairgrad", "aligned_mtl", "upgrad", "dualproj", "config", "imtl_g"}) {
    CAPTURE(n);
    Run r = run(n, G);
    REQUIRE(r.d.size() == 2);
    CHECK(std::isfinite(r.d[0]));
    // d is a non-negative multiple of g
    CHECK(r.d[0] * 3 - r.d[1] * 4 >= 0.0);
    CHECK(std::fabs(r.d[0] * -4 - r.d[1] * 3) < 1e-12);
  }
  check_vec(run("mgda", G).d, {3, -4}, 1e-15);
  check_vec(run("fairgrad", G).out.w, {0.2}, 1e-15);  // x * 25 = 1 / x
}
