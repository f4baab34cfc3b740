// demos/demo_coba.cpp: CoBa (Gong et al., EMNLP 2024) against EW, GradNorm and FAMO on four tasks
// that converge at different speeds, one of which overfits.
//
// The tasks share one input x ~ N(0, I_16) and an MLP trunk (16-128-128, ReLU), each with a linear
// 4-class head; the teachers are fixed random functions:
//   easy    argmax(A x)                    linear: learnt in a few hundred steps
//   medium  argmax(B relu(C x))            a random two-layer net
//   slow    argmax(sin(1.5 D x))           oscillating: learnt slowly
//   noisy   argmax(E x), 60% of the TRAINING labels replaced by random ones (validation and test
//           labels are clean): its validation loss falls, then rises as the net memorizes the noise
// 2048 training examples (so memorization happens within the 94 epochs of 3000 steps), 1024
// validation examples (CoBa sees one cycled batch of 128 per step through the trainer's
// validation hook), 4096 test examples. Adam, lr 1e-3, batch 64. CoBa with the released code's
// defaults (warm-up 100, history 200, tau 5). --ntrain, --noise and --freq change the setting.
// --shared is the setting of CoBa's paper (tasks that share every parameter, as fine-tuning tasks
// share an LLM): each task has its own inputs and training set (the noisy one only --small = 256
// examples), a one-hot task code in the input, and one MLP for all. "coba-mos" is CoBa with alpha_max
// taken as the largest task slope instead of the slope of the worst-task curve.
//
// Printed: a table per method (mean over seeds) of the test accuracy per task, the rise of each
// task's validation loss from its minimum to the end (overfitting/divergence), the step at which
// each task's validation loss first came within 5% of its total decrease, and ms per step.
// Written into --out: results.md, curves.csv, and SVG plots (validation curves per method and per
// task, weight trajectories per method).
//   build/demo_coba [--smoke] [--out DIR] [--steps N] [--seeds S] [--ntrain N] [--noise P] [--freq F]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <numeric>
#include <random>
#include <sstream>
#include <string>

#include "data/dataset.h"
#include "engine/ops.h"
#include "engine/rng.h"
#include "layers/activation.h"
#include "layers/linear.h"
#include "layers/optim/adam.h"
#include "layers/sequential.h"
#include "mtl/architecture.h"
#include "mtl/method.h"
#include "mtl/run/files.h"
#include "mtl/run/plot.h"
#include "mtl/trainer.h"

using namespace polyhead;

namespace {

constexpr int K = 4, D = 16, C = 4;
double kFreq = 1.5;  // frequency of the slow task's teacher
const char* kTasks[K] = {"easy", "medium", "slow", "noisy"};

struct Split {
  std::vector<float> x;             // N x D
  std::vector<std::vector<int64_t>> y;  // K x N
  int64_t n = 0;
};

// The four teachers, drawn once from `seed`.
struct Teachers {
  std::vector<double> A, B, Cm, Dm, E;  // A, D, E: C x D; C: 32 x D; B: C x 32
  explicit Teachers(uint64_t seed) {
    std::mt19937_64 g(seed);
    std::normal_distribution<double> n(0, 1);
    auto fill = [&](std::vector<double>& v, size_t m, double s) { v.resize(m); for (auto& a : v) a = n(g) * s; };
    fill(A, C * D, 1.0);
    fill(Cm, 32 * D, 1.0 / std::sqrt(double(D)));
    fill(B, C * 32, 1.0);
    fill(Dm, C * D, 1.0 / std::sqrt(double(D)));
    fill(E, C * D, 1.0);
  }
  int label(int task, const float* x) const {
    double z[C];
    for (int c = 0; c < C; ++c) {
      double s = 0;
      if (task == 1) {
        for (int h = 0; h < 32; ++h) {
          double u = 0;
          for (int d = 0; d < D; ++d) u += Cm[size_t(h * D + d)] * x[d];
          s += B[size_t(c * 32 + h)] * std::max(u, 0.0);
        }
      } else {
        const std::vector<double>& W = task == 0 ? A : task == 2 ? Dm : E;
        for (int d = 0; d < D; ++d) s += W[size_t(c * D + d)] * x[d];
        if (task == 2) s = std::sin(kFreq * s);
      }
      z[c] = s;
    }
    return int(std::max_element(z, z + C) - z);
  }
};

Split make_split(const Teachers& t, int64_t n, uint64_t seed, double noise) {
  std::mt19937_64 g(seed);
  std::normal_distribution<float> nd(0, 1);
  std::uniform_real_distribution<double> u(0, 1);
  std::uniform_int_distribution<int> rc(0, C - 1);
  Split s;
  s.n = n;
  s.x.resize(size_t(n * D));
  for (auto& v : s.x) v = nd(g);
  s.y.assign(K, std::vector<int64_t>(size_t(n)));
  for (int64_t i = 0; i < n; ++i)
    for (int k = 0; k < K; ++k) {
      int y = t.label(k, &s.x[size_t(i * D)]);
      if (k == 3 && noise > 0 && u(g) < noise) y = rc(g);
      s.y[size_t(k)][size_t(i)] = y;
    }
  return s;
}

mtl::Batch batch_of(const Split& s, const std::vector<int64_t>& idx) {
  const int64_t b = int64_t(idx.size());
  std::vector<float> x(size_t(b * D));
  for (int64_t i = 0; i < b; ++i) std::copy_n(&s.x[size_t(idx[size_t(i)] * D)], D, &x[size_t(i * D)]);
  mtl::Batch out;
  out.x = Tensor::from_vector(x, {b, D});
  for (int k = 0; k < K; ++k) {
    std::vector<int64_t> y(static_cast<size_t>(b));
    for (int64_t i = 0; i < b; ++i) y[size_t(i)] = s.y[size_t(k)][size_t(idx[size_t(i)])];
    out.y.push_back(Tensor::from_vector(y, {b}));
  }
  return out;
}
mtl::Batch range_batch(const Split& s, int64_t from, int64_t n) {
  std::vector<int64_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), from);
  return batch_of(s, idx);
}

