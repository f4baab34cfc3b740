// demos/demo_mt2st.cpp: MT2ST (Liu & Yu, ACL 2025 MAGMaR), from multi-task to single-task, on MNIST.
//
// Primary task: the digit (10 classes). Auxiliary tasks on the same shared trunk (784-256-256, ReLU):
//   recon   reconstruct the 784 input pixels (MSE; head 256-256-784, as costly as the trunk)
//   parity  the digit's parity (2 classes; linear head)
//   large   digit >= 5 (2 classes; linear head)
// Schedules (all the "mt2st" method, so every run goes through the same code path):
//   STL       auxiliary weights 0 from the start (their heads are never computed)
//   MTL       auxiliary weights 1 throughout
//   Diminish  gamma(t) = exp(-eta t), half-life 0.15 T, cut to 0 below 0.05 (gamma_off): ~0.65 T
//   Switch    weights 1 until T_switch = 0.6 T, then 0 (heads no longer computed)
//   Both      diminishing (half-life 0.3 T) until T_switch = 0.6 T, then 0
// Unlike the released code (whose auxiliary losses come from detached embeddings), the auxiliary
// losses here send gradients to the shared trunk. 10,000 training images (real MNIST from
// data/mnist, scripts/fetch_mnist.sh; a synthetic stand-in, said loudly, without it), Adam 1e-3,
// batch 100, 10 epochs. Measured: final test accuracy of the primary task (10,000 test images),
// training time to reach the target accuracy (95.5%) on a 2,000-image held-out set (evaluated every 25
// steps; evaluation time excluded), total training time, and the median ms per step with and without the
// auxiliary heads (the FLOP saving of the switch), next to the analytic FLOPs. --light makes the
// recon head one linear layer onto the 14 x 14 image (a fifth of the trunk's cost); --ntrain N uses
// fewer training images (a low-data setting where the auxiliary tasks regularise more).
// Written into --out: results.md, curves.csv, accuracy.svg, weights.svg.
//   build/demo_mt2st [--smoke] [--out DIR] [--data DIR] [--epochs E] [--seeds S] [--target ACC (0.955)]
//                    [--ntrain N] [--light]
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

#include "data/mnist.h"
#include "data/multimnist.h"
#include "engine/ops.h"
#include "engine/rng.h"
#include "layers/activation.h"
#include "layers/linear.h"
#include "layers/optim/adam.h"
#include "layers/sequential.h"
#include "mtl/architecture.h"
#include "mtl/run/files.h"
#include "mtl/run/plot.h"
#include "mtl/trainer.h"

using namespace polyhead;

