// tests/mtl/test_pike.cpp: PiKE's formulas on hand-computed values (gradient-statistics estimator,
// exponentiated-gradient update, floor projection, tilt), the estimator's unbiasedness by
// simulation, the baselines' weights, the strategy factory, the sampler driven by PiKE (exact
// counts, weights on the simplex), the text-domain loaders, and the mixed-batch trainer (a
// statistics step, whose gradient is assembled from per-domain halves, trains like a plain step).
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <numeric>

#include "data/sampler.h"
#include "data/text.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "engine/rng.h"
#include "mtl/mixing/mixing_schedules.h"
#include "mtl/mixing/mixing_trainer.h"
#include "mtl/mixing/pike.h"
#include "mtl/mixing/text_domains.h"
#include "mtl/per_task_grads.h"

using namespace polyhead;
using namespace polyhead::mtl;
using namespace polyhead::mtl::mixing;

TEST_SUITE_BEGIN("pike");

static Tensor rows64(const std::vector<std::vector<double>>& r) {
  std::vector<double> flat;
  for (const auto& v : r) flat.insert(flat.end(), v.begin(), v.end());
  return Tensor::from_vector(flat, {int64_t(r.size()), int64_t(r[0].size())});
}

static double sum(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0); }

TEST_CASE("pike: gradient statistics from two halves and from three micro-batches (hand-computed)") {
  // g_A = (1, 2), g_B = (3, 0), sizes 2 and 3: g_A.g_B = 3; ||g_A - g_B||^2 = 8; 8 / (1/2 + 1/3) = 9.6
  GradStats s = grad_stats(rows64({{1, 2}, {3, 0}}), {2, 3});
  CHECK(s.sq_norm == doctest::Approx(3.0).epsilon(1e-14));
  CHECK(s.variance == doctest::Approx(9.6).epsilon(1e-14));
  // g = (1,0), (0,1), (1,1), sizes 1, 1, 2: dots 0, 1, 1 -> 2/3; pair terms 2/2, 1/1.5, 1/1.5 -> 7/9
  s = grad_stats(rows64({{1, 0}, {0, 1}, {1, 1}}), {1, 1, 2});
  CHECK(s.sq_norm == doctest::Approx(2.0 / 3).epsilon(1e-14));
  CHECK(s.variance == doctest::Approx(7.0 / 9).epsilon(1e-14));
  // the signal can be estimated below zero (anti-aligned halves); it is kept raw here
  s = grad_stats(rows64({{1, 0}, {-1, 0}}), {4, 4});
  CHECK(s.sq_norm == doctest::Approx(-1.0));
  CHECK(s.variance == doctest::Approx(4.0 / 0.5));
}

TEST_CASE("pike: equal micro-batches reproduce McCandlish's two-batch-size estimates") {
  manual_seed(7);
  const int m = 4;
  const double sz = 5, B = m * sz;
  Tensor G = Tensor::randn({m, 6}, DType::f64);
  auto v = G.to_vector<double>();
  double Gs = 0, GB = 0;
  std::vector<double> mean(6, 0.0);
  for (int j = 0; j < m; ++j)
    for (int p = 0; p < 6; ++p) {
      Gs += v[size_t(j * 6 + p)] * v[size_t(j * 6 + p)] / m;
      mean[size_t(p)] += v[size_t(j * 6 + p)] / m;
    }
  for (double x : mean) GB += x * x;
  GradStats s = grad_stats(G, std::vector<double>(m, sz));
  CHECK(s.sq_norm == doctest::Approx((B * GB - sz * Gs) / (B - sz)).epsilon(1e-12));
  CHECK(s.variance == doctest::Approx((Gs - GB) / (1 / sz - 1 / B)).epsilon(1e-12));
}

