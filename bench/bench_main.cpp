// bench/bench_main.cpp: Polyhead's training-step benchmarks, in the anchors' JSONL schema
// ({"bench", "mode", "device", "median_ms", "min_ms"}), plus each run's phase breakdown.
//   B1 LeNet-HPS, 36x36 input, K=2, batch 256
//   B2 MLP 784-1024-1024, K=2 and K=10, batch 1024
//   B3 char-GPT 6 layers, d=384, 6 heads, T=256, K=4, batch 32 (GPU, or with --gpt)
// Modes: ew = one backward of the summed loss; pertask = the Jacobian of the shared parameters by
// one batched backward over K cotangent rows, then PCGrad (the anchor runs K backward passes).
// --graph (CUDA) adds mode ew-graph: the same ew step (zero_grad, forward, summed loss, backward,
// SGD) captured once as a CUDA graph (engine/graph.h) and replayed; compare it with the anchor's ew.
// SGD lr 1e-3 as the anchor; 5 warm-up steps, then the median of N timed steps.
// peak_device_mb: the allocator's peak of allocated bytes over the warm-up and timed steps.
// --profile: after each ew benchmark, one more step with every backend primitive timed (JSONL
// rows {"profile", "op", "calls", "ms"}; see bench/profile_backend.h).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "autograd/functions.h"
#include "bench/profile_backend.h"
#include "engine/accelerator.h"
#include "engine/graph.h"
#if POLYHEAD_HAVE_CUDA
#include "engine/cuda/cuda_api.h"
#endif
#include "engine/ops.h"
#include "engine/rng.h"
#include "engine/threading.h"
#include "layers/optim/sgd.h"
#include "mtl/trainer.h"
#include "mtl/zoo.h"

using namespace polyhead;
using ag::Variable;

