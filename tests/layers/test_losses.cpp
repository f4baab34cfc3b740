// tests/layers/test_losses.cpp: loss values vs closed forms, reductions, gradients vs
// ag::gradcheck (f64) and the batched-cotangent check, shape validation.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "autograd/engine.h"
#include "autograd/functions.h"
#include "autograd/gradcheck.h"
#include "engine/ops.h"
#include "engine/rng.h"
#include "layers/loss.h"

using namespace polyhead;
using polyhead::ag::Variable;
using nn::Reduction;

namespace {

std::vector<double> vals(const Tensor& t) { return t.to_vector<double>(); }
std::vector<double> vals(const Variable& v) { return vals(v.data()); }

Tensor t64(const std::vector<double>& v, const Shape& s) { return Tensor::from_vector(v, s); }
Tensor randn64(const Shape& s, uint64_t seed) {
  manual_seed(seed);
  return Tensor::randn(s, DType::f64);
}

double sum(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s;
}

// Checks None / Sum / Mean of `loss(x, y, r)` against the per-element closed form.
template <class Loss>
void check_reductions(Loss loss, const Tensor& x, const Tensor& y, const std::vector<double>& per) {
  Variable vx(x), vy(y);
  auto none = vals(loss(vx, vy, Reduction::None));
  REQUIRE(none.size() == per.size());
  for (size_t i = 0; i < per.size(); ++i) CHECK(none[i] == doctest::Approx(per[i]).epsilon(1e-12));
  CHECK(loss(vx, vy, Reduction::None).shape() == x.shape());
  CHECK(loss(vx, vy, Reduction::Sum).item() == doctest::Approx(sum(per)).epsilon(1e-12));
  CHECK(loss(vx, vy, Reduction::Mean).item() == doctest::Approx(sum(per) / double(per.size())).epsilon(1e-12));
  CHECK(loss(vx, vy, Reduction::Mean).dim() == 0);
}

// gradcheck + batched check of every reduction, gradients to both input and target.
template <class Loss>
void check_grads(Loss loss, const Tensor& x, const Tensor& y) {
  for (Reduction r : {Reduction::None, Reduction::Sum, Reduction::Mean}) {
    auto f = [&](const std::vector<Variable>& in) { return loss(in[0], in[1], r); };
    auto res = ag::gradcheck(f, {x, y});
    INFO(res.message);
    CHECK(res.ok);
    auto bres = ag::batched_check(f, {x, y});
    INFO(bres.message);
    CHECK(bres.ok);
  }
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// The loss's shape error names the loss and both shapes.
template <class F>
void check_shape_error(F f, const std::string& loss, const std::string& s1, const std::string& s2) {
  try {
    f();
    FAIL("no error for " << loss);
  } catch (const Error& e) {
    INFO(e.what());
    CHECK(contains(e.what(), loss));
    CHECK(contains(e.what(), s1));
    CHECK(contains(e.what(), s2));
  }
}

}  // namespace

TEST_CASE("mse_loss") {
  Tensor x = randn64({3, 4}, 1), y = randn64({3, 4}, 2);
  std::vector<double> per;
  auto xv = vals(x), yv = vals(y);
  for (size_t i = 0; i < xv.size(); ++i) per.push_back((xv[i] - yv[i]) * (xv[i] - yv[i]));
  auto f = [](const Variable& a, const Variable& b, Reduction r) { return nn::mse_loss(a, b, r); };
  check_reductions(f, x, y, per);
  check_grads(f, x, y);
  // Tensor target overload agrees; default reduction is the mean.
  CHECK(nn::mse_loss(Variable(x), y).item() == doctest::Approx(sum(per) / 12));
  check_shape_error([&] { nn::mse_loss(Variable(x), randn64({4, 3}, 3)); }, "mse_loss", "[3, 4]", "[4, 3]");
}

TEST_CASE("l1_loss") {
  Tensor x = randn64({2, 5}, 4), y = randn64({2, 5}, 5);
  std::vector<double> per;
  auto xv = vals(x), yv = vals(y);
  for (size_t i = 0; i < xv.size(); ++i) per.push_back(std::abs(xv[i] - yv[i]));
  auto f = [](const Variable& a, const Variable& b, Reduction r) { return nn::l1_loss(a, b, r); };
  check_reductions(f, x, y, per);
  check_grads(f, x, y);
  check_shape_error([&] { nn::l1_loss(Variable(x), randn64({10}, 3)); }, "l1_loss", "[2, 5]", "[10]");
}

TEST_CASE("huber_loss on both branches") {
  // Differences spanning |d| < delta and |d| > delta (none at the kink, for the finite differences).
  Tensor x = t64({0.1, -0.4, 2.5, -3.0, 0.9, 1.7}, {2, 3});
  Tensor y = t64({0.0, 0.3, 0.2, 0.5, -0.05, 1.0}, {2, 3});
  for (double delta : {1.0, 0.5}) {
    std::vector<double> per;
    auto xv = vals(x), yv = vals(y);
    for (size_t i = 0; i < xv.size(); ++i) {
      double d = xv[i] - yv[i];
      per.push_back(std::abs(d) <= delta ? 0.5 * d * d : delta * (std::abs(d) - 0.5 * delta));
    }
    auto f = [delta](const Variable& a, const Variable& b, Reduction r) { return nn::huber_loss(a, b, r, delta); };
    check_reductions(f, x, y, per);
    check_grads(f, x, y);
  }
  // Gradient: d inside, delta * sign(d) outside.
  Variable vx(x, true);
  nn::huber_loss(vx, y, Reduction::Sum).backward();
  auto g = vals(vx.grad());
  CHECK(g[0] == doctest::Approx(0.1));
  CHECK(g[2] == doctest::Approx(1.0));
  CHECK(g[3] == doctest::Approx(-1.0));
  CHECK_THROWS_AS(nn::huber_loss(vx, y, Reduction::Mean, 0.0), Error);
  check_shape_error([&] { nn::huber_loss(Variable(x), t64({1, 2}, {2})); }, "huber_loss", "[2, 3]", "[2]");
}

TEST_CASE("bce_with_logits: value, stability, gradient") {
  Tensor x = t64({-3.0, -0.5, 0.0, 0.7, 4.0, 1.5}, {2, 3});
  Tensor y = t64({0.0, 1.0, 1.0, 0.25, 1.0, 0.0}, {2, 3});
  std::vector<double> per;
  auto xv = vals(x), yv = vals(y);
  for (size_t i = 0; i < xv.size(); ++i) {
    double p = 1 / (1 + std::exp(-xv[i]));
    per.push_back(-(yv[i] * std::log(p) + (1 - yv[i]) * std::log(1 - p)));
  }
  auto f = [](const Variable& a, const Variable& b, Reduction r) { return nn::bce_with_logits(a, b, r); };
  check_reductions(f, x, y, per);
  check_grads(f, x, y);
  // d/dx = sigmoid(x) - y, exact at x = 0 as well.
  Variable vx(x, true);
  nn::bce_with_logits(vx, y, Reduction::Sum).backward();
  auto g = vals(vx.grad());
  for (size_t i = 0; i < xv.size(); ++i) CHECK(g[i] == doctest::Approx(1 / (1 + std::exp(-xv[i])) - yv[i]).epsilon(1e-12));
  // Stable for huge logits: finite, ~ |x| when wrong, ~ 0 when right.
  Tensor big = t64({1000.0, -1000.0, 1000.0, -1000.0}, {4});
  Tensor tgt = t64({1.0, 0.0, 0.0, 1.0}, {4});
  auto l = vals(nn::bce_with_logits(Variable(big), tgt, Reduction::None));
  CHECK(l[0] == doctest::Approx(0.0));
  CHECK(l[1] == doctest::Approx(0.0));
  CHECK(l[2] == doctest::Approx(1000.0));
  CHECK(l[3] == doctest::Approx(1000.0));
  // f32 too.
  auto l32 = vals(nn::bce_with_logits(Variable(big.to(DType::f32)), tgt.to(DType::f32), Reduction::None));
  for (double a : l32) CHECK(std::isfinite(a));
  check_shape_error([&] { nn::bce_with_logits(Variable(x), t64({1, 0, 1}, {3})); }, "bce_with_logits", "[2, 3]", "[3]");
}

namespace {
// Per-row -log softmax(x)[t] with label smoothing eps: (1 - eps) nll + eps * mean_c(-log p_c).
std::vector<double> ce_rows(const std::vector<double>& x, int64_t N, int64_t C, const std::vector<int64_t>& t,
                            int64_t ignore, double eps) {
  std::vector<double> out;
  for (int64_t n = 0; n < N; ++n) {
    if (t[size_t(n)] == ignore) { out.push_back(0.0); continue; }
    double mx = -1e300, z = 0;
    for (int64_t c = 0; c < C; ++c) mx = std::max(mx, x[size_t(n * C + c)]);
    for (int64_t c = 0; c < C; ++c) z += std::exp(x[size_t(n * C + c)] - mx);
    double lse = mx + std::log(z), smooth = 0;
    for (int64_t c = 0; c < C; ++c) smooth += lse - x[size_t(n * C + c)];
    out.push_back((1 - eps) * (lse - x[size_t(n * C + t[size_t(n)])]) + eps * smooth / double(C));
  }
  return out;
}
}  // namespace

TEST_CASE("cross_entropy: values, ignore_index, label smoothing, gradients") {
  const int64_t N = 5, C = 4;
  Tensor x = randn64({N, C}, 7);
  std::vector<int64_t> tv{2, 0, 3, -100, 1};
  Tensor t = Tensor::from_vector(tv, {N});
  for (double eps : {0.0, 0.1}) {
    auto per = ce_rows(vals(x), N, C, tv, -100, eps);
    auto none = vals(nn::cross_entropy(Variable(x), t, Reduction::None, -100, eps));
    for (size_t i = 0; i < per.size(); ++i) CHECK(none[i] == doctest::Approx(per[i]).epsilon(1e-12));
    CHECK(nn::cross_entropy(Variable(x), t, Reduction::Sum, -100, eps).item() == doctest::Approx(sum(per)));
    // Mean over the 4 non-ignored rows.
    CHECK(nn::cross_entropy(Variable(x), t, Reduction::Mean, -100, eps).item() == doctest::Approx(sum(per) / 4));
    for (Reduction r : {Reduction::None, Reduction::Sum, Reduction::Mean}) {
      auto f = [&](const std::vector<Variable>& in) { return nn::cross_entropy(in[0], t, r, -100, eps); };
      auto res = ag::gradcheck(f, {x});
      INFO(res.message);
      CHECK(res.ok);
      auto b = ag::batched_check(f, {x});
      CHECK(b.ok);
    }
  }
  // (N, C, d) logits with (N, d) targets.
  Tensor x3 = randn64({2, 3, 4}, 8);
  Tensor t3 = Tensor::from_vector<int64_t>({0, 1, 2, 1, 2, 2, 0, 0}, {2, 4});
  CHECK(nn::cross_entropy(Variable(x3), t3, Reduction::None).shape() == Shape{2, 4});
  check_shape_error([&] { nn::cross_entropy(Variable(x), Tensor::zeros({4}, DType::i64)); }, "cross_entropy", "[5, 4]",
                    "[4]");
  CHECK_THROWS_AS(nn::cross_entropy(Variable(x), Tensor::zeros({5})), Error);  // float targets
}

TEST_CASE("nll_loss: values, ignore_index, agreement with cross_entropy, gradients") {
  const int64_t N = 6, C = 3;
  Tensor x = randn64({N, C}, 9);
  std::vector<int64_t> tv{0, 2, 1, 7, 2, 0};
  Tensor t = Tensor::from_vector(tv, {N});
  auto lp = vals(ag::log_softmax(Variable(x), 1));
  std::vector<double> per;
  for (int64_t n = 0; n < N; ++n) per.push_back(tv[size_t(n)] == 7 ? 0.0 : -lp[size_t(n * C + tv[size_t(n)])]);
  Variable vlp = ag::log_softmax(Variable(x), 1);
  auto none = vals(nn::nll_loss(vlp, t, Reduction::None, 7));
  for (size_t i = 0; i < per.size(); ++i) CHECK(none[i] == doctest::Approx(per[i]).epsilon(1e-12));
  CHECK(nn::nll_loss(vlp, t, Reduction::Sum, 7).item() == doctest::Approx(sum(per)));
  CHECK(nn::nll_loss(vlp, t, Reduction::Mean, 7).item() == doctest::Approx(sum(per) / 5));
  // nll(log_softmax(x)) == cross_entropy(x).
  for (Reduction r : {Reduction::None, Reduction::Sum, Reduction::Mean}) {
    auto a = vals(nn::nll_loss(vlp, t, r, 7)), b = vals(nn::cross_entropy(Variable(x), t, r, 7));
    for (size_t i = 0; i < a.size(); ++i) CHECK(a[i] == doctest::Approx(b[i]).epsilon(1e-12));
    auto f = [&](const std::vector<Variable>& in) { return nn::nll_loss(in[0], t, r, 7); };
    auto res = ag::gradcheck(f, {x});
    INFO(res.message);
    CHECK(res.ok);
    CHECK(ag::batched_check(f, {x}).ok);
  }
  // Gradient: -1 / count at each target (mean), 0 on ignored rows.
  Variable v(x, true);
  nn::nll_loss(v, t, Reduction::Mean, 7).backward();
  auto g = vals(v.grad());
  CHECK(g[0 * C + 0] == doctest::Approx(-0.2));
  CHECK(g[1 * C + 2] == doctest::Approx(-0.2));
  CHECK(g[3 * C + 0] == 0.0);
  CHECK(g[0 * C + 1] == 0.0);
  // (N, C, d) input.
  Tensor x3 = randn64({2, 3, 4}, 10);
  Tensor t3 = Tensor::from_vector<int64_t>({0, 1, 2, 1, 2, 2, 0, 0}, {2, 4});
  auto a3 = vals(nn::nll_loss(ag::log_softmax(Variable(x3), 1), t3, Reduction::None));
  auto b3 = vals(nn::cross_entropy(Variable(x3), t3, Reduction::None));
  for (size_t i = 0; i < a3.size(); ++i) CHECK(a3[i] == doctest::Approx(b3[i]).epsilon(1e-12));
  // Errors: out-of-range target, wrong target shape.
  CHECK_THROWS_AS(nn::nll_loss(vlp, Tensor::from_vector<int64_t>({0, 1, 3, 0, 0, 0}, {N})), Error);
  check_shape_error([&] { nn::nll_loss(vlp, Tensor::zeros({6, 1}, DType::i64)); }, "nll_loss", "[6, 3]", "[6, 1]");
}
