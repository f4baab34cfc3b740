// tests/layers/test_optim.cpp: SGD / Adam / AdamW against the PyTorch update formulas (and values
// PyTorch 1.13 printed for the same problem), the flat-module path against the per-parameter path
// (bit-identical), state_dict round trips, schedulers against their closed forms, and gradient
// clipping.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <numbers>
#include <vector>

#include "layers/module.h"
#include "layers/optim/adam.h"
#include "layers/optim/clip.h"
#include "layers/optim/scheduler.h"
#include "layers/optim/sgd.h"

using namespace polyhead;
using polyhead::ag::Variable;

namespace {

// Three leaves a (2, 2), b (3), c (1); flat order a, b, c.
struct Leaf : nn::Module {
  Leaf(const std::vector<double>& init, const Shape& shape, DType dt, bool trainable = true) {
    register_parameter("w", Tensor::from_vector(init, shape).to(dt), trainable);
  }
};
struct Net : nn::Module {
  explicit Net(DType dt, bool c_trainable = true, double shift = 0.0) {
    register_module("a", std::make_shared<Leaf>(std::vector<double>{0.5 + shift, -1.0, 2.0, 0.25}, Shape{2, 2}, dt));
    register_module("b", std::make_shared<Leaf>(std::vector<double>{1.5, -0.75 + shift, 3.0}, Shape{3}, dt));
    register_module("c", std::make_shared<Leaf>(std::vector<double>{-2.0 + shift}, Shape{1}, dt, c_trainable));
  }
};

const std::vector<double> kInit{0.5, -1.0, 2.0, 0.25, 1.5, -0.75, 3.0, -2.0};

// Loss 0.5 * sum_i k_i p_i^2 over the concatenated parameters, k_i = 1 + i / 2: g_i = k_i p_i.
// Writes each gradient in place when defined (flat views stay attached), else sets it.
void set_quadratic_grads(const std::vector<Variable>& params) {
  int64_t i0 = 0;
  for (const auto& v : params) {
    std::vector<double> p = v.data().to_vector<double>();
    for (size_t j = 0; j < p.size(); ++j) p[j] *= 1.0 + 0.5 * double(i0 + int64_t(j));
    i0 += int64_t(p.size());
    if (!v.requires_grad()) continue;
    Tensor g = Tensor::from_vector(p, v.shape()).to(v.dtype());
    if (v.grad().defined()) {
      Tensor dst = v.grad();
      dst.copy_(g);
    } else {
      Variable(v).set_grad(g);
    }
  }
}

std::vector<double> concat(const std::vector<Variable>& params) {
  std::vector<double> out;
  for (const auto& v : params) {
    auto x = v.data().to_vector<double>();
    out.insert(out.end(), x.begin(), x.end());
  }
  return out;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  if (a.numel() == 0) return true;
  Tensor ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.raw(), cb.raw(), size_t(ca.numel()) * ca.itemsize()) == 0;
}

bool same_state(const std::map<std::string, Tensor>& a, const std::map<std::string, Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [k, t] : a)
    if (!b.count(k) || !same_bits(t, b.at(k))) return false;
  return true;
}

void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i << ": got " << got[i] << ", want " << want[i]);
    CHECK(std::abs(got[i] - want[i]) <= tol * std::max(1.0, std::abs(want[i])));
  }
}

// PyTorch's update formulas, per element, in double.
struct RefSGD {
  double lr, momentum, dampening, wd;
  bool nesterov;
  std::vector<double> buf;
  int t = 0;
  void step(std::vector<double>& p, const std::vector<double>& g) {
    ++t;
    buf.resize(p.size());
    for (size_t i = 0; i < p.size(); ++i) {
      double d = g[i] + wd * p[i];
      if (momentum != 0) {
        buf[i] = t == 1 ? d : momentum * buf[i] + (1 - dampening) * d;
        d = nesterov ? d + momentum * buf[i] : buf[i];
      }
      p[i] -= lr * d;
    }
  }
};
struct RefAdam {
  double lr, b1, b2, eps, wd;
  bool decoupled;
  std::vector<double> m, v;
  int t = 0;
  void step(std::vector<double>& p, const std::vector<double>& grad) {
    ++t;
    m.resize(p.size());
    v.resize(p.size());
    for (size_t i = 0; i < p.size(); ++i) {
      double g = grad[i];
      if (decoupled) p[i] *= 1 - lr * wd;
      else g += wd * p[i];
      m[i] = b1 * m[i] + (1 - b1) * g;
      v[i] = b2 * v[i] + (1 - b2) * g * g;
      const double bc1 = 1 - std::pow(b1, t), bc2 = 1 - std::pow(b2, t);
      p[i] -= lr / bc1 * m[i] / (std::sqrt(v[i]) / std::sqrt(bc2) + eps);
    }
  }
};

