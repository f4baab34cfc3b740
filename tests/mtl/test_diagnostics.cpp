// tests/mtl/test_diagnostics.cpp: the trajectory diagnostics (mtl/diagnostics) on hand-computed
// values: conflict measures of a known Gramian, the two-batch noise estimator (closed form and
// unbiasedness by Monte Carlo), power iteration and Hutchinson on known matrices, the
// finite-difference HVP and sharpness of a model whose loss is quadratic in the shared weights,
// the Fisher trace of a linear softmax model, the loss-matched gap on synthetic curves, the
// recorder against the reference per-task gradients, and the JSONL round trip.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <sstream>

#include "engine/ops.h"
#include "engine/rng.h"
#include "layers/linear.h"
#include "mtl/architecture.h"
#include "mtl/diagnostics/conflict.h"
#include "mtl/diagnostics/fisher.h"
#include "mtl/diagnostics/gap.h"
#include "mtl/diagnostics/hvp.h"
#include "mtl/diagnostics/noise.h"
#include "mtl/diagnostics/power_iteration.h"
#include "mtl/diagnostics/recorder.h"
#include "mtl/diagnostics/report.h"
#include "mtl/run/cli.h"
#include "mtl/run/compare.h"
#include "mtl/run/datasets.h"
#include "mtl/run/experiment.h"
#include "mtl/run/files.h"
#include "mtl/zoo.h"

using namespace polyhead;
using namespace polyhead::mtl;
using namespace polyhead::mtl::diag;
namespace diag = polyhead::mtl::diag;

namespace {

Mat mat(int r, int c, std::vector<double> v) {
  Mat M(r, c);
  M.a = std::move(v);
  return M;
}

// g1 = (1, 0), g2 = (0, 2), g3 = (-1, 1).
Mat three_tasks() { return mat(3, 3, {1, 0, -1, 0, 4, 2, -1, 2, 2}); }

}  // namespace

TEST_SUITE("diagnostics") {

TEST_CASE("conflict measures of a hand-computed Gramian") {
  Mat M = three_tasks();
  auto n = norms(M);
  CHECK(n[0] == doctest::Approx(1.0));
  CHECK(n[1] == doctest::Approx(2.0));
  CHECK(n[2] == doctest::Approx(std::sqrt(2.0)));
  Mat C = cosine_matrix(M);
  CHECK(C(0, 1) == doctest::Approx(0.0));
  CHECK(C(0, 2) == doctest::Approx(-1 / std::sqrt(2.0)));
  CHECK(C(1, 2) == doctest::Approx(1 / std::sqrt(2.0)));
  CHECK(C(2, 2) == doctest::Approx(1.0));
  ConflictStats s = conflict_stats(M);
  CHECK(s.mean_cosine == doctest::Approx(0.0));
  CHECK(s.min_cosine == doctest::Approx(-1 / std::sqrt(2.0)));
  CHECK(s.pair_fraction == doctest::Approx(1.0 / 3));
  CHECK(s.any);
  CHECK(s.directional == doctest::Approx(std::sqrt(3.0) / 3));  // ||(1,0)+(0,1)+(-1,1)/sqrt2|| / 3
  CHECK(s.magnitude == doctest::Approx(14.0 / 9));              // Var(1, 4, 2)
  CHECK(s.sum_norm == doctest::Approx(3.0));                    // ||(0, 3)||
  // Conflict with the update d = sum w_k g_k: (M w)_k < 0.
  CHECK(update_conflicts(M, {1, 1, 1}) == std::vector<bool>{false, false, false});  // M w = (0, 6, 3)
  CHECK(update_conflicts(M, {0, 0, 1}) == std::vector<bool>{true, false, false});   // M w = (-1, 2, 2)
  CHECK_THROWS_AS(update_conflicts(M, {1, 1}), Error);
  // A zero gradient has cosine 0 with everything.
  Mat Z = mat(2, 2, {0, 0, 0, 1});
  CHECK(cosine_matrix(Z)(0, 1) == 0.0);
  CHECK(cosine_matrix(Z)(0, 0) == 0.0);
  // K = 1: no pairs.
  ConflictStats one = conflict_stats(mat(1, 1, {4}));
  CHECK(std::isnan(one.mean_cosine));
  CHECK(one.pair_fraction == 0.0);
  CHECK(!one.any);
  CHECK(one.directional == doctest::Approx(1.0));
  // Bad Gramians.
  CHECK_THROWS_AS(conflict_stats(mat(2, 3, {1, 0, 0, 0, 1, 0})), Error);
  CHECK_THROWS_AS(conflict_stats(mat(2, 2, {1, 0.5, 0.2, 1})), Error);
  CHECK_THROWS_AS(conflict_stats(mat(2, 2, {1, 0, 0, NAN})), Error);
}

TEST_CASE("conflict counter: plain and norm-weighted step fractions") {
  ConflictCounter c;
  c.add(conflict_stats(three_tasks()));        // conflicting, ||sum g|| = 3
  c.add(conflict_stats(mat(2, 2, {1, 0, 0, 0})));  // no conflict, ||sum g|| = 1
  CHECK(c.count() == 2);
  CHECK(c.fraction() == doctest::Approx(0.5));
  CHECK(c.weighted_fraction() == doctest::Approx(0.75));
}

TEST_CASE("two-batch noise estimator: closed form on two micro-batch gradients") {
  // g1 = (3, 1), g2 = (1, 1), micro-batch size 4 (B = 8).
  Mat Q = mat(2, 2, {10, 4, 4, 2});
  NoiseStats r = noise_stats(Q, 4);
  CHECK(r.gs2 == doctest::Approx(6.0));
  CHECK(r.gb2 == doctest::Approx(5.0));              // ||(2, 1)||^2
  CHECK(r.grad_sq == doctest::Approx(4.0));          // (8*5 - 4*6) / 4
  CHECK(r.trace_cov == doctest::Approx(8.0));        // (6 - 5) / (1/4 - 1/8)
  CHECK(r.noise_scale == doctest::Approx(2.0));
  CHECK(r.coherence == doctest::Approx(5.0 / 6));
  CHECK(r.diversity == doctest::Approx(0.6));        // 6 / (2 * 5)
  // Orthogonal micro-batch gradients of equal norm: the ||grad||^2 estimate is 0 -> B_noise NaN.
  NoiseStats o = noise_stats(mat(2, 2, {1, 0, 0, 1}), 2);
  CHECK(o.grad_sq == 0.0);
  CHECK(std::isnan(o.noise_scale));
  CHECK(coherence(mat(3, 3, {1, 0, 0, 0, 1, 0, 0, 0, 1})) == doctest::Approx(1.0 / 3));
  CHECK(coherence(mat(2, 2, {2, 2, 2, 2})) == doctest::Approx(1.0));
  CHECK_THROWS_AS(noise_stats(mat(1, 1, {1}), 4), Error);
  CHECK_THROWS_AS(noise_stats(Q, 0), Error);
}

TEST_CASE("two-batch noise estimator is unbiased (Monte Carlo)") {
  // Per-example gradients mu + z, z ~ N(0, diag(sigma^2)): ||mu||^2 = 5, tr Sigma = 1 + 4 + 0.25.
  const std::vector<double> mu{1, 2, 0}, sd{1, 2, 0.5};
  const int m = 4, s = 8, trials = 4000;
  std::mt19937_64 gen(7);
  std::normal_distribution<double> N(0, 1);
  double g2 = 0, tc = 0;
  for (int t = 0; t < trials; ++t) {
    std::vector<std::vector<double>> g(m, std::vector<double>(3, 0.0));
    for (int j = 0; j < m; ++j)
      for (int e = 0; e < s; ++e)
        for (int d = 0; d < 3; ++d) g[j][d] += (mu[d] + sd[d] * N(gen)) / s;
    Mat Q(m, m);
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < m; ++j)
        for (int d = 0; d < 3; ++d) Q(i, j) += g[i][d] * g[j][d];
    NoiseStats r = noise_stats(Q, s);
    g2 += (double(m * s) * r.gb2 - s * r.gs2) / (m * s - s) / trials;  // the unclamped estimate
    tc += r.trace_cov / trials;
  }
  CHECK(g2 == doctest::Approx(5.0).epsilon(0.03));
  CHECK(tc == doctest::Approx(5.25).epsilon(0.05));
}