TEST_CASE("pike: the estimator is unbiased for ||mu||^2 and tr(Sigma) (simulation)") {
  // per-example gradients mu + D z, z ~ N(0, I): ||mu||^2 = 1 + 4 + 0.25 = 5.25, tr Sigma = 1 + 4 + 0.25
  manual_seed(11);
  const double mu[3] = {1, -2, 0.5}, sd[3] = {1, 2, 0.5};
  const int trials = 20000, sA = 3, sB = 5;
  Tensor z = Tensor::randn({trials, sA + sB, 3}, DType::f64);
  auto zv = z.to_vector<double>();
  double G2 = 0, S = 0;
  for (int t = 0; t < trials; ++t) {
    std::vector<double> a(3, 0.0), b(3, 0.0);
    for (int i = 0; i < sA + sB; ++i)
      for (int p = 0; p < 3; ++p) {
        const double g = mu[p] + sd[p] * zv[size_t((t * (sA + sB) + i) * 3 + p)];
        (i < sA ? a : b)[size_t(p)] += g / (i < sA ? sA : sB);
      }
    Mat M(2, 2);
    for (int p = 0; p < 3; ++p) {
      M(0, 0) += a[size_t(p)] * a[size_t(p)];
      M(1, 1) += b[size_t(p)] * b[size_t(p)];
      M(0, 1) += a[size_t(p)] * b[size_t(p)];
    }
    M(1, 0) = M(0, 1);
    GradStats s = grad_stats_from_gram(M, {double(sA), double(sB)});
    G2 += s.sq_norm / trials;
    S += s.variance / trials;
  }
  CHECK(G2 == doctest::Approx(5.25).epsilon(0.02));
  CHECK(S == doctest::Approx(5.25).epsilon(0.03));
}

TEST_CASE("pike: per-task statistics from one Gramian with rows grouped by task") {
  Tensor G = rows64({{1, 2}, {0, 1}, {3, 0}, {1, 1}, {1, 0}});
  Mat M = gramian(G);
  auto st = grad_stats_per_task(M, {0, 1, 0, 1, 1}, {2, 1, 3, 1, 2}, 2);
  CHECK(st[0].sq_norm == doctest::Approx(3.0));
  CHECK(st[0].variance == doctest::Approx(9.6));
  // task 1: rows (0,1), (1,1), (1,0) sizes 1, 1, 2: dots 1, 0, 1 -> 2/3; pairs 1/2, 2/1.5, 1/1.5 -> 0.8333
  CHECK(st[1].sq_norm == doctest::Approx(2.0 / 3));
  CHECK(st[1].variance == doctest::Approx((0.5 + 2 / 1.5 + 1 / 1.5) / 3));
  CHECK_THROWS_AS(grad_stats_per_task(M, {0, 1, 0, 0, 0}, {1, 1, 1, 1, 1}, 2), Error);  // task 1 has one row
  CHECK_THROWS_AS(grad_stats(rows64({{1, 2}}), {1}), Error);
  CHECK_THROWS_AS(grad_stats(rows64({{1, 2}, {3, 4}}), {1, 0}), Error);
  Mat bad(2, 2);
  bad(0, 1) = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_AS(grad_stats_from_gram(bad, {1, 1}), Error);
}