std::vector<double> quad_grad(const std::vector<double>& p) {
  std::vector<double> g(p.size());
  for (size_t i = 0; i < p.size(); ++i) g[i] = (1.0 + 0.5 * double(i)) * p[i];
  return g;
}

// Three steps of `opt` over net (gradients from the quadratic each step).
template <class Opt>
std::vector<double> run3(Net& net, Opt& opt, int steps = 3) {
  for (int s = 0; s < steps; ++s) {
    opt.zero_grad();
    set_quadratic_grads(net.parameters());
    opt.step();
  }
  return concat(net.parameters());
}

}  // namespace

TEST_CASE("optim: SGD follows the PyTorch formula (momentum, dampening, Nesterov, weight decay)") {
  struct Case { double lr, mom, damp, wd; bool nest; };
  for (Case c : {Case{0.1, 0, 0, 0, false}, Case{0.1, 0.9, 0, 0, false}, Case{0.1, 0.8, 0.3, 0.05, false},
                 Case{0.1, 0.9, 0, 0.01, true}}) {
    for (DType dt : {DType::f64, DType::f32}) {
      CAPTURE(c.mom);
      CAPTURE(c.nest);
      auto net = std::make_shared<Net>(dt);
      optim::SGD opt(*net, optim::SGDOptions(c.lr).momentum(c.mom).dampening(c.damp).weight_decay(c.wd).nesterov(c.nest));
      CHECK(opt.is_flat());
      std::vector<double> p = kInit;
      RefSGD ref{c.lr, c.mom, c.damp, c.wd, c.nest, {}};
      for (int s = 0; s < 3; ++s) ref.step(p, quad_grad(p));
      check_close(run3(*net, opt), p, dt == DType::f64 ? 1e-14 : 2e-6);
      CHECK(opt.step_count() == 3);
    }
  }
  // The values PyTorch 1.13 printed for this problem (f64).
  auto net = std::make_shared<Net>(DType::f64);
  optim::SGD nest(*net, optim::SGDOptions(0.1).momentum(0.9).nesterov(true).weight_decay(0.01));
  check_close(run3(*net, nest),
              {0.16092983672049999, -0.07810210709099996, -0.22330218851800027, -0.06313604515225002, -0.5245821029385,
               0.30624525623175003, -1.300515748977, 0.8608007520180001},
              1e-13);
  net = std::make_shared<Net>(DType::f64);
  optim::SGD damp(*net, optim::SGDOptions(0.1).momentum(0.8).dampening(0.3).weight_decay(0.05));
  check_close(run3(*net, damp),
              {0.285309006875, -0.38849055125, 0.4405476775000001, 0.016400094062499992, -0.1138460043750001,
               0.1534400990625001, -0.9625065337500001, 0.8500219475},
              1e-13);
}

