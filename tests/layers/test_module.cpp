// tests/layers/test_module.cpp: Module registration and naming, flat buffers, zero_grad,
// parameter_slice, state dicts, dtype moves.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "autograd/functions.h"
#include "engine/ops.h"
#include "engine/rng.h"
#include "layers/activation.h"
#include "layers/linear.h"
#include "layers/module.h"
#include "layers/norm.h"
#include "layers/sequential.h"

using namespace polyhead;
using polyhead::ag::Variable;

namespace {

// scale (own parameter), trunk = Sequential{Linear(3, 4), ReLU, Linear(4, 2)}, bn, head = Linear(2, 1).
struct Net : nn::UnaryModule {
  Variable scale;
  std::shared_ptr<nn::Sequential> trunk;
  std::shared_ptr<nn::BatchNorm1d> bn;
  std::shared_ptr<nn::Linear> head;
  Net() {
    scale = register_parameter("scale", Tensor::ones({1}));
    trunk = register_module("trunk", std::make_shared<nn::Sequential>());
    trunk->push_back(std::make_shared<nn::Linear>(3, 4));
    trunk->push_back(std::make_shared<nn::ReLU>());
    trunk->push_back(std::make_shared<nn::Linear>(4, 2));
    bn = register_module("bn", std::make_shared<nn::BatchNorm1d>(2));
    head = register_module("head", std::make_shared<nn::Linear>(2, 1));
  }
  Variable forward(const Variable& x) override {
    return ag::mul(head->forward(bn->forward(trunk->forward(x))), scale);
  }
  std::string type_name() const override { return "Net"; }
};

std::vector<std::string> names(const nn::Module& m) {
  std::vector<std::string> out;
  for (auto& [n, v] : m.named_parameters()) out.push_back(n);
  return out;
}

std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }

std::map<std::string, std::vector<double>> snapshot(const nn::Module& m) {
  std::map<std::string, std::vector<double>> s;
  for (auto& [n, t] : m.state_dict()) s[n] = values(t);
  return s;
}