TEST_CASE("power iteration finds the top eigenvalue of a known quadratic") {
  // A = R diag(5, 2, -1, 0.5) R^T with R a product of two Givens rotations.
  const double c1 = std::cos(0.3), s1 = std::sin(0.3), c2 = std::cos(1.1), s2 = std::sin(1.1);
  Mat R1 = mat(4, 4, {c1, -s1, 0, 0, s1, c1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1});
  Mat R2 = mat(4, 4, {1, 0, 0, 0, 0, c2, 0, -s2, 0, 0, 1, 0, 0, s2, 0, c2});
  std::vector<double> lam{5, 2, -1, 0.5};
  Mat R(4, 4), A(4, 4);
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j)
      for (int k = 0; k < 4; ++k) R(i, j) += R1(i, k) * R2(k, j);
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j)
      for (int k = 0; k < 4; ++k) A(i, j) += R(i, k) * lam[size_t(k)] * R(j, k);
  MatVec mv = [&](const std::vector<double>& v) {
    std::vector<double> w(4, 0.0);
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 4; ++j) w[size_t(i)] += A(i, j) * v[size_t(j)];
    return w;
  };
  PowerOptions o;
  o.max_iters = 200;
  o.tol = 1e-12;
  PowerResult r = top_eigenvalue(mv, 4, o);
  CHECK(r.converged);
  CHECK(r.eigenvalue == doctest::Approx(5.0).epsilon(1e-9));
  // The iterate is the eigenvector: the first column of R, up to sign.
  double d = 0;
  for (int i = 0; i < 4; ++i) d += r.vector[size_t(i)] * R(i, 0);
  CHECK(std::abs(d) == doctest::Approx(1.0).epsilon(1e-6));
  // The spec's defaults (20 products, tol 1e-3) are close enough here.
  CHECK(top_eigenvalue(mv, 4).eigenvalue == doctest::Approx(5.0).epsilon(2e-3));
  // Hutchinson: exact for a diagonal operator, unbiased otherwise (tr A = 6.5).
  MatVec diag = [](const std::vector<double>& v) { return std::vector<double>{3 * v[0], -v[1], 0.5 * v[2]}; };
  CHECK(hutchinson_trace(diag, 3, 1) == doctest::Approx(2.5));
  CHECK(hutchinson_trace(mv, 4, 4000, 3) == doctest::Approx(6.5).epsilon(0.05));
  // A dominant negative eigenvalue is reported as such.
  MatVec neg = [](const std::vector<double>& v) { return std::vector<double>{v[0], -3 * v[1]}; };
  CHECK(top_eigenvalue(neg, 2, o).eigenvalue == doctest::Approx(-3.0).epsilon(1e-9));
  // Errors: wrong product size, bad options.
  MatVec bad = [](const std::vector<double>&) { return std::vector<double>{1.0}; };
  CHECK_THROWS_AS(top_eigenvalue(bad, 2), Error);
  PowerOptions z;
  z.max_iters = 0;
  CHECK_THROWS_AS(top_eigenvalue(mv, 4, z), Error);
}