TEST_CASE("optim: Adam and AdamW follow the PyTorch formulas") {
  for (bool decoupled : {false, true}) {
    for (double wd : {0.0, 0.1}) {
      for (DType dt : {DType::f64, DType::f32}) {
        CAPTURE(decoupled);
        CAPTURE(wd);
        auto net = std::make_shared<Net>(dt);
        std::unique_ptr<optim::Optimizer> opt;
        if (decoupled) opt = std::make_unique<optim::AdamW>(*net, optim::AdamWOptions(0.01).betas(0.8, 0.9).eps(1e-6).weight_decay(wd));
        else opt = std::make_unique<optim::Adam>(*net, optim::AdamOptions(0.01).betas(0.8, 0.9).eps(1e-6).weight_decay(wd));
        std::vector<double> p = kInit;
        RefAdam ref{0.01, 0.8, 0.9, 1e-6, wd, decoupled, {}, {}, 0};
        for (int s = 0; s < 3; ++s) ref.step(p, quad_grad(p));
        check_close(run3(*net, *opt), p, dt == DType::f64 ? 1e-14 : 2e-6);
      }
    }
  }
  auto net = std::make_shared<Net>(DType::f64);
  optim::Adam adam(*net, optim::AdamOptions(0.01).betas(0.8, 0.9).eps(1e-6).weight_decay(0.1));
  check_close(run3(*net, adam),
              {0.4700236746412957, -0.9700112480398826, 1.970005480080304, 0.22005216143966416, 1.4700073663311257,
               -0.720015238728552, 2.9700036199085056, -1.9700054761893966},
              1e-13);
  net = std::make_shared<Net>(DType::f64);
  optim::AdamW adamw(*net, optim::AdamWOptions(0.01).betas(0.8, 0.9).eps(1e-6).weight_decay(0.1));
  check_close(run3(*net, adamw),
              {0.4685564577558795, -0.9670454159084009, 1.964042592474983, 0.21933442624931493, 1.465542996822714,
               -0.717798692252354, 2.9610437133910903, -1.9640425883008488},
              1e-13);
  // Defaults: Adam 1e-3 / (0.9, 0.999) / 1e-8 / 0; AdamW's weight decay 0.01.
  CHECK(optim::AdamOptions().lr() == 1e-3);
  CHECK(optim::AdamOptions().betas() == std::pair<double, double>{0.9, 0.999});
  CHECK(optim::AdamOptions().eps() == 1e-8);
  CHECK(optim::AdamOptions().weight_decay() == 0.0);
  CHECK(optim::AdamWOptions().weight_decay() == 0.01);
}

TEST_CASE("optim: the flat path and the per-parameter path are bit-identical") {
  auto make = [](int which, bool flat_module, nn::Module& m) -> std::unique_ptr<optim::Optimizer> {
    auto params = m.parameters();
    switch (which) {
      case 0: {
        auto o = optim::SGDOptions(0.05).momentum(0.9).nesterov(true).weight_decay(1e-3);
        return flat_module ? std::make_unique<optim::SGD>(m, o) : std::make_unique<optim::SGD>(params, o);
      }
      case 1: {
        auto o = optim::AdamOptions(0.01).weight_decay(0.01);
        return flat_module ? std::make_unique<optim::Adam>(m, o) : std::make_unique<optim::Adam>(params, o);
      }
      default: {
        auto o = optim::AdamWOptions(0.01);
        return flat_module ? std::make_unique<optim::AdamW>(m, o) : std::make_unique<optim::AdamW>(params, o);
      }
    }
  };
  for (int which = 0; which < 3; ++which) {
    CAPTURE(which);
    auto flat = std::make_shared<Net>(DType::f32);
    auto plain = std::make_shared<Net>(DType::f32);
    auto of = make(which, true, *flat);
    auto op = make(which, false, *plain);
    CHECK(flat->is_flat());
    CHECK(!plain->is_flat());
    CHECK(of->is_flat());
    CHECK(!op->is_flat());
    for (int s = 0; s < 5; ++s) {
      of->zero_grad();
      op->zero_grad();
      set_quadratic_grads(flat->parameters());
      set_quadratic_grads(plain->parameters());
      of->step();
      op->step();
    }
    auto pf = flat->parameters(), pp = plain->parameters();
    for (size_t i = 0; i < pf.size(); ++i) CHECK(same_bits(pf[i].data(), pp[i].data()));
    // The flat state is the per-parameter states laid end to end.
    auto sf = of->state_dict(), sp = op->state_dict();
    CHECK(sf.at("step").item() == 5);
    for (const auto& [k, t] : sf) {
      if (k.rfind("flat.", 0) != 0 || k == "flat.step") continue;
      const std::string name = k.substr(5);
      std::vector<Tensor> parts;
      for (size_t i = 0; i < pf.size(); ++i) {
        CHECK(sp.at("param." + std::to_string(i) + ".step").item() == 5);
        parts.push_back(sp.at("param." + std::to_string(i) + "." + name).reshape({-1}));
      }
      Tensor cat = Tensor::empty({t.numel()}, t.dtype());
      int64_t off = 0;
      for (auto& p : parts) {
        cat.narrow(0, off, p.numel()).copy_(p);
        off += p.numel();
      }
      CHECK(same_bits(cat, t));
    }
  }
}