// heads setting: trunk D-128-128 and a linear head per task; shared setting: one MLP
// (D+K)-128-128-C and parameter-free (identity) heads, so every parameter is shared.
std::shared_ptr<mtl::MultiTaskModel> make_model(bool shared) {
  auto trunk = std::make_shared<nn::Sequential>();
  trunk->push_back(std::make_shared<nn::Linear>(shared ? D + K : D, 128));
  trunk->push_back(std::make_shared<nn::ReLU>());
  trunk->push_back(std::make_shared<nn::Linear>(128, 128));
  trunk->push_back(std::make_shared<nn::ReLU>());
  if (shared) trunk->push_back(std::make_shared<nn::Linear>(128, C));
  std::vector<mtl::Task> tasks;
  for (int k = 0; k < K; ++k) {
    if (shared) tasks.emplace_back(kTasks[k], std::make_shared<nn::Identity>());
    else tasks.emplace_back(kTasks[k], std::make_shared<nn::Linear>(128, C));
  }
  auto m = std::make_shared<mtl::MultiTaskModel>(std::make_shared<mtl::HPS>(trunk, K), std::move(tasks));
  m->flatten();
  return m;
}

// Per-task mean loss and accuracy of the model on a whole split (no gradients).
void evaluate(mtl::MultiTaskModel& m, const Split& s, std::vector<double>& loss, std::vector<double>& acc) {
  ag::NoGradGuard ng;
  m.eval();
  mtl::Batch b = range_batch(s, 0, s.n);
  auto outs = m.forward(ag::Variable(b.x));
  loss.assign(K, 0);
  acc.assign(K, 0);
  for (int k = 0; k < K; ++k) {
    loss[size_t(k)] = m.task(k).compute_loss(outs[size_t(k)], b.y[size_t(k)]).item();
    acc[size_t(k)] = m.task(k).compute_metric(outs[size_t(k)].data(), b.y[size_t(k)]) / double(s.n);
  }
  m.train();
}

// The data of one seed, in one of two settings:
//  - heads (default): one input for all tasks, an MLP trunk and a linear head per task;
//  - shared (--shared): the setting of CoBa's paper, where the tasks share the WHOLE model (as
//    instruction-tuned tasks share an LLM): each task has its own inputs and training set, the
//    input carries a one-hot task code, and one MLP gives the 4 logits of every task. Each batch
//    holds batch/K examples of every task; task k's loss covers its own rows (the other rows have
//    target -100, ignored). The noisy task has only --small training examples, so it overfits.
struct Problem {
  bool shared = false;
  Split train, val, test;                      // heads setting
  std::vector<Split> train_k, val_k, test_k;   // shared setting: task k's data (labels y[k])
  int64_t per_epoch = 1;                       // steps per epoch (of the largest training set)