namespace {

// K tasks, regression: trunk w (1 x 3, no bias), head a * z (Linear(1, 1) fixed to a). Task k's
// loss mean_i (a w.x_i - y_ki)^2 is quadratic in w with Hessian (2 a^2 / n) X^T X.
std::shared_ptr<MultiTaskModel> quadratic_model(int K, double a, std::shared_ptr<nn::Linear>* trunk_out) {
  auto trunk = std::make_shared<nn::Linear>(3, 1, false);
  std::vector<Task> tasks;
  std::vector<std::shared_ptr<nn::Linear>> heads;
  for (int k = 0; k < K; ++k) {
    auto h = std::make_shared<nn::Linear>(1, 1, false);
    heads.push_back(h);
    std::string name = "t";
    name += std::to_string(k);
    tasks.emplace_back(name, h, TaskKind::Regression);
  }
  auto m = std::make_shared<MultiTaskModel>(std::make_shared<HPS>(trunk, K), std::move(tasks));
  m->to(DType::f64);
  Tensor(trunk->weight.data()).copy_(Tensor::from_vector(std::vector<double>{0.3, -0.2, 0.5}, {1, 3}));
  for (auto& h : heads) Tensor(h->weight.data()).copy_(Tensor::from_vector(std::vector<double>{a}, {1, 1}));
  if (trunk_out) *trunk_out = trunk;
  return m;
}

Batch quadratic_batch(int K) {
  Batch b;
  b.x = Tensor::from_vector(std::vector<double>{1, 0, 0, 0, 2, 0, 0, 0, 1, 1, 1, 0}, {4, 3});
  for (int k = 0; k < K; ++k) b.y.push_back(Tensor::from_vector(std::vector<double>{1.0 + k, -1, 0.5, 2}, {4, 1}));
  return b;
}

}  // namespace

TEST_CASE("finite-difference HVP and sharpness of a loss quadratic in the shared weights") {
  const double a = 2.0;
  auto m = quadratic_model(2, a, nullptr);
  Batch b = quadratic_batch(2);
  const auto& params = m->shared_parameters();
  REQUIRE(params_numel(params) == 3);
  // X^T X = [[2, 1, 0], [1, 5, 0], [0, 0, 1]]; H_k = (2 a^2 / 4) X^T X = 2 X^T X.
  // Gradient of task 0: (2 a / n) sum_i (a w.x_i - y_i) x_i.
  const double X[4][3] = {{1, 0, 0}, {0, 2, 0}, {0, 0, 1}, {1, 1, 0}}, y0[4] = {1, -1, 0.5, 2}, w[3] = {0.3, -0.2, 0.5};
  std::vector<double> g_ref(3, 0.0);
  for (int i = 0; i < 4; ++i) {
    double r = a * (w[0] * X[i][0] + w[1] * X[i][1] + w[2] * X[i][2]) - y0[i];
    for (int d = 0; d < 3; ++d) g_ref[size_t(d)] += 2 * a * r * X[i][d] / 4;
  }
  auto g = loss_gradient(*m, b, {1, 0}, params);
  for (int d = 0; d < 3; ++d) CHECK(g[size_t(d)] == doctest::Approx(g_ref[size_t(d)]).epsilon(1e-12));
  auto before = params_to_vector(params);
  FiniteDiffHvp h(*m, b, {1, 0}, params);
  auto hv = h({1, 0, 0});
  CHECK(hv[0] == doctest::Approx(4.0).epsilon(1e-7));
  CHECK(hv[1] == doctest::Approx(2.0).epsilon(1e-7));
  CHECK(std::abs(hv[2]) < 1e-7);
  CHECK(params_to_vector(params) == before);  // restored bit for bit
  // The summed loss of both tasks has twice the Hessian.
  FiniteDiffHvp h2(*m, b, {1, 1}, params);
  CHECK(h2({0, 0, 1})[2] == doctest::Approx(4.0).epsilon(1e-7));
  // lambda_max(2 X^T X) = 2 (7 + sqrt(13)) / 2.
  PowerOptions o;
  o.max_iters = 100;
  o.tol = 1e-10;
  MatVec mv = [&](const std::vector<double>& v) { return h(v); };
  CHECK(top_eigenvalue(mv, h.dim(), o).eigenvalue == doctest::Approx(7 + std::sqrt(13.0)).epsilon(1e-6));
  CHECK(h.products() >= 2);
  CHECK_THROWS_AS(loss_gradient(*m, b, {1}, params), Error);
  CHECK_THROWS_AS(h({1, 0}), Error);
}