TEST_CASE("optim: frozen parameters and missing gradients") {
  // Flat module with a frozen parameter: it never moves (even under weight decay and momentum), the
  // others move exactly as a per-parameter optimizer over the trainable ones moves them.
  auto flat = std::make_shared<Net>(DType::f64, /*c_trainable=*/false);
  auto plain = std::make_shared<Net>(DType::f64, false);
  optim::SGD of(*flat, optim::SGDOptions(0.1).momentum(0.9).weight_decay(0.1));
  auto trainable = plain->parameters();
  trainable.pop_back();  // c
  optim::SGD op(trainable, optim::SGDOptions(0.1).momentum(0.9).weight_decay(0.1));
  for (int s = 0; s < 3; ++s) {
    set_quadratic_grads(flat->parameters());
    set_quadratic_grads(plain->parameters());
    of.step();
    op.step();
  }
  auto pf = flat->parameters(), pp = plain->parameters();
  CHECK(pf[2].data().to_vector<double>() == std::vector<double>{-2.0});
  for (size_t i = 0; i < 2; ++i) CHECK(same_bits(pf[i].data(), pp[i].data()));

  // Per-parameter path: a parameter without a gradient is skipped and its step count stays.
  auto net = std::make_shared<Net>(DType::f64);
  auto params = net->parameters();
  optim::Adam adam(params, optim::AdamOptions(0.1));
  Variable(params[0]).set_grad(Tensor::ones({2, 2}, DType::f64));
  Variable(params[2]).set_grad(Tensor::ones({1}, DType::f64));
  adam.step();
  CHECK(params[1].data().to_vector<double>() == std::vector<double>{1.5, -0.75, 3.0});
  CHECK(params[0].data().to_vector<double>()[0] != 0.5);
  auto sd = adam.state_dict();
  CHECK(sd.at("param.0.step").item() == 1);
  CHECK(sd.at("param.1.step").item() == 0);
  CHECK(sd.at("param.1.exp_avg").shape() == Shape{3});
  CHECK(sd.at("step").item() == 1);
}

TEST_CASE("optim: zero_grad, lr, step count and option checks") {
  auto net = std::make_shared<Net>(DType::f32);
  optim::SGD opt(*net, optim::SGDOptions(0.5));
  set_quadratic_grads(net->parameters());
  opt.zero_grad();
  CHECK(net->flat_gradients().to_vector<float>() == std::vector<float>(8, 0.0f));
  CHECK(opt.lr() == 0.5);
  opt.set_lr(0.25);
  CHECK(opt.lr() == 0.25);
  CHECK(opt.options().lr() == 0.25);
  CHECK_THROWS_AS(opt.set_lr(-1), Error);
  CHECK_THROWS_AS(opt.set_lr(NAN), Error);
  CHECK(opt.name() == "SGD");

  auto plain = std::make_shared<Net>(DType::f32);
  auto params = plain->parameters();
  optim::SGD op(params, optim::SGDOptions(0.5));
  set_quadratic_grads(params);
  op.zero_grad();
  for (auto& p : params) CHECK(p.grad().to_vector<float>() == std::vector<float>(size_t(p.numel()), 0.0f));

  CHECK_THROWS_AS(optim::SGD(params, optim::SGDOptions(0.1).nesterov(true)), Error);  // no momentum
  CHECK_THROWS_AS(optim::SGD(params, optim::SGDOptions(0.1).momentum(0.9).dampening(0.1).nesterov(true)), Error);
  CHECK_THROWS_AS(optim::SGD(params, optim::SGDOptions(-0.1)), Error);
  CHECK_THROWS_AS(optim::SGD(params, optim::SGDOptions(0.1).weight_decay(-1)), Error);
  CHECK_THROWS_AS(optim::Adam(params, optim::AdamOptions(0.1).betas(0.9, 1.0)), Error);
  CHECK_THROWS_AS(optim::Adam(params, optim::AdamOptions(0.1).eps(-1)), Error);
  CHECK_THROWS_AS(optim::AdamW(params, optim::AdamWOptions(0.1).betas(-0.1, 0.9)), Error);
  CHECK_THROWS_AS(optim::SGD(std::vector<Variable>{params[0], params[0]}, optim::SGDOptions(0.1)), Error);
  // Switching momentum on after construction is refused at the step.
  optim::SGD sw(params, optim::SGDOptions(0.1));
  sw.options().momentum(0.9);
  set_quadratic_grads(params);
  CHECK_THROWS_AS(sw.step(), Error);
}