namespace {

struct Args {
  Device dev = Device::cpu();
  bool gpt = false;
  std::string only;
  bool tf32 = false;
  bool graph = false;
  bool profile = false;
};

// One eager ew step with every primitive timed (ProfilingBackend): JSONL rows per primitive and
// size, largest first, then the total.
void profile_step(const std::string& name, mtl::Trainer& tr, const mtl::Batch& b, const Args& a) {
  Backend& real = backend_for(a.dev);
  benchprof::ProfilingBackend prof(real);
  register_backend(a.dev.type, &prof);
  try {
    tr.step(b);
  } catch (...) {
    register_backend(a.dev.type, &real);
    throw;
  }
  register_backend(a.dev.type, &real);
  std::vector<std::pair<std::string, benchprof::ProfilingBackend::Stat>> v(prof.stats().begin(), prof.stats().end());
  std::sort(v.begin(), v.end(), [](auto& x, auto& y) { return x.second.ms > y.second.ms; });
  double total = 0;
  int64_t calls = 0;
  for (auto& [k, st] : v) { total += st.ms; calls += st.calls; }
  for (size_t i = 0; i < v.size() && i < 45; ++i)
    std::printf("{\"profile\": \"%s\", \"op\": \"%s\", \"calls\": %lld, \"ms\": %.3f}\n", name.c_str(), v[i].first.c_str(),
                (long long)v[i].second.calls, v[i].second.ms);
  std::printf("{\"profile\": \"%s\", \"op\": \"TOTAL\", \"calls\": %lld, \"ms\": %.3f, \"sync_overhead_ms\": %.4f}\n",
              name.c_str(), (long long)calls, total, prof.sync_overhead_ms());
  std::fflush(stdout);
}

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

// The ew step without the Trainer's host reads (loss values), captured once and replayed.
void bench_graph(const std::string& name, mtl::MultiTaskModel& model, optim::Optimizer& opt, const mtl::Batch& b,
                 int iters, const Args& a) {
  Tensor loss;
  auto step = [&] {
    opt.zero_grad();
    auto outs = model.forward(Variable(b.x));
    Variable total;
    for (int k = 0; k < model.num_tasks(); ++k) {
      Variable l = model.task(k).compute_loss(outs[size_t(k)], b.y[size_t(k)]);
      total = k == 0 ? l : ag::add(total, l);
    }
    total.backward();
    opt.step();
    loss = total.data();
  };
  for (int i = 0; i < 5; ++i) step();
  backend_for(a.dev).synchronize();
  auto tc = std::chrono::steady_clock::now();
  StepGraph g(a.dev, step);
  double capture_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - tc).count();
  for (int i = 0; i < 3; ++i) g.replay();
  backend_for(a.dev).synchronize();
  std::vector<double> ts;
  for (int i = 0; i < iters; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    g.replay();
    backend_for(a.dev).synchronize();
    ts.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  const double last_loss = loss.item();
  std::sort(ts.begin(), ts.end());
  double peak_mb = -1, reserved_mb = -1;
#if POLYHEAD_HAVE_CUDA
  if (a.dev.is_cuda()) {
    auto st = cuda::memory_stats();
    peak_mb = double(st.peak_allocated) / (1 << 20);
    reserved_mb = double(st.reserved) / (1 << 20);
  }
#endif
  std::printf(
      "{\"bench\": \"%s\", \"mode\": \"ew-graph\", \"device\": \"%s\", \"median_ms\": %.3f, \"min_ms\": %.3f, "
      "\"peak_device_mb\": %.1f, \"reserved_device_mb\": %.1f, \"graph_nodes\": %zu, \"capture_ms\": %.1f, \"loss\": %.6f}\n",
      name.c_str(), a.dev.is_cpu() ? "cpu" : "cuda", ts[ts.size() / 2], ts[0], peak_mb, reserved_mb, g.num_nodes(),
      capture_ms, last_loss);
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
  if (mode == "ew-graph") {
    try {
      bench_graph(name, *model, opt, b, iters, a);
    } catch (const std::exception& e) {  // report and go on with the other benchmarks
      std::string msg = e.what();
      for (char& c : msg) if (c == '"' || c == '\\' || c == '\n') c = ' ';
      std::printf("{\"bench\": \"%s\", \"mode\": \"ew-graph\", \"device\": \"%s\", \"error\": \"%s\"}\n", name.c_str(),
                  a.dev.is_cpu() ? "cpu" : "cuda", msg.c_str());
      std::fflush(stdout);
    }
    return;
  }
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
  if (a.profile && mode == "ew") {
    try {
      profile_step(name, tr, b, a);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "polyhead_bench: profile of %s failed: %s\n", name.c_str(), e.what());
    }
  }
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
    else if (s == "--graph") a.graph = true;
    else if (s == "--profile") a.profile = true;
    else if (s == "--threads" && i + 1 < argc) set_num_threads(std::atoi(argv[++i]));  // CPU threads (default: all cores)
    else {
      std::fprintf(stderr, "usage: polyhead_bench [--cuda] [--tf32] [--graph] [--profile] [--gpt] [--threads N] [--only B1|B2|B3|sgemm]\n");
      return 2;
    }
  }
  try {
    if (a.dev.is_cuda()) init_cuda(true);
#if POLYHEAD_HAVE_CUDA
    if (a.dev.is_cuda()) cuda::set_tf32(a.tf32);
#endif
    std::fprintf(stderr, "polyhead_bench: %s\n", accelerator_summary().c_str());
    std::vector<std::string> modes{"ew", "pertask"};
    if (a.graph) {
      if (!graph_capture_supported(a.dev)) throw Error("polyhead_bench", "--graph needs --cuda in a CUDA build", "drop --graph");
      modes.insert(modes.begin() + 1, "ew-graph");
    }
    manual_seed(0);
    if (a.only.empty() || a.only == "sgemm") sgemm_peak(a);
    if (a.only.empty() || a.only == "B1") {
      auto b = classification_batch({256, 1, 36, 36}, 2, 256, 10, a.dev);
      for (const auto& m : modes) bench("B1_lenet_hps_K2_b256", mtl::zoo::lenet_hps(2), b, m, 50, a);
    }
    if (a.only.empty() || a.only == "B2") {
      for (int K : {2, 10}) {
        auto b = classification_batch({1024, 784}, K, 1024, 10, a.dev);
        for (const auto& m : modes)
          bench("B2_mlp_hps_K" + std::to_string(K) + "_b1024", mtl::zoo::mlp_hps(K), b, m, 30, a);
      }
    }
    if ((a.gpt || !a.dev.is_cpu()) && (a.only.empty() || a.only == "B3")) {
      int K = 4;
      mtl::Batch b;
      b.x = ops::mul_scalar(Tensor::rand({32, 256}), 256.0).to(DType::i64).to(a.dev);
      for (int k = 0; k < K; ++k) b.y.push_back(ops::mul_scalar(Tensor::rand({32, 256}), 256.0).to(DType::i64).to(a.dev));
      for (const auto& m : modes) bench("B3_chargpt_L6_d384_K4_b32x256", mtl::zoo::chargpt(K), b, m, 20, a);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "polyhead_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