TEST_CASE("Fisher trace of a linear softmax model, true and empirical, by hand") {
  // logits = W2 W1 x (no biases); grad_{W1} (-log p(c|x)) = W2^T (p - e_c) x^T, so
  // ||.||^2 = ||W2^T (p - e_c)||^2 ||x||^2.
  auto W1 = std::make_shared<nn::Linear>(3, 2, false);
  auto W2 = std::make_shared<nn::Linear>(2, 4, false);
  std::vector<Task> tasks;
  tasks.emplace_back("c", W2);
  auto m = std::make_shared<MultiTaskModel>(std::make_shared<HPS>(W1, 1), std::move(tasks));
  m->to(DType::f64);
  const std::vector<double> w1{0.5, -0.3, 0.8, 0.2, 0.7, -0.6}, w2{0.9, -0.4, 0.1, 0.6, -0.7, 0.3, 0.4, 0.5};
  Tensor(W1->weight.data()).copy_(Tensor::from_vector(w1, {2, 3}));
  Tensor(W2->weight.data()).copy_(Tensor::from_vector(w2, {4, 2}));
  const std::vector<double> xs{1, 2, -1, 0.5, -1, 3, -2, 0, 1};
  const std::vector<int64_t> ys{2, 0, 3};
  Batch b;
  b.x = Tensor::from_vector(xs, {3, 3});
  b.y.push_back(Tensor::from_vector(ys, {3}));
  auto hand = [&](bool sampled, uint64_t seed) {
    double tr = 0;
    for (int i = 0; i < 3; ++i) {
      double h[2] = {0, 0}, x2 = 0;
      for (int r = 0; r < 2; ++r)
        for (int c = 0; c < 3; ++c) h[r] += w1[size_t(r * 3 + c)] * xs[size_t(i * 3 + c)];
      for (int c = 0; c < 3; ++c) x2 += xs[size_t(i * 3 + c)] * xs[size_t(i * 3 + c)];
      std::vector<double> logit(4), p(4);
      double z = 0;
      for (int o = 0; o < 4; ++o) logit[size_t(o)] = w2[size_t(o * 2)] * h[0] + w2[size_t(o * 2 + 1)] * h[1];
      for (int o = 0; o < 4; ++o) z += p[size_t(o)] = std::exp(logit[size_t(o)]);
      for (auto& v : p) v /= z;
      int c = sampled ? sample_categorical(logit, hash_uniform(seed, uint64_t(i), 0)) : int(ys[size_t(i)]);
      double v[2] = {0, 0};
      for (int o = 0; o < 4; ++o)
        for (int r = 0; r < 2; ++r) v[r] += w2[size_t(o * 2 + r)] * (p[size_t(o)] - (o == c ? 1.0 : 0.0));
      tr += (v[0] * v[0] + v[1] * v[1]) * x2;
    }
    return tr / 3;
  };
  FisherOptions fo;
  fo.n = 3;
  fo.kind = FisherKind::Empirical;
  CHECK(fisher_trace(*m, b, m->shared_parameters(), fo)[0] == doctest::Approx(hand(false, 0)).epsilon(1e-12));
  fo.kind = FisherKind::True;
  fo.seed = 11;
  CHECK(fisher_trace(*m, b, m->shared_parameters(), fo)[0] == doctest::Approx(hand(true, 11)).epsilon(1e-12));
  // n larger than the batch uses the whole batch.
  fo.n = 50;
  CHECK(fisher_trace(*m, b, m->shared_parameters(), fo)[0] == doctest::Approx(hand(true, 11)).epsilon(1e-12));
  // Inverse-CDF draws: p = (0.25, 0.75).
  CHECK(sample_categorical({0, std::log(3.0)}, 0.2) == 0);
  CHECK(sample_categorical({0, std::log(3.0)}, 0.3) == 1);
  CHECK_THROWS_AS(sample_categorical({0, 1}, 1.0), Error);
  CHECK_THROWS_AS(parse_fisher_kind("fake"), Error);
  // Regression tasks have no log p(y|x) here.
  auto q = quadratic_model(1, 1.0, nullptr);
  CHECK_THROWS_AS(fisher_trace(*q, quadratic_batch(1), q->shared_parameters()), Error);
}

TEST_CASE("loss-matched generalization gap on synthetic curves") {
  // ST: train 1 - 0.05 t, test = train + 0.2 (t = 0, 2, ..., 20); MT: train 1 - 0.025 t, test = train + 0.3.
  Curve st, mt;
  for (int t = 0; t <= 20; t += 2) {
    st.step.push_back(t);
    st.train.push_back(1 - 0.05 * t);
    st.heldout.push_back(1.2 - 0.05 * t);
    mt.step.push_back(t);
    mt.train.push_back(1 - 0.025 * t);
    mt.heldout.push_back(1.3 - 0.025 * t);
  }
  auto pts = matched_gap(st, mt, 6);
  REQUIRE(pts.size() == 6);
  CHECK(pts.front().level == doctest::Approx(1.0));
  CHECK(pts.back().level == doctest::Approx(0.5));  // the overlap is [max(0, 0.5), min(1, 1)]
  for (auto& p : pts) {
    CHECK(p.valid);
    CHECK(p.gap == doctest::Approx(0.1));
    CHECK(p.t_st == doctest::Approx((1 - p.level) / 0.05));
    CHECK(p.t_mt == doctest::Approx((1 - p.level) / 0.025));
    if (p.t_st > 0) CHECK(p.speed_ratio == doctest::Approx(2.0));
  }
  // At 25% of ST training (step 5) the ST loss is 0.75; MT reaches it at step 10.
  double l25 = level_at_fraction(st, 0.25);
  CHECK(l25 == doctest::Approx(0.75));
  MatchedPoint p = gap_at(st, mt, l25);
  CHECK(p.t_mt == doctest::Approx(10.0));
  CHECK(p.gap == doctest::Approx(0.1));
  // MT never reaches the end-of-ST loss 0: invalid (NaN).
  MatchedPoint q = gap_at(st, mt, level_at_fraction(st, 1.0) - 0.1);
  CHECK(!q.valid);
  CHECK(std::isnan(q.gap));
}

