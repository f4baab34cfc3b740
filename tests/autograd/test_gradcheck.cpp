// tests/autograd/test_gradcheck.cpp: every differentiable op (autograd/op_list.h) is checked
// against float64 central differences and for batched cotangents (one backward over K rows equals
// K separate backward passes). An op in the list without a case here fails the suite.
#include <doctest/doctest.h>

#include <map>
#include <set>
#include <string>

#include "autograd/functions.h"
#include "autograd/gradcheck.h"
#include "autograd/op_list.h"
#include "engine/ops.h"
#include "engine/rng.h"

using namespace polyhead;
using namespace polyhead::ag;

namespace {

struct OpCase {
  GradFn f;
  std::vector<Tensor> inputs;
};

Tensor rn(const Shape& s, uint64_t seed, double scale = 1.0, double shift = 0.0) {
  Generator g(seed);
  std::vector<double> v(size_t(shape_numel(s)));
  for (auto& x : v) x = shift + scale * g.normal();
  return Tensor::from_vector(v, s);
}
Tensor pos(const Shape& s, uint64_t seed) {  // strictly positive, away from 0
  return ops::add_scalar(ops::unary(UnaryOp::Abs, rn(s, seed)), 0.5);
}
Tensor away_from_zero(const Shape& s, uint64_t seed) {  // |x| >= 0.2 (kinks of relu/abs)
  Tensor t = rn(s, seed);
  Tensor sgn = ops::unary(UnaryOp::Sign, t);
  return ops::add(t, ops::mul_scalar(sgn, 0.2));
}

std::map<std::string, OpCase> cases() {
  std::map<std::string, OpCase> c;
  auto un = [&](const char* name, Variable (*fn)(const Variable&), Tensor x) {
    c[name] = {[fn](const std::vector<Variable>& v) { return fn(v[0]); }, {x}};
  };
  c["add"] = {[](const auto& v) { return add(v[0], v[1]); }, {rn({3, 1, 4}, 1), rn({2, 1}, 2)}};
  c["sub"] = {[](const auto& v) { return sub(v[0], v[1]); }, {rn({3, 4}, 3), rn({4}, 4)}};
  c["mul"] = {[](const auto& v) { return mul(v[0], v[1]); }, {rn({2, 3}, 5), rn({2, 1}, 6)}};
  c["div"] = {[](const auto& v) { return div(v[0], v[1]); }, {rn({2, 3}, 7), pos({3}, 8)}};
  c["add_scalar"] = {[](const auto& v) { return add_scalar(v[0], 1.5); }, {rn({4}, 9)}};
  c["mul_scalar"] = {[](const auto& v) { return mul_scalar(v[0], -2.5); }, {rn({4}, 10)}};
  c["pow_scalar"] = {[](const auto& v) { return pow_scalar(v[0], 2.5); }, {pos({5}, 11)}};
  un("neg", neg, rn({3}, 12));
  un("exp", exp, rn({3, 2}, 13));
  un("log", log, pos({3, 2}, 14));
  un("sqrt", sqrt, pos({4}, 15));
  un("abs", abs, away_from_zero({5}, 16));
  un("relu", relu, away_from_zero({2, 5}, 17));
  un("gelu", gelu, rn({2, 5}, 18));
  un("tanh", tanh, rn({2, 5}, 19));
  un("sigmoid", sigmoid, rn({2, 5}, 20));
  un("silu", silu, rn({2, 5}, 21));
  {
    Tensor cond = Tensor::from_vector(std::vector<uint8_t>{1, 0, 1, 1, 0, 0}, {2, 3});
    c["where"] = {[cond](const auto& v) { return where(cond, v[0], v[1]); }, {rn({2, 3}, 22), rn({3}, 23)}};
    Tensor k = rn({3}, 24);
    c["add_constant"] = {[k](const auto& v) { return add_constant(v[0], k); }, {rn({2, 3}, 25)}};
    c["mul_constant"] = {[k](const auto& v) { return mul_constant(v[0], k); }, {rn({2, 3}, 26)}};
  }
  c["sum"] = {[](const auto& v) { return sum(v[0], {0, 2}, true); }, {rn({2, 3, 4}, 27)}};
  c["mean"] = {[](const auto& v) { return mean(v[0], {1}); }, {rn({2, 3, 4}, 28)}};
  c["amax"] = {[](const auto& v) { return amax(v[0], 1); }, {rn({3, 5}, 29)}};
  c["matmul"] = {[](const auto& v) { return matmul(v[0], v[1]); }, {rn({2, 3, 4}, 30), rn({4, 5}, 31)}};
  c["linear"] = {[](const auto& v) { return linear(v[0], v[1], v[2]); }, {rn({2, 3, 4}, 32), rn({5, 4}, 33), rn({5}, 34)}};
  c["reshape"] = {[](const auto& v) { return mul(reshape(v[0], {3, 4}), v[1]); }, {rn({2, 6}, 35), rn({3, 4}, 36)}};
  c["transpose"] = {[](const auto& v) { return matmul(transpose(v[0], 0, 1), v[1]); }, {rn({3, 2}, 37), rn({3, 4}, 38)}};
  c["permute"] = {[](const auto& v) { return mul(permute(v[0], {2, 0, 1}), v[1]); }, {rn({2, 3, 4}, 39), rn({4, 2, 3}, 40)}};
  c["narrow"] = {[](const auto& v) { return narrow(v[0], 1, 1, 2); }, {rn({2, 4}, 41)}};
  c["select"] = {[](const auto& v) { return select(v[0], 0, -1); }, {rn({3, 4}, 42)}};
  c["expand"] = {[](const auto& v) { return expand(v[0], {2, 3, 4}); }, {rn({3, 1}, 43)}};
  c["squeeze"] = {[](const auto& v) { return squeeze(v[0], 1); }, {rn({3, 1, 2}, 44)}};
  c["unsqueeze"] = {[](const auto& v) { return unsqueeze(v[0], -1); }, {rn({3, 2}, 45)}};
  c["flatten"] = {[](const auto& v) { return flatten(v[0], 1); }, {rn({2, 3, 2}, 46)}};
  c["contiguous"] = {[](const auto& v) { return contiguous(transpose(v[0], 0, 1)); }, {rn({2, 3}, 47)}};
  c["cat"] = {[](const auto& v) { return cat({v[0], v[1]}, 1); }, {rn({2, 3}, 48), rn({2, 2}, 49)}};
  c["stack"] = {[](const auto& v) { return stack({v[0], v[1]}, 0); }, {rn({2, 3}, 50), rn({2, 3}, 51)}};
  c["softmax"] = {[](const auto& v) { return softmax(v[0], 0); }, {rn({3, 4}, 52)}};
  c["log_softmax"] = {[](const auto& v) { return log_softmax(v[0], -1); }, {rn({3, 5}, 53)}};
  c["layer_norm"] = {[](const auto& v) { return layer_norm(v[0], v[1], v[2]); }, {rn({2, 3, 5}, 54), rn({5}, 55), rn({5}, 56)}};
  c["batch_norm"] = {[](const auto& v) {
                       Tensor rm = Tensor::zeros({3}, DType::f64), rv = Tensor::ones({3}, DType::f64);
                       return batch_norm(v[0], v[1], v[2], rm, rv, true);
                     },
                     {rn({4, 3, 2, 2}, 57), rn({3}, 58), rn({3}, 59)}};
  c["conv2d"] = {[](const auto& v) {
                   ConvParams p;
                   p.kh = p.kw = 3; p.sh = 2; p.sw = 1; p.ph = 1; p.pw = 0;
                   return conv2d(v[0], v[1], v[2], p);
                 },
                 {rn({2, 2, 5, 6}, 60), rn({3, 2, 3, 3}, 61), rn({3}, 62)}};
  c["max_pool2d"] = {[](const auto& v) {
                       PoolParams p;
                       p.kh = p.kw = 2; p.sh = p.sw = 2;
                       return max_pool2d(v[0], p);
                     },
                     {rn({2, 2, 4, 5}, 63)}};
  c["avg_pool2d"] = {[](const auto& v) {
                       PoolParams p;
                       p.kh = p.kw = 3; p.sh = p.sw = 2; p.ph = p.pw = 1;
                       return avg_pool2d(v[0], p);
                     },
                     {rn({2, 2, 5, 5}, 64)}};
  {
    Tensor idx = Tensor::from_vector(std::vector<int64_t>{0, 3, 3, 1, 4, 0}, {2, 3});
    c["embedding"] = {[idx](const auto& v) { return embedding(v[0], idx); }, {rn({5, 4}, 65)}};
    Tensor tgt = Tensor::from_vector(std::vector<int64_t>{0, 2, -100, 1}, {4});
    c["cross_entropy"] = {[tgt](const auto& v) { return cross_entropy(v[0], tgt, Reduction::Mean, -100, 0.1); }, {rn({4, 3}, 66)}};
  }
  c["dropout"] = {[](const auto& v) {
                    manual_seed(77);
                    return dropout(v[0], 0.3, true);
                  },
                  {rn({3, 4}, 67)}};
  c["causal_attention"] = {[](const auto& v) { return causal_attention(v[0], v[1], v[2]); },
                           {rn({1, 2, 3, 4}, 68), rn({1, 2, 3, 4}, 69), rn({1, 2, 3, 4}, 70)}};
  return c;
}

}  // namespace

TEST_CASE("gradcheck: every differentiable op has a case") {
  auto c = cases();
  for (auto name : kDifferentiableOps) {
    INFO("op: " << name);
    CHECK(c.count(std::string(name)) == 1);
  }
  CHECK(c.size() == kDifferentiableOps.size());
}

TEST_CASE("gradcheck: finite differences and batched cotangents for every op") {
  for (auto& [name, oc] : cases()) {
    INFO("op: " << name);
    auto r = gradcheck(oc.f, oc.inputs);
    CHECK_MESSAGE(r.ok, r.message);
    auto b = batched_check(oc.f, oc.inputs);
    CHECK_MESSAGE(b.ok, b.message);
  }
}