  int64_t in_dim() const { return shared ? D + K : D; }

  // x rows of task k's split (with the task code appended in the shared setting)
  void append_rows(const Split& s, int k, const std::vector<int64_t>& idx, std::vector<float>& x) const {
    for (int64_t i : idx) {
      x.insert(x.end(), s.x.begin() + i * D, s.x.begin() + (i + 1) * D);
      if (shared)
        for (int j = 0; j < K; ++j) x.push_back(j == k ? 1.0f : 0.0f);
    }
  }
  // A batch of the shared setting: idx[k] rows of task k's split.
  mtl::Batch shared_batch(const std::vector<const Split*>& sp, const std::vector<std::vector<int64_t>>& idx) const {
    std::vector<float> x;
    int64_t rows = 0;
    for (int k = 0; k < K; ++k) rows += int64_t(idx[size_t(k)].size());
    std::vector<std::vector<int64_t>> y(K, std::vector<int64_t>(size_t(rows), -100));
    int64_t r = 0;
    for (int k = 0; k < K; ++k) {
      append_rows(*sp[size_t(k)], k, idx[size_t(k)], x);
      for (int64_t i : idx[size_t(k)]) y[size_t(k)][size_t(r++)] = sp[size_t(k)]->y[size_t(k)][size_t(i)];
    }
    mtl::Batch b;
    b.x = Tensor::from_vector(x, {rows, in_dim()});
    for (int k = 0; k < K; ++k) b.y.push_back(Tensor::from_vector(y[size_t(k)], {rows}));
    return b;
  }
};

std::vector<int64_t> iota_from(int64_t from, int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), from);
  return v;
}

// Per-task mean loss and accuracy on the validation (test = false) or test split, no gradients.
void evaluate(mtl::MultiTaskModel& m, const Problem& p, bool test, std::vector<double>& loss, std::vector<double>& acc) {
  if (!p.shared) return evaluate(m, test ? p.test : p.val, loss, acc);
  ag::NoGradGuard ng;
  m.eval();
  loss.assign(K, 0);
  acc.assign(K, 0);
  for (int k = 0; k < K; ++k) {
    const Split& s = test ? p.test_k[size_t(k)] : p.val_k[size_t(k)];
    std::vector<std::vector<int64_t>> idx(K);
    idx[size_t(k)] = iota_from(0, s.n);
    std::vector<const Split*> sp(K, &s);
    mtl::Batch b = p.shared_batch(sp, idx);
    ag::Variable out = m.forward(ag::Variable(b.x))[size_t(k)];
    loss[size_t(k)] = m.task(k).compute_loss(out, b.y[size_t(k)]).item();
    acc[size_t(k)] = m.task(k).compute_metric(out.data(), b.y[size_t(k)]) / double(s.n);
  }
  m.train();
}

struct Curve {
  std::vector<double> step;
  std::vector<std::vector<double>> val;  // K x points (full validation set)
  std::vector<std::vector<double>> w;    // K x points (weights normalized to sum 1)
};

struct RunResult {
  std::vector<double> test_acc, test_loss, rise, conv, mean_w;  // mean_w: after the warm-up
  double ms_step = 0;
  Curve curve;
};

struct Setup {
  int steps = 3000, eval_every = 25, batch = 64, warmup = 100, history = 200;
  std::map<std::string, std::string> coba_extra;  // --coba-opt key=value (every CoBa run)
  int64_t ntrain = 2048, small = 256;  // small: the noisy task's training set in the shared setting
  double noise = 0.6;
  bool shared = false;
  int64_t val_batch = 128;  // rows of the validation batch CoBa sees per update
  bool smoke = false;
};