TEST_CASE("first crossing: running minimum and interpolation between records") {
  Curve c{{0, 10, 20, 30}, {1.0, 0.8, 0.9, 0.6}, {2, 3, 4, 5}};
  CHECK(running_min(c.train) == std::vector<double>{1.0, 0.8, 0.8, 0.6});
  Crossing x = first_crossing(c, 0.7);  // between records 2 (min 0.8) and 3 (0.6): a = 0.5
  CHECK(x.reached);
  CHECK(x.step == doctest::Approx(25.0));
  CHECK(x.heldout == doctest::Approx(4.5));
  x = first_crossing(c, 0.9);  // between records 0 and 1
  CHECK(x.step == doctest::Approx(5.0));
  CHECK(x.heldout == doctest::Approx(2.5));
  x = first_crossing(c, 1.2);  // already below at the first record
  CHECK(x.step == 0.0);
  CHECK(x.heldout == 2.0);
  CHECK(!first_crossing(c, 0.5).reached);
  // Disjoint ranges: no matched points.
  Curve hi{{0, 1}, {5, 4}, {5, 4}};
  CHECK(matched_gap(c, hi).empty());
  Curve bad{{0, 0}, {1, 1}, {1, 1}};
  CHECK_THROWS_AS(first_crossing(bad, 1.0), Error);
}

TEST_CASE("interpolation of factor series, Spearman correlation and sign agreement") {
  std::vector<double> s{0, 1, 2, 3}, v{0, NAN, 2, NAN};
  CHECK(interp_at(s, v, 1.0) == doctest::Approx(1.0));
  CHECK(interp_at(s, v, 2.0) == doctest::Approx(2.0));
  CHECK(std::isnan(interp_at(s, v, 2.5)));
  CHECK(spearman({1, 2, 3, 4}, {10, 20, 30, 45}) == doctest::Approx(1.0));
  CHECK(spearman({1, 2, 3, 4}, {4, 3, 2, 1}) == doctest::Approx(-1.0));
  CHECK(spearman({1, 2, 2, 3}, {1, 2, 3, 4}) == doctest::Approx(4.5 / std::sqrt(22.5)));  // average ranks
  CHECK(std::isnan(spearman({1, 2}, {1, 2})));
  CHECK(std::isnan(spearman({1, 1, 1}, {1, 2, 3})));
  CHECK(sign_agreement({1, -1, 2, NAN}, {3, 1, 1, 1}) == doctest::Approx(2.0 / 3));
}