TEST_CASE("pike: the exponentiated-gradient update (hand-computed)") {
  // zeta1 = 0.5, zeta2 / (2b) = 2 / 8 = 0.25; exponents: 0.5*1 - 0.25*4 = -0.5, 0.5*2 - 0 = 1, 0 - 0.25*8 = -2
  std::vector<GradStats> st{{1, 4}, {2, 0}, {0, 8}};
  auto w = pike_update({0.5, 0.3, 0.2}, st, 0.5, 2.0, 4);
  const double u[3] = {0.5 * std::exp(-0.5), 0.3 * std::exp(1.0), 0.2 * std::exp(-2.0)};
  const double z = u[0] + u[1] + u[2];
  for (int k = 0; k < 3; ++k) CHECK(w[size_t(k)] == doctest::Approx(u[k] / z).epsilon(1e-14));
  // unnormalised input weights are normalised first: the same result
  auto w2 = pike_update({5, 3, 2}, st, 0.5, 2.0, 4);
  for (int k = 0; k < 3; ++k) CHECK(w2[size_t(k)] == doctest::Approx(w[size_t(k)]).epsilon(1e-14));
  // per-task scales (Balanced-PiKE's y^2): exponents 2*(-0.5), 1*1, 0*(-2)
  auto w3 = pike_update({1, 1, 1}, st, 0.5, 2.0, 4, {2, 1, 0});
  const double z3 = std::exp(-1.0) + std::exp(1.0) + 1.0;
  CHECK(w3[0] == doctest::Approx(std::exp(-1.0) / z3).epsilon(1e-14));
  CHECK(w3[2] == doctest::Approx(1.0 / z3).epsilon(1e-14));
  // cap: exponents (-0.5, 1, -2) have mean -0.5; deviations (0, 1.5, -1.5) capped at 1 -> (-0.5, 0.5, -1.5)
  auto w4 = pike_update({1, 1, 1}, st, 0.5, 2.0, 4, {}, 1.0);
  const double z4 = std::exp(-0.5) + std::exp(0.5) + std::exp(-1.5);
  CHECK(w4[1] == doctest::Approx(std::exp(0.5) / z4).epsilon(1e-14));
  CHECK(w4[2] == doctest::Approx(std::exp(-1.5) / z4).epsilon(1e-14));
  // a negative squared-norm estimate counts as 0: task 0 then only pays its variance
  auto w5 = pike_update({0.5, 0.5}, {{-3, 4}, {0, 0}}, 1.0, 2.0, 1);
  CHECK(w5[0] == doctest::Approx(std::exp(-4.0) / (std::exp(-4.0) + 1)).epsilon(1e-14));
  // zero weights stay zero; larger gradient norm gains weight, larger variance loses it
  auto w6 = pike_update({0, 0.5, 0.5}, {{9, 0}, {1, 0}, {0.5, 0}}, 1, 0, 8);
  CHECK(w6[0] == 0.0);
  CHECK(w6[1] > 0.5);
  CHECK_THROWS_AS(pike_update({0.5, 0.5}, st, 0.5, 2.0, 4), Error);            // 3 stats for 2 weights
  CHECK_THROWS_AS(pike_update({0.5, -0.1, 0.6}, st, 0.5, 2.0, 4), Error);      // negative weight
  CHECK_THROWS_AS(pike_update({1, 1, 1}, st, -1, 2.0, 4), Error);              // negative zeta1
  CHECK_THROWS_AS(pike_update({1, 1, 1}, {{NAN, 0}, {1, 1}, {1, 1}}, 1, 1, 4), Error);
}

TEST_CASE("pike: floor projection onto the simplex (hand-computed)") {
  auto w = project_simplex_floor({0.7, 0.25, 0.04, 0.01}, 0.1);
  CHECK(w[0] == doctest::Approx(0.7 * 0.8 / 0.95).epsilon(1e-14));
  CHECK(w[1] == doctest::Approx(0.25 * 0.8 / 0.95).epsilon(1e-14));
  CHECK(w[2] == 0.1);
  CHECK(w[3] == 0.1);
  // rescaling pushes another entry under the floor: 0.03 is clamped, then 0.17 * 0.85 / 0.97 < 0.15
  w = project_simplex_floor({0.8, 0.17, 0.03}, 0.15);
  CHECK(w[0] == doctest::Approx(0.7).epsilon(1e-14));
  CHECK(w[1] == doctest::Approx(0.15));
  CHECK(w[2] == doctest::Approx(0.15));
  CHECK(sum(project_simplex_floor({1, 0, 0, 0}, 0.25)) == doctest::Approx(1.0));
  CHECK(project_simplex_floor({3, 1}, 0) == std::vector<double>{0.75, 0.25});
  CHECK_THROWS_AS(project_simplex_floor({1, 1, 1}, 0.4), Error);
}