RunResult run_one(const std::string& method, const Setup& su, const Problem& p, uint64_t seed) {
  manual_seed(seed);
  auto m = make_model(p.shared);
  optim::Adam opt(*m, optim::AdamOptions(1e-3));
  mtl::TrainerOptions to;
  to.method = method;
  to.seed = seed;
  // "coba" is CoBa with the released code's rules; "coba-mos" takes alpha_max as the largest task slope
  // (so a rising task that is not the worst one also moves the weights towards ACS)
  if (method == "coba" || method == "coba-mos") {
    to.method = "coba";
    to.method_options = {{"warmup", std::to_string(su.warmup)}, {"history", std::to_string(su.history)}};
    if (method == "coba-mos") to.method_options.set("alpha_max", "max_of_slopes");
    for (const auto& [k, v] : su.coba_extra) to.method_options.set(k, v);
  }
  // one cycled validation batch of val_batch rows per call (val_batch / K per task in the shared setting)
  const int64_t vb = p.shared ? su.val_batch / K : su.val_batch, nvb = (p.shared ? p.val_k[0].n : p.val.n) / vb;
  int64_t vcount = 0;
  to.validation_losses = [&] {
    mtl::Batch b;
    const int64_t from = (vcount++ % nvb) * vb;
    if (p.shared) {
      std::vector<const Split*> sp;
      for (const auto& v : p.val_k) sp.push_back(&v);
      b = p.shared_batch(sp, std::vector<std::vector<int64_t>>(K, iota_from(from, vb)));
    } else {
      b = range_batch(p.val, from, vb);
    }
    auto outs = m->forward(ag::Variable(b.x));
    std::vector<double> L;
    for (int k = 0; k < K; ++k) L.push_back(m->task(k).compute_loss(outs[size_t(k)], b.y[size_t(k)]).item());
    return L;
  };
  mtl::Trainer tr(*m, opt, to);
  std::mt19937_64 g(seed * 7919 + 1);
  // training order: a shuffled permutation per task (one in the heads setting), reshuffled when used up
  const int nperm = p.shared ? K : 1;
  const int64_t rows = p.shared ? su.batch / K : su.batch;
  std::vector<std::vector<int64_t>> perm(static_cast<size_t>(nperm));
  std::vector<int64_t> pos(static_cast<size_t>(nperm), 0);
  for (int k = 0; k < nperm; ++k) {
    perm[size_t(k)] = iota_from(0, p.shared ? p.train_k[size_t(k)].n : p.train.n);
    std::shuffle(perm[size_t(k)].begin(), perm[size_t(k)].end(), g);
  }
  auto next_rows = [&](int k) {
    auto& pk = perm[size_t(k)];
    if (pos[size_t(k)] + rows > int64_t(pk.size())) {
      std::shuffle(pk.begin(), pk.end(), g);
      pos[size_t(k)] = 0;
    }
    std::vector<int64_t> idx(pk.begin() + pos[size_t(k)], pk.begin() + pos[size_t(k)] + rows);
    pos[size_t(k)] += rows;
    return idx;
  };
  RunResult res;
  std::vector<double> L, A, wsum(K, 0.0);
  int wcount = 0;
  double ms = 0;
  auto record = [&](int step) {
    evaluate(*m, p, false, L, A);
    res.curve.step.push_back(step);
    res.curve.val.resize(K);
    res.curve.w.resize(K);
    for (int k = 0; k < K; ++k) {
      res.curve.val[size_t(k)].push_back(L[size_t(k)]);
      res.curve.w[size_t(k)].push_back(wcount ? wsum[size_t(k)] / wcount : 1.0 / K);
    }
    std::fill(wsum.begin(), wsum.end(), 0.0);
    wcount = 0;
  };
  record(0);
  for (int step = 0; step < su.steps; ++step) {
    if (step > 0 && step % p.per_epoch == 0) tr.end_epoch();
    mtl::Batch batch;
    if (p.shared) {
      std::vector<std::vector<int64_t>> idx;
      std::vector<const Split*> sp;
      for (int k = 0; k < K; ++k) {
        idx.push_back(next_rows(k));
        sp.push_back(&p.train_k[size_t(k)]);
      }
      batch = p.shared_batch(sp, idx);
    } else {
      batch = batch_of(p.train, next_rows(0));
    }
    mtl::StepResult r = tr.step(batch);
    ms += r.ms_total;
    if (r.weights.size() == size_t(K)) {
      double s = 0;
      for (double w : r.weights) s += w;
      for (int k = 0; k < K; ++k) wsum[size_t(k)] += r.weights[size_t(k)] / s;
      ++wcount;
    }
    if ((step + 1) % su.eval_every == 0) record(step + 1);
  }
  res.ms_step = ms / su.steps;
  evaluate(*m, p, true, res.test_loss, res.test_acc);
  // rise of the validation loss from its minimum to the end, and the step of convergence
  const size_t P = res.curve.step.size();
  for (int k = 0; k < K; ++k) {
    const auto& v = res.curve.val[size_t(k)];
    // the end value: mean of the last 4 evaluations (less noise)
    double end = 0;
    const size_t tail = std::min<size_t>(4, P);
    for (size_t j = P - tail; j < P; ++j) end += v[j];
    end /= double(tail);
    const double mn = *std::min_element(v.begin(), v.end());
    res.rise.push_back(100.0 * (end - mn) / mn);
    const double thr = mn + 0.05 * (v[0] - mn);
    size_t j = 0;
    while (j < P && v[j] > thr) ++j;
    res.conv.push_back(res.curve.step[std::min(j, P - 1)]);
    double sw = 0;
    int nw = 0;
    for (size_t q = 0; q < P; ++q)
      if (res.curve.step[q] > su.warmup) { sw += res.curve.w[size_t(k)][q]; ++nw; }
    res.mean_w.push_back(nw ? sw / nw : NAN);
  }
  return res;
}

