// tests/mtl/test_coba.cpp: CoBa's formulas on hand-computed values, the golden vector of the spec
// (seed-methods.md section 2, a transcription of MFTCoder's CoBaStatus; the full-precision values
// below come from running that transcription in float64 with PyTorch), the paper variant, the
// state round trip, and the trainer's validation-loss hook.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "autograd/variable.h"
#include "engine/ops.h"
#include "engine/rng.h"
#include "layers/optim/sgd.h"
#include "mtl/method.h"
#include "mtl/methods/coba.h"
#include "mtl/trainer.h"
#include "mtl/zoo.h"

using namespace polyhead;
using namespace polyhead::mtl;

namespace {

using Vec = std::vector<double>;

// |a_i - b_i| <= tol max(1, |b_i|)
void check_vec(const Vec& a, const Vec& b, double tol) {
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CAPTURE(i);
    CHECK(std::abs(a[i] - b[i]) <= tol * std::max(1.0, std::abs(b[i])));
  }
}
void check_abs(const Vec& a, const Vec& b, double tol) {
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CAPTURE(i);
    CHECK(std::abs(a[i] - b[i]) <= tol);
  }
}

// The spec's vector: normalized validation loss at sample s.
Vec sample(int s) {
  return {1 - 0.02 * s, 1 - 0.005 * s, s <= 6 ? 1 - 0.03 * s : 0.82 + 0.04 * (s - 6)};
}

// One step of the method at step t: L_val is the model's validation loss at step t, which the
// code's history records as sample t-1 (l0 = 1 at t = 0).
StepOutput step_at(Method& m, int t, double scale = 1.0) {
  StepInput in;
  in.K = 3;
  in.L = {1, 1, 1};
  in.L_val = t == 0 ? Vec{1, 1, 1} : sample(t - 1);
  for (double& v : in.L_val) v *= scale;
  return m.step(in);
}

struct Row {
  int t;
  Vec alpha;
  double amax;
  Vec rcs, acs;
  double df;
  Vec omega;
};

// Float64 PyTorch run of the code transcription (K=3, W=4, H=6, tau=5, I=1).
const std::vector<Row> kGolden = {
    {4, {-0.02, -0.005, -0.03}, -0.005, {0.26001353157027046, 0.589288273341471, 0.15069819508825844},
     {1 / 3.0, 1 / 3.0, 1 / 3.0}, 1.0, {0.2269741926776636, 0.6095131645900342, 0.16351264273230218}},
    {8, {-0.02, -0.005, -0.02}, -0.005, {0.2119415576170864, 0.5761168847658296, 0.21194155761708405},
     {0.35986746732333164, 0.3598674673233313, 0.2802650653533372}, 1.0,
     {0.20073079939767516, 0.5985384012046536, 0.2007307993976711}},
    {9, {-0.02, -0.005, -0.004}, -0.005, {0.09129433083412526, 0.4308727615868236, 0.4778329075790512},
     {0.40659896721706007, 0.4065989672170834, 0.18680206556585646}, 1.0,
     {0.1437112513296509, 0.398035572579707, 0.4582531760906421}},
    {10, {-0.02, -0.005, 0.014}, -0.005, {0.05604489849252465, 0.17768268344194255, 0.7662724180655328},
     {0.47129493065691, 0.47129493065689215, 0.05741013868619783}, 1.0,
     {0.09207253949976948, 0.1326202915121731, 0.7753071689880573}},
    {11, {-0.02, -0.005, 0.03}, -0.0007142857142855563, {0.05388656170711051, 0.12212717820075818, 0.8239862600921314},
     {0.48628289809147757, 0.4862828980914932, 0.027434203817029146}, 0.009394380431073728,
     {0.44183838603577563, 0.44268896272336344, 0.11547265124086097}},
    {12, {-0.02, -0.005, 0.04}, 0.008285714285713966, {0.05278525464339111, 0.1054819212739522, 0.8417328240826567},
     {0.47888988970747776, 0.47888988970746776, 0.04222022058505432}, 1.6118462966091073e-06,
     {0.44056366986134965, 0.44056378212436687, 0.11887254801428346}},
};

std::unique_ptr<Method> golden_method(Options extra = {}) {
  Options o{{"warmup", "4"}, {"history", "6"}, {"tau", "5"}};
  for (auto& [k, v] : extra.items()) o.set(k, v);
  return make_method("coba", 3, o);
}

}  // namespace

