// tests/mtl/test_doremi.cpp: DoReMi's domain weights (mtl/mixing/doremi.h): the per-token clipped
// excess loss and the exponentiated, smoothed update on hand-computed values, the running average,
// the simplex over many random updates, the proxy's training loss sum_k alpha_k L_k (and its
// gradient) against a direct per-domain computation on a tiny model, the strategy by name, and the
// three phases end to end on tiny domains.
#include <doctest/doctest.h>

#include <cmath>
#include <numeric>
#include <string>

#include "autograd/variable.h"
#include "data/text.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "engine/rng.h"
#include "mtl/mixing/doremi.h"
#include "mtl/mixing/mixing_schedules.h"
#include "mtl/mixing/mixing_trainer.h"

using namespace polyhead;
using namespace polyhead::mtl;
using polyhead::ag::Variable;
using namespace polyhead::mtl::mixing;

TEST_SUITE_BEGIN("doremi");

namespace {

double total(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0); }

std::string doremi_text(int seed, size_t n) {  // deterministic pseudo-text, a different alphabet per seed
  std::string s;
  uint64_t x = 0x9e3779b97f4a7c15ULL * uint64_t(seed + 1);
  for (size_t i = 0; i < n; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    const int r = int((x >> 33) % 20);
    s += r < 3 ? ' ' : char('a' + 6 * seed + r % 9);
  }
  return s;
}

}  // namespace

TEST_CASE("doremi: excess loss is the per-token clipped difference, averaged per domain (hand-computed)") {
  // domains of 2, 3, 1 and 0 tokens
  const std::vector<float> proxy{1.0f, 2.0f, 0.5f, 3.0f, 1.0f, 2.0f};
  const std::vector<float> ref{1.5f, 1.0f, 1.0f, 1.0f, 1.0f, 2.5f};
  const auto l = excess_losses(proxy, ref, {2, 3, 1, 0});
  REQUIRE(l.size() == 4);
  CHECK(l[0] == doctest::Approx((0.0 + 1.0) / 2));        // -0.5 clipped to 0
  CHECK(l[1] == doctest::Approx((0.0 + 2.0 + 0.0) / 3));  // 2/3, not the clipped mean (-0.5 + 2 + 0) / 3 = 0.5
  CHECK(l[2] == 0.0);                                     // all below the reference
  CHECK(l[3] == 0.0);                                     // absent domain
  CHECK_THROWS_AS(excess_losses(proxy, ref, {2, 3}), Error);  // counts cover 5 of 6 tokens
  CHECK_THROWS_AS(excess_losses(proxy, {1.0f}, {6}), Error);
  CHECK_THROWS_AS(excess_losses({NAN}, {1.0f}, {1}), Error);
}

TEST_CASE("doremi: exponentiated update, smoothing and the average (hand-computed)") {
  DoremiOptions o;
  o.eta = 1;
  o.smoothing = 0.1;
  Doremi d(3, o);
  CHECK(d.alpha() == std::vector<double>(3, 1.0 / 3));
  CHECK(d.average() == std::vector<double>(3, 1.0 / 3));  // no step yet: the prior
  // step 1: lambda = (0, ln 2, ln 4): alpha' = (1, 2, 4) / 7; alpha = 0.9 alpha' + 0.1 / 3
  d.update({0.0, std::log(2.0), std::log(4.0)});
  const std::vector<double> a1{0.9 / 7 + 0.1 / 3, 1.8 / 7 + 0.1 / 3, 3.6 / 7 + 0.1 / 3};  // (17, 30.5, 57.5) / 105
  for (int k = 0; k < 3; ++k) CHECK(d.alpha()[size_t(k)] == doctest::Approx(a1[size_t(k)]).epsilon(1e-13));
  // step 2: lambda = (ln 3, 0, 0): alpha1 * (3, 1, 1) = (51, 30.5, 57.5) / 105, sum 139 / 105
  d.update({std::log(3.0), 0.0, 0.0});
  const std::vector<double> a2{0.9 * 51 / 139 + 0.1 / 3, 0.9 * 30.5 / 139 + 0.1 / 3, 0.9 * 57.5 / 139 + 0.1 / 3};
  for (int k = 0; k < 3; ++k) CHECK(d.alpha()[size_t(k)] == doctest::Approx(a2[size_t(k)]).epsilon(1e-13));
  CHECK(d.steps() == 2);
  const auto avg = d.average();  // mean over the two steps' alphas
  for (int k = 0; k < 3; ++k)
    CHECK(avg[size_t(k)] == doctest::Approx((a1[size_t(k)] + a2[size_t(k)]) / 2).epsilon(1e-13));

  // eta scales the exponent: eta 2 with lambda ln 2 equals eta 1 with lambda ln 4
  DoremiOptions o2 = o;
  o2.eta = 2;
  Doremi e(3, o2);
  e.update({0.0, std::log(2.0) / 2, std::log(2.0)});
  for (int k = 0; k < 3; ++k) CHECK(e.alpha()[size_t(k)] == doctest::Approx(a1[size_t(k)]).epsilon(1e-13));
}