Variable loss_of(Net& net, int64_t N = 5) {
  manual_seed(7);
  Variable x(Tensor::randn({N, 3}, net.scale.dtype()), false);
  return ag::sum(net.forward(x));
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("named_parameters: dotted names, depth-first in registration order") {
  Net net;
  std::vector<std::string> want{"scale", "trunk.0.weight", "trunk.0.bias", "trunk.2.weight", "trunk.2.bias",
                                "bn.weight", "bn.bias", "head.weight", "head.bias"};
  CHECK(names(net) == want);
  CHECK(net.num_parameters() == 1 + 12 + 4 + 8 + 2 + 2 + 2 + 2 + 1);
  // Non-recursive: own parameters only.
  auto own = net.named_parameters(false);
  REQUIRE(own.size() == 1);
  CHECK(own[0].first == "scale");
  CHECK(own[0].second.same(net.scale));
  // parameters() in the same order, same Variables.
  auto ps = net.parameters();
  REQUIRE(ps.size() == want.size());
  CHECK(ps[1].same(std::static_pointer_cast<nn::Linear>((*net.trunk)[0])->weight));
  for (auto& p : ps) CHECK(p.requires_grad());

  std::vector<std::string> bufs;
  for (auto& [n, b] : net.named_buffers()) bufs.push_back(n);
  CHECK(bufs == std::vector<std::string>{"bn.running_mean", "bn.running_var", "bn.num_batches_tracked"});

  std::vector<std::string> mods;
  for (auto& [n, m] : net.named_modules()) mods.push_back(n + ":" + m->type_name());
  CHECK(mods == std::vector<std::string>{":Net", "trunk:Sequential", "trunk.0:Linear", "trunk.1:ReLU", "trunk.2:Linear",
                                         "bn:BatchNorm1d", "head:Linear"});
  auto kids = net.named_children();
  REQUIRE(kids.size() == 3);
  CHECK(kids[0].first == "trunk");
  CHECK(kids[2].second.get() == net.head.get());
}

TEST_CASE("registration errors") {
  Net net;
  CHECK_THROWS_AS(net.register_parameter("scale", Tensor::zeros({1})), Error);
  CHECK_THROWS_AS(net.register_parameter("a.b", Tensor::zeros({1})), Error);
  CHECK_THROWS_AS(net.register_parameter("", Tensor::zeros({1})), Error);
  CHECK_THROWS_AS(net.register_buffer("trunk", Tensor::zeros({1})), Error);
  CHECK_THROWS_AS(net.register_module("head", std::make_shared<nn::ReLU>()), Error);
  CHECK_THROWS_AS(net.register_module("x", std::shared_ptr<nn::ReLU>()), Error);
  CHECK_THROWS_AS(net.register_parameter("idx", Tensor::zeros({1}, DType::i64)), Error);  // requires grad
  net.register_parameter("frozen_idx", Tensor::zeros({1}, DType::i64), false);           // fine without
  CHECK_THROWS_AS(net.parameter("nope"), Error);
  CHECK_THROWS_AS(net.child("nope"), Error);
  CHECK(net.child("head").get() == net.head.get());
}

TEST_CASE("train / eval recurse") {
  Net net;
  CHECK(net.is_training());
  net.eval();
  CHECK(!net.is_training());
  for (auto& [n, m] : net.named_modules()) CHECK(!m->is_training());
  net.train();
  for (auto& [n, m] : net.named_modules()) CHECK(m->is_training());
}

TEST_CASE("zero_grad without flattening fills each gradient") {
  Net net;
  loss_of(net).backward();
  bool nonzero = false;
  for (auto& p : net.parameters()) {
    REQUIRE(p.grad().defined());
    for (double g : values(p.grad())) nonzero = nonzero || g != 0.0;
  }
  CHECK(nonzero);
  Tensor g0 = net.head->weight.grad();
  net.zero_grad();
  CHECK(net.head->weight.grad().storage() == g0.storage());  // filled in place
  for (auto& p : net.parameters())
    for (double g : values(p.grad())) CHECK(g == 0.0);
}

TEST_CASE("flatten keeps identity, makes views and accumulates gradients in the flat buffer") {
  Net net;
  auto before = net.named_parameters();
  auto snap = snapshot(net);
  net.flatten();
  REQUIRE(net.is_flat());
  const Tensor& fp = net.flat_parameters();
  const Tensor& fg = net.flat_gradients();
  CHECK(fp.numel() == net.num_parameters());
  CHECK(fg.numel() == fp.numel());
  CHECK(fp.dim() == 1);
  CHECK(fp.is_contiguous());
  auto after = net.named_parameters();
  REQUIRE(after.size() == before.size());
  int64_t off = 0;
  for (size_t i = 0; i < after.size(); ++i) {
    const auto& [n, v] = after[i];
    CHECK(n == before[i].first);
    CHECK(v.same(before[i].second));  // same Variable
    CHECK(v.data().storage() == fp.storage());
    CHECK(v.data().offset() == fp.offset() + off);
    CHECK(v.grad().storage() == fg.storage());
    CHECK(v.grad().offset() == fg.offset() + off);
    CHECK(values(v.data()) == snap[n]);  // values preserved
    off += v.numel();
  }
  CHECK(net.flat_index().size() == after.size());
  // Layers' own handles see the views.
  CHECK(net.head->weight.data().storage() == fp.storage());

  // Writing the flat buffer writes the parameters.
  Tensor f = fp;
  f.fill_(0.5);
  for (auto& p : net.parameters())
    for (double x : values(p.data())) CHECK(x == 0.5);

  // Backward accumulates into the flat gradient buffer.
  manual_seed(3);
  Tensor f2 = fp;
  f2.copy_(Tensor::randn({fp.numel()}));
  loss_of(net).backward();
  double s1 = ops::dot(fg, fg);
  CHECK(s1 > 0);
  for (auto& p : net.parameters()) CHECK(p.grad().storage() == fg.storage());
  std::vector<double> g1 = values(fg);
  loss_of(net).backward();  // accumulates: twice the gradient
  std::vector<double> g2 = values(fg);
  for (size_t i = 0; i < g1.size(); ++i) CHECK(g2[i] == doctest::Approx(2 * g1[i]));

  // zero_grad: one fill of the flat buffer.
  net.zero_grad();
  for (double g : values(fg)) CHECK(g == 0.0);
  // A gradient detached since flatten() is re-attached by zero_grad.
  net.head->bias.set_grad(Tensor());
  net.zero_grad();
  CHECK(net.head->bias.grad().storage() == fg.storage());

  // Idempotent.
  const void* data_ptr = fp.storage().get();
  net.flatten();
  CHECK(net.flat_parameters().storage().get() == data_ptr);

  // Layout is frozen.
  CHECK_THROWS_AS(net.register_parameter("late", Tensor::zeros({1})), Error);
  CHECK_THROWS_AS(net.head->register_parameter("late", Tensor::zeros({1})), Error);
  CHECK_THROWS_AS(net.trunk->push_back(std::make_shared<nn::ReLU>()), Error);
  CHECK_THROWS_AS(net.head->flatten(), Error);  // part of a flat parent
}

TEST_CASE("flatten of a parent supersedes a flattened child") {
  Net net;
  net.trunk->flatten();
  CHECK(net.trunk->is_flat());
  net.flatten();
  CHECK(!net.trunk->is_flat());
  CHECK(std::static_pointer_cast<nn::Linear>((*net.trunk)[0])->weight.data().storage() == net.flat_parameters().storage());
}

TEST_CASE("parameter_slice") {
  Net net;
  CHECK_THROWS_AS(net.parameter_slice("trunk"), Error);  // not flat
  net.flatten();
  auto [b0, e0] = net.parameter_slice("");
  CHECK(b0 == 0);
  CHECK(e0 == net.num_parameters());
  auto [b, e] = net.parameter_slice("trunk");
  CHECK(b == 1);
  CHECK(e == 1 + 12 + 4 + 8 + 2);
  auto [hb, he] = net.parameter_slice("head");
  CHECK(he == net.num_parameters());
  CHECK(he - hb == 3);
  auto [wb, we] = net.parameter_slice("trunk.2.weight");
  CHECK(we - wb == 8);
  CHECK(wb == 1 + 12 + 4);
  CHECK(net.parameter_slice("trunk.").first == 1);
  CHECK_THROWS_AS(net.parameter_slice("tru"), Error);  // prefixes match whole name components
  CHECK_THROWS_AS(net.parameter_slice("nothing"), Error);
  // The slice is exactly the trunk's parameters.
  Tensor s = net.flat_parameters().narrow(0, b, e - b);
  std::vector<double> want;
  for (auto& p : net.trunk->parameters())
    for (double x : values(p.data())) want.push_back(x);
  CHECK(values(s) == want);
}

TEST_CASE("state_dict round trip") {
  manual_seed(1);
  Net a;
  manual_seed(2);
  Net b;
  // Give a's buffers non-default values.
  loss_of(a);  // training forward updates bn running stats
  auto sd = a.state_dict();
  std::vector<std::string> keys;
  for (auto& [k, t] : sd) keys.push_back(k);
  CHECK(keys.size() == 9 + 3);
  CHECK(sd.count("bn.num_batches_tracked"));
  CHECK(sd.at("bn.num_batches_tracked").dtype() == DType::i64);
  CHECK(sd.at("bn.num_batches_tracked").item() == 1.0);
  CHECK(snapshot(a) != snapshot(b));
  b.flatten();
  Tensor fp = b.flat_parameters();
  b.load_state_dict(sd);
  CHECK(snapshot(a) == snapshot(b));
  // Loaded into the existing storage: flat views stay valid.
  for (auto& p : b.parameters()) CHECK(p.data().storage() == fp.storage());
  // state_dict tensors are copies.
  Tensor w = sd.at("head.weight");
  auto wv = values(w);
  Tensor hw = a.head->weight.data();
  hw.fill_(9.0);
  CHECK(values(w) == wv);
}

TEST_CASE("load_state_dict errors name the keys and leave every parameter unchanged") {
  manual_seed(1);
  Net a;
  manual_seed(2);
  Net b;
  auto orig = snapshot(b);
  auto good = a.state_dict();

  SUBCASE("missing key") {
    auto sd = good;
    sd.erase("trunk.0.bias");
    try {
      b.load_state_dict(sd);
      FAIL("no error");
    } catch (const Error& e) {
      CHECK(contains(e.what(), "missing"));
      CHECK(contains(e.what(), "trunk.0.bias"));
    }
    CHECK(snapshot(b) == orig);
    // Non-strict: the rest is loaded.
    b.load_state_dict(sd, false);
    auto now = snapshot(b);
    CHECK(now.at("head.weight") == values(good.at("head.weight")));
    CHECK(now.at("trunk.0.bias") == orig.at("trunk.0.bias"));
  }
  SUBCASE("unexpected key") {
    auto sd = good;
    sd["trunk.9.weight"] = Tensor::zeros({2});
    try {
      b.load_state_dict(sd);
      FAIL("no error");
    } catch (const Error& e) {
      CHECK(contains(e.what(), "unexpected"));
      CHECK(contains(e.what(), "trunk.9.weight"));
    }
    CHECK(snapshot(b) == orig);
    b.load_state_dict(sd, false);  // ignored when not strict
    CHECK(snapshot(b) == snapshot(a));
  }
  SUBCASE("shape mismatch") {
    auto sd = good;
    sd["head.weight"] = Tensor::zeros({2, 1});
    for (bool strict : {true, false}) {
      try {
        b.load_state_dict(sd, strict);
        FAIL("no error");
      } catch (const Error& e) {
        CHECK(contains(e.what(), "head.weight"));
        CHECK(contains(e.what(), "[2, 1]"));
        CHECK(contains(e.what(), "[1, 2]"));
      }
      CHECK(snapshot(b) == orig);  // nothing loaded, not even the valid keys
    }
  }
  SUBCASE("several errors are listed together") {
    auto sd = good;
    sd.erase("scale");
    sd["extra"] = Tensor::zeros({1});
    sd["bn.running_mean"] = Tensor::zeros({3});
    try {
      b.load_state_dict(sd);
      FAIL("no error");
    } catch (const Error& e) {
      CHECK(contains(e.what(), "scale"));
      CHECK(contains(e.what(), "extra"));
      CHECK(contains(e.what(), "bn.running_mean"));
    }
    CHECK(snapshot(b) == orig);
  }
}

TEST_CASE("to(DType) converts parameters and floating buffers, keeps identity, re-flattens") {
  Net net;
  auto before = net.named_parameters();
  auto snap = snapshot(net);
  net.flatten();
  net.to(DType::f64);
  auto after = net.named_parameters();
  for (size_t i = 0; i < after.size(); ++i) {
    CHECK(after[i].second.same(before[i].second));
    CHECK(after[i].second.dtype() == DType::f64);
    auto v = values(after[i].second.data());
    auto w = snap.at(after[i].first);
    for (size_t k = 0; k < v.size(); ++k) CHECK(v[k] == doctest::Approx(w[k]));
  }
  CHECK(net.bn->buffer("running_mean").dtype() == DType::f64);
  CHECK(net.bn->buffer("num_batches_tracked").dtype() == DType::i64);
  REQUIRE(net.is_flat());
  CHECK(net.flat_parameters().dtype() == DType::f64);
  for (auto& p : net.parameters()) {
    CHECK(p.data().storage() == net.flat_parameters().storage());
    CHECK(p.grad().storage() == net.flat_gradients().storage());
  }
  // Forward and backward run in f64 into the new flat gradient buffer.
  Variable l = loss_of(net);
  CHECK(l.dtype() == DType::f64);
  l.backward();
  CHECK(ops::dot(net.flat_gradients(), net.flat_gradients()) > 0);
  // Non-floating target is refused; a member of a flat tree cannot move alone.
  CHECK_THROWS_AS(net.to(DType::i64), Error);
  CHECK_THROWS_AS(net.head->to(DType::f32), Error);
  // Back to f32 unflattened.
  Net m;
  m.to(DType::f64);
  m.to(DType::f32);
  CHECK(!m.is_flat());
  for (auto& p : m.parameters()) CHECK(p.dtype() == DType::f32);
}

TEST_CASE("to(DType) on a parent re-flattens a flattened child") {
  Net net;
  net.trunk->flatten();
  net.to(DType::f64);
  REQUIRE(net.trunk->is_flat());
  CHECK(net.trunk->flat_parameters().dtype() == DType::f64);
  for (auto& p : net.trunk->parameters()) CHECK(p.data().storage() == net.trunk->flat_parameters().storage());
  CHECK(!net.is_flat());
}

TEST_CASE("to(Device::cpu()) is a no-op that keeps flat views") {
  Net net;
  net.flatten();
  Tensor fp = net.flat_parameters();
  net.to(Device::cpu());
  CHECK(net.flat_parameters().storage() == fp.storage());
}
