// tests/mtl/test_architectures.cpp: LibMTL's architectures (MMoE, CGC, PLE, DSelect-k,
// Cross-stitch, MTAN): shapes and the shared / task-specific split, the stacked-cotangent Jacobian
// against K separate backward passes, hand-checked values, and a few training steps per method.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <set>

#include "autograd/engine.h"
#include "engine/ops.h"
#include "engine/rng.h"
#include "layers/activation.h"
#include "layers/linear.h"
#include "layers/optim/sgd.h"
#include "layers/sequential.h"
#include "mtl/architectures.h"
#include "mtl/per_task_grads.h"
#include "mtl/trainer.h"

using namespace polyhead;
using namespace polyhead::mtl;

namespace {

constexpr int64_t kIn = 6, kRep = 5, kClasses = 3;

std::shared_ptr<nn::UnaryModule> mlp(int64_t in, int64_t out) {
  auto s = std::make_shared<nn::Sequential>();
  s->push_back(std::make_shared<nn::Linear>(in, out));
  s->push_back(std::make_shared<nn::ReLU>());
  return s;
}

int64_t mlp_numel(int64_t in, int64_t out) { return in * out + out; }

struct Case {
  std::string name;
  std::function<std::shared_ptr<Architecture>(int K)> make;
  std::function<int64_t(int K)> shared_numel;  // expected num_shared()
  size_t task_tensors;                          // parameter tensors of one task, its head included
};

std::vector<Case> cases() {
  auto expert = [] { return mlp(kIn, kRep); };
  std::vector<Case> c;
  c.push_back({"MMoE", [=](int K) { return std::make_shared<MMoE>(expert, 3, kIn, K); },
               [](int) { return 3 * mlp_numel(kIn, kRep); }, 4});
  c.push_back({"CGC", [=](int K) { return std::make_shared<CGC>(expert, 2, 1, kIn, K); },
               [](int) { return 2 * mlp_numel(kIn, kRep); }, 6});
  c.push_back({"PLE",
               [](int K) {
                 return std::make_shared<PLE>([](int l) { return l == 0 ? mlp(kIn, 7) : mlp(7, kRep); },
                                              std::vector<int64_t>{kIn, 7}, 2, 1, K);
               },
               [](int) { return 2 * mlp_numel(kIn, 7) + 2 * mlp_numel(7, kRep); }, 10});
  for (int E : {4, 3})
    c.push_back({"DSelect_k E=" + std::to_string(E), [=](int K) { return std::make_shared<DSelectK>(expert, E, kIn, K); },
                 [=](int) { return E * mlp_numel(kIn, kRep); }, 6});
  c.push_back({"Cross_stitch",
               [](int K) {
                 return std::make_shared<CrossStitch>(
                     [] { return std::vector<std::shared_ptr<nn::UnaryModule>>{mlp(kIn, 7), mlp(7, kRep)}; }, K);
               },
               [](int K) { return K * (mlp_numel(kIn, 7) + mlp_numel(7, kRep)) + K * K; }, 2});
  c.push_back({"MTAN",
               [](int K) {
                 return std::make_shared<MTAN>(
                     [] { return std::vector<std::shared_ptr<nn::UnaryModule>>{mlp(kIn, 7), mlp(7, 4), mlp(4, kRep)}; },
                     std::vector<int64_t>{7, 4, kRep}, K);
               },
               [](int) {
                 return mlp_numel(kIn, 7) + mlp_numel(7, 4) + mlp_numel(4, kRep) + mlp_numel(7, 4) + mlp_numel(4, kRep);
               },
               14});
  return c;
}

std::shared_ptr<MultiTaskModel> model_of(std::shared_ptr<Architecture> arch, int K) {
  std::vector<Task> tasks;
  for (int k = 0; k < K; ++k) tasks.emplace_back("task" + std::to_string(k), std::make_shared<nn::Linear>(kRep, kClasses));
  return std::make_shared<MultiTaskModel>(std::move(arch), std::move(tasks));
}

Batch random_batch(int64_t B, int K, uint64_t seed, DType dt) {
  manual_seed(seed);
  Batch b;
  b.x = Tensor::randn({B, kIn}, dt);
  for (int k = 0; k < K; ++k)
    b.y.push_back(ops::mul_scalar(Tensor::rand({B}), double(kClasses) - 1e-6).to(DType::i64));
  return b;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  auto x = a.to_vector<double>(), y = b.to_vector<double>();
  double err = 0;
  for (size_t i = 0; i < x.size(); ++i) err = std::max(err, std::abs(x[i] - y[i]));
  return err;
}

void check_close(const Tensor& a, const Tensor& b, double rtol) {
  double scale = 0;
  for (double v : b.to_vector<double>()) scale = std::max(scale, std::abs(v));
  CHECK(max_abs_diff(a, b) <= rtol * std::max(scale, 1e-30));
}

std::shared_ptr<nn::UnaryModule> child_unary(const nn::Module& m, const std::string& name) {
  auto c = std::dynamic_pointer_cast<nn::UnaryModule>(m.child(name));
  REQUIRE(c != nullptr);
  return c;
}

Variable arch_param(Architecture& a, const std::string& name) {
  for (auto& [n, p] : a.named_parameters())
    if (n == name) return p;
  FAIL("no parameter " << name);
  return {};
}

}  // namespace