TEST_CASE("doremi: smoothing towards a non-uniform prior; zero excess keeps alpha at the prior") {
  DoremiOptions o;
  o.smoothing = 0.2;
  Doremi d(2, o, {3.0, 1.0});  // normalised to (0.75, 0.25)
  CHECK(d.prior()[0] == doctest::Approx(0.75));
  d.update({0.0, 0.0});
  CHECK(d.alpha()[0] == doctest::Approx(0.75).epsilon(1e-14));  // fixed point
  // lambda = (0, ln 3): alpha' = (0.75, 0.75) / 1.5 = (0.5, 0.5); alpha = 0.8 * 0.5 + 0.2 * (0.75, 0.25)
  d.update({0.0, std::log(3.0)});
  CHECK(d.alpha()[0] == doctest::Approx(0.4 + 0.15).epsilon(1e-14));
  CHECK(d.alpha()[1] == doctest::Approx(0.4 + 0.05).epsilon(1e-14));
  CHECK(d.average()[0] == doctest::Approx((0.75 + 0.55) / 2).epsilon(1e-14));
  // a huge excess loss concentrates the mass but the smoothing keeps c * u_k
  d.update({1e4, 0.0});
  CHECK(d.alpha()[1] == doctest::Approx(0.2 * 0.25).epsilon(1e-12));
  // bad input
  CHECK_THROWS_AS(d.update({-1.0, 0.0}), Error);
  CHECK_THROWS_AS(d.update({NAN, 0.0}), Error);
  CHECK_THROWS_AS(d.update({0.0}), Error);
  CHECK_THROWS_AS(Doremi(2, o, {1.0, 1.0, 1.0}), Error);
  DoremiOptions bad;
  bad.eta = 0;
  CHECK_THROWS_AS(Doremi(2, bad), Error);
  bad = {};
  bad.smoothing = 1.5;
  CHECK_THROWS_AS(Doremi(2, bad), Error);
}

TEST_CASE("doremi: weights stay on the simplex over many random updates, and above c * u_k") {
  Generator g(123);
  for (int rep = 0; rep < 5; ++rep) {
    DoremiOptions o;
    o.eta = 0.1 + 3.0 * g.uniform();
    o.smoothing = rep == 0 ? 0.0 : 1e-3 * rep;
    const int K = 2 + rep;
    Doremi d(K, o);
    std::vector<double> sum(size_t(K), 0.0);
    for (int t = 0; t < 2000; ++t) {
      std::vector<double> lambda;
      for (int k = 0; k < K; ++k) lambda.push_back(20.0 * g.uniform());
      const auto& a = d.update(lambda);
      CHECK(total(a) == doctest::Approx(1.0).epsilon(1e-12));
      for (int k = 0; k < K; ++k) {
        CHECK(std::isfinite(a[size_t(k)]));
        CHECK(a[size_t(k)] >= o.smoothing / K * (1 - 1e-12));
        sum[size_t(k)] += a[size_t(k)];
      }
    }
    const auto avg = d.average();
    CHECK(total(avg) == doctest::Approx(1.0).epsilon(1e-12));
    for (int k = 0; k < K; ++k) CHECK(avg[size_t(k)] == doctest::Approx(sum[size_t(k)] / 2000).epsilon(1e-9));
  }
}