TEST_CASE("pike: tilt weights and the tilted objective (hand-computed)") {
  const double e = std::exp(1.0);
  auto y = tilt_weights(1.0, {1, 2});
  CHECK(y[0] == doctest::Approx(2 / (1 + e)).epsilon(1e-14));
  CHECK(y[1] == doctest::Approx(2 * e / (1 + e)).epsilon(1e-14));
  y = tilt_weights(2.0, {1, 2}, TiltNorm::Literal);  // tau softmax(tau L), sums to tau
  CHECK(y[0] == doctest::Approx(2 / (1 + e * e)).epsilon(1e-14));
  CHECK(y[0] + y[1] == doctest::Approx(2.0));
  CHECK(tilt_weights(0.0, {1, 5, 9}) == std::vector<double>{1, 1, 1});  // tau = 0: plain PiKE
  CHECK(tilted_loss(1.0, {1, 2}) == doctest::Approx(std::log(e + e * e)).epsilon(1e-14));
  CHECK(tilted_loss(200.0, {1, 2, 1.5}) == doctest::Approx(2.0).epsilon(1e-3));  // tau -> inf: the max
  CHECK_THROWS_AS(tilt_weights(-1, {1, 2}), Error);
  CHECK_THROWS_AS(tilt_weights(1, {1, NAN}), Error);
}

TEST_CASE("pike: the Pike state (T0, calibration, EMA losses, Balanced-PiKE's y^2 scaling)") {
  PikeOptions o;
  o.T0 = 3;
  o.min_count = 0;
  Pike p(2, 10, o);
  CHECK(!p.wants_stats(0));
  CHECK(p.wants_stats(2));
  CHECK(p.wants_stats(5));
  // auto calibration: zeta1 = auto_step / max G2 = 0.2 / 4; zeta2 = 1 * zeta1
  p.update({{4, 20}, {1, 0}});
  CHECK(p.zeta1() == doctest::Approx(0.05));
  CHECK(p.zeta2() == doctest::Approx(0.05));
  // exponents 0.05 * 4 - 0.05 / 20 * 20 = 0.15 and 0.05
  CHECK(p.weights()[0] == doctest::Approx(std::exp(0.15) / (std::exp(0.15) + std::exp(0.05))).epsilon(1e-14));
  CHECK(p.updates() == 1);

  PikeOptions ob;
  ob.zeta1 = 1;
  ob.zeta2 = 0;
  ob.balanced = true;
  ob.tau = 1;
  ob.loss_ema = 0.5;
  ob.min_count = 0;
  Pike b(2, 10, ob);
  CHECK(b.loss_scale() == std::vector<double>{1, 1});  // nothing observed yet
  b.observe_losses({1, 2});
  b.observe_losses({3, std::numeric_limits<double>::quiet_NaN()});  // task 1 absent: EMA kept
  CHECK(b.loss_ema()[0] == doctest::Approx(2.0));
  CHECK(b.loss_ema()[1] == doctest::Approx(2.0));
  b.observe_losses({2, 4});  // EMA (2, 3)
  const double e = std::exp(1.0), y0 = 2 / (1 + e), y1 = 2 * e / (1 + e);
  CHECK(b.loss_scale()[1] == doctest::Approx(y1).epsilon(1e-14));
  b.update({{1, 0}, {1, 0}});  // w_k ∝ 0.5 exp(y_k^2 * 1)
  CHECK(b.weights()[1] == doctest::Approx(std::exp(y1 * y1) / (std::exp(y0 * y0) + std::exp(y1 * y1))).epsilon(1e-14));

  // statistics EMA: the second update uses 0.5 * first + 0.5 * second raw estimates
  PikeOptions oe;
  oe.zeta1 = 1;
  oe.zeta2 = 0;
  oe.min_count = 0;
  oe.stats_ema = 0.5;
  Pike pe(2, 10, oe);
  pe.update({{2, 0}, {0, 0}});  // w ∝ (e^2, 1)
  pe.update({{-2, 0}, {1, 0}});  // smoothed (0, 0.5): w ∝ (e^2, e^0.5)
  CHECK(pe.smoothed_stats()[1].sq_norm == doctest::Approx(0.5));
  CHECK(pe.last_stats()[0].sq_norm == -2.0);
  CHECK(pe.weights()[0] == doctest::Approx(std::exp(2.0) / (std::exp(2.0) + std::exp(0.5))).epsilon(1e-14));

  PikeOptions bad;
  bad.T0 = 0;
  CHECK_THROWS_AS(Pike(2, 10, bad), Error);
  bad = PikeOptions{};
  bad.min_count = 6;
  CHECK_THROWS_AS(Pike(2, 10, bad), Error);  // 2 * 6 > 10
}