namespace {

constexpr int K = 4, P = 784, H = 256, P2 = 196;
// --light: the recon head is one linear layer 256 -> 196 that reconstructs the 14 x 14 image (2 x 2
// average pooling), about a fifth of the trunk's cost instead of all of it
bool g_light = false;

struct Split {
  std::vector<float> x;        // N x 784 in [0, 1]
  std::vector<int64_t> digit;  // N
  int64_t n = 0;
};

Split to_split(const data::MnistData& d, int64_t from, int64_t n) {
  Split s;
  s.n = std::min<int64_t>(n, d.images.size(0) - from);
  Tensor im = d.images.narrow(0, from, s.n).contiguous();
  Tensor lb = d.labels.narrow(0, from, s.n).to(DType::i64).contiguous();
  const uint8_t* p = im.data<uint8_t>();
  s.x.resize(size_t(s.n * P));
  for (size_t i = 0; i < s.x.size(); ++i) s.x[i] = float(p[i]) / 255.0f;
  s.digit = lb.to_vector<int64_t>();
  return s;
}

mtl::Batch batch_of(const Split& s, const int64_t* idx, int64_t b) {
  std::vector<float> x(size_t(b * P));
  std::vector<int64_t> y0(static_cast<size_t>(b)), y2(static_cast<size_t>(b)), y3(static_cast<size_t>(b));
  for (int64_t i = 0; i < b; ++i) {
    std::copy_n(&s.x[size_t(idx[i] * P)], P, &x[size_t(i * P)]);
    const int64_t d = s.digit[size_t(idx[i])];
    y0[size_t(i)] = d;
    y2[size_t(i)] = d % 2;
    y3[size_t(i)] = d >= 5;
  }
  mtl::Batch out;
  out.x = Tensor::from_vector(x, {b, P});
  Tensor recon_target = out.x;
  if (g_light) {
    std::vector<float> small(size_t(b * P2));
    for (int64_t i = 0; i < b; ++i)
      for (int r = 0; r < 14; ++r)
        for (int c = 0; c < 14; ++c) {
          const float* q = &x[size_t(i * P + (2 * r) * 28 + 2 * c)];
          small[size_t(i * P2 + r * 14 + c)] = 0.25f * (q[0] + q[1] + q[28] + q[29]);
        }
    recon_target = Tensor::from_vector(small, {b, P2});
  }
  out.y = {Tensor::from_vector(y0, {b}), recon_target, Tensor::from_vector(y2, {b}), Tensor::from_vector(y3, {b})};
  return out;
}

std::shared_ptr<mtl::MultiTaskModel> make_model() {
  auto trunk = std::make_shared<nn::Sequential>();
  trunk->push_back(std::make_shared<nn::Linear>(P, H));
  trunk->push_back(std::make_shared<nn::ReLU>());
  trunk->push_back(std::make_shared<nn::Linear>(H, H));
  trunk->push_back(std::make_shared<nn::ReLU>());
  auto recon = std::make_shared<nn::Sequential>();
  if (g_light) {
    recon->push_back(std::make_shared<nn::Linear>(H, P2));
  } else {
    recon->push_back(std::make_shared<nn::Linear>(H, H));
    recon->push_back(std::make_shared<nn::ReLU>());
    recon->push_back(std::make_shared<nn::Linear>(H, P));
  }
  std::vector<mtl::Task> tasks;
  tasks.emplace_back("digit", std::make_shared<nn::Linear>(H, 10));
  tasks.emplace_back("recon", recon, mtl::TaskKind::Regression);
  tasks.emplace_back("parity", std::make_shared<nn::Linear>(H, 2));
  tasks.emplace_back("large", std::make_shared<nn::Linear>(H, 2));
  auto m = std::make_shared<mtl::MultiTaskModel>(std::make_shared<mtl::HPS>(trunk, K), std::move(tasks));
  m->flatten();
  return m;
}
// Multiply-adds per example of one forward: trunk, primary head, auxiliary heads.
constexpr double kTrunkMacs = double(P) * H + double(H) * H;
constexpr double kPrimaryMacs = double(H) * 10;
double aux_macs() { return (g_light ? double(H) * P2 : double(H) * H + double(H) * P) + 2.0 * H * 2; }

// Accuracy of the primary task on a split (no gradients).
double accuracy(mtl::MultiTaskModel& m, const Split& s) {
  ag::NoGradGuard ng;
  m.eval();
  int64_t correct = 0;
  for (int64_t from = 0; from < s.n; from += 1000) {
    const int64_t b = std::min<int64_t>(1000, s.n - from);
    Tensor x = Tensor::from_vector(std::vector<float>(s.x.begin() + from * P, s.x.begin() + (from + b) * P), {b, P});
    auto reps = m.representations(ag::Variable(x));
    Tensor pred = ops::argmax(m.head_forward(0, reps[0]).data(), 1).to(DType::i64).contiguous();
    const int64_t* pp = pred.data<int64_t>();
    for (int64_t i = 0; i < b; ++i) correct += pp[i] == s.digit[size_t(from + i)];
  }
  m.train();
  return double(correct) / double(s.n);
}

struct Schedule {
  std::string name;
  mtl::Options opts;
};

struct RunResult {
  double final_acc = 0, best_acc = 0, train_s = 0, to_target_s = -1;
  double gmac = 0, gmac_to_target = -1;  // multiply-adds of training (forward + backward ~ 3 x forward)
  int to_target_step = -1;
  double ms_all = 0, ms_primary = 0;  // median ms/step with all heads, with the primary head only
  std::vector<double> step, acc, aux_w;
};

RunResult run_one(const Schedule& sc, const Split& train, const Split& held, const Split& test, int steps, int batch,
              double target, uint64_t seed) {
  manual_seed(seed);
  auto m = make_model();
  optim::Adam opt(*m, optim::AdamOptions(1e-3));
  mtl::TrainerOptions to;
  to.method = "mt2st";
  to.method_options = sc.opts;
  to.seed = seed;
  mtl::Trainer tr(*m, opt, to);
  std::mt19937_64 g(seed * 31 + 7);
  std::vector<int64_t> perm(static_cast<size_t>(train.n));
  std::iota(perm.begin(), perm.end(), 0);
  const int64_t per_epoch = train.n / batch;
  RunResult res;
  double ms = 0;
  std::vector<double> t_all, t_pri;
  for (int step = 0; step < steps; ++step) {
    const int64_t i = step % per_epoch;
    if (i == 0) {
      if (step > 0) tr.end_epoch();
      std::shuffle(perm.begin(), perm.end(), g);
    }
    auto t0 = std::chrono::steady_clock::now();
    mtl::Batch b = batch_of(train, &perm[size_t(i * batch)], batch);
    mtl::StepResult r = tr.step(b);
    const double dt = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    ms += dt;
    res.gmac += 3.0 * double(batch) * (kTrunkMacs + kPrimaryMacs + (r.heads_skipped == 0 ? aux_macs() : 0.0)) * 1e-9;
    if (step >= 5) {  // skip the first steps (allocations)
      if (r.heads_skipped == 0) t_all.push_back(r.ms_total);
      if (r.heads_skipped == K - 1) t_pri.push_back(r.ms_total);
    }
    if ((step + 1) % 25 == 0 || step + 1 == steps) {
      const double a = accuracy(*m, held);
      res.step.push_back(step + 1);
      res.acc.push_back(a);
      res.aux_w.push_back(r.weights.size() == size_t(K) ? r.weights[1] : NAN);
      if (res.to_target_s < 0 && a >= target) {
        res.to_target_s = ms / 1000.0;
        res.to_target_step = step + 1;
        res.gmac_to_target = res.gmac;
      }
    }
  }
  res.train_s = ms / 1000.0;
  auto median = [](std::vector<double> v) {
    if (v.empty()) return double(NAN);
    std::nth_element(v.begin(), v.begin() + long(v.size() / 2), v.end());
    return v[v.size() / 2];
  };
  res.ms_all = median(t_all);
  res.ms_primary = median(t_pri);
  res.final_acc = accuracy(*m, test);
  res.best_acc = *std::max_element(res.acc.begin(), res.acc.end());
  return res;
}

// Step time with all heads against the primary head only, measured in alternating blocks of 5 steps
// (so that a changing machine load affects both alike): the median ms of each.
std::pair<double, double> interleaved_step_ms(const Split& train, int steps, int batch) {
  auto make = [&](const char* t_switch, std::shared_ptr<mtl::MultiTaskModel>& m, std::unique_ptr<optim::Adam>& opt,
                  std::unique_ptr<mtl::Trainer>& tr) {
    manual_seed(1);
    m = make_model();
    opt = std::make_unique<optim::Adam>(*m, optim::AdamOptions(1e-3));
    mtl::TrainerOptions to;
    to.method = "mt2st";
    to.method_options = {{"schedule", "switch"}, {"t_switch", t_switch}};
    tr = std::make_unique<mtl::Trainer>(*m, *opt, to);
  };
  std::shared_ptr<mtl::MultiTaskModel> ma, mp;
  std::unique_ptr<optim::Adam> oa, op;
  std::unique_ptr<mtl::Trainer> ta, tp;
  make("1e18", ma, oa, ta);
  make("0", mp, op, tp);
  std::vector<double> all, pri;
  const int64_t per_epoch = train.n / batch;
  std::vector<int64_t> idx(static_cast<size_t>(train.n));
  std::iota(idx.begin(), idx.end(), 0);
  for (int s = 0; s < steps; ++s) {
    mtl::Batch b = batch_of(train, &idx[size_t((s / 5 % per_epoch) * batch)], batch);
    const bool first = (s / 5) % 2 == 0;
    double ms = (first ? ta : tp)->step(b).ms_total;
    if (s >= 10) (first ? all : pri).push_back(ms);
  }
  auto median = [](std::vector<double> v) {
    std::nth_element(v.begin(), v.begin() + long(v.size() / 2), v.end());
    return v[v.size() / 2];
  };
  return {median(all), median(pri)};
}

double mean(const std::vector<double>& v) {
  double s = 0;
  int n = 0;
  for (double a : v)
    if (std::isfinite(a)) { s += a; ++n; }
  return n ? s / n : NAN;
}
double sd(const std::vector<double>& v) {
  if (v.size() < 2) return 0;
  double m = mean(v), s = 0;
  for (double a : v) s += (a - m) * (a - m);
  return std::sqrt(s / double(v.size() - 1));
}

}  // namespace

