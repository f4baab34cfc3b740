// tests/mtl/test_per_task.cpp: the per-task gradient paths agree with each other and with K
// separate backward passes; the trainer runs every registered method; bad input is reported.
#include <doctest/doctest.h>

#include <cmath>

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
#include "mtl/zoo.h"

using namespace polyhead;
using namespace polyhead::mtl;

namespace {

Batch random_batch(const Shape& xs, int K, int classes, uint64_t seed, DType dt = DType::f32) {
  manual_seed(seed);
  Batch b;
  b.x = Tensor::randn(xs, dt);
  for (int k = 0; k < K; ++k) b.y.push_back(ops::mul_scalar(Tensor::rand({xs[0]}), double(classes) - 1e-6).to(DType::i64));
  return b;
}

void check_close(const Tensor& a, const Tensor& b, double rtol) {
  REQUIRE(a.shape() == b.shape());
  auto x = a.to_vector<double>(), y = b.to_vector<double>();
  double scale = 0;
  for (double v : y) scale = std::max(scale, std::abs(v));
  double err = 0;
  for (size_t i = 0; i < x.size(); ++i) err = std::max(err, std::abs(x[i] - y[i]));
  CHECK(err <= rtol * std::max(scale, 1e-30));
}

}  // namespace

TEST_CASE("per-task: stacked-cotangent Jacobian equals K separate backward passes") {
  for (int K : {2, 3}) {
    manual_seed(1);
    auto m = zoo::mlp_hps(K, 6, 8, 4);
    m->to(DType::f64);
    auto b = random_batch({5, 6}, K, 4, 2, DType::f64);
    auto f = split_forward(*m, b);
    auto rg = representation_grads(*m, f);
    Tensor G = shared_jacobian(*m, f, rg);
    Tensor R = shared_jacobian_reference(*m, b);
    REQUIRE(G.shape() == Shape{K, m->num_shared()});
    check_close(G, R, 1e-12);
    // Gramian from the Jacobian agrees with the reference rows' inner products
    Mat M = gramian(G);
    auto Rv = to_mat(R);
    for (int i = 0; i < K; ++i)
      for (int j = 0; j < K; ++j) {
        double s = 0;
        for (int p = 0; p < Rv.cols; ++p) s += Rv(i, p) * Rv(j, p);
        CHECK(M(i, j) == doctest::Approx(s).epsilon(1e-10));
      }
  }
  // a convolutional trunk (LeNet) as well
  manual_seed(3);
  auto m = zoo::lenet_hps(2, 10);
  m->to(DType::f64);
  auto b = random_batch({3, 1, 36, 36}, 2, 10, 4, DType::f64);
  auto f = split_forward(*m, b);
  auto rg = representation_grads(*m, f);
  check_close(shared_jacobian(*m, f, rg), shared_jacobian_reference(*m, b), 1e-11);
}

TEST_CASE("per-task: representation gradients and trunk backward match the summed loss") {
  manual_seed(5);
  auto m = zoo::mlp_hps(2, 6, 8, 3);
  m->to(DType::f64);
  auto b = random_batch({4, 6}, 2, 3, 6, DType::f64);
  // w-weighted trunk backward == gradient of w1 L1 + w2 L2 over the shared parameters
  std::vector<double> w{0.3, 1.7};
  auto f = split_forward(*m, b);
  auto rg = representation_grads(*m, f);
  REQUIRE(rg.dz[0].shape() == Shape{2, 4, 8});
  for (auto& p : m->parameters()) p.set_grad(Tensor());
  trunk_backward(f, rg, w);
  auto outs = m->forward(ag::Variable(b.x));
  auto L = ag::add(ag::mul_scalar(m->task(0).compute_loss(outs[0], b.y[0]), w[0]),
                   ag::mul_scalar(m->task(1).compute_loss(outs[1], b.y[1]), w[1]));
  auto ref = ag::grad({L}, m->shared_parameters());
  for (size_t i = 0; i < ref.size(); ++i) check_close(m->shared_parameters()[i].grad(), ref[i], 1e-12);
}

TEST_CASE("trainer: every registered method trains HPS a few steps with finite parameters") {
  for (const auto& info : list_methods()) {
    INFO("method: " << info.name);
    manual_seed(7);
    int K = 3;
    auto m = zoo::mlp_hps(K, 10, 16, 4);
    m->flatten();
    optim::SGD opt(*m, optim::SGDOptions(0.05));
    TrainerOptions to;
    to.method = info.name;
    if (info.name == "constant") to.method_options.set("weights", "1,0.5,2");
    if (info.name == "krum") { to.method_options.set("n_byzantine", "0"); to.method_options.set("n_selected", "1"); }
    if (info.name == "trimmedmean") to.method_options.set("trim_number", "1");
    if (info.name == "graddrop") to.grad_path = GradPath::Representation;
    to.validation_losses = [K] { return std::vector<double>(size_t(K), 1.0); };  // CoBa
    Trainer tr(*m, opt, to);
    for (int s = 0; s < 4; ++s) {
      auto b = random_batch({12, 10}, K, 4, 100 + uint64_t(s));
      auto r = tr.step(b);
      CHECK(r.losses.size() == size_t(K));
      CHECK(!r.skipped);
      if (s == 1) tr.end_epoch();
    }
    CHECK(ops::all_finite(m->flat_parameters()));
  }
}

