// tests/mtl/test_seed_methods.cpp: the seed methods' schedules at chosen steps (MT2ST).
#include <doctest/doctest.h>

#include <cmath>

#include "mtl/method.h"

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