TEST_CASE("architectures: forward shapes and the shared / task-specific split") {
  for (const auto& c : cases())
    for (int K : {2, 3}) {
      INFO(c.name << ", K = " << K);
      manual_seed(1);
      auto m = model_of(c.make(K), K);
      m->to(DType::f64);
      Tensor x = Tensor::randn({4, kIn}, DType::f64);
      auto reps = m->representations(Variable(x));
      REQUIRE(reps.size() == size_t(K));
      for (auto& r : reps) CHECK(r.shape() == Shape{4, kRep});
      auto outs = m->forward(Variable(x));
      REQUIRE(outs.size() == size_t(K));
      for (auto& o : outs) CHECK(o.shape() == Shape{4, kClasses});
      CHECK(m->num_shared() == c.shared_numel(K));
      std::set<const void*> shared, seen;
      for (auto& p : m->shared_parameters()) shared.insert(p.impl());
      size_t total = shared.size();
      for (int k = 0; k < K; ++k) {
        const auto& tp = m->task_parameters(k);
        CHECK(tp.size() == c.task_tensors);
        for (auto& p : tp) {
          CHECK(shared.count(p.impl()) == 0);
          CHECK(seen.insert(p.impl()).second);  // disjoint across tasks
        }
        total += tp.size();
      }
      CHECK(total == m->parameters().size());
    }
}

TEST_CASE("architectures: stacked-cotangent Jacobian equals K separate backward passes") {
  for (const auto& c : cases())
    for (int K : {2, 3}) {
      INFO(c.name << ", K = " << K);
      manual_seed(2);
      auto m = model_of(c.make(K), K);
      m->to(DType::f64);
      auto b = random_batch(5, K, 3, DType::f64);
      auto f = split_forward(*m, b);
      auto rg = representation_grads(*m, f);
      Tensor G = shared_jacobian(*m, f, rg);
      Tensor R = shared_jacobian_reference(*m, b);
      REQUIRE(G.shape() == Shape{K, m->num_shared()});
      check_close(G, R, 1e-11);
      // every task reaches the shared parameters
      Mat M = gramian(G);
      for (int k = 0; k < K; ++k) CHECK(M(k, k) > 0);
    }
}