TEST_CASE("pike: the sampler driven by PiKE gives the requested counts; weights stay on the simplex") {
  const int K = 5;
  const int64_t b = 23;
  PikeOptions o;
  o.T0 = 1;
  o.zeta1 = 0.7;
  o.zeta2 = 0.3;
  o.min_count = 2;
  Pike p(K, b, o);
  data::MixtureSampler sampler({50, 7, 120, 31, 9}, b, p.weights(), 3);
  manual_seed(5);
  for (int t = 0; t < 300; ++t) {
    sampler.set_weights(p.weights());
    auto d = sampler.next();
    int64_t total = 0;
    for (int k = 0; k < K; ++k) {
      total += d.counts[size_t(k)];
      CHECK(int64_t(d.indices[size_t(k)].size()) == d.counts[size_t(k)]);
      CHECK(d.counts[size_t(k)] >= o.min_count);
      CHECK(std::abs(double(d.counts[size_t(k)]) - double(b) * p.weights()[size_t(k)]) < 1.0);
      for (int64_t i : d.indices[size_t(k)]) CHECK((i >= 0 && i < sampler.source_sizes()[size_t(k)]));
    }
    CHECK(total == b);
    // random statistics with task-dependent scale (task 0 strong signal, task 4 noisy)
    auto r = Tensor::rand({K, 2}, DType::f64).to_vector<double>();
    std::vector<GradStats> st;
    for (int k = 0; k < K; ++k) st.push_back({r[size_t(2 * k)] * (k == 0 ? 3 : 1) - 0.2, r[size_t(2 * k + 1)] * (k == 4 ? 40 : 5)});
    p.update(st);
    double s = 0;
    for (double w : p.weights()) {
      CHECK(std::isfinite(w));
      CHECK(w >= 2.0 / b - 1e-12);
      s += w;
    }
    CHECK(s == doctest::Approx(1.0).epsilon(1e-12));
  }
  CHECK(p.weights()[0] > p.weights()[4]);  // the strong, quiet task is favoured
}

