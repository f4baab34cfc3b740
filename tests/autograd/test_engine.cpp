// tests/autograd/test_engine.cpp: backward/grad semantics: accumulation, retain_graph, freed
// graphs, inputs, NoGradGuard, custom ops, Jacobians by stacked cotangents.
#include <doctest/doctest.h>

#include <cmath>

#include "autograd/engine.h"
#include "autograd/functions.h"
#include "autograd/node.h"
#include "engine/ops.h"

using namespace polyhead;
using namespace polyhead::ag;

static Variable leaf(std::vector<double> v, Shape s) { return Variable(Tensor::from_vector(v, s), true); }

TEST_CASE("autograd: backward accumulates into leaves, closed form") {
  auto x = leaf({1, 2, 3}, {3}), w = leaf({0.5, -1, 2}, {3});
  auto y = sum(mul(mul(x, x), w));  // sum w x^2
  y.backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{1, -4, 12});  // 2 w x
  CHECK(w.grad().to_vector<double>() == std::vector<double>{1, 4, 9});
  auto y2 = sum(mul(x, w));
  y2.backward();  // accumulates
  CHECK(x.grad().to_vector<double>() == std::vector<double>{1.5, -5, 14});
}

TEST_CASE("autograd: a freed graph cannot be reused; retain_graph allows it") {
  auto x = leaf({1, 2}, {2});
  auto y = sum(exp(x));
  y.backward();
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("already freed"), Error);
  auto z = sum(exp(x));
  z.backward({}, true);
  z.backward();
  auto e = std::exp(1.0);
  CHECK(x.grad().to_vector<double>()[0] == doctest::Approx(3 * e));
}

TEST_CASE("autograd: grad() returns without accumulating; inputs restricts backward") {
  auto a = leaf({1, 2}, {2}), b = leaf({3, 4}, {2});
  auto h = mul(a, b);
  auto y = sum(mul(h, h));
  auto g = grad({y}, {a, h}, {}, GradOptions{true});
  CHECK(!a.grad().defined());
  CHECK(g[0].to_vector<double>() == std::vector<double>{2 * 3 * 3, 2 * 8 * 4});
  CHECK(g[1].to_vector<double>() == std::vector<double>{6, 16});
  BackwardOptions bo;
  bo.inputs = {b};
  backward({y}, {}, bo);
  CHECK(!a.grad().defined());
  CHECK(b.grad().defined());
  auto c = leaf({1}, {1});
  CHECK_THROWS_WITH_AS(grad({sum(mul(a, a))}, {c}), doctest::Contains("not used"), Error);
}

TEST_CASE("autograd: no graph under NoGradGuard, errors for non-differentiable roots") {
  auto x = leaf({1, 2}, {2});
  Variable y;
  {
    NoGradGuard g;
    y = exp(x);
  }
  CHECK(!y.requires_grad());
  CHECK_THROWS_AS(sum(y).backward(), Error);
  CHECK_THROWS_WITH_AS(exp(x).backward(), doctest::Contains("scalar"), Error);
}

TEST_CASE("autograd: stacked cotangents give the K-row Jacobian") {
  auto W = leaf({1, 2, 3, 4, 5, 6}, {2, 3});
  auto x = Variable(Tensor::from_vector(std::vector<double>{1, -1, 2}, {3, 1}));
  auto z = tanh(matmul(W, x));  // (2, 1)
  auto l1 = sum(mul_scalar(z, 2.0));
  auto l2 = sum(mul(z, z));
  // rows of the Jacobian of [l1, l2] wrt W, by one batched backward over both losses
  Tensor e1 = Tensor::from_vector(std::vector<double>{1, 0}, {2}), e2 = Tensor::from_vector(std::vector<double>{0, 1}, {2});
  GradOptions gb;
  gb.batched = true;
  gb.retain_graph = true;
  auto J = grad({l1, l2}, {W}, {e1, e2}, gb)[0];
  REQUIRE(J.shape() == Shape{2, 2, 3});
  auto g1 = grad({l1}, {W}, {}, GradOptions{true})[0];
  auto g2 = grad({l2}, {W}, {}, GradOptions{true})[0];
  CHECK(J.select(0, 0).contiguous().to_vector<double>() == g1.to_vector<double>());
  auto j2 = J.select(0, 1).contiguous().to_vector<double>(), r2 = g2.to_vector<double>();
  for (size_t i = 0; i < r2.size(); ++i) CHECK(j2[i] == doctest::Approx(r2[i]).epsilon(1e-14));
}

TEST_CASE("autograd: custom op hook") {
  auto x = leaf({1, 2, 3}, {3});
  auto cube = custom_op(
      "cube", {x}, [](const std::vector<Tensor>& in) { return ops::mul(ops::mul(in[0], in[0]), in[0]); },
      [](const Tensor& gy, const std::vector<Tensor>& in, const Tensor&, int64_t) {
        return std::vector<Tensor>{ops::mul(gy, ops::mul_scalar(ops::mul(in[0], in[0]), 3.0))};
      });
  sum(cube).backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{3, 12, 27});
  auto bad = custom_op(
      "bad", {x}, [](const std::vector<Tensor>& in) { return in[0].clone(); },
      [](const Tensor&, const std::vector<Tensor>&, const Tensor&, int64_t K) {
        return std::vector<Tensor>{Tensor::zeros({K, 5}, DType::f64)};
      });
  CHECK_THROWS_WITH_AS(sum(bad).backward(), doctest::Contains("bad"), Error);
}