TEST_CASE("MMoE: gate weights are a distribution and identical experts give that expert's output") {
  manual_seed(4);
  auto proto = mlp(kIn, kRep);
  auto protos = proto->parameters();
  auto same = [&] {
    auto e = mlp(kIn, kRep);
    auto ps = e->parameters();
    for (size_t i = 0; i < ps.size(); ++i) ps[i].set_data(protos[i].data().clone());
    return e;
  };
  auto arch = std::make_shared<MMoE>(same, 4, kIn, 3);
  auto cgc = std::make_shared<CGC>(same, 2, 2, kIn, 2);
  auto m = model_of(arch, 3);
  m->to(DType::f64);
  cgc->to(DType::f64);
  proto->to(DType::f64);
  Tensor x = Tensor::randn({6, kIn}, DType::f64);
  auto w = arch->gate_weights(Variable(x));
  REQUIRE(w.size() == 3);
  for (auto& wk : w) {
    REQUIRE(wk.shape() == Shape{6, 4});
    for (double s : ops::sum(wk.data(), {1}).to_vector<double>()) CHECK(s == doctest::Approx(1.0).epsilon(1e-14));
    for (double v : wk.data().to_vector<double>()) CHECK(v > 0);
  }
  Tensor ref = proto->forward(Variable(x)).data();
  for (auto& r : arch->forward(Variable(x))) CHECK(max_abs_diff(r.data(), ref) < 1e-13);

  // CGC likewise: shared and task experts identical -> the expert's output
  for (auto& r : cgc->forward(Variable(x))) CHECK(max_abs_diff(r.data(), ref) < 1e-13);
}