TEST_CASE("coba: window slope, RCS, ACS and DF on hand-computed values") {
  CHECK(coba::window_slope(0, Vec{3, 5, 7}) == doctest::Approx(2.0));
  CHECK(coba::window_slope(17, Vec{3, 5, 7}) == doctest::Approx(2.0));        // x0 does not matter
  CHECK(coba::window_slope(0, Vec{1, 0, 2, 4}) == doctest::Approx(1.5));      // zero dropped, x = 0,1,2
  CHECK(coba::window_slope(0, Vec{2, 0}) == 0.0);                             // fewer than 2 points
  CHECK(coba::window_slope(0, Vec{}) == 0.0);
  // y = 1, 2, 2, 5 on x = 0..3: slope = sum (x - 1.5)(y - 2.5) / 5 = (2.25 + 0.25 - 0.25 + 3.75) / 5
  CHECK(coba::window_slope(4, Vec{1, 2, 2, 5}) == doctest::Approx(6.0 / 5).epsilon(1e-14));

  // RCS: 3 alpha / 0.045 = (-4/3, -1/3, -4/3): weights 1/(2+e), e/(2+e), 1/(2+e)
  const double e = std::exp(1.0);
  check_vec(coba::rcs(Vec{-0.02, -0.005, -0.02}), {1 / (2 + e), e / (2 + e), 1 / (2 + e)}, 1e-14);
  check_vec(coba::rcs(Vec{0, 0}), {0.5, 0.5}, 0);

  // ACS: alpha = (-1, 2); task 0 past (-1, -1): logit -2 (-1) / 2 = 1; task 1 past (1, 2): -2 * 2 / 3
  {
    auto a = coba::acs(Vec{-1, 2}, {{-1, -1}, {1, 2}});
    const double z1 = std::exp(1.0), z2 = std::exp(-4.0 / 3.0);
    check_vec(a, {z1 / (z1 + z2), z2 / (z1 + z2)}, 1e-14);
    auto b = coba::acs(Vec{0, 2}, {{0, 0}, {2}});  // task 0: all-zero past -> logit 0; task 1: -1
    check_vec(b, {1 / (1 + std::exp(-1.0)), std::exp(-1.0) / (1 + std::exp(-1.0))}, 1e-14);
  }

  // DF: constant -> 1; current slope the largest (rising) -> near 0; current steepest descent -> > 1
  CHECK(coba::divergence_factor(Vec{-1, -1, -1}, 5) == doctest::Approx(1.0).epsilon(1e-14));
  CHECK(coba::divergence_factor(Vec{0, 0}, 5) == 1.0);
  {
    // a = (-1, 1), M = 2, sum |a| = 2: logits 5 * (-a) = (5, -5); DF = 2 e^-5 / (e^5 + e^-5)
    const double df = 2 * std::exp(-5.0) / (std::exp(5.0) + std::exp(-5.0));
    CHECK(coba::divergence_factor(Vec{-1, 1}, 5) == doctest::Approx(df).epsilon(1e-13));
    // a = (-1, -3), sum 4: logits 5 * (-2 a / 4) = (2.5, 7.5); DF = 2 e^7.5 / (e^2.5 + e^7.5) > 1
    const double df2 = 2 * std::exp(7.5) / (std::exp(2.5) + std::exp(7.5));
    CHECK(coba::divergence_factor(Vec{-1, -3}, 5) == doctest::Approx(df2).epsilon(1e-13));
    CHECK(df2 > 1.9);
  }
}

TEST_CASE("coba: the spec's golden vector, step by step (code variant)") {
  auto m = golden_method();
  CHECK(m->needs() == kNeedValidationLosses);
  size_t g = 0;
  for (int t = 0; t <= 12; ++t) {
    CAPTURE(t);
    StepOutput o = step_at(*m, t);
    REQUIRE(o.reported.has_value());
    if (t < 4) {  // warm-up: omega = 1, the loss is the mean
      check_vec(o.w, {1 / 3.0, 1 / 3.0, 1 / 3.0}, 1e-15);
      check_vec(*o.reported, {1, 1, 1}, 0);
      continue;
    }
    const auto& c = coba::last_components(*m);
    CHECK(c.step == t);
    double s = 0;
    for (double w : *o.reported) s += w;
    CHECK(s == doctest::Approx(1.0).epsilon(1e-14));
    check_abs(o.w, *o.reported, 1e-15);
    if (g < kGolden.size() && kGolden[g].t == t) {
      const Row& r = kGolden[g++];
      check_abs(c.alpha, r.alpha, 1e-12);
      CHECK(std::abs(c.alpha_max - r.amax) <= 1e-12);
      check_abs(c.rcs, r.rcs, 1e-10);
      check_abs(c.acs, r.acs, 1e-10);
      CHECK(std::abs(c.df - r.df) <= 1e-9);
      check_abs(c.omega, r.omega, 1e-9);
      check_abs(*o.reported, r.omega, 1e-9);
    }
  }
  CHECK(g == kGolden.size());
}