TEST_CASE("recorder: schedule, probe gradients against the reference, state left alone, JSONL") {
  manual_seed(3);
  auto m = zoo::mlp_hps(2, 6, 8, 3);
  m->flatten();
  Batch probe, test;
  probe.x = Tensor::randn({32, 6});
  probe.y = {ops::argmax(probe.x.narrow(1, 0, 3), -1), ops::argmax(probe.x.narrow(1, 3, 3), -1)};
  test.x = Tensor::randn({20, 6});
  test.y = {ops::argmax(test.x.narrow(1, 0, 3), -1), ops::argmax(test.x.narrow(1, 2, 3), -1)};
  DiagnosticsOptions o;
  o.every = 10;
  o.probe_size = 32;
  o.micro_batch = 8;
  o.heavy_every = 2;
  o.sharpness_probe = 16;
  o.fisher_n = 8;
  o.power_iters = 5;
  Recorder rec(*m, probe, test, o);
  for (int64_t t : {0, 1, 2, 4, 8, 10, 20, 30}) CHECK(rec.due(t));
  for (int64_t t : {3, 5, 12, 25}) CHECK(!rec.due(t));
  CHECK(rec.heavy(0));
  CHECK(rec.heavy(20));
  CHECK(!rec.heavy(10));

  auto before = m->flat_parameters().clone();
  const uint64_t seed = default_generator().seed(), off = default_generator().offset();
  DiagRecord r = rec.record(0);
  CHECK(ops::sum(ops::unary(UnaryOp::Abs, ops::sub(before, m->flat_parameters()))).item() == 0.0);
  CHECK(default_generator().seed() == seed);
  CHECK(default_generator().offset() == off);
  CHECK(m->is_training());
  // The probe gradient (mean of the micro-batch gradients) is the full-probe gradient.
  m->eval();
  Mat Mref = gramian(shared_jacobian_reference(*m, probe));
  auto outs = m->forward(Variable(probe.x));
  m->train();
  for (int k = 0; k < 2; ++k) {
    CHECK(r.gramian(k, k) == doctest::Approx(Mref(k, k)).epsilon(1e-4));
    CHECK(r.tasks[size_t(k)].grad_norm == doctest::Approx(std::sqrt(Mref(k, k))).epsilon(1e-4));
    CHECK(r.tasks[size_t(k)].train_loss == doctest::Approx(m->task(k).compute_loss(outs[size_t(k)], probe.y[size_t(k)]).item()).epsilon(1e-5));
    CHECK(std::isfinite(r.tasks[size_t(k)].sharpness));
    CHECK(r.tasks[size_t(k)].fisher > 0);
    CHECK(r.tasks[size_t(k)].noise.coherence > 0);
    CHECK(r.tasks[size_t(k)].noise.coherence <= 1 + 1e-12);
    CHECK(r.tasks[size_t(k)].test_metric >= 0);
  }
  CHECK(r.gramian(0, 1) == doctest::Approx(Mref(0, 1)).epsilon(1e-4));
  CHECK(r.heavy);
  CHECK(std::isfinite(r.sharpness_mt));
  CHECK(r.conflict_steps == (r.conflict.any ? 1.0 : 0.0));
  // A light record.
  DiagRecord r10 = rec.record(10);
  CHECK(!r10.heavy);
  CHECK(std::isnan(r10.tasks[0].sharpness));

  // JSONL round trip and truncation.
  std::vector<std::string> names{"a", "b"};
  std::string path = (std::filesystem::temp_directory_path() / ("polyhead_diag_" + std::to_string(::getpid()) + ".jsonl")).string();
  {
    DiagLog log(path, false);
    log.write(r, names);
    log.write(r10, names);
  }
  auto back = read_diag_file(path, names);
  REQUIRE(back.size() == 2);
  CHECK(back[0].step == 0);
  CHECK(back[0].tasks[1].grad_norm == r.tasks[1].grad_norm);
  CHECK(back[0].tasks[0].sharpness == r.tasks[0].sharpness);
  CHECK(back[0].cosine(0, 1) == r.cosine(0, 1));
  CHECK(std::isnan(back[1].tasks[0].sharpness));
  truncate_diag_file(path, 10);
  CHECK(read_diag_file(path, names).size() == 1);
  std::filesystem::remove(path);

  // Bad options and probes.
  DiagnosticsOptions bad = o;
  bad.probe_size = 8;  // one micro-batch
  CHECK_THROWS_AS(Recorder(*m, probe, test, bad), Error);
  bad = o;
  bad.probe_size = 64;  // more than the probe holds
  CHECK_THROWS_AS(Recorder(*m, probe, test, bad), Error);
  CHECK_THROWS_AS(options_from_json(json{{"evry", 3}}), Error);
  CHECK_THROWS_AS(options_from_json(json{{"every", "3"}}), Error);
  CHECK(options_from_json(json{{"every", 3}, {"fisher", "empirical"}}).every == 3);
  CHECK_THROWS_AS(validate(options_from_json(json{{"fisher", "fake"}})), Error);
  CHECK_THROWS_AS(validate(options_from_json(json{{"curvature_params", "heads"}})), Error);
  // Curvature over every parameter (heads included) differs from the shared-only value.
  DiagnosticsOptions all = o;
  all.curvature_params = "all";
  Recorder rec_all(*m, probe, test, all);
  DiagRecord ra = rec_all.record(0);
  CHECK(std::isfinite(ra.tasks[0].sharpness));
  CHECK(ra.tasks[0].fisher > r.tasks[0].fisher);  // more parameters: a larger sum of squares
}

TEST_CASE("gap summary and factor relations on synthetic records") {
  // ST: train 1 - 0.05 t, test = train + 0.2, grad_norm 0. MT: train 1 - 0.025 t,
  // test = train + 0.3 + 0.01 t, grad_norm t, mean cosine -0.01 t. At a level l: t_ST = 20 (1 - l),
  // t_MT = 40 (1 - l), GG = 0.1 + 0.4 (1 - l), x_grad_norm = 40 (1 - l): rank correlation +1;
  // the mean cosine falls as GG grows: -1.
  std::vector<DiagRecord> st, mt;
  for (int t = 0; t <= 20; t += 2) {
    DiagRecord a, b;
    a.step = b.step = t;
    a.tasks.resize(1);
    b.tasks.resize(2);
    a.tasks[0].train_loss = 1 - 0.05 * t;
    a.tasks[0].test_loss = a.tasks[0].train_loss + 0.2;
    a.tasks[0].test_metric = 1 - a.tasks[0].test_loss;
    a.tasks[0].grad_norm = 0;
    a.conflict.mean_cosine = NAN;
    for (int k = 0; k < 2; ++k) {
      b.tasks[size_t(k)].train_loss = 1 - 0.025 * t;
      b.tasks[size_t(k)].test_loss = b.tasks[size_t(k)].train_loss + 0.3 + 0.01 * t;
      b.tasks[size_t(k)].test_metric = 1 - b.tasks[size_t(k)].test_loss;
      b.tasks[size_t(k)].grad_norm = t;
    }
    b.conflict.mean_cosine = -0.01 * t;
    st.push_back(a);
    mt.push_back(b);
  }
  GapSummary g = gap_summary(st, 0, mt, 1);
  CHECK(g.level[0] == doctest::Approx(0.9));
  CHECK(g.gap[0] == doctest::Approx(0.14));
  CHECK(g.metric_gap[0] == doctest::Approx(-0.14));
  CHECK(g.speed[0] == doctest::Approx(2.0));
  CHECK(g.level[1] == doctest::Approx(0.75));
  CHECK(g.gap[1] == doctest::Approx(0.2));
  CHECK(std::isnan(g.gap[2]));  // ST ends at loss 0, MT at 0.5
  CHECK(g.last.level == doctest::Approx(0.5));  // the lowest loss both reach
  CHECK(g.last.gap == doctest::Approx(0.3));
  CHECK(g.last_metric_gap == doctest::Approx(-0.3));
  auto rel = relate_factors(st, 0, mt, 1, g.curve);
  auto find = [&](const std::string& f) {
    for (auto& r : rel)
      if (r.factor == f) return r;
    FAIL("no factor " << f);
    return FactorRelation{};
  };
  FactorRelation gn = find("grad_norm");
  CHECK(!gn.mt_only);
  CHECK(gn.rho_gap == doctest::Approx(1.0));
  CHECK(gn.sign_agree == doctest::Approx(1.0));
  CHECK(gn.n == 40);
  FactorRelation mc = find("mean_cosine");
  CHECK(mc.mt_only);
  CHECK(mc.rho_gap == doctest::Approx(-1.0));
  CHECK(find("sharpness").n == 0);  // never measured
  // Pooling two identical pairs doubles the levels and keeps the correlations.
  auto pooled = relate_factors_pooled({{&st, &mt}, {&st, &mt}}, 0, 1);
  CHECK(pooled[0].factor == "grad_norm");
  CHECK(pooled[0].n == 80);
  CHECK(pooled[0].rho_gap == doctest::Approx(1.0));
}

