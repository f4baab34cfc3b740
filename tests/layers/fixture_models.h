// tests/layers/fixture_models.h: the whole-model PyTorch fixtures (models, loading, comparisons),
// shared by the CPU tests (tests/layers/test_fixtures.cpp) and the CUDA ones
// (tests/cuda/test_cuda_fixtures.cpp), which set g_fixture_device.
#pragma once
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "autograd/engine.h"
#include "autograd/functions.h"
#include "engine/ops.h"
#include "engine/safetensors.h"
#include "engine/threading.h"
#include "layers/activation.h"
#include "layers/attention.h"
#include "layers/conv.h"
#include "layers/embedding.h"
#include "layers/linear.h"
#include "layers/loss.h"
#include "layers/norm.h"
#include "layers/optim/adam.h"
#include "layers/optim/sgd.h"
#include "layers/pool.h"
#include "layers/sequential.h"

#ifndef POLYHEAD_TEST_DATA
#define POLYHEAD_TEST_DATA "tests/data"
#endif

using namespace polyhead;
using ag::Variable;

namespace {

// The device the fixture models run on (tests/cuda sets Device::cuda(0)).
inline Device g_fixture_device = Device::cpu();

// Tolerances (relative to max(max|ref|, 1)), all in f64. PyTorch and Polyhead sum in different
// orders, so results agree to a few ulps per op (measured: <= 3e-16 forward and backward,
// <= 7e-16 after 10 steps); the tolerances leave room for other BLAS builds.
constexpr double kForwardTol = 1e-12;
constexpr double kGradTol = 1e-12;
constexpr double kTrainTol = 1e-10;
constexpr double kBatchedTol = 1e-12;
// A parameter whose true gradient is exactly zero gets rounding noise (~1e-17) as its computed
// gradient, and Adam normalises that noise: each step moves it by up to lr * |g| / eps ~ 1e-11,
// differently in PyTorch and here. Affected: the cnn's conv bias "0.bias" (BatchNorm follows and
// removes any per-channel shift; with it the running mean "1.running_mean") and the key part of
// the transformer's "block.attn.qkv.bias" (softmax is invariant to q.b_k). Measured: 4e-10 and
// 6e-12; the bound over 10 steps of lr 1e-2 with |g| <= 1e-15 is 1e-8.
constexpr double kAdamNoiseTol = 1e-8;
double train_tol(const std::string& model, const std::string& key, const std::string& name) {
  if (key != "adamw") return kTrainTol;
  if (model == "cnn" && (name == "0.bias" || name == "1.running_mean")) return kAdamNoiseTol;
  if (model == "transformer" && name == "block.attn.qkv.bias") return kAdamNoiseTol;
  return kTrainTol;
}

bool verbose() { return std::getenv("POLYHEAD_FIXTURES_VERBOSE") != nullptr; }

// ---------------------------------------------------------------------------------------------
// fixture access
// ---------------------------------------------------------------------------------------------
struct Fixture {
  std::string model;
  std::map<std::string, Tensor> t;