TEST_CASE("coba: normalization by the first validation loss makes the weights scale-free") {
  auto a = golden_method(), b = golden_method();
  for (int t = 0; t <= 12; ++t) {
    auto oa = step_at(*a, t), ob = step_at(*b, t, 7.5);
    check_abs(oa.w, ob.w, 1e-12);
  }
}

TEST_CASE("coba: the weight floor, alpha_max = max_of_slopes, and the options' checks") {
  {
    // min_weight 0.1: at t = 10 the smallest weight (0.0921) is below it: omega (1 - 0.3) + 0.1
    auto m = golden_method({{"min_weight", "0.1"}});
    for (int t = 0; t <= 10; ++t) {
      auto o = step_at(*m, t);
      if (t == 8) check_abs(*o.reported, kGolden[1].omega, 1e-9);  // min 0.2007: unchanged
      if (t == 10) {
        Vec want = kGolden[3].omega;
        for (double& w : want) w = 0.7 * w + 0.1;
        check_abs(*o.reported, want, 1e-9);
      }
    }
  }
  {
    auto m = golden_method({{"alpha_max", "max_of_slopes"}});
    Vec amax;
    for (int t = 0; t <= 10; ++t) {
      step_at(*m, t);
      if (t >= 4) amax.push_back(coba::last_components(*m).alpha_max);
    }
    // max_k alpha_k: -0.005 until the third task's slope exceeds it (t = 9: -0.004, t = 10: 0.014)
    check_abs(amax, {-0.005, -0.005, -0.005, -0.005, -0.005, -0.004, 0.014}, 1e-12);
    CHECK(coba::last_components(*m).df == doctest::Approx(coba::divergence_factor(amax, 5)).epsilon(1e-14));
    CHECK(coba::last_components(*m).df < 1e-3);  // caught two updates earlier than slope_of_max
  }
  CHECK_THROWS_WITH_AS(make_method("coba", 3, {{"warmup", "10"}, {"history", "5"}}), doctest::Contains("history"), Error);
  CHECK_THROWS_WITH_AS(make_method("coba", 3, {{"variant", "fast"}}), doctest::Contains("paper"), Error);
  CHECK_THROWS_WITH_AS(make_method("coba", 3, {{"min_weight", "0.4"}}), doctest::Contains("min_weight"), Error);
  CHECK_THROWS_WITH_AS(make_method("coba", 3, {{"window", "3"}}), doctest::Contains("warmup"), Error);
  CHECK_THROWS_AS(make_method("coba", 3, {{"sharpen", "0"}}), Error);
  {
    auto m = make_method("coba", 2);
    StepInput in;
    in.K = 2;
    CHECK_THROWS_WITH_AS(m->step(in), doctest::Contains("validation_losses"), Error);
    in.L_val = {1.0, 0.0};
    CHECK_THROWS_WITH_AS(m->step(in), doctest::Contains("positive"), Error);
    in.L_val = {1.0, NAN};
    CHECK_THROWS_AS(m->step(in), Error);
  }
}