namespace {

struct TmpDir {
  std::filesystem::path p;
  explicit TmpDir(const std::string& tag) {
    static int n = 0;
    p = std::filesystem::temp_directory_path() / ("polyhead_diag_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
    std::filesystem::remove_all(p);
  }
  ~TmpDir() {
    std::error_code ec;
    std::filesystem::remove_all(p, ec);
  }
  std::string operator/(const std::string& s) const { return (p / s).string(); }
};

run::RunConfig tiny_run(const std::string& method) {
  run::RunConfig c;
  c.dataset = "synthetic";
  c.model = "mlp";
  c.hidden = 16;
  c.train_size = 256;
  c.test_size = 64;
  c.train_eval_size = 0;
  c.eval_batch_size = 64;
  c.batch_size = 64;
  c.epochs = 2;
  c.method = method;
  c.lr = 3e-3;
  c.seed = 2;
  c.gramian_every = 0;
  c.diagnostics = json{{"probe_size", 64}, {"micro_batch", 16}, {"test_probe_size", 32}, {"heavy_every", 2},
                       {"sharpness_probe", 32}, {"power_iters", 3}, {"fisher_n", 8}};
  return c;
}

run::RunOptions quiet_run() {
  run::RunOptions o;
  o.quiet = true;
  return o;
}

// epochs.csv without the timing columns (seconds, ms_per_step).
std::string metric_cols(const std::string& csv) {
  std::istringstream in(csv);
  std::string line, out;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string cell;
    for (int i = 0; std::getline(ls, cell, ','); ++i)
      if (i != 3 && i != 4) out += cell + ",";
    out += "\n";
  }
  return out;
}

}  // namespace

TEST_CASE("polyhead train --diagnostics-every: records, same training, exact resume, plots") {
  TmpDir d("run");
  run::RunConfig off = tiny_run("pcgrad"), on = off;
  on.diagnostics_every = 3;
  run::RunResult a = run::train_run(off, d / "off", quiet_run());
  run::RunResult b = run::train_run(on, d / "on", quiet_run());
  CHECK(a.diagnostics.empty());
  CHECK(!std::filesystem::exists(d / "off/diagnostics.jsonl"));
  // The measurement leaves training alone.
  CHECK(metric_cols(run::read_text(d / "off/epochs.csv")) == metric_cols(run::read_text(d / "on/epochs.csv")));
  std::vector<int64_t> steps;
  for (auto& r : b.diagnostics) steps.push_back(r.step);
  CHECK(steps == std::vector<int64_t>{0, 1, 2, 3, 6, 8});  // schedule plus the last step (8 = 2 epochs of 4)
  CHECK(b.diagnostics.back().heavy);
  CHECK(b.diagnostics[0].heavy);
  CHECK(!b.diagnostics[1].heavy);
  auto back = diag::read_diag_file(d / "on/diagnostics.jsonl", {"left", "right"});
  REQUIRE(back.size() == 6);
  CHECK(back[2].tasks[1].grad_norm == b.diagnostics[2].tasks[1].grad_norm);
  for (const char* f : {"diag_cosine.svg", "diag_conflict.svg", "diag_grad_norm.svg", "diag_sharpness.svg", "diag_fisher.svg",
                        "diag_coherence.svg", "diag_noise_scale.svg", "diag_probe_loss.svg"})
    CHECK_MESSAGE(std::filesystem::exists(d / (std::string("on/plots/") + f)), f);
  // Stopped at step 5 and resumed: the same records (timings aside).
  run::RunConfig part = on;
  part.max_steps = 5;
  run::train_run(part, d / "part", quiet_run());
  run::RunResult c = run::resume_run(d / "part", {}, quiet_run());
  REQUIRE(c.diagnostics.size() == b.diagnostics.size());
  for (size_t i = 0; i < c.diagnostics.size(); ++i) {
    json x = to_json(c.diagnostics[i], {"left", "right"}), y = to_json(b.diagnostics[i], {"left", "right"});
    x.erase("ms");
    y.erase("ms");
    CHECK(x == y);
  }
  CHECK(diag::read_diag_file(d / "part/diagnostics.jsonl", {"left", "right"}).size() == b.diagnostics.size());
}

