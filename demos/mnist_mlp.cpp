// demos/mnist_mlp.cpp: single-task MNIST with an MLP (784-512-256-10, ReLU, dropout 0.1), AdamW.
// Trains on the real MNIST files (scripts/fetch_mnist.sh puts them in data/mnist) and prints the
// test accuracy per epoch and the time taken. Without the files it says so loudly and trains on
// synthetic digits instead.
//   build/mnist_mlp [--epochs N] [--data DIR] [--smoke]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "data/loader.h"
#include "data/mnist.h"
#include "data/multimnist.h"
#include "engine/ops.h"
#include "engine/rng.h"
#include "layers/activation.h"
#include "layers/linear.h"
#include "layers/loss.h"
#include "layers/optim/adam.h"
#include "layers/optim/scheduler.h"
#include "layers/sequential.h"

using namespace polyhead;

int main(int argc, char** argv) {
  int epochs = 5;
  std::string dir = "data/mnist";
  bool smoke = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--epochs" && i + 1 < argc) epochs = std::atoi(argv[++i]);
    else if (a == "--data" && i + 1 < argc) dir = argv[++i];
    else if (a == "--smoke") smoke = true;
    else if (a == "--out" && i + 1 < argc) ++i;  // accepted for the smoke runner; nothing is written
    else {
      std::fprintf(stderr, "usage: mnist_mlp [--epochs N] [--data DIR] [--smoke]\n");
      return 2;
    }
  }
  try {
    auto t0 = std::chrono::steady_clock::now();
    bool synth_train = false, synth_test = false;
    auto train = data::load_mnist_or_synthetic(dir, true, 6000, 1, &synth_train);
    auto test = data::load_mnist_or_synthetic(dir, false, 1000, 2, &synth_test);
    if (synth_train || synth_test) std::fprintf(stderr, "%s\n", data::kSyntheticDigitsWarning);
    auto train_ds = data::mnist_dataset(train), test_ds = data::mnist_dataset(test);
    if (smoke) {
      epochs = 1;
      std::vector<int64_t> idx(2048);
      for (int64_t i = 0; i < 2048; ++i) idx[size_t(i)] = i;
      train_ds = std::make_shared<data::TensorDataset>(train_ds->get_batch(idx).fields);
    }
    manual_seed(0);
    auto model = std::make_shared<nn::Sequential>();
    model->push_back(std::make_shared<nn::Flatten>());
    model->push_back(std::make_shared<nn::Linear>(784, 512));
    model->push_back(std::make_shared<nn::ReLU>());
    model->push_back(std::make_shared<nn::Dropout>(0.1));
    model->push_back(std::make_shared<nn::Linear>(512, 256));
    model->push_back(std::make_shared<nn::ReLU>());
    model->push_back(std::make_shared<nn::Linear>(256, 10));
    model->flatten();
    optim::AdamW opt(*model, optim::AdamWOptions(1e-3).weight_decay(1e-4));
    data::DataLoader loader(train_ds, 128, /*shuffle=*/true, /*drop_last=*/true, /*seed=*/0);
    const int64_t steps_per_epoch = loader.num_batches();
    optim::CosineAnnealingLR sched(opt, epochs * steps_per_epoch, 1e-5);
    std::printf("mnist_mlp: %lld train / %lld test images%s, %d epochs\n", (long long)train_ds->size(),
                (long long)test_ds->size(), synth_train ? " (SYNTHETIC stand-in)" : "", epochs);
    double acc = 0;
    for (int e = 0; e < epochs; ++e) {
      model->train();
      loader.epoch(uint64_t(e));
      double loss_sum = 0;
      int64_t n = 0;
      for (auto& b : loader) {
        opt.zero_grad();
        auto loss = nn::cross_entropy(model->forward(ag::Variable(b.at("x"))), b.at("y0"));
        loss.backward();
        opt.step();
        sched.step();
        loss_sum += loss.item();
        ++n;
      }
      model->eval();
      ag::NoGradGuard ng;
      int64_t correct = 0;
      data::DataLoader tl(test_ds, 1000);
      for (auto& b : tl) {
        Tensor pred = ops::argmax(model->forward(ag::Variable(b.at("x"))).data(), 1);
        Tensor y = b.at("y0").to(DType::i64);
        correct += int64_t(ops::sum(ops::binary(BinaryOp::Eq, pred.to(DType::f64), y.to(DType::f64))).item());
      }
      acc = double(correct) / double(test_ds->size());
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf("epoch %d  train loss %.4f  test accuracy %.2f%%  (%.1f s)\n", e + 1, loss_sum / double(std::max<int64_t>(n, 1)),
                  100 * acc, secs);
      std::fflush(stdout);
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("mnist_mlp: final test accuracy %.2f%% in %.1f s\n", 100 * acc, secs);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mnist_mlp: %s\n", e.what());
    return 1;
  }
  return 0;
}