TEST_CASE("optim: state_dict round trip continues identically") {
  for (int which = 0; which < 3; ++which) {
    for (bool flat : {true, false}) {
      CAPTURE(which);
      CAPTURE(flat);
      auto make = [&](Net& m) -> std::unique_ptr<optim::Optimizer> {
        if (which == 0) {
          auto o = optim::SGDOptions(0.05).momentum(0.9).dampening(0.1).weight_decay(1e-3);
          return flat ? std::make_unique<optim::SGD>(m, o) : std::make_unique<optim::SGD>(m.parameters(), o);
        }
        if (which == 1) {
          auto o = optim::AdamOptions(0.01).weight_decay(0.01);
          return flat ? std::make_unique<optim::Adam>(m, o) : std::make_unique<optim::Adam>(m.parameters(), o);
        }
        auto o = optim::AdamWOptions(0.02);
        return flat ? std::make_unique<optim::AdamW>(m, o) : std::make_unique<optim::AdamW>(m.parameters(), o);
      };
      auto a = std::make_shared<Net>(DType::f32);
      auto oa = make(*a);
      run3(*a, *oa);
      oa->set_lr(oa->lr() * 0.5);  // the lr travels with the state
      auto sd = oa->state_dict();
      auto msd = a->state_dict();

      auto b = std::make_shared<Net>(DType::f32, true, 0.125);  // other initial values
      auto ob = make(*b);
      b->load_state_dict(msd);
      ob->load_state_dict(sd);
      CHECK(ob->step_count() == 3);
      CHECK(ob->lr() == oa->lr());
      CHECK(same_state(ob->state_dict(), sd));
      run3(*a, *oa);
      run3(*b, *ob);
      auto pa = a->parameters(), pb = b->parameters();
      for (size_t i = 0; i < pa.size(); ++i) CHECK(same_bits(pa[i].data(), pb[i].data()));
      CHECK(same_state(oa->state_dict(), ob->state_dict()));
    }
  }
}