TEST_CASE("coba: DF above 1, its clamp, and the two ACS windows (paper variant)") {
  // K = 2, W = 2, H = 2. Samples s = 1, 2, 3: task 0 = 0.9, 0.8, 0.5; task 1 = 0.95, 0.9, 0.85.
  // At t = 4 the window holds s = 2, 3: alpha = (-0.3, -0.05); the max curve is task 1 throughout,
  // so alpha_max over the updates t = 2, 3, 4 is (0, -0.05, -0.05).
  const std::vector<Vec> s = {{1, 1}, {0.9, 0.95}, {0.8, 0.9}, {0.5, 0.85}};
  auto run = [&](Options o) {
    o.set("warmup", "2");
    o.set("history", "2");
    auto m = make_method("coba", 2, o);
    StepOutput out;
    for (int t = 0; t <= 4; ++t) {
      StepInput in;
      in.K = 2;
      in.L_val = t == 0 ? Vec{1, 1} : s[size_t(t - 1)];
      out = m->step(in);
    }
    return std::make_pair(std::move(m), *out.reported);
  };
  const double e75 = std::exp(7.5);
  const double df = 3 * e75 / (1 + 2 * e75);  // logits 5 (-3 a / 0.1) = (0, 7.5, 7.5)
  const double r0 = std::exp(2 * -0.3 / 0.35), r1 = std::exp(2 * -0.05 / 0.35);
  const Vec rcs{r0 / (r0 + r1), r1 / (r0 + r1)};
  auto [code, wc] = run({});
  const auto& cc = coba::last_components(*code);
  check_abs(cc.alpha, {-0.3, -0.05}, 1e-12);
  CHECK(cc.alpha_max == doctest::Approx(-0.05).epsilon(1e-12));
  CHECK(cc.df == doctest::Approx(df).epsilon(1e-12));
  CHECK(cc.df > 1.4);
  check_abs(cc.rcs, rcs, 1e-12);
  check_abs(cc.acs, {0.5, 0.5}, 1e-12);  // code window: only the update t = 4 (index >= t - H = 2)
  {
    Vec z{df * rcs[0] + (1 - df) * 0.5, df * rcs[1] + (1 - df) * 0.5};
    const double a = std::exp(2 * z[0]), b = std::exp(2 * z[1]);
    Vec want{a / (a + b), b / (a + b)};
    if (std::min(want[0], want[1]) < 0.05)
      for (double& w : want) w = 0.9 * w + 0.05;
    check_abs(wc, want, 1e-12);
  }
  auto [paper, wp] = run({{"variant", "paper"}});
  const auto& pc = coba::last_components(*paper);
  CHECK(pc.df == 1.0);  // clamped
  // paper window: the last H = 2 updates (t = 3, 4): task 0 (-0.1, -0.3): -2 (-0.3) / 0.4 = 1.5;
  // task 1 (-0.05, -0.05): -2 (-0.05) / 0.1 = 1
  const double a0 = std::exp(1.5), a1 = std::exp(1.0);
  check_abs(pc.acs, {a0 / (a0 + a1), a1 / (a0 + a1)}, 1e-12);
  check_abs(wp, rcs, 1e-12);  // DF = 1 and no sharpening: omega = RCS (min 0.165 > floor 0.05)
  // the options one at a time
  auto [clamped, wcl] = run({{"df_clamp", "1"}});
  CHECK(coba::last_components(*clamped).df == 1.0);
  {
    const double a = std::exp(2 * rcs[0]), b = std::exp(2 * rcs[1]);
    check_abs(wcl, {a / (a + b), b / (a + b)}, 1e-12);
  }
  auto [pw, wpw] = run({{"acs_window", "paper"}});
  check_abs(coba::last_components(*pw).acs, pc.acs, 1e-15);
}

TEST_CASE("coba: state() / load_state() resumes exactly, and update_interval") {
  for (const char* interval : {"1", "2"}) {
    CAPTURE(interval);
    auto a = golden_method({{"update_interval", interval}}), b = golden_method({{"update_interval", interval}});
    for (int t = 0; t <= 7; ++t) {
      step_at(*a, t);
      step_at(*b, t);
    }
    auto c = golden_method({{"update_interval", interval}});
    c->load_state(b->state());
    b.reset();
    for (int t = 8; t <= 12; ++t) {
      auto oa = step_at(*a, t), oc = step_at(*c, t);
      CHECK(oa.w == oc.w);
      CHECK(*oa.reported == *oc.reported);
    }
    auto sa = a->state(), sc = c->state();
    CHECK(sa.size() == sc.size());
    for (auto& [k, m] : sa) CHECK(sc.at(k).a == m.a);
  }
  {
    // I = 2: weights are updated at even steps only and kept in between
    auto m = golden_method({{"update_interval", "2"}});
    Vec prev;
    for (int t = 0; t <= 12; ++t) {
      auto o = step_at(*m, t);
      if (t >= 5 && t % 2 == 1) CHECK(*o.reported == prev);
      if (t >= 4 && t % 2 == 0) CHECK(coba::last_components(*m).step == t);
      prev = *o.reported;
    }
  }
  auto m = golden_method();
  CHECK_THROWS_AS(m->load_state({{"step", Mat(1, 1, 3.0)}}), Error);  // no omega / offset / l0
  CHECK_THROWS_AS(m->load_state({{"bogus", Mat(1, 1, 3.0)}}), Error);
}