  explicit Fixture(const std::string& name) : model(name) {
    t = load_safetensors(std::string(POLYHEAD_TEST_DATA) + "/fixtures/" + name + ".safetensors").tensors;
  }
  const Tensor& at(const std::string& key) const {
    auto it = t.find(key);
    if (it == t.end()) throw std::runtime_error(model + ": fixture has no tensor \"" + key + "\"");
    return it->second;
  }
  bool has(const std::string& key) const { return t.count(key) != 0; }
  // Every tensor whose key starts with `prefix`, keyed by the rest of the name.
  std::map<std::string, Tensor> with_prefix(const std::string& prefix) const {
    std::map<std::string, Tensor> out;
    for (const auto& [k, v] : t)
      if (k.rfind(prefix, 0) == 0) out.emplace(k.substr(prefix.size()), v);
    return out;
  }
  // The state dict to load: "param.*" and "buffer.*".
  std::map<std::string, Tensor> initial_state() const {
    auto sd = with_prefix("param.");
    for (auto& [k, v] : with_prefix("buffer.")) sd.emplace(k, v);
    return sd;
  }
  std::vector<double> values(const std::string& key) const { return at(key).to_vector<double>(); }
};

// max |a - r| / max(max |r|, 1); shapes must match.
double rel_err(const Tensor& a, const Tensor& r) {
  REQUIRE_MESSAGE(a.shape() == r.shape(), "shape " << shape_str(a.shape()) << " vs reference " << shape_str(r.shape()));
  auto av = a.to_vector<double>();
  auto rv = r.to_vector<double>();
  double diff = 0.0, scale = 1.0;
  for (size_t i = 0; i < av.size(); ++i) {
    diff = std::max(diff, std::abs(av[i] - rv[i]));
    scale = std::max(scale, std::abs(rv[i]));
    if (std::isnan(av[i]) != std::isnan(rv[i])) diff = INFINITY;
  }
  return diff / scale;
}

void check_close(const std::string& what, const Tensor& a, const Tensor& r, double tol) {
  const double e = rel_err(a, r);
  if (verbose()) std::printf("  %-48s err %.3e (tol %.0e)\n", what.c_str(), e, tol);
  CHECK_MESSAGE(e <= tol, what << ": relative error " << e << " > " << tol);
}

bool bit_equal(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  Tensor ac = a.to(Device::cpu()).contiguous(), bc = b.to(Device::cpu()).contiguous();
  return std::memcmp(ac.raw(), bc.raw(), size_t(ac.numel()) * ac.itemsize()) == 0;
}

// ---------------------------------------------------------------------------------------------
// models
// ---------------------------------------------------------------------------------------------
// tok/pos embeddings, one pre-norm block, final LayerNorm, linear head (see make_fixtures.py).
class TinyTransformer : public nn::Module {
public:
  TinyTransformer(int64_t vocab, int64_t ctx, int64_t d, int64_t heads) {
    tok = register_module("tok", std::make_shared<nn::Embedding>(vocab, d));
    pos = register_module("pos", std::make_shared<nn::Embedding>(ctx, d));
    block = register_module("block", std::make_shared<nn::TransformerBlock>(d, heads));
    lnf = register_module("lnf", std::make_shared<nn::LayerNorm>(d));
    head = register_module("head", std::make_shared<nn::Linear>(d, vocab));
  }
  // idx (B, T) i64 -> logits (B, T, vocab).
  Variable forward(const Tensor& idx) {
    const int64_t T = idx.size(1);
    Variable h = ag::add(tok->forward(idx), pos->forward(Tensor::arange(0, double(T), 1, DType::i64, idx.device())));
    return head->forward(lnf->forward(block->forward(h)));
  }
  std::string type_name() const override { return "TinyTransformer"; }

  std::shared_ptr<nn::Embedding> tok, pos;
  std::shared_ptr<nn::TransformerBlock> block;
  std::shared_ptr<nn::LayerNorm> lnf;
  std::shared_ptr<nn::Linear> head;
};

// A model under test: the module and its forward from the fixture's input.x.
struct Model {
  std::shared_ptr<nn::Module> module;
  std::function<Variable(const Tensor& x)> forward;
};

Model make_model(const std::string& name) {
  Model m;
  if (name == "mlp") {
    auto s = std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::UnaryModule>>{
        std::make_shared<nn::Linear>(20, 32), std::make_shared<nn::ReLU>(), std::make_shared<nn::Linear>(32, 32),
        std::make_shared<nn::Tanh>(), std::make_shared<nn::Linear>(32, 5)});
    m.module = s;
    m.forward = [s](const Tensor& x) { return s->forward(Variable(x)); };
  } else if (name == "cnn") {
    auto s = std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::UnaryModule>>{
        std::make_shared<nn::Conv2d>(nn::Conv2dOptions(1, 4, 3).padding(1)),  // 0
        std::make_shared<nn::BatchNorm2d>(4),                                  // 1
        std::make_shared<nn::ReLU>(),                                          // 2
        std::make_shared<nn::MaxPool2d>(2),                                    // 3
        std::make_shared<nn::Conv2d>(4, 8, 3),                                 // 4
        std::make_shared<nn::ReLU>(),                                          // 5
        std::make_shared<nn::AvgPool2d>(2),                                    // 6
        std::make_shared<nn::Flatten>(),                                       // 7
        std::make_shared<nn::Linear>(32, 10)});                                // 8
    m.module = s;
    m.forward = [s](const Tensor& x) { return s->forward(Variable(x)); };
  } else if (name == "transformer") {
    auto t = std::make_shared<TinyTransformer>(32, 8, 16, 2);
    m.module = t;
    m.forward = [t](const Tensor& x) { return t->forward(x); };
  } else {
    throw std::runtime_error("unknown model " + name);
  }
  return m;
}