TEST_CASE("optim: load_state_dict validates every key and changes nothing on error") {
  auto net = std::make_shared<Net>(DType::f32);
  optim::SGD sgd(*net, optim::SGDOptions(0.1).momentum(0.9));
  run3(*net, sgd);
  const auto before = sgd.state_dict();
  auto expect_error = [&](const std::map<std::string, Tensor>& sd, const char* part) {
    std::string msg;
    try {
      sgd.load_state_dict(sd);
    } catch (const Error& e) {
      msg = e.what();
    }
    INFO(msg);
    CHECK(msg.find(part) != std::string::npos);
    CHECK(same_state(sgd.state_dict(), before));
    CHECK(sgd.step_count() == 3);
  };
  // Adam's state into SGD.
  auto other = std::make_shared<Net>(DType::f32);
  optim::Adam adam(*other, optim::AdamOptions());
  expect_error(adam.state_dict(), "flat.exp_avg");
  expect_error(adam.state_dict(), "flat.momentum_buffer");
  // Per-parameter state into a flat optimizer.
  optim::SGD per(other->parameters(), optim::SGDOptions(0.1).momentum(0.9));
  expect_error(per.state_dict(), "param.0.momentum_buffer");
  // Wrong shape, dtype, values.
  auto sd = before;
  sd["flat.momentum_buffer"] = Tensor::zeros({7});
  expect_error(sd, "\"flat.momentum_buffer\" has shape [7], expected [8]");
  sd = before;
  sd["flat.momentum_buffer"] = Tensor::zeros({8}, DType::i32);
  expect_error(sd, "\"flat.momentum_buffer\" must be floating");
  sd = before;
  sd["step"] = Tensor::scalar(-1, DType::i64);
  expect_error(sd, "\"step\" must be >= 0");
  sd = before;
  sd["flat.step"] = Tensor::scalar(1.0, DType::f32);
  expect_error(sd, "\"flat.step\" must be an integer");
  sd = before;
  sd["lr"] = Tensor::scalar(NAN, DType::f64);
  expect_error(sd, "\"lr\"");
  sd = before;
  sd.erase("lr");
  expect_error(sd, "missing keys \"lr\"");
  sd = before;
  sd["surprise"] = Tensor::zeros({1});
  expect_error(sd, "unexpected keys \"surprise\"");
  // And a good one still loads (f64 buffers convert to the parameters' f32).
  sd = before;
  sd["flat.momentum_buffer"] = before.at("flat.momentum_buffer").to(DType::f64);
  sgd.load_state_dict(sd);
  CHECK(same_state(sgd.state_dict(), before));
}

TEST_CASE("scheduler: learning rates follow the closed forms") {
  auto net = std::make_shared<Net>(DType::f32);
  SUBCASE("StepLR") {
    optim::SGD opt(*net, optim::SGDOptions(0.1));
    optim::StepLR sched(opt, 2, 0.5);
    std::vector<double> want{0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.0125};
    for (size_t e = 0; e < want.size(); ++e) {
      CHECK(opt.lr() == doctest::Approx(want[e]).epsilon(1e-15));
      CHECK(sched.last_epoch() == int64_t(e));
      opt.step();
      sched.step();
    }
  }
  SUBCASE("CosineAnnealingLR") {
    optim::SGD opt(*net, optim::SGDOptions(0.1));
    optim::CosineAnnealingLR sched(opt, 5, 0.01);
    // PyTorch 1.13's (recursive) values for the same schedule.
    std::vector<double> torch{0.1, 0.09140576474687263, 0.06890576474687263, 0.04109423525312736,
                              0.018594235253127367, 0.01, 0.018594235253127367, 0.04109423525312739};
    for (size_t e = 0; e < torch.size(); ++e) {
      const double closed = 0.01 + (0.1 - 0.01) * (1 + std::cos(std::numbers::pi * double(e) / 5)) / 2;
      CHECK(opt.lr() == closed);
      CHECK(opt.lr() == doctest::Approx(torch[e]).epsilon(1e-14));
      sched.step();
    }
  }
  SUBCASE("LinearWarmup alone and then cosine") {
    optim::Adam opt(*net, optim::AdamOptions(0.2));
    {
      optim::LinearWarmup warm(opt, 4);
      for (int e = 0; e < 7; ++e) {
        CHECK(opt.lr() == doctest::Approx(e < 4 ? 0.2 * e / 4 : 0.2).epsilon(1e-15));
        warm.step();
      }
    }
    opt.set_lr(0.2);
    auto cos = std::make_shared<optim::CosineAnnealingLR>(opt, 6, 0.02);
    optim::LinearWarmup warm(opt, 3, cos, 0.1);
    for (int e = 0; e < 12; ++e) {
      const double want = e < 3 ? 0.2 * (0.1 + 0.9 * e / 3.0)
                                : 0.02 + 0.18 * (1 + std::cos(std::numbers::pi * double(e - 3) / 6)) / 2;
      CHECK(opt.lr() == doctest::Approx(want).epsilon(1e-15));
      CHECK(cos->last_epoch() == std::max(0, e - 3));
      warm.step();
    }
  }
  SUBCASE("warm-up after a warm-up keeps the original base lr") {
    optim::SGD opt(*net, optim::SGDOptions(0.4));
    auto inner = std::make_shared<optim::LinearWarmup>(opt, 2);  // sets the lr to 0 at once
    CHECK(opt.lr() == 0.0);
    optim::LinearWarmup outer(opt, 2, inner, 0.5);
    CHECK(outer.base_lr() == 0.4);
    std::vector<double> want{0.2, 0.3, 0.0, 0.2, 0.4, 0.4};
    for (double w : want) {
      CHECK(opt.lr() == doctest::Approx(w).epsilon(1e-15));
      outer.step();
    }
  }
  SUBCASE("argument checks") {
    optim::SGD opt(*net, optim::SGDOptions(0.1));
    CHECK_THROWS_AS(optim::StepLR(opt, 0), Error);
    CHECK_THROWS_AS(optim::CosineAnnealingLR(opt, 0), Error);
    CHECK_THROWS_AS(optim::LinearWarmup(opt, 0), Error);
    CHECK_THROWS_AS(optim::LinearWarmup(opt, 2, nullptr, 1.5), Error);
    auto other_net = std::make_shared<Net>(DType::f32);
    optim::SGD other(*other_net, optim::SGDOptions(0.1));
    CHECK_THROWS_AS(optim::LinearWarmup(opt, 2, std::make_shared<optim::StepLR>(other, 2)), Error);
  }
}