TEST_CASE("doremi: the proxy's Mix-batch loss is sum_k alpha_k L_k (tiny model, direct per-domain computation)") {
  const zoo::GPTConfig gc{256, 8, 16, 1, 2};
  manual_seed(5);
  auto proxy = make_byte_lm(gc);
  proxy->flatten();
  manual_seed(6);
  auto ref = make_byte_lm(gc);
  // a batch of 2 + 1 + 3 windows (unequal counts exercise scale_k = alpha_k b / b_k)
  const std::vector<int64_t> counts{2, 1, 3};
  const int64_t b = 6, T = gc.block;
  std::vector<Tensor> xs, ys;
  for (int k = 0; k < 3; ++k) {
    Tensor bytes = data::text_to_bytes(doremi_text(k, size_t(counts[size_t(k)] * T + 1)));
    std::vector<Tensor> xk, yk;
    for (int64_t i = 0; i < counts[size_t(k)]; ++i) {
      xk.push_back(bytes.narrow(0, i * T, T).reshape({1, T}).to(DType::i64));
      yk.push_back(bytes.narrow(0, i * T + 1, T).reshape({1, T}).to(DType::i64));
    }
    xs.push_back(ops::cat(xk, 0));
    ys.push_back(ops::cat(yk, 0));
  }
  const Tensor x = ops::cat(xs, 0), y = ops::cat(ys, 0);
  ReferenceLosses rl = [&](const Tensor& bx, const Tensor& by) {
    ag::NoGradGuard ng;
    return lm_token_losses(*ref, bx, by).data().to_vector<float>();
  };
  DoremiOptions o;
  o.smoothing = 0.05;
  DoremiProxyStrategy st(3, o, {}, rl);
  CHECK(st.wants_batch_losses());
  CHECK(st.weights(0) == std::vector<double>(3, 1.0 / 3));

  // the trainer's path: one forward on the grouped batch, the DoReMi step, the weighted loss
  proxy->zero_grad();
  Variable ce = lm_token_losses(*proxy, x, y);
  st.observe_batch(0, x, y, counts, ce.data().to_vector<float>());
  Variable loss = mix_batch_loss(ce, counts, st.loss_scale(), b, T);
  loss.backward();
  const std::vector<float> g_batch = proxy->flat_gradients().to_vector<float>();

  // direct: per-domain forwards, lambda_k by hand, one update from the prior, sum_k alpha_k L_k
  std::vector<double> lambda, L;
  std::vector<Variable> Lvar;
  for (int k = 0; k < 3; ++k) {
    Variable ck = lm_token_losses(*proxy, xs[size_t(k)], ys[size_t(k)]);
    std::vector<float> r;
    {
      ag::NoGradGuard ng;
      r = lm_token_losses(*ref, xs[size_t(k)], ys[size_t(k)]).data().to_vector<float>();
    }
    const std::vector<float> p = ck.data().to_vector<float>();
    double s = 0;
    for (size_t i = 0; i < p.size(); ++i) s += std::max(double(p[i]) - double(r[i]), 0.0);
    lambda.push_back(s / double(p.size()));
    Lvar.push_back(ag::mean(ck));
    L.push_back(Lvar.back().item());
  }
  Doremi d(3, o);
  const auto alpha = d.update(lambda);
  for (int k = 0; k < 3; ++k) {
    CHECK(st.state().alpha()[size_t(k)] == doctest::Approx(alpha[size_t(k)]).epsilon(1e-5));
    CHECK(st.excess()[0][size_t(k)] == doctest::Approx(lambda[size_t(k)]).epsilon(1e-5));
    CHECK(lambda[size_t(k)] > 0);  // an untrained proxy vs a different untrained reference: some tokens above
  }
  double direct = 0;
  for (int k = 0; k < 3; ++k) direct += alpha[size_t(k)] * L[size_t(k)];
  CHECK(loss.item() == doctest::Approx(direct).epsilon(1e-5));
  // the gradients agree too
  proxy->zero_grad();
  Variable dl = ag::add(ag::add(ag::mul_scalar(Lvar[0], alpha[0]), ag::mul_scalar(Lvar[1], alpha[1])),
                        ag::mul_scalar(Lvar[2], alpha[2]));
  dl.backward();
  const std::vector<float> g_direct = proxy->flat_gradients().to_vector<float>();
  REQUIRE(g_direct.size() == g_batch.size());
  double diff = 0, norm = 0;
  for (size_t i = 0; i < g_batch.size(); ++i) {
    diff += (double(g_batch[i]) - g_direct[i]) * (double(g_batch[i]) - g_direct[i]);
    norm += double(g_direct[i]) * g_direct[i];
  }
  CHECK(norm > 0);
  CHECK(std::sqrt(diff / norm) < 1e-4);
  CHECK(st.trajectory().size() == 1);
}

