// tests/layers/test_fixtures.cpp: whole models against PyTorch.
//
// tests/data/fixtures/{mlp,cnn,transformer}.safetensors hold PyTorch's float64 results for three
// small models (written by tests/fixtures/make_fixtures.py; see tests/fixtures/README.md). Each
// test here builds the same model from Polyhead layers, converts it to f64, loads PyTorch's initial
// parameters and compares:
//   - the forward logits, the mean cross-entropy loss and every parameter gradient;
//   - 10 SGD steps (lr 0.1, momentum 0.9) and 10 AdamW steps (lr 1e-2, weight decay 0.01): the
//     loss before every step, the final parameters and (cnn) the batch-norm running statistics,
//     once with per-parameter optimizers and once with flat buffers (Module::flatten()).
// It also checks that f32 training is bit-identical across runs and thread counts, and that a
// batched-cotangent ag::grad over whole models equals separate ag::grad calls.
// Comparison rule: max_i |x_i - r_i| <= tol * max(max_i |r_i|, 1).
#include <doctest/doctest.h>

#include "tests/layers/fixture_models.h"

TEST_CASE("fixtures: forward and backward match PyTorch (f64)") {
  for (const char* name : kModels) {
    SUBCASE(name) {
      check_forward_backward(name, false);
      check_forward_backward(name, true);
    }
  }
}

TEST_CASE("fixtures: 10 SGD steps match PyTorch (f64)") {
  for (const char* name : kModels) {
    SUBCASE(name) {
      check_training(name, Opt::SGD, false);
      check_training(name, Opt::SGD, true);
    }
  }
}

TEST_CASE("fixtures: 10 AdamW steps match PyTorch (f64)") {
  for (const char* name : kModels) {
    SUBCASE(name) {
      check_training(name, Opt::AdamW, false);
      check_training(name, Opt::AdamW, true);
    }
  }
}

TEST_CASE("fixtures: f32 training is bit-identical across runs and thread counts") {
  for (const char* name : {"cnn", "transformer"}) {
    SUBCASE(name) {
      Fixture fx(name);
      for (bool flat : {false, true}) {
        const std::string what = std::string(name) + (flat ? " flat" : " per-parameter");
        INFO(what);
        auto a = f32_sgd_run(fx, flat, 1, 3);
        auto b = f32_sgd_run(fx, flat, 1, 3);
        auto c = f32_sgd_run(fx, flat, 2, 3);
        auto d = f32_sgd_run(fx, flat, 2, 3);
        REQUIRE(a.size() == b.size());
        REQUIRE(a.size() == c.size());
        REQUIRE(a.size() == d.size());
        for (size_t i = 0; i < a.size(); ++i) {
          INFO("tensor " << i);
          if (is_floating(a[i].dtype())) CHECK(a[i].dtype() == DType::f32);
          CHECK(bit_equal(a[i], b[i]));
          CHECK(bit_equal(a[i], c[i]));
          CHECK(bit_equal(c[i], d[i]));
        }
        // The run actually trained (the parameters moved away from the initial values).
        Model init = load_model(fx, DType::f32, false);
        auto p0 = init.module->parameters();
        bool moved = false;
        for (size_t i = 0; i < p0.size(); ++i) moved = moved || !bit_equal(p0[i].data(), a[i]);
        CHECK(moved);
      }
    }
  }
}

TEST_CASE("fixtures: batched cotangents over whole models equal separate ag::grad calls (f64)") {
  constexpr int64_t K = 3;
  for (const char* name : kModels) {
    SUBCASE(name) {
      Fixture fx(name);
      Model m = load_model(fx, DType::f64, false);
      const Tensor xt = input_x(fx, DType::f64);
      std::vector<Variable> inputs = m.module->parameters();
      Variable logits;
      if (is_floating(xt.dtype())) {
        // Also differentiate with respect to the input.
        Variable x(xt.clone(), true);
        inputs.push_back(x);
        auto unary = std::dynamic_pointer_cast<nn::UnaryModule>(m.module);
        REQUIRE(unary);
        logits = unary->forward(x);
      } else {
        logits = m.forward(xt);
      }
      Shape cshape = logits.shape();
      cshape.insert(cshape.begin(), K);
      Tensor cot = Tensor::randn(cshape, DType::f64);

      ag::GradOptions bo;
      bo.retain_graph = true;
      bo.batched = true;
      std::vector<Tensor> batched = ag::grad({logits}, inputs, {cot}, bo);
      REQUIRE(batched.size() == inputs.size());
      ag::GradOptions so;
      so.retain_graph = true;
      for (int64_t k = 0; k < K; ++k) {
        std::vector<Tensor> single = ag::grad({logits}, inputs, {cot.select(0, k).contiguous()}, so);
        REQUIRE(single.size() == inputs.size());
        for (size_t i = 0; i < inputs.size(); ++i) {
          const std::string what = std::string(name) + " input " + std::to_string(i) + " row " + std::to_string(k);
          INFO(what);
          REQUIRE(batched[i].defined());
          REQUIRE(batched[i].dim() == inputs[i].dim() + 1);
          REQUIRE(batched[i].size(0) == K);
          check_close(std::string(name) + " batched grad " + std::to_string(i) + " row " + std::to_string(k),
                      batched[i].select(0, k), single[i], kBatchedTol);
        }
      }
      // ag::grad leaves .grad untouched.
      for (const auto& p : m.module->parameters()) CHECK(!p.grad().defined());
    }
  }
}