TEST_CASE("scheduler: state save and load resume the schedule") {
  auto net = std::make_shared<Net>(DType::f32);
  optim::SGD opt(*net, optim::SGDOptions(0.3));
  optim::LinearWarmup warm(opt, 2, std::make_shared<optim::StepLR>(opt, 3, 0.5));
  for (int e = 0; e < 5; ++e) warm.step();
  auto sd = warm.state_dict();
  CHECK(sd.at("last_epoch").item() == 5);
  CHECK(sd.at("after.last_epoch").item() == 3);
  CHECK(sd.at("base_lr").item() == 0.3);

  auto net2 = std::make_shared<Net>(DType::f32);
  optim::SGD opt2(*net2, optim::SGDOptions(0.3));
  optim::LinearWarmup warm2(opt2, 2, std::make_shared<optim::StepLR>(opt2, 3, 0.5));
  warm2.load_state_dict(sd);
  CHECK(opt2.lr() == opt.lr());
  for (int e = 0; e < 6; ++e) {
    warm.step();
    warm2.step();
    CHECK(opt2.lr() == opt.lr());
  }
  // Validation: nothing changes on a bad state.
  const double lr = opt2.lr();
  const int64_t epoch = warm2.last_epoch();
  auto bad = sd;
  bad.erase("after.base_lr");
  CHECK_THROWS_WITH_AS(warm2.load_state_dict(bad), doctest::Contains("base_lr"), Error);
  bad = sd;
  bad["last_epoch"] = Tensor::scalar(-2, DType::i64);
  CHECK_THROWS_AS(warm2.load_state_dict(bad), Error);
  bad = sd;
  bad["extra"] = Tensor::scalar(1, DType::i64);
  CHECK_THROWS_WITH_AS(warm2.load_state_dict(bad), doctest::Contains("extra"), Error);
  CHECK(opt2.lr() == lr);
  CHECK(warm2.last_epoch() == epoch);
}