TEST_CASE("DSelect-k: smooth step, expert weights and a hand-computed selection") {
  auto expert = [] { return mlp(kIn, kRep); };
  manual_seed(5);
  auto g1 = std::make_shared<DSelectK>(expert, 4, kIn, 2, 2, 1.0);
  auto g2 = std::make_shared<DSelectK>(expert, 4, kIn, 2, 2, 2.0);
  g1->to(DType::f64);
  g2->to(DType::f64);
  auto tv = Tensor::from_vector(std::vector<double>{-0.6, -0.5, -0.2, 0.0, 0.3, 0.5, 0.7, 0.9});
  auto s1 = g1->smooth_step(Variable(tv)).data().to_vector<double>();
  std::vector<double> e1{0, 0, 0.216, 0.5, 0.896, 1, 1, 1};
  for (size_t i = 0; i < e1.size(); ++i) CHECK(s1[i] == doctest::Approx(e1[i]).epsilon(1e-14));
  // gamma = 2: -t^3/4 + 3t/4 + 1/2 on (-1, 1)
  auto s2 = g2->smooth_step(Variable(tv)).data().to_vector<double>();
  std::vector<double> e2{0.104, 0.15625, 0.352, 0.5, 0.71825, 0.84375, 0.93925, 0.99275};
  for (size_t i = 0; i < e2.size(); ++i) CHECK(s2[i] == doctest::Approx(e2[i]).epsilon(1e-14));
  // its gradient: 0 outside (-gamma/2, gamma/2), -6t^2/gamma^3 + 3/(2 gamma) inside
  Variable tg(tv.clone(), true);
  auto gr = ag::grad({ag::sum(g1->smooth_step(tg))}, {tg})[0].to_vector<double>();
  std::vector<double> d1{0, 0, -6 * 0.04 + 1.5, 1.5, -6 * 0.09 + 1.5, 0, 0, 0};
  for (size_t i = 0; i < d1.size(); ++i) CHECK(gr[i] == doctest::Approx(d1[i]).epsilon(1e-13));

  // expert weights: a distribution per example for E = 4; at most 1 for E = 3 (LibMTL drops the
  // selectors' mass on the unused code 3)
  Tensor x = Tensor::randn({7, kIn}, DType::f64);
  for (int E : {4, 3}) {
    auto a = std::make_shared<DSelectK>(expert, E, kIn, 3, 2, 1.0);
    a->to(DType::f64);
    // larger logits than the init so that the selectors are not all 1/2
    for (auto& [n, p] : a->named_parameters())
      if (n.rfind("z_logits", 0) == 0) p.set_data(ops::mul_scalar(p.data(), 60.0));
    auto w = a->expert_weights(Variable(x));
    REQUIRE(w.size() == 3);
    for (auto& wk : w) {
      REQUIRE(wk.shape() == Shape{7, int64_t(E)});
      for (double v : wk.data().to_vector<double>()) CHECK(v >= 0);
      for (double s : ops::sum(wk.data(), {1}).to_vector<double>()) {
        if (E == 4) CHECK(s == doctest::Approx(1.0).epsilon(1e-14));
        else CHECK(s <= 1.0 + 1e-14);
      }
    }
  }

  // constant selectors: zero weights, chosen biases. Selector 0 logits (0.5, -0.5) -> S = (1, 0)
  // -> expert 1 (bit 0 set, bit 1 clear); selector 1 logits (0.1, 0.2) -> S = (0.648, 0.784);
  // mixing logits (0, log 3) -> softmax (1/4, 3/4).
  auto a = std::make_shared<DSelectK>(expert, 4, kIn, 1, 2, 1.0);
  a->to(DType::f64);
  auto zw = arch_param(*a, "z_logits0.weight"), zb = arch_param(*a, "z_logits0.bias");
  auto ww = arch_param(*a, "w_logits0.weight"), wb = arch_param(*a, "w_logits0.bias");
  zw.set_data(Tensor::zeros(zw.shape(), DType::f64));
  ww.set_data(Tensor::zeros(ww.shape(), DType::f64));
  zb.set_data(Tensor::from_vector(std::vector<double>{0.5, -0.5, 0.1, 0.2}));
  wb.set_data(Tensor::from_vector(std::vector<double>{0.0, std::log(3.0)}));
  double S0 = 0.648, S1 = 0.784;
  std::vector<double> sel1{(1 - S0) * (1 - S1), S0 * (1 - S1), (1 - S0) * S1, S0 * S1};
  std::vector<double> want(4);
  for (int e = 0; e < 4; ++e) want[size_t(e)] = 0.75 * sel1[size_t(e)] + (e == 1 ? 0.25 : 0.0);
  auto w = a->expert_weights(Variable(x))[0].data();
  for (int64_t i = 0; i < 7; ++i) {
    auto row = w.select(0, i).to_vector<double>();
    for (int e = 0; e < 4; ++e) CHECK(row[size_t(e)] == doctest::Approx(want[size_t(e)]).epsilon(1e-13));
  }
  // and the representation mixes the experts with those weights
  Tensor rep = a->forward(Variable(x))[0].data();
  Tensor mixed = Tensor::zeros({7, kRep}, DType::f64);
  for (int e = 0; e < 4; ++e)
    mixed = ops::add(mixed, ops::mul_scalar(child_unary(*a, "expert" + std::to_string(e))->forward(Variable(x)).data(),
                                            want[size_t(e)]));
  CHECK(max_abs_diff(rep, mixed) < 1e-13);
}