namespace {
Batch toy_batch(int K, uint64_t seed) {
  manual_seed(seed);
  Batch b;
  b.x = Tensor::randn({16, 6});
  for (int k = 0; k < K; ++k) b.y.push_back(ops::mul_scalar(Tensor::rand({16}), 3.0 - 1e-6).to(DType::i64));
  return b;
}
// K validation losses of model m on a fixed batch.
std::vector<double> val_losses(MultiTaskModel& m, const Batch& vb) {
  auto outs = m.forward(ag::Variable(vb.x));
  std::vector<double> L;
  for (int k = 0; k < m.num_tasks(); ++k) L.push_back(m.task(k).compute_loss(outs[size_t(k)], vb.y[size_t(k)]).item());
  return L;
}
}  // namespace

TEST_CASE("trainer: the validation-loss hook (every val_every steps, eval mode, no gradients)") {
  const int K = 3;
  manual_seed(3);
  auto m = zoo::mlp_hps(K, 6, 8, 3);
  m->flatten();
  optim::SGD opt(*m, optim::SGDOptions(0.05));
  TrainerOptions to;
  to.method = "coba";
  CHECK_THROWS_WITH_AS(Trainer(*m, opt, to), doctest::Contains("validation_losses"), Error);
  Batch vb = toy_batch(K, 99);
  int calls = 0;
  bool saw_training = false, saw_grad = false;
  to.validation_losses = [&] {
    ++calls;
    saw_training = saw_training || m->is_training();
    saw_grad = saw_grad || ag::grad_mode_enabled();
    return val_losses(*m, vb);
  };
  to.val_every = 3;
  to.method_options = {{"warmup", "2"}, {"history", "4"}};
  Trainer tr(*m, opt, to);
  std::vector<double> last;
  for (int s = 0; s < 7; ++s) {
    CAPTURE(s);
    auto r = tr.step(toy_batch(K, uint64_t(s)));
    REQUIRE(r.val_losses.size() == size_t(K));
    if (s % 3 == 0) {
      CHECK(r.val_losses != last);  // a fresh value (the model changed)
      last = r.val_losses;
    } else {
      CHECK(r.val_losses == last);  // reused
      CHECK(r.ms_validation == 0.0);
    }
    CHECK(r.weights.size() == size_t(K));
  }
  CHECK(calls == 3);  // steps 0, 3, 6
  CHECK(!saw_training);
  CHECK(!saw_grad);
  CHECK(m->is_training());
  to.val_every = 0;
  CHECK_THROWS_AS(Trainer(*m, opt, to), Error);
  to.val_every = 1;
  to.validation_losses = [] { return std::vector<double>{1.0, 2.0}; };
  Trainer bad(*m, opt, to);
  CHECK_THROWS_WITH_AS(bad.step(toy_batch(K, 1)), doctest::Contains("2 losses for 3 tasks"), Error);
}

TEST_CASE("trainer: CoBa resumes exactly from the trainer's state_dict") {
  const int K = 3;
  Batch vb = toy_batch(K, 77);
  auto make = [&](std::shared_ptr<MultiTaskModel>& m) {
    manual_seed(5);
    m = zoo::mlp_hps(K, 6, 8, 3);
    m->flatten();
  };
  std::shared_ptr<MultiTaskModel> ma, mb;
  make(ma);
  make(mb);
  optim::SGD oa(*ma, optim::SGDOptions(0.1)), ob(*mb, optim::SGDOptions(0.1));
  auto opts = [&](MultiTaskModel& m) {
    TrainerOptions to;
    to.method = "coba";
    to.method_options = {{"warmup", "3"}, {"history", "5"}};
    to.validation_losses = [&m, &vb] { return val_losses(m, vb); };
    to.val_every = 2;
    return to;
  };
  Trainer ta(*ma, oa, opts(*ma));
  std::vector<std::vector<double>> wa;
  for (int s = 0; s < 14; ++s) wa.push_back(ta.step(toy_batch(K, 200 + uint64_t(s))).weights);
  auto tb = std::make_unique<Trainer>(*mb, ob, opts(*mb));
  for (int s = 0; s < 7; ++s) tb->step(toy_batch(K, 200 + uint64_t(s)));
  auto sd = tb->state_dict();
  CHECK(sd.count("method.history"));
  CHECK(sd.count("method.alpha_max"));
  tb.reset();
  Trainer tc(*mb, ob, opts(*mb));  // same model and (stateless) optimizer, fresh trainer and method
  tc.load_state_dict(sd);
  CHECK(tc.steps() == 7);
  for (int s = 7; s < 14; ++s) {
    CAPTURE(s);
    auto r = tc.step(toy_batch(K, 200 + uint64_t(s)));
    CHECK(r.weights == wa[size_t(s)]);
  }
  CHECK(ma->flat_parameters().to_vector<double>() == mb->flat_parameters().to_vector<double>());
}
