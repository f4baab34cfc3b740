// tests/mtl/test_seed_methods.cpp: the seed methods' schedules at chosen steps (MT2ST), and the
// trainer's skipping of heads whose weight is exactly 0 (MT2ST after its switch).
#include <doctest/doctest.h>

#include <cmath>

#include "engine/ops.h"
#include "engine/rng.h"
#include "layers/optim/sgd.h"
#include "mtl/method.h"
#include "mtl/trainer.h"
#include "mtl/zoo.h"

using namespace polyhead;
using namespace polyhead::mtl;

static std::vector<double> weights_at(Method& m, int steps, int epoch = 0) {
  StepInput in;
  in.K = 3;
  in.L = {1.0, 2.0, 3.0};
  in.epoch = epoch;
  StepOutput o;
  for (int s = 0; s < steps; ++s) o = m.step(in);
  return o.w;
}

TEST_CASE("mt2st: diminish, switch, both and the released code's rule at chosen steps") {
  {
    auto m = make_method("mt2st", 3, Options{{"schedule", "diminish"}, {"gamma0", "0.8"}, {"half_life", "10"}, {"nu", "1"}});
    auto w = weights_at(*m, 1);  // t = 0
    CHECK(w == std::vector<double>{1.0, 0.8, 0.8});
    w = weights_at(*m, 10);  // t = 10: one half-life
    CHECK(w[1] == doctest::Approx(0.4).epsilon(1e-12));
    CHECK(w[0] == 1.0);
  }
  {
    auto m = make_method("mt2st", 3, Options{{"schedule", "diminish"}, {"eta", "0.01"}, {"nu", "2"}, {"primary", "2"}});
    auto w = weights_at(*m, 6);  // t = 5: exp(-0.01 * 25)
    CHECK(w[0] == doctest::Approx(std::exp(-0.25)).epsilon(1e-12));
    CHECK(w[2] == 1.0);
  }
  {
    auto m = make_method("mt2st", 3, Options{{"schedule", "switch"}, {"t_switch", "4"}});
    CHECK(weights_at(*m, 4) == std::vector<double>{1, 1, 1});  // t = 3
    CHECK(weights_at(*m, 1) == std::vector<double>{1, 0, 0});  // t = 4
    auto st = m->state();
    auto m2 = make_method("mt2st", 3, Options{{"schedule", "switch"}, {"t_switch", "4"}});
    m2->load_state(st);
    CHECK(weights_at(*m2, 1) == std::vector<double>{1, 0, 0});  // resumes at t = 5
  }
  {
    auto m = make_method("mt2st", 3, Options{{"schedule", "both"}, {"half_life", "2"}, {"t_switch", "3"}});
    CHECK(weights_at(*m, 3)[1] == doctest::Approx(0.5).epsilon(1e-12));  // t = 2
    CHECK(weights_at(*m, 1)[1] == 0.0);                                  // t = 3
  }
  {
    auto m = make_method("mt2st", 3, Options{{"schedule", "code"}});
    CHECK(weights_at(*m, 1, 0)[1] == doctest::Approx(0.95));
    CHECK(weights_at(*m, 1, 3)[1] == doctest::Approx(std::pow(0.95, 8)));
  }
  CHECK_THROWS_WITH_AS(make_method("mt2st", 3, Options{{"schedule", "sometimes"}}), doctest::Contains("diminish"), Error);
  CHECK_THROWS_WITH_AS(make_method("mt2st", 3, Options{{"primary", "3"}}), doctest::Contains("primary"), Error);
  CHECK_THROWS_WITH_AS(make_method("mt2st", 3, Options{{"tau", "1"}}), doctest::Contains("t_switch"), Error);
}

TEST_CASE("mt2st: gamma_off cuts a diminished weight to exactly 0; the schedule needs no inputs") {
  auto m = make_method("mt2st", 3, Options{{"schedule", "diminish"}, {"half_life", "10"}, {"gamma_off", "0.3"}});
  CHECK(m->needs() == 0u);
  CHECK(weights_at(*m, 11)[1] == doctest::Approx(0.5).epsilon(1e-12));  // t = 10
  CHECK(weights_at(*m, 7)[1] == doctest::Approx(std::pow(0.5, 1.7)).epsilon(1e-12));  // t = 17: 0.308
  CHECK(weights_at(*m, 1)[1] == 0.0);  // t = 18: 0.287 < 0.3
  CHECK_THROWS_AS(make_method("mt2st", 3, Options{{"gamma_off", "1"}}), Error);
  StepInput in;  // no losses: the weights depend on the step only
  in.K = 3;
  auto s = make_method("mt2st", 3, Options{{"schedule", "switch"}, {"t_switch", "1"}});
  CHECK(s->step(in).w == std::vector<double>{1, 1, 1});
}

namespace {
Batch skip_batch(uint64_t seed) {
  manual_seed(seed);
  Batch b;
  b.x = Tensor::randn({8, 5}, DType::f64);
  for (int k = 0; k < 3; ++k) b.y.push_back(ops::mul_scalar(Tensor::rand({8}), 4.0 - 1e-6).to(DType::i64));
  return b;
}
}  // namespace

TEST_CASE("trainer: heads whose weight is exactly 0 are not computed, with the same update") {
  // MT2ST switch at t = 2 (primary task 1): from step 2 on, tasks 0 and 2 have weight 0.
  auto run = [](bool skip, std::vector<StepResult>& rs) {
    manual_seed(4);
    auto m = zoo::mlp_hps(3, 5, 6, 4);
    m->to(DType::f64);
    m->flatten();
    optim::SGD opt(*m, optim::SGDOptions(0.1));
    TrainerOptions to;
    to.method = "mt2st";
    to.method_options = {{"schedule", "switch"}, {"t_switch", "2"}, {"primary", "1"}};
    to.skip_zero_weight_heads = skip;
    Trainer tr(*m, opt, to);
    std::vector<std::vector<double>> head0;
    for (int s = 0; s < 5; ++s) {
      rs.push_back(tr.step(skip_batch(10 + uint64_t(s))));
      head0.push_back(m->task_parameters(0)[0].data().to_vector<double>());
    }
    // the auxiliary head stops moving once its weight is 0 (plain SGD)
    CHECK(head0[1] != head0[0]);
    CHECK(head0[4] == head0[2]);
    return m->flat_parameters().to_vector<double>();
  };
  std::vector<StepResult> with, without;
  auto p_with = run(true, with), p_without = run(false, without);
  CHECK(p_with == p_without);
  for (int s = 0; s < 5; ++s) {
    CAPTURE(s);
    CHECK(with[size_t(s)].heads_skipped == (s < 2 ? 0 : 2));
    CHECK(without[size_t(s)].heads_skipped == 0);
    CHECK(with[size_t(s)].losses[1] == without[size_t(s)].losses[1]);
    CHECK(std::isnan(with[size_t(s)].losses[0]) == (s >= 2));
    CHECK(std::isnan(with[size_t(s)].losses[2]) == (s >= 2));
    CHECK(with[size_t(s)].weights == without[size_t(s)].weights);
  }
}