TEST_CASE("mixing: baseline strategies' weights and the factory") {
  MixingOptions o;
  o.K = 3;
  o.batch = 12;
  o.sizes = {1, 4, 16};
  o.temperature = 2;
  o.seed = 9;
  CHECK(make_mixing_strategy("mix", o)->weights(5) == std::vector<double>(3, 1.0 / 3));
  auto rr = make_mixing_strategy("round_robin", o);
  CHECK(rr->weights(0) == std::vector<double>{1, 0, 0});
  CHECK(rr->weights(4) == std::vector<double>{0, 1, 0});
  CHECK(rr->weights(5) == std::vector<double>{0, 0, 1});
  auto pr = make_mixing_strategy("proportional", o)->weights(0);
  CHECK(pr[0] == doctest::Approx(1.0 / 21));
  CHECK(pr[2] == doctest::Approx(16.0 / 21));
  auto te = make_mixing_strategy("temperature", o)->weights(0);  // sqrt: 1, 2, 4 -> /7
  CHECK(te[0] == doctest::Approx(1.0 / 7).epsilon(1e-14));
  CHECK(te[1] == doctest::Approx(2.0 / 7).epsilon(1e-14));
  CHECK(temperature_weights({1e300, 1e300}, 0.01) == std::vector<double>{0.5, 0.5});  // no overflow
  // random: one-hot, reproducible, every task drawn, frequencies near 1/K
  auto r1 = make_mixing_strategy("random", o), r2 = make_mixing_strategy("random", o);
  std::vector<int> hits(3, 0);
  for (int t = 0; t < 3000; ++t) {
    auto w = r1->weights(t);
    CHECK(w == r2->weights(t));
    CHECK(sum(w) == 1.0);
    for (int k = 0; k < 3; ++k) hits[size_t(k)] += w[size_t(k)] == 1.0;
  }
  for (int h : hits) CHECK(std::abs(h - 1000) < 100);
  o.fixed_weights = {2, 1, 1};
  CHECK(make_mixing_strategy("fixed", o)->weights(0) == std::vector<double>{0.5, 0.25, 0.25});
  auto pk = make_mixing_strategy("pike", o);  // starts from the given weights (floor 2/12 holds)
  CHECK(pk->weights(0)[0] == doctest::Approx(0.5));
  CHECK(pk->pike() != nullptr);
  CHECK(!pk->pike()->options().balanced);
  CHECK(make_mixing_strategy("balanced_pike", o)->pike()->options().balanced);
  CHECK(make_mixing_strategy("mix", o)->loss_scale() == std::vector<double>{1, 1, 1});
  try {
    make_mixing_strategy("doremii", o);
    FAIL("unknown name accepted");
  } catch (const Error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("doremii") != std::string::npos);
    CHECK(msg.find("round_robin") != std::string::npos);
    CHECK(msg.find("balanced_pike") != std::string::npos);
  }
  o.sizes = {1, 2};
  CHECK_THROWS_AS(make_mixing_strategy("proportional", o), Error);  // 2 sizes for 3 tasks
  o.fixed_weights = {1, 1};
  CHECK_THROWS_AS(make_mixing_strategy("fixed", o), Error);
}

// ---- text domains and the mixed-batch trainer ----

namespace {
std::string temp_dir(const std::string& name) {
  std::string leaf = "polyhead_test_pike_";
  leaf += name;
  auto p = std::filesystem::temp_directory_path() / leaf;
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p.string();
}
void write_file(const std::filesystem::path& p, const std::string& s) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << s;
}
std::string text_of(int seed, size_t n) {  // deterministic pseudo-text
  std::string s;
  uint64_t x = uint64_t(seed) * 2654435761u + 1;
  while (s.size() < n) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    s.push_back(char('a' + (x >> 60) % 8 + seed));
    if ((x >> 40) % 9 == 0) s.push_back(' ');
  }
  return s;
}
}  // namespace

TEST_CASE("pike: fixed validation windows (hand-computed starts)") {
  Tensor v = data::text_to_bytes("abcdefghij");  // L = 10
  auto w = fixed_windows(v, 3, 3);                // starts 0, 3, 6 (span = 10 - 3 - 1 = 6)
  auto x = w.x.to_vector<int64_t>(), y = w.y.to_vector<int64_t>();
  CHECK(x == std::vector<int64_t>{'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'});
  CHECK(y == std::vector<int64_t>{'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'});
  CHECK_THROWS_AS(fixed_windows(v, 10, 2), Error);  // no room for a window of 11 bytes
}