TEST_CASE("clip_grad_norm_: total norm in f64 and PyTorch's scaling") {
  auto make = [](DType dt) {
    std::vector<Variable> ps{Variable(Tensor::zeros({2}, dt), true), Variable(Tensor::zeros({1}, dt), true),
                             Variable(Tensor::zeros({3}, dt), true)};
    ps[0].set_grad(Tensor::from_vector(std::vector<double>{3, 4}).to(dt));
    ps[1].set_grad(Tensor::from_vector(std::vector<double>{12}).to(dt));  // ps[2]: no gradient
    return ps;
  };
  for (DType dt : {DType::f32, DType::f64}) {
    auto ps = make(dt);
    CHECK(optim::clip_grad_norm_(ps, 20.0) == 13.0);  // no clipping
    CHECK(ps[0].grad().to_vector<double>() == std::vector<double>{3, 4});
    const double total = optim::clip_grad_norm_(ps, 6.5);
    CHECK(total == 13.0);
    const double coef = 6.5 / (13.0 + 1e-6);
    if (dt == DType::f64) {
      CHECK(ps[0].grad().to_vector<double>() == std::vector<double>{3 * coef, 4 * coef});
      CHECK(ps[1].grad().to_vector<double>() == std::vector<double>{12 * coef});
    } else {
      // PyTorch 1.13: [1.49999988079071045, 1.99999988079071045], [5.99999952316284180].
      CHECK(ps[0].grad().to_vector<float>() == std::vector<float>{1.49999988079071045f, 1.99999988079071045f});
      CHECK(ps[1].grad().to_vector<float>() == std::vector<float>{5.99999952316284180f});
    }
    CHECK(!ps[2].grad().defined());
    ps = make(dt);
    CHECK(optim::clip_grad_norm_(ps, 100.0, INFINITY) == 12.0);
    CHECK(optim::clip_grad_norm_(ps, 100.0, 1.0) == 19.0);
    CHECK(optim::clip_grad_norm_(ps, 100.0, 3.0) == doctest::Approx(std::cbrt(27.0 + 64 + 1728)).epsilon(1e-14));
    CHECK(optim::grad_norm(ps) == 13.0);
  }
  // f32 gradients whose squares overflow f32 still give the right norm (accumulated in f64).
  std::vector<Variable> big{Variable(Tensor::zeros({2}), true)};
  big[0].set_grad(Tensor::from_vector(std::vector<float>{3e30f, 4e30f}));
  CHECK(optim::grad_norm(big) == doctest::Approx(5e30).epsilon(1e-6));

  // Non-finite totals.
  auto ps = make(DType::f32);
  ps[1].set_grad(Tensor::from_vector(std::vector<float>{NAN}));
  CHECK_THROWS_WITH_AS(optim::clip_grad_norm_(ps, 1.0), doctest::Contains("nan"), Error);
  CHECK(ps[0].grad().to_vector<float>() == std::vector<float>{3, 4});  // untouched
  CHECK(std::isnan(optim::clip_grad_norm_(ps, 1.0, 2.0, /*error_if_nonfinite=*/false)));
  CHECK(std::isnan(ps[0].grad().to_vector<float>()[0]));  // scaled by NaN, as PyTorch does
  ps = make(DType::f32);
  ps[1].set_grad(Tensor::from_vector(std::vector<float>{INFINITY}));
  CHECK_THROWS_AS(optim::clip_grad_norm_(ps, 1.0, INFINITY), Error);
  CHECK(std::isinf(optim::clip_grad_norm_(ps, 1.0, INFINITY, false)));
  CHECK(ps[0].grad().to_vector<float>() == std::vector<float>{0, 0});  // scaled by 1 / inf = 0
  CHECK_THROWS_AS(optim::clip_grad_norm_(make(DType::f32), 1.0, 0.0), Error);
  CHECK(optim::clip_grad_norm_(std::vector<Variable>{}, 1.0) == 0.0);

  // Module: the flat gradient buffer in one go, same total as the parameter list.
  auto net = std::make_shared<Net>(DType::f64);
  auto plain = std::make_shared<Net>(DType::f64);
  net->flatten();
  set_quadratic_grads(net->parameters());
  set_quadratic_grads(plain->parameters());
  const double tf = optim::clip_grad_norm_(*net, 1.0);
  const double tp = optim::clip_grad_norm_(*plain, 1.0);
  CHECK(tf == doctest::Approx(tp).epsilon(1e-15));
  CHECK(optim::grad_norm(net->parameters()) == doctest::Approx(1.0).epsilon(1e-6));
  auto gf = net->parameters(), gp = plain->parameters();
  for (size_t i = 0; i < gf.size(); ++i)
    check_close(gf[i].grad().to_vector<double>(), gp[i].grad().to_vector<double>(), 1e-15);
}