TEST_CASE("polyhead compare with diagnostics: gap report against the single-task runs") {
  TmpDir d("cmp");
  run::CompareConfig c;
  c.name = "t";
  c.base = tiny_run("ew");
  c.base.diagnostics_every = 4;
  c.methods = {"single-task", "ew"};
  run::CompareResult r = run::run_compare(c, false, d / "cmp", quiet_run());
  REQUIRE(r.diagnostics);
  REQUIRE(r.diagnostics->rows.size() == 2);
  CHECK(r.diagnostics->rows[0].method == "ew");
  CHECK(r.diagnostics->rows[0].task == "left");
  CHECK(r.diagnostics->rows[1].task == "right");
  std::string md = run::read_text(d / "cmp/diagnostics.md");
  CHECK(md.find("| ew | left |") != std::string::npos);
  CHECK(md.find("sharpness (MT - ST)") != std::string::npos);
  for (const char* f : {"gap_left.svg", "test_vs_train_loss_right.svg", "diag_mean_cosine.svg", "diag_conflict_steps.svg"})
    CHECK_MESSAGE(std::filesystem::exists(d / (std::string("cmp/plots/") + f)), f);
  // The report's gap equals the one computed from the two runs' files.
  auto st = diag::read_diag_file(d / "cmp/single-task-left/diagnostics.jsonl", {"left"});
  auto mt = diag::read_diag_file(d / "cmp/ew/diagnostics.jsonl", {"left", "right"});
  GapSummary g = gap_summary(st, 0, mt, 0);
  for (int i = 0; i < 3; ++i) {
    if (std::isnan(g.gap[i])) CHECK(std::isnan(r.diagnostics->rows[0].gap.gap[i]));
    else CHECK(r.diagnostics->rows[0].gap.gap[i] == g.gap[i]);
  }
}

TEST_CASE("diagnostics and validation options: flags, config keys, usage errors") {
  auto req = run::parse_train_args({"--dataset", "synthetic", "--diagnostics-every", "7", "--val-size", "50"});
  CHECK(req.config.diagnostics_every == 7);
  CHECK(req.config.val_size == 50);
  CHECK(run::diagnostics_options(req.config).every == 7);
  json j = run::to_json(req.config);
  CHECK(j["diagnostics_every"] == 7);
  CHECK(run::run_config_from_json(j).val_size == 50);
  run::RunConfig c = tiny_run("ew");
  c.diagnostics = json{{"every", 3}};
  CHECK_THROWS_AS(run::validate(c), run::UsageError);
  c.diagnostics = json{{"probe_sise", 3}};
  CHECK_THROWS_AS(run::validate(c), run::UsageError);
  c.diagnostics = json{{"micro_batch", 64}, {"probe_size", 64}};
  CHECK_THROWS_AS(run::validate(c), run::UsageError);
  c = tiny_run("ew");
  c.diagnostics_every = 2;
  c.diagnostics["probe_size"] = 100000;  // more than the training set
  TmpDir d("bad");
  CHECK_THROWS_AS(run::train_run(c, d / "r", quiet_run()), run::UsageError);
  c = tiny_run("ew");
  c.val_every = 0;
  CHECK_THROWS_AS(run::validate(c), run::UsageError);
}

TEST_CASE("validation hook: CoBa trains on a held-out split's losses") {
  TmpDir d("coba");
  run::RunConfig c = tiny_run("coba");
  c.val_size = 64;
  c.val_batch_size = 32;
  run::RunResult r = run::train_run(c, d / "coba", quiet_run());
  CHECK(r.validation_size == 64);
  CHECK(r.data_description.find("64 of the training examples held out") != std::string::npos);
  REQUIRE(!r.steps.empty());
  // 192 training examples remain: 3 steps per epoch.
  CHECK(r.steps.size() == 6);
  for (auto& s : r.steps) {
    REQUIRE(s.val_losses.size() == 2);
    CHECK(std::isfinite(s.val_losses[0]));
    CHECK(s.val_losses[0] > 0);
  }
  // Step 1 sees validation batch 0 (the first 32 generated training examples) before any update:
  // the losses of the initial model there, computed here independently.
  {
    manual_seed(c.seed);
    auto m = zoo::mlp_hps(2, 36 * 36, c.hidden, 10);
    run::RunData data = run::load_run_data(c);
    std::vector<int64_t> idx;
    for (int64_t i = 0; i < 32; ++i) idx.push_back(i);
    auto b = data.train->get_batch(idx);
    m->eval();
    auto outs = m->forward(Variable(b.at("x").reshape({32, -1})));
    CHECK(r.steps[0].val_losses[0] == m->task(0).compute_loss(outs[0], b.at("y0")).item());
    CHECK(r.steps[0].val_losses[1] == m->task(1).compute_loss(outs[1], b.at("y1")).item());
  }
  // Step 3 sees batch 0 again (two batches of 32), after two updates: other losses.
  CHECK(r.steps[0].val_losses != r.steps[2].val_losses);
  // Methods without validation keep the whole training set.
  run::RunResult e = run::train_run(tiny_run("ew"), d / "ew", quiet_run());
  CHECK(e.validation_size == 0);
  CHECK(e.steps.size() == 8);
  run::RunConfig big = c;
  big.val_size = 256;  // the whole training set
  CHECK_THROWS_AS(run::train_run(big, d / "big", quiet_run()), run::UsageError);
}

}  // TEST_SUITE
