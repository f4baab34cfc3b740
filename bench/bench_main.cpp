// bench/bench_main.cpp: Polyhead's training-step benchmarks, in the anchors' JSONL schema
// ({"bench", "mode", "device", "median_ms", "min_ms"}), plus each run's phase breakdown.
//   B1 LeNet-HPS, 36x36 input, K=2, batch 256
//   B2 MLP 784-1024-1024, K=2 and K=10, batch 1024
//   B3 char-GPT 6 layers, d=384, 6 heads, T=256, K=4, batch 32 (GPU, or with --gpt)
// Modes: ew = one backward of the summed loss; pertask = the Jacobian of the shared parameters by
// one batched backward over K cotangent rows, then PCGrad (the anchor runs K backward passes).
// SGD lr 1e-3 as the anchor; 5 warm-up steps, then the median of N timed steps.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "engine/accelerator.h"
#if POLYHEAD_HAVE_CUDA
#include "engine/cuda/cuda_api.h"
#endif
#include "engine/ops.h"
#include "engine/rng.h"
#include "layers/optim/sgd.h"
#include "mtl/trainer.h"
#include "mtl/zoo.h"

using namespace polyhead;

namespace {

struct Args {
  Device dev = Device::cpu();
  bool gpt = false;
  std::string only;
  bool tf32 = false;
};

// Measured GEMM rate (4096^3 in f32 on GPU, 1024^3 on CPU): the ceiling B3 is compared with.
void sgemm_peak(const Args& a) {
  int64_t n = a.dev.is_cpu() ? 1024 : 4096;
  Tensor x = Tensor::randn({n, n}).to(a.dev), y = Tensor::randn({n, n}).to(a.dev);
  for (int i = 0; i < 3; ++i) ops::matmul(x, y);
  backend_for(a.dev).synchronize();
  int reps = a.dev.is_cpu() ? 3 : 20;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) ops::matmul(x, y);
  backend_for(a.dev).synchronize();
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
  std::printf("{\"bench\": \"sgemm_%lld\", \"mode\": \"%s\", \"device\": \"%s\", \"tflops\": %.2f}\n", (long long)n,
              a.tf32 ? "tf32" : "fp32", a.dev.is_cpu() ? "cpu" : "cuda", 2.0 * double(n) * double(n) * double(n) / s / 1e12);
  std::fflush(stdout);
}

void bench(const std::string& name, std::shared_ptr<mtl::MultiTaskModel> model, const mtl::Batch& b, const std::string& mode,
           int iters, const Args& a) {
#if POLYHEAD_HAVE_CUDA
  if (a.dev.is_cuda()) { cuda::empty_cache(); cuda::reset_peak(); }
#endif
  model->to(a.dev);
  model->flatten();
  optim::SGD opt(*model, optim::SGDOptions(1e-3));
  mtl::TrainerOptions to;
  to.method = mode == "ew" ? "ew" : "pcgrad";
  mtl::Trainer tr(*model, opt, to);
  for (int i = 0; i < 5; ++i) tr.step(b);
  backend_for(a.dev).synchronize();
  std::vector<double> ts;
  std::vector<mtl::StepResult> rs;
  for (int i = 0; i < iters; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    rs.push_back(tr.step(b));
    backend_for(a.dev).synchronize();
    ts.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::vector<double> s = ts;
  std::sort(s.begin(), s.end());
  auto med = [&](auto get) {
    std::vector<double> v;
    for (auto& r : rs) v.push_back(get(r));
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  double peak_mb = -1;
#if POLYHEAD_HAVE_CUDA
  if (a.dev.is_cuda()) peak_mb = double(cuda::memory_stats().peak_allocated) / (1 << 20);
#endif
  std::printf(
      "{\"bench\": \"%s\", \"mode\": \"%s\", \"device\": \"%s\", \"median_ms\": %.3f, \"min_ms\": %.3f, "
      "\"peak_device_mb\": %.1f, \"phases_median_ms\": {\"forward\": %.3f, \"grads\": %.3f, \"method\": %.3f, \"backward\": %.3f, \"optimizer\": %.3f}}\n",
      name.c_str(), mode.c_str(), a.dev.is_cpu() ? "cpu" : "cuda", s[s.size() / 2], s[0], peak_mb,
      med([](auto& r) { return r.ms_forward; }), med([](auto& r) { return r.ms_grads; }),
      med([](auto& r) { return r.ms_method; }), med([](auto& r) { return r.ms_backward; }),
      med([](auto& r) { return r.ms_optimizer; }));
  std::fflush(stdout);
}

mtl::Batch classification_batch(const Shape& xs, int K, int64_t n, int classes, Device dev) {
  mtl::Batch b;
  b.x = Tensor::randn(xs).to(dev);
  for (int k = 0; k < K; ++k) {
    Tensor y = ops::mul_scalar(Tensor::rand({n}), double(classes)).to(DType::i64);
    b.y.push_back(y.to(dev));
  }
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    if (s == "--gpt") a.gpt = true;
    else if (s == "--cuda") a.dev = Device::cuda(0);
    else if (s == "--only" && i + 1 < argc) a.only = argv[++i];
    else if (s == "--tf32") a.tf32 = true;
    else {
      std::fprintf(stderr, "usage: polyhead_bench [--cuda] [--tf32] [--gpt] [--only B1|B2|B3|sgemm]\n");
      return 2;
    }
  }
  try {
    if (a.dev.is_cuda()) init_cuda(true);
#if POLYHEAD_HAVE_CUDA
    if (a.dev.is_cuda()) cuda::set_tf32(a.tf32);
#endif
    std::fprintf(stderr, "polyhead_bench: %s\n", accelerator_summary().c_str());
    manual_seed(0);
    if (a.only.empty() || a.only == "sgemm") sgemm_peak(a);
    if (a.only.empty() || a.only == "B1") {
      auto b = classification_batch({256, 1, 36, 36}, 2, 256, 10, a.dev);
      for (const char* m : {"ew", "pertask"}) bench("B1_lenet_hps_K2_b256", mtl::zoo::lenet_hps(2), b, m, 50, a);
    }
    if (a.only.empty() || a.only == "B2") {
      for (int K : {2, 10}) {
        auto b = classification_batch({1024, 784}, K, 1024, 10, a.dev);
        for (const char* m : {"ew", "pertask"})
          bench("B2_mlp_hps_K" + std::to_string(K) + "_b1024", mtl::zoo::mlp_hps(K), b, m, 30, a);
      }
    }
    if ((a.gpt || !a.dev.is_cpu()) && (a.only.empty() || a.only == "B3")) {
      int K = 4;
      mtl::Batch b;
      b.x = ops::mul_scalar(Tensor::rand({32, 256}), 256.0).to(DType::i64).to(a.dev);
      for (int k = 0; k < K; ++k) b.y.push_back(ops::mul_scalar(Tensor::rand({32, 256}), 256.0).to(DType::i64).to(a.dev));
      for (const char* m : {"ew", "pertask"}) bench("B3_chargpt_L6_d384_K4_b32x256", mtl::zoo::chargpt(K), b, m, 20, a);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "polyhead_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