TEST_CASE("Cross-stitch: identity alpha gives K independent columns; general alpha mixes") {
  int K = 3;
  auto enc = [] { return std::vector<std::shared_ptr<nn::UnaryModule>>{mlp(kIn, 7), mlp(7, 4), mlp(4, kRep)}; };
  manual_seed(6);
  auto cs = std::make_shared<CrossStitch>(enc, K, /*identity_init=*/true);
  cs->to(DType::f64);
  CHECK(cs->alpha().shape() == Shape{2, K, K});
  Tensor x = Tensor::randn({5, kIn}, DType::f64);
  auto col = [&](int t, int i) { return child_unary(*cs, "column" + std::to_string(t) + "_stage" + std::to_string(i)); };
  auto reps = cs->forward(Variable(x));
  REQUIRE(reps.size() == size_t(K));
  for (int t = 0; t < K; ++t) {
    Variable h(x);
    for (int i = 0; i < 3; ++i) h = col(t, i)->forward(h);
    CHECK(max_abs_diff(reps[size_t(t)].data(), h.data()) < 1e-15);
  }
  // LibMTL's default: ones
  auto ones = std::make_shared<CrossStitch>(enc, K);
  for (double v : ones->alpha().data().to_vector<double>()) CHECK(v == 1.0);
  // a random alpha: input of column t's stage i = sum_j alpha[i-1, t, j] h_j
  Variable al = cs->alpha();
  al.set_data(Tensor::randn(al.shape(), DType::f64));
  auto av = al.data().to_vector<double>();
  std::vector<Tensor> h;
  for (int t = 0; t < K; ++t) h.push_back(col(t, 0)->forward(Variable(x)).data());
  for (int i = 1; i < 3; ++i) {
    std::vector<Tensor> next;
    for (int t = 0; t < K; ++t) {
      Tensor in = Tensor::zeros(h[0].shape(), DType::f64);
      for (int j = 0; j < K; ++j) in = ops::add(in, ops::mul_scalar(h[size_t(j)], av[size_t(((i - 1) * K + t) * K + j)]));
      next.push_back(col(t, i)->forward(Variable(in)).data());
    }
    h = next;
  }
  reps = cs->forward(Variable(x));
  for (int t = 0; t < K; ++t) CHECK(max_abs_diff(reps[size_t(t)].data(), h[size_t(t)]) < 1e-12);
}

TEST_CASE("MTAN: the task representation is the last stage output under a (0, 1) mask") {
  manual_seed(7);
  auto a = std::make_shared<MTAN>(
      [] { return std::vector<std::shared_ptr<nn::UnaryModule>>{mlp(kIn, 7), mlp(7, 4), mlp(4, kRep)}; },
      std::vector<int64_t>{7, 4, kRep}, 2);
  a->to(DType::f64);
  Tensor x = Tensor::randn({6, kIn}, DType::f64);
  Variable p(x);
  for (int i = 0; i < 3; ++i) p = child_unary(*a, "stage" + std::to_string(i))->forward(p);
  auto pv = p.data().to_vector<double>();
  auto reps = a->forward(Variable(x));
  for (auto& r : reps) {
    auto rv = r.data().to_vector<double>();
    for (size_t i = 0; i < rv.size(); ++i) {
      CHECK(rv[i] >= 0);
      CHECK(rv[i] <= pv[i]);
      if (pv[i] > 0) CHECK(rv[i] > 0);
    }
  }
  CHECK(max_abs_diff(reps[0].data(), reps[1].data()) > 0);  // the tasks' masks differ
  CHECK_THROWS_AS(MTAN([] { return std::vector<std::shared_ptr<nn::UnaryModule>>{mlp(kIn, 7)}; },
                       std::vector<int64_t>{7, 4}, 2),
                  Error);
}

TEST_CASE("architectures: each trains a few steps with the Trainer and stays finite") {
  const std::vector<std::string> methods{"ew", "pcgrad", "mgda", "upgrad", "cagrad", "nash_mtl", "famo", "uw"};
  int K = 3;
  for (const auto& c : cases())
    for (const auto& method : methods) {
      INFO(c.name << ", method " << method);
      manual_seed(8);
      auto m = model_of(c.make(K), K);
      m->flatten();
      optim::SGD opt(*m, optim::SGDOptions(0.05));
      TrainerOptions to;
      to.method = method;
      Trainer tr(*m, opt, to);
      Tensor before = m->flat_parameters().clone();
      for (int s = 0; s < 3; ++s) {
        auto r = tr.step(random_batch(8, K, 200 + uint64_t(s), DType::f32));
        CHECK(!r.skipped);
        REQUIRE(r.losses.size() == size_t(K));
        for (double l : r.losses) CHECK(std::isfinite(l));
      }
      CHECK(ops::all_finite(m->flat_parameters()));
      CHECK(max_abs_diff(before, m->flat_parameters()) > 0);
    }
}