// Mean cross-entropy over all rows (all B*T positions for the transformer).
Variable loss_of(const Variable& logits, const Tensor& y) {
  const int64_t C = logits.size(-1);
  return nn::cross_entropy(ag::reshape(logits, {-1, C}), y.reshape({-1}));
}

// The model in `dt` with the fixture's initial parameters and buffers; flattened if asked.
Model load_model(const Fixture& fx, DType dt, bool flat) {
  Model m = make_model(fx.model);
  m.module->to(dt);
  m.module->load_state_dict(fx.initial_state());
  if (!g_fixture_device.is_cpu()) m.module->to(g_fixture_device);
  if (flat) m.module->flatten();
  m.module->train();
  return m;
}

Tensor input_x(const Fixture& fx, DType dt) {
  const Tensor& x = fx.at("input.x");
  return (is_floating(x.dtype()) ? x.to(dt) : x).to(g_fixture_device);
}

const char* const kModels[] = {"mlp", "cnn", "transformer"};

// ---------------------------------------------------------------------------------------------
// forward / backward
// ---------------------------------------------------------------------------------------------
void check_forward_backward(const std::string& name, bool flat) {
  Fixture fx(name);
  Model m = load_model(fx, DType::f64, flat);
  const Tensor x = input_x(fx, DType::f64), y = fx.at("input.y").to(g_fixture_device);
  if (verbose()) std::printf("%s forward/backward%s\n", name.c_str(), flat ? " (flat)" : "");

  // Every parameter of the fixture is one of the module's, and vice versa.
  auto params = m.module->named_parameters();
  auto ref_params = fx.with_prefix("param.");
  REQUIRE(params.size() == ref_params.size());
  for (const auto& [pn, p] : params) REQUIRE_MESSAGE(ref_params.count(pn), name << ": no reference for " << pn);

  m.module->zero_grad();
  Variable logits = m.forward(x);
  CHECK(logits.dtype() == DType::f64);
  check_close(name + " logits", logits.data(), fx.at("out.logits"), kForwardTol);
  Variable loss = loss_of(logits, y);
  check_close(name + " loss", loss.data(), fx.at("out.loss"), kForwardTol);
  loss.backward();
  for (const auto& [pn, p] : params) {
    INFO(name << " grad." << pn);
    REQUIRE(p.grad().defined());
    check_close(name + " grad." + pn, p.grad(), fx.at("grad." + pn), kGradTol);
  }
  if (flat) {
    // The gradients live in the flat buffer.
    Tensor fg = m.module->flat_gradients();
    int64_t off = 0;
    for (const auto& [pn, p] : params) {
      Tensor seg = fg.narrow(0, off, p.numel()).reshape(p.shape());
      CHECK_MESSAGE(bit_equal(seg, p.grad()), name << " " << pn << ": gradient is not its flat-buffer view");
      off += p.numel();
    }
    CHECK(off == fg.numel());
  }
  // The batch-norm running statistics moved by exactly one training forward.
  if (name == "cnn") {
    auto bufs = m.module->named_buffers();
    for (auto& [bn, b] : bufs)
      if (bn == "1.num_batches_tracked") CHECK(b->item() == 1.0);
  }
}