double mean(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0) / double(v.size()); }
double sd(const std::vector<double>& v) {
  if (v.size() < 2) return 0;
  double m = mean(v), s = 0;
  for (double a : v) s += (a - m) * (a - m);
  return std::sqrt(s / double(v.size() - 1));
}

}  // namespace

int main(int argc, char** argv) {
  Setup su;
  int seeds = 3;
  std::string out = "runs/demo_coba";
  std::vector<std::string> methods = {"ew", "gradnorm", "famo", "coba", "coba-mos"};
  const char* usage =
      "usage: demo_coba [--smoke] [--out DIR] [--steps N] [--seeds S] [--ntrain N] [--noise P] [--freq F]\n"
      "                 [--shared] [--small N] [--val-batch N] [--methods m1,m2,..] [--coba-opt key=value]...\n"
      "methods: ew gradnorm famo coba coba-mos (any method of the registry also works)\n";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--smoke") su.smoke = true;
    else if (a == "--out" && i + 1 < argc) out = argv[++i];
    else if (a == "--steps" && i + 1 < argc) su.steps = std::atoi(argv[++i]);
    else if (a == "--seeds" && i + 1 < argc) seeds = std::atoi(argv[++i]);
    else if (a == "--ntrain" && i + 1 < argc) su.ntrain = std::atoll(argv[++i]);
    else if (a == "--noise" && i + 1 < argc) su.noise = std::atof(argv[++i]);
    else if (a == "--freq" && i + 1 < argc) kFreq = std::atof(argv[++i]);
    else if (a == "--shared") su.shared = true;
    else if (a == "--val-batch" && i + 1 < argc) su.val_batch = std::atoll(argv[++i]);
    else if (a == "--small" && i + 1 < argc) su.small = std::atoll(argv[++i]);
    else if (a == "--methods" && i + 1 < argc) {
      methods.clear();
      std::stringstream ss(argv[++i]);
      for (std::string m; std::getline(ss, m, ',');)
        if (!m.empty()) methods.push_back(m);
    } else if (a == "--coba-opt" && i + 1 < argc) {
      const std::string kv = argv[++i];
      const size_t eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) {
        std::fprintf(stderr, "demo_coba: --coba-opt wants key=value, got '%s'\n%s", kv.c_str(), usage);
        return 2;
      }
      su.coba_extra[kv.substr(0, eq)] = kv.substr(eq + 1);
    } else {
      std::fprintf(stderr, "%s", usage);
      return 2;
    }
  }
  if (su.smoke) {
    su.steps = 160;
    su.eval_every = 10;
    su.warmup = 20;
    su.history = 40;
    seeds = 1;
  }
  if (methods.empty()) {
    std::fprintf(stderr, "demo_coba: --methods is empty\n%s", usage);
    return 2;
  }
  for (const auto& m : methods) {  // every name must be known before the first run starts
    bool known = m == "coba-mos";
    for (const auto& info : mtl::list_methods()) known = known || info.name == m;
    if (!known) {
      std::fprintf(stderr, "demo_coba: unknown method '%s' in --methods (`build/polyhead methods` lists them)\n%s", m.c_str(), usage);
      return 2;
    }
  }
  if (su.val_batch < K || su.val_batch > 1024) {
    std::fprintf(stderr, "demo_coba: --val-batch must be in [%d, 1024] (the validation set has 1024 examples)\n", K);
    return 2;
  }
  if (su.shared && su.small < su.batch / K) {
    std::fprintf(stderr, "demo_coba: --small must be at least %d (one batch of the task)\n", su.batch / K);
    return 2;
  }
  if (su.steps < su.eval_every * 4 || seeds < 1 || su.ntrain < su.batch || !(su.noise >= 0 && su.noise <= 1)) {
    std::fprintf(stderr, "demo_coba: need --steps >= %d, --seeds >= 1, --ntrain >= %d and --noise in [0, 1]\n", su.eval_every * 4,
                 su.batch);
    return 2;
  }
  try {
    std::filesystem::create_directories(out);
    std::map<std::string, std::vector<RunResult>> all;
    auto t0 = std::chrono::steady_clock::now();
    for (int s = 0; s < seeds; ++s) {
      Teachers te(1000 + uint64_t(s));
      Problem prob;
      prob.shared = su.shared;
      if (su.shared) {
        for (int k = 0; k < K; ++k) {
          const uint64_t ks = 100 * uint64_t(k);
          prob.train_k.push_back(make_split(te, k == 3 ? su.small : su.ntrain, 2000 + uint64_t(s) + ks, su.noise));
          prob.val_k.push_back(make_split(te, 1024, 3000 + uint64_t(s) + ks, 0.0));
          prob.test_k.push_back(make_split(te, 4096, 4000 + uint64_t(s) + ks, 0.0));
        }
        prob.per_epoch = std::max<int64_t>(1, su.ntrain / (su.batch / K));
      } else {
        prob.train = make_split(te, su.ntrain, 2000 + uint64_t(s), su.noise);
        prob.val = make_split(te, 1024, 3000 + uint64_t(s), 0.0);
        prob.test = make_split(te, 4096, 4000 + uint64_t(s), 0.0);
        prob.per_epoch = su.ntrain / su.batch;
      }
      for (const auto& m : methods) {
        all[m].push_back(run_one(m, su, prob, 10 + uint64_t(s)));
        const auto& r = all[m].back();
        std::printf("seed %d %-9s test acc", s, m.c_str());
        for (int k = 0; k < K; ++k) std::printf(" %.3f", r.test_acc[size_t(k)]);
        std::printf("  val-loss rise %%");
        for (int k = 0; k < K; ++k) std::printf(" %.1f", r.rise[size_t(k)]);
        std::printf("  (%.2f ms/step)\n", r.ms_step);
        std::fflush(stdout);
      }
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    // ---- the table (mean over seeds; +- the standard deviation for the accuracies)
    std::ostringstream md;
    md << "| method | acc easy | acc medium | acc slow | acc noisy | mean acc | val-loss rise % (easy/medium/slow/noisy) | "
          "converged at step (easy/medium/slow/noisy) | spread | mean weight (easy/medium/slow/noisy) | ms/step |\n";
    md << "|---|---|---|---|---|---|---|---|---|---|---|\n";
    char b[256];
    for (const auto& m : methods) {
      const auto& rs = all[m];
      md << "| " << m;
      std::vector<double> macc;
      for (const auto& r : rs) macc.push_back(mean(r.test_acc));
      for (int k = 0; k < K; ++k) {
        std::vector<double> a;
        for (const auto& r : rs) a.push_back(100 * r.test_acc[size_t(k)]);
        std::snprintf(b, sizeof(b), " | %.1f ± %.1f", mean(a), sd(a));
        md << b;
      }
      std::snprintf(b, sizeof(b), " | %.1f", 100 * mean(macc));
      md << b << " |";
      for (int k = 0; k < K; ++k) {
        std::vector<double> a;
        for (const auto& r : rs) a.push_back(r.rise[size_t(k)]);
        std::snprintf(b, sizeof(b), "%s%.1f", k ? " / " : " ", mean(a));
        md << b;
      }
      md << " |";
      std::vector<double> conv(K);
      for (int k = 0; k < K; ++k) {
        std::vector<double> a;
        for (const auto& r : rs) a.push_back(r.conv[size_t(k)]);
        conv[size_t(k)] = mean(a);
        std::snprintf(b, sizeof(b), "%s%.0f", k ? " / " : " ", conv[size_t(k)]);
        md << b;
      }
      std::vector<double> spread;
      for (const auto& r : rs) spread.push_back(*std::max_element(r.conv.begin(), r.conv.end()) - *std::min_element(r.conv.begin(), r.conv.end()));
      std::vector<double> ms;
      for (const auto& r : rs) ms.push_back(r.ms_step);
      std::snprintf(b, sizeof(b), " | %.0f |", mean(spread));
      md << b;
      for (int k = 0; k < K; ++k) {
        std::vector<double> a;
        for (const auto& r : rs) a.push_back(r.mean_w[size_t(k)]);
        std::snprintf(b, sizeof(b), "%s%.2f", k ? " / " : " ", mean(a));
        md << b;
      }
      std::snprintf(b, sizeof(b), " | %.2f |\n", mean(ms));
      md << b;
    }
    std::ostringstream head;
    head << "demo_coba: " << seeds << " seed(s), " << su.steps << " steps, batch " << su.batch << ", Adam 1e-3; CoBa warm-up "
         << su.warmup << ", history " << su.history << ", tau 5, validation batch " << su.val_batch << "; "
         << (su.shared ? "shared setting (one model for all tasks), " + std::to_string(su.ntrain) + " training examples per task (noisy: " +
                             std::to_string(su.small) + ")"
                       : "task heads, " + std::to_string(su.ntrain) + " training examples")
         << ", noise " << su.noise << " ("
         << std::fixed;
    head.precision(0);
    head << secs << " s)\n";
    std::string legend =
        "\nacc: test accuracy in % (mean ± sd over seeds). val-loss rise: how far each task's validation loss (full "
        "validation set) ended above its minimum (mean of the last 4 evaluations), in %; a large rise means the task "
        "diverged or overfitted. converged at: the first step at which the validation loss came within 5% of its total "
        "decrease; spread: the largest minus the smallest of those steps (per seed, averaged). mean weight: the "
        "task weights normalized to sum 1, averaged over the steps after CoBa's warm-up.\n";
    std::printf("\n%s\n%s%s", head.str().c_str(), md.str().c_str(), legend.c_str());
    run::write_text_atomic(run::path_join(out, "results.md"), "# " + head.str() + "\n" + md.str() + legend);

    // ---- curves (seed 0) as CSV and SVG
    std::ostringstream csv;
    csv << "method,step";
    for (int k = 0; k < K; ++k) csv << ",val_" << kTasks[k];
    for (int k = 0; k < K; ++k) csv << ",w_" << kTasks[k];
    csv << "\n";
    for (const auto& m : methods) {
      const Curve& c = all[m][0].curve;
      for (size_t j = 0; j < c.step.size(); ++j) {
        csv << m << "," << c.step[j];
        for (int k = 0; k < K; ++k) csv << "," << c.val[size_t(k)][j];
        for (int k = 0; k < K; ++k) csv << "," << c.w[size_t(k)][j];
        csv << "\n";
      }
      run::LinePlot vp{"Validation loss per task (" + m + ", seed 0)", "step", "validation loss", {}, false};
      run::LinePlot wp{"Task weights, normalized to sum 1 (" + m + ", seed 0)", "step", "weight", {}, false};
      for (int k = 0; k < K; ++k) {
        vp.series.push_back({kTasks[k], c.step, c.val[size_t(k)]});
        wp.series.push_back({kTasks[k], c.step, c.w[size_t(k)]});
      }
      run::write_text_atomic(run::path_join(out, "val_" + m + ".svg"), run::line_plot_svg(vp));
      run::write_text_atomic(run::path_join(out, "weights_" + m + ".svg"), run::line_plot_svg(wp));
    }
    for (int k = 0; k < K; ++k) {
      run::LinePlot tp{std::string("Validation loss of task '") + kTasks[k] + "' (seed 0)", "step", "validation loss", {}, false};
      for (const auto& m : methods) tp.series.push_back({m, all[m][0].curve.step, all[m][0].curve.val[size_t(k)]});
      run::write_text_atomic(run::path_join(out, std::string("task_") + kTasks[k] + ".svg"), run::line_plot_svg(tp));
    }
    run::write_text_atomic(run::path_join(out, "curves.csv"), csv.str());
    std::printf("wrote %s/{results.md, curves.csv, val_*.svg, weights_*.svg, task_*.svg}\n", out.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "demo_coba: %s\n", e.what());
    return 1;
  }
  return 0;
}