TEST_CASE("doremi: the strategy by name needs its weights; the unknown-name error lists it") {
  MixingOptions mo;
  mo.K = 3;
  mo.batch = 12;
  CHECK_THROWS_AS(make_mixing_strategy("doremi", mo), Error);
  mo.fixed_weights = {1, 2, 1};
  auto s = make_mixing_strategy("doremi", mo);
  CHECK(s->name() == "doremi");
  CHECK(s->weights(7) == std::vector<double>{0.25, 0.5, 0.25});
  CHECK_FALSE(s->wants_batch_losses());
  try {
    make_mixing_strategy("doremii", mo);
    FAIL("no error for an unknown name");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("doremi") != std::string::npos);
    CHECK(e.hint().find("doremi") != std::string::npos);
  }
}

TEST_CASE("doremi: the three phases on tiny domains (weights = average alpha, token count, reference frozen)") {
  std::vector<TextDomain> doms;
  for (int k = 0; k < 3; ++k) {
    Tensor all = data::text_to_bytes(doremi_text(k, 6000));
    TextDomain d;
    d.name = std::string(1, char('a' + k));
    d.train = all.narrow(0, 0, 5000).contiguous();
    d.val = all.narrow(0, 5000, 1000).contiguous();
    doms.push_back(d);
  }
  MixedLMConfig c;
  c.gpt = {256, 16, 16, 1, 2};
  c.batch = 6;
  c.steps = 5;
  c.warmup = 0;
  c.eval_every = 5;
  c.eval_windows = 4;
  DoremiOptions o;
  o.reference_steps = 4;
  o.proxy_steps = 3;
  DoremiResult r = run_doremi(doms, c, o);
  CHECK(r.reference.weights.size() == 4);
  CHECK(r.proxy.weights.size() == 3);
  CHECK(r.tokens == (4 + 3) * 6 * 16);
  REQUIRE(r.trajectory.size() == 3);
  REQUIRE(r.excess.size() == 3);
  CHECK(total(r.weights) == doctest::Approx(1.0).epsilon(1e-12));
  for (int k = 0; k < 3; ++k) {
    double m = 0;
    for (const auto& a : r.trajectory) m += a[size_t(k)] / 3;
    CHECK(r.weights[size_t(k)] == doctest::Approx(m).epsilon(1e-12));
    CHECK(r.proxy.weights[0][size_t(k)] == doctest::Approx(1.0 / 3));  // uniform Mix batches for the proxy
    CHECK(r.excess[0][size_t(k)] > 0);  // the fresh proxy is worse than the trained reference
  }
  // the reference was not trained further by the proxy phase: its validation loss is reproduced
  const std::vector<double> before = r.reference.final_val();
  for (int k = 0; k < 3; ++k) {
    Windows w = fixed_windows(doms[size_t(k)].val, 16, 4);
    ag::NoGradGuard ng;
    const double now = ops::mean(lm_token_losses(*r.reference.model, w.x, w.y).data().to(DType::f64)).item();
    CHECK(now == doctest::Approx(before[size_t(k)]).epsilon(1e-5));
  }
  // the main run with the weights
  MixingOptions mo;
  mo.K = 3;
  mo.batch = 6;
  mo.fixed_weights = r.weights;
  auto main_run = make_mixing_strategy("doremi", mo);
  MixedLMResult m = train_mixed_lm(doms, *main_run, c);
  CHECK(m.strategy == "doremi");
  CHECK(m.weights[0][0] == doctest::Approx(r.weights[0]).epsilon(1e-12));
}

TEST_SUITE_END();