int main(int argc, char** argv) {
  bool smoke = false;
  int epochs = 10, seeds = 3;
  double target = 0.955;
  int64_t n_train = 10000;
  std::string out = "runs/demo_mt2st", dir = "data/mnist";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--smoke") smoke = true;
    else if (a == "--out" && i + 1 < argc) out = argv[++i];
    else if (a == "--data" && i + 1 < argc) dir = argv[++i];
    else if (a == "--epochs" && i + 1 < argc) epochs = std::atoi(argv[++i]);
    else if (a == "--seeds" && i + 1 < argc) seeds = std::atoi(argv[++i]);
    else if (a == "--target" && i + 1 < argc) target = std::atof(argv[++i]);
    else if (a == "--ntrain" && i + 1 < argc) n_train = std::atoll(argv[++i]);
    else if (a == "--light") g_light = true;
    else {
      std::fprintf(stderr, "usage: demo_mt2st [--smoke] [--out DIR] [--data DIR] [--epochs E] [--seeds S] [--target ACC] [--ntrain N (100..10000)] [--light]\n");
      return 2;
    }
  }
  if (epochs < 1 || seeds < 1 || !(target > 0 && target <= 1) || n_train < 100 || n_train > 10000) {
    std::fprintf(stderr, "demo_mt2st: need --epochs >= 1, --seeds >= 1, --target in (0, 1] and --ntrain in [100, 10000]\n");
    return 2;
  }
  try {
    std::filesystem::create_directories(out);
    bool synth_train = false, synth_test = false;
    auto trd = data::load_mnist_or_synthetic(dir, true, 12000, 1, &synth_train);
    auto ted = data::load_mnist_or_synthetic(dir, false, 2000, 2, &synth_test);
    const bool synthetic = synth_train || synth_test;
    if (synthetic) std::fprintf(stderr, "%s\n", data::kSyntheticDigitsWarning);
    if (smoke) n_train = std::min<int64_t>(n_train, 1000);
    const int64_t batch = 100;
    Split train = to_split(trd, 0, n_train);
    Split held = to_split(trd, n_train, smoke ? 500 : 2000);
    Split test = to_split(ted, 0, smoke ? 1000 : 10000);
    if (smoke) { epochs = 1; seeds = 1; }
    const int steps = int(epochs * (train.n / batch));
    const double T = steps;
    auto num = [](double v) { std::ostringstream o; o << v; return o.str(); };
    const std::vector<Schedule> schedules = {
        {"STL", {{"schedule", "switch"}, {"t_switch", "0"}}},
        {"MTL", {{"schedule", "switch"}, {"t_switch", "1e18"}}},
        {"Diminish", {{"schedule", "diminish"}, {"half_life", num(0.15 * T)}, {"gamma_off", "0.05"}}},
        {"Switch", {{"schedule", "switch"}, {"t_switch", num(0.6 * T)}}},
        {"Both", {{"schedule", "both"}, {"half_life", num(0.3 * T)}, {"t_switch", num(0.6 * T)}}},
    };
    std::printf("demo_mt2st: %lld training / %lld held-out / %lld test images%s, %d epochs = %d steps, batch %lld, %d seed(s)\n",
                (long long)train.n, (long long)held.n, (long long)test.n, synthetic ? " (SYNTHETIC stand-in)" : "",
                epochs, steps, (long long)batch, seeds);
    std::map<std::string, std::vector<RunResult>> all;
    for (int s = 0; s < seeds; ++s)
      for (const auto& sc : schedules) {
        all[sc.name].push_back(run_one(sc, train, held, test, steps, int(batch), target, 100 + uint64_t(s)));
        const auto& r = all[sc.name].back();
        std::printf("seed %d %-8s test acc %.2f%%  to %.1f%%: %s  train %.1f s  ms/step all heads %.2f, primary only %.2f\n", s,
                    sc.name.c_str(), 100 * r.final_acc, 100 * target,
                    r.to_target_s < 0 ? "not reached" : (num(std::round(r.to_target_s * 10) / 10) + " s").c_str(), r.train_s,
                    r.ms_all, r.ms_primary);
        std::fflush(stdout);
      }

    std::ostringstream md;
    char b[320];
    md << "| schedule | test acc % | best held-out acc % | time to " << num(100 * target)
       << "% (s) | steps to " << num(100 * target) << "% | compute to " << num(100 * target)
       << "% (GMAC) | reached (seeds) | training time (s) | total compute (GMAC) | ms/step all heads | ms/step primary only |\n";
    md << "|---|---|---|---|---|---|---|---|---|---|---|\n";
    for (const auto& sc : schedules) {
      const auto& rs = all[sc.name];
      std::vector<double> acc, best, tt, ts, tr, ma, mp, gt, gall;
      int reached = 0;
      for (const auto& r : rs) {
        acc.push_back(100 * r.final_acc);
        best.push_back(100 * r.best_acc);
        tr.push_back(r.train_s);
        ma.push_back(r.ms_all);
        mp.push_back(r.ms_primary);
        gall.push_back(r.gmac);
        if (r.to_target_s >= 0) {
          ++reached;
          tt.push_back(r.to_target_s);
          ts.push_back(r.to_target_step);
          gt.push_back(r.gmac_to_target);
        }
      }
      std::snprintf(b, sizeof(b), "| %s | %.2f ± %.2f | %.2f | %s | %s | %s | %d/%d | %.1f | %.0f | %s | %s |\n", sc.name.c_str(), mean(acc),
                    sd(acc), mean(best), tt.empty() ? "–" : num(std::round(mean(tt) * 10) / 10).c_str(),
                    ts.empty() ? "–" : num(std::round(mean(ts))).c_str(), gt.empty() ? "–" : num(std::round(mean(gt))).c_str(),
                    reached, int(rs.size()), mean(tr), mean(gall),
                    std::isfinite(mean(ma)) ? num(std::round(mean(ma) * 100) / 100).c_str() : "–",
                    std::isfinite(mean(mp)) ? num(std::round(mean(mp) * 100) / 100).c_str() : "–");
      md << b;
    }
    const auto [ms_all, ms_pri] = interleaved_step_ms(train, smoke ? 20 : 400, int(batch));
    const double f_all = kTrunkMacs + kPrimaryMacs + aux_macs(), f_pri = kTrunkMacs + kPrimaryMacs;
    std::snprintf(b, sizeof(b),
                  "\nAnalytic forward multiply-adds per example: %.0f with all heads, %.0f with the primary head only "
                  "(%.0f%% less; the backward scales alike). Measured step time, alternating blocks of 5 steps: "
                  "%.2f ms with all heads, %.2f ms with the primary head only (%.0f%% less).\n",
                  f_all, f_pri, 100 * (1 - f_pri / f_all), ms_all, ms_pri, 100 * (1 - ms_pri / ms_all));
    std::string legend = std::string(b) +
                         "test acc: primary-task accuracy on the test images at the end (mean ± sd over seeds). Time to "
                         "target: training time (evaluations excluded) until the held-out accuracy, checked every 25 "
                         "steps, first reached the target (mean over the seeds that reached it); compute: the analytic "
                         "multiply-adds spent until then (3 x forward per example, heads that were computed), which "
                         "does not depend on the machine's load. ms/step: median step time "
                         "while all heads are computed / while only the primary head is (the machine is shared, so "
                         "times are noisy).\n";
    std::ostringstream head;
    head << "demo_mt2st: MNIST" << (synthetic ? " (SYNTHETIC stand-in)" : "") << ", " << train.n << " training images, "
         << epochs << " epochs (" << steps << " steps), batch " << batch << ", Adam 1e-3, " << seeds << " seed(s), recon head "
         << (g_light ? "light (256 -> 196, the 14 x 14 image)" : "full (256-256-784)") << ", target " << 100 * target << "%\n";
    std::printf("\n%s\n%s%s", head.str().c_str(), md.str().c_str(), legend.c_str());
    run::write_text_atomic(run::path_join(out, "results.md"), "# " + head.str() + "\n" + md.str() + legend);

    std::ostringstream csv;
    csv << "schedule,step,heldout_acc,aux_weight\n";
    run::LinePlot ap{"Held-out accuracy of the primary task (seed 0)", "step", "accuracy", {}, false};
    run::LinePlot wp{"Auxiliary weight gamma(t) (seed 0)", "step", "weight", {}, false};
    for (const auto& sc : schedules) {
      const auto& r = all[sc.name][0];
      for (size_t j = 0; j < r.step.size(); ++j) csv << sc.name << "," << r.step[j] << "," << r.acc[j] << "," << r.aux_w[j] << "\n";
      ap.series.push_back({sc.name, r.step, r.acc});
      wp.series.push_back({sc.name, r.step, r.aux_w});
    }
    run::write_text_atomic(run::path_join(out, "curves.csv"), csv.str());
    run::write_text_atomic(run::path_join(out, "accuracy.svg"), run::line_plot_svg(ap));
    run::write_text_atomic(run::path_join(out, "weights.svg"), run::line_plot_svg(wp));
    std::printf("wrote %s/{results.md, curves.csv, accuracy.svg, weights.svg}\n", out.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "demo_mt2st: %s\n", e.what());
    return 1;
  }
  return 0;
}