TEST_CASE("pike: corpus and repository domains load, split and validate") {
  const std::string dir = temp_dir("corpus");
  write_file(std::filesystem::path(dir) / "xx" / "b.txt", text_of(1, 6000));
  write_file(std::filesystem::path(dir) / "xx" / "a.txt", text_of(2, 5000));
  write_file(std::filesystem::path(dir) / "yy" / "man.txt", text_of(3, 9000));
  CHECK(corpus_available(dir));
  DomainOptions o;
  o.max_bytes = 10000;
  auto d = load_corpus_domains(dir, o);
  REQUIRE(d.size() == 2);
  CHECK(d[0].name == "xx");
  CHECK(d[0].files == 2);
  // a.txt first (sorted), capped at 10000 bytes, 10% held out
  CHECK(d[0].train.numel() + d[0].val.numel() == 10000);
  CHECK(d[0].val.numel() == 1000);
  CHECK(data::bytes_to_text(d[0].train.narrow(0, 0, 20)) == text_of(2, 5000).substr(0, 20));
  CHECK(load_corpus_domains(dir, o, {"yy", "xx"})[0].name == "yy");
  CHECK_THROWS_AS(load_corpus_domains(dir, o, {"zz", "xx"}), Error);
  CHECK_THROWS_AS(load_corpus_domains(temp_dir("empty"), o), Error);
  o.min_bytes = 20000;
  CHECK_THROWS_AS(load_corpus_domains(dir, o), Error);  // domains too small

  const std::string repo = temp_dir("repo");
  write_file(std::filesystem::path(repo) / "CMakeLists.txt", text_of(4, 5000));
  write_file(std::filesystem::path(repo) / "engine" / "a.cpp", text_of(5, 5000));
  write_file(std::filesystem::path(repo) / "mtl" / "README.md", text_of(6, 5000));
  write_file(std::filesystem::path(repo) / "tests" / "x.py", text_of(7, 5000));
  write_file(std::filesystem::path(repo) / "build-x" / "junk.cpp", text_of(8, 5000));  // skipped
  auto r = load_repository_domains(repo, DomainOptions{});
  REQUIRE(r.size() == 4);
  CHECK(r[0].name == "cpp");
  CHECK(r[0].files == 1);
  CHECK(r[2].name == "build");
  CHECK(r[3].files == 1);
  CHECK_THROWS_AS(load_repository_domains(dir, DomainOptions{}), Error);  // not a repository
}

TEST_CASE("pike: a statistics step trains exactly like a plain Mix step (gradient assembled from halves)") {
  std::vector<TextDomain> doms;
  DomainOptions o;
  for (int k = 0; k < 3; ++k) {
    Tensor all = data::text_to_bytes(text_of(k, 8000));
    TextDomain d;
    d.name = std::string(1, char('a' + k));
    d.train = all.narrow(0, 0, 7000).contiguous();
    d.val = all.narrow(0, 7000, 1000).contiguous();
    doms.push_back(d);
  }
  MixedLMConfig c;
  c.gpt = {256, 16, 16, 1, 2};
  c.batch = 12;
  c.steps = 2;
  c.warmup = 0;
  c.lr = 1e-3;
  c.eval_every = 1;
  c.eval_windows = 4;
  MixingOptions mo;
  mo.K = 3;
  mo.batch = 12;
  mo.pike.T0 = 1;  // statistics (and a weight update) on every step
  mo.pike.zeta1 = 1e-12;  // weights stay uniform to 1e-10, so both runs draw the same batches
  mo.pike.zeta2 = 0;
  auto mix = make_mixing_strategy("mix", mo), pike = make_mixing_strategy("pike", mo);
  MixedLMResult a = train_mixed_lm(doms, *mix, c), b = train_mixed_lm(doms, *pike, c);
  REQUIRE(b.stats_steps == std::vector<int64_t>{0, 1});
  CHECK(a.stats_steps.empty());
  for (int k = 0; k < 3; ++k) {
    CHECK(a.tokens[size_t(k)] == 2 * 4 * 16);
    CHECK(std::abs(a.val_loss[2][size_t(k)] - a.val_loss[0][size_t(k)]) > 1e-3);  // training moved the loss
    CHECK(b.val_loss[2][size_t(k)] == doctest::Approx(a.val_loss[2][size_t(k)]).epsilon(1e-5));
    CHECK(b.stats[0][size_t(k)].variance > 0);
    CHECK(b.weights[1][size_t(k)] == doctest::Approx(1.0 / 3).epsilon(1e-9));
  }
  // the wrong number of tasks is refused
  mo.K = 2;
  auto two = make_mixing_strategy("mix", mo);
  CHECK_THROWS_AS(train_mixed_lm(doms, *two, c), Error);
}

TEST_SUITE_END();