// ---------------------------------------------------------------------------------------------
// training
// ---------------------------------------------------------------------------------------------
enum class Opt { SGD, AdamW };

std::unique_ptr<optim::Optimizer> make_opt(Opt o, Model& m, bool flat) {
  if (o == Opt::SGD) {
    auto opts = optim::SGDOptions(0.1).momentum(0.9);
    if (flat) return std::make_unique<optim::SGD>(*m.module, opts);
    return std::make_unique<optim::SGD>(m.module->parameters(), opts);
  }
  auto opts = optim::AdamWOptions(1e-2).betas(0.9, 0.999).eps(1e-8).weight_decay(0.01);
  if (flat) return std::make_unique<optim::AdamW>(*m.module, opts);
  return std::make_unique<optim::AdamW>(m.module->parameters(), opts);
}

// Runs `steps` steps; returns the loss before each step.
std::vector<double> train(Model& m, optim::Optimizer& opt, const Tensor& x, const Tensor& y, int steps) {
  std::vector<double> losses;
  for (int s = 0; s < steps; ++s) {
    opt.zero_grad();
    Variable loss = loss_of(m.forward(x), y);
    loss.backward();
    losses.push_back(loss.item());
    opt.step();
  }
  return losses;
}

void check_training(const std::string& name, Opt o, bool flat) {
  Fixture fx(name);
  const std::string key = o == Opt::SGD ? "sgd" : "adamw";
  if (verbose()) std::printf("%s %s%s\n", name.c_str(), key.c_str(), flat ? " (flat)" : "");
  Model m = load_model(fx, DType::f64, flat);
  auto opt = make_opt(o, m, flat);
  CHECK(opt->is_flat() == flat);
  const Tensor x = input_x(fx, DType::f64), y = fx.at("input.y").to(g_fixture_device);
  std::vector<double> losses = train(m, *opt, x, y, 10);
  Tensor got = Tensor::from_vector(losses);
  check_close(name + " " + key + ".losses", got, fx.at(key + ".losses"), kTrainTol);

  auto params = m.module->named_parameters();
  auto ref_final = fx.with_prefix(key + ".final.");
  REQUIRE(params.size() == ref_final.size());
  for (const auto& [pn, p] : params) {
    INFO(name << " " << key << ".final." << pn);
    check_close(name + " " + key + ".final." + pn, p.data(), fx.at(key + ".final." + pn), train_tol(name, key, pn));
  }
  auto ref_bufs = fx.with_prefix(key + ".final_buffer.");
  auto bufs = m.module->named_buffers();
  REQUIRE(bufs.size() == ref_bufs.size());
  for (auto& [bn, b] : bufs) {
    INFO(name << " " << key << ".final_buffer." << bn);
    REQUIRE(ref_bufs.count(bn));
    if (is_floating(b->dtype()))
      check_close(name + " " + key + ".final_buffer." + bn, *b, ref_bufs.at(bn), train_tol(name, key, bn));
    else
      CHECK(bit_equal(*b, ref_bufs.at(bn)));
  }
  CHECK(opt->step_count() == 10);
}

// ---------------------------------------------------------------------------------------------
// determinism: f32 SGD, run twice, and with 1 vs 2 threads
// ---------------------------------------------------------------------------------------------
std::vector<Tensor> f32_sgd_run(const Fixture& fx, bool flat, int threads, int steps) {
  set_num_threads(threads);
  Model m = load_model(fx, DType::f32, flat);
  auto opt = make_opt(Opt::SGD, m, flat);
  const Tensor x = input_x(fx, DType::f32), y = fx.at("input.y");
  train(m, *opt, x, y, steps);
  std::vector<Tensor> out;
  for (const auto& [pn, p] : m.module->named_parameters()) out.push_back(p.data().clone());
  for (auto& [bn, b] : m.module->named_buffers()) out.push_back(b->clone());
  set_num_threads(0);
  return out;
}

}  // namespace