TEST_CASE("trainer: reduces the losses of a learnable two-task problem with PCGrad") {
  manual_seed(11);
  auto m = zoo::mlp_hps(2, 8, 32, 2);
  m->flatten();
  optim::SGD opt(*m, optim::SGDOptions(0.1).momentum(0.9));
  TrainerOptions to;
  to.method = "pcgrad";
  Trainer tr(*m, opt, to);
  // task 0: sign of x0; task 1: sign of x1
  manual_seed(12);
  Batch b;
  b.x = Tensor::randn({64, 8});
  b.y.push_back(ops::gt(b.x.select(1, 0), Tensor::scalar(0.0)).to(DType::i64));
  b.y.push_back(ops::gt(b.x.select(1, 1), Tensor::scalar(0.0)).to(DType::i64));
  auto first = tr.step(b).losses;
  std::vector<double> last;
  for (int s = 0; s < 60; ++s) last = tr.step(b).losses;
  CHECK(last[0] < 0.5 * first[0]);
  CHECK(last[1] < 0.5 * first[1]);
}

TEST_CASE("trainer: bad input is reported clearly") {
  manual_seed(13);
  auto m = zoo::mlp_hps(2, 4, 8, 3);
  m->flatten();
  optim::SGD opt(*m, optim::SGDOptions(0.1));
  TrainerOptions to;
  to.method = "no_such_method";
  CHECK_THROWS_WITH_AS(Trainer(*m, opt, to), doctest::Contains("pcgrad"), Error);
  to.method = "ew";
  Trainer tr(*m, opt, to);
  Batch b = random_batch({4, 4}, 2, 3, 14);
  Batch wrong = b;
  wrong.y.pop_back();
  CHECK_THROWS_WITH_AS(tr.step(wrong), doctest::Contains("targets"), Error);
  // NaN in the input: the loss is NaN -> error naming the task, parameters unchanged
  Tensor before = m->flat_parameters().clone();
  Batch nan = b;
  nan.x = ops::mul_scalar(b.x, std::nan(""));
  CHECK_THROWS_WITH_AS(tr.step(nan), doctest::Contains("task0"), Error);
  CHECK(before.to_vector<float>() == m->flat_parameters().to_vector<float>());
  // skip policy: the step is skipped, parameters unchanged
  TrainerOptions ts;
  ts.method = "pcgrad";
  ts.nan_policy = NanPolicy::Skip;
  Trainer tr2(*m, opt, ts);
  CHECK(tr2.step(nan).skipped);
  CHECK(before.to_vector<float>() == m->flat_parameters().to_vector<float>());
}

TEST_CASE("trainer: state round trip resumes identically") {
  auto run = [](bool resume) {
    manual_seed(21);
    auto m = zoo::mlp_hps(3, 6, 8, 3);
    m->flatten();
    optim::SGD opt(*m, optim::SGDOptions(0.05).momentum(0.9));
    TrainerOptions to;
    to.method = "gradvac";
    auto tr = std::make_unique<Trainer>(*m, opt, to);
    for (int s = 0; s < 6; ++s) {
      if (resume && s == 3) {
        auto st = tr->state_dict();
        tr = std::make_unique<Trainer>(*m, opt, to);
        tr->load_state_dict(st);
      }
      tr->step(random_batch({8, 6}, 3, 3, 300 + uint64_t(s)));
    }
    return m->flat_parameters().to_vector<float>();
  };
  CHECK(run(false) == run(true));
}

TEST_CASE("per-task: task-owned architecture parameters (MMoE gates) get dL_k/dp from the batched backward") {
  manual_seed(31);
  int K = 2;
  auto expert = [] {
    auto s = std::make_shared<nn::Sequential>();
    s->push_back(std::make_shared<nn::Linear>(6, 5));
    s->push_back(std::make_shared<nn::ReLU>());
    return std::static_pointer_cast<nn::UnaryModule>(s);
  };
  std::vector<Task> tasks;
  for (int k = 0; k < K; ++k) tasks.emplace_back("t" + std::to_string(k), std::make_shared<nn::Linear>(5, 3));
  auto m = std::make_shared<MultiTaskModel>(std::make_shared<MMoE>(expert, 3, 6, K), tasks);
  m->to(DType::f64);
  REQUIRE(m->num_arch_task_parameters(0) > 0);
  auto b = random_batch({7, 6}, K, 3, 32, DType::f64);
  auto f = split_forward(*m, b);
  auto rg = representation_grads(*m, f);
  shared_jacobian(*m, f, rg);
  auto outs = m->forward(ag::Variable(b.x));
  for (int k = 0; k < K; ++k) {
    auto L = m->task(k).compute_loss(outs[size_t(k)], b.y[size_t(k)]);
    ag::GradOptions o;
    o.retain_graph = true;
    auto ref = ag::grad({L}, m->task_parameters(k), {}, o);
    for (size_t i = 0; i < ref.size(); ++i) {
      INFO("task " << k << " parameter " << i);
      REQUIRE(rg.head_grads[size_t(k)][i].defined());
      check_close(rg.head_grads[size_t(k)][i], ref[i], 1e-12);
    }
  }
  // and a PCGrad step moves the gates
  m->to(DType::f32);
  m->flatten();
  optim::SGD opt(*m, optim::SGDOptions(0.1));
  TrainerOptions to;
  to.method = "pcgrad";
  Trainer tr(*m, opt, to);
  Tensor gate_before = m->task_parameters(0)[0].data().clone();
  tr.step(random_batch({7, 6}, K, 3, 33));
  CHECK(gate_before.to_vector<float>() != m->task_parameters(0)[0].data().to_vector<float>());
}
