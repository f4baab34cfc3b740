// mtl/diagnostics/recorder.cpp: see recorder.h.
#include "mtl/diagnostics/recorder.h"

#include <chrono>
#include <cmath>
#include <limits>

#include "engine/error.h"
#include "engine/ops.h"
#include "engine/rng.h"
#include "mtl/diagnostics/fisher.h"
#include "mtl/diagnostics/hvp.h"
#include "mtl/diagnostics/power_iteration.h"

namespace polyhead::mtl::diag {

namespace {
const double kNaN = std::numeric_limits<double>::quiet_NaN();

// Restores the model's mode and the default generator when the measurement ends (or throws).
struct StateGuard {
  MultiTaskModel& m;
  bool training;
  uint64_t seed, offset;
  explicit StateGuard(MultiTaskModel& mm) : m(mm), training(mm.is_training()) {
    seed = default_generator().seed();
    offset = default_generator().offset();
  }
  ~StateGuard() {
    m.train(training);
    default_generator().set_state(seed, offset);
  }
};
}  // namespace

Batch head_of(const Batch& b, int64_t n) {
  Batch r;
  n = std::min(n, b.x.size(0));
  r.x = b.x.narrow(0, 0, n);
  for (auto& y : b.y) r.y.push_back(y.narrow(0, 0, n));
  return r;
}

Recorder::Recorder(MultiTaskModel& m, Batch train_probe, Batch test_probe, DiagnosticsOptions o)
    : m_(m), train_(std::move(train_probe)), test_(std::move(test_probe)), o_(std::move(o)) {
  validate(o_);
  const int K = m_.num_tasks();
  PH_CHECK_HINT(int(train_.y.size()) == K && int(test_.y.size()) == K, "diagnostics",
                "probe batches need one target per task (" << K << ")", "build the probes with the model's tasks in order");
  PH_CHECK_HINT(train_.x.size(0) >= o_.probe_size, "diagnostics",
                "the training probe has " << train_.x.size(0) << " examples, probe_size is " << o_.probe_size,
                "lower probe_size or use a larger training set");
  PH_CHECK(test_.x.size(0) >= 1, "diagnostics", "the test probe is empty");
  train_ = head_of(train_, o_.probe_size);
}

bool Recorder::due(int64_t step) const {
  if (o_.every <= 0 || step < 0) return false;
  if (step % o_.every == 0) return true;
  return o_.log_early && step < o_.every && (step & (step - 1)) == 0;
}

bool Recorder::heavy(int64_t step) const {
  if (o_.every <= 0 || o_.heavy_every <= 0) return false;
  return step % (int64_t(o_.every) * o_.heavy_every) == 0;
}

void Recorder::restore(const std::vector<DiagRecord>& prior) {
  counter_ = ConflictCounter();
  for (auto& r : prior) counter_.add(r.conflict);
}

DiagRecord Recorder::record(int64_t step, const std::vector<double>& update_weights, bool force_heavy) {
  auto t0 = std::chrono::steady_clock::now();
  const int K = m_.num_tasks();
  StateGuard guard(m_);
  m_.eval();
  DiagRecord r;
  r.step = step;
  r.heavy = force_heavy || heavy(step);
  r.tasks.assign(size_t(K), TaskRecord{});

  // Micro-batch Jacobians of the training probe.
  const int64_t s = o_.micro_batch, mb = o_.probe_size / s;
  std::vector<Tensor> rows;
  std::vector<double> loss_sum(size_t(K), 0.0);
  for (int64_t j = 0; j < mb; ++j) {
    Batch b;
    b.x = train_.x.narrow(0, j * s, s);
    for (auto& y : train_.y) b.y.push_back(y.narrow(0, j * s, s));
    SplitForward f = split_forward(m_, b);
    auto L = f.loss_values();
    for (int k = 0; k < K; ++k) loss_sum[size_t(k)] += L[size_t(k)];
    RepGrads g = representation_grads(m_, f);
    rows.push_back(shared_jacobian(m_, f, g));  // (K, P)
  }
  Mat Q = gramian(ops::cat(rows, 0));  // (mb K) x (mb K), row j K + k
  const int n = int(mb);
  Mat M(K, K);
  for (int k = 0; k < K; ++k)
    for (int l = 0; l < K; ++l) {
      double acc = 0;
      for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) acc += Q(i * K + k, j * K + l);
      M(k, l) = acc / (double(n) * n);
    }
  for (int k = 0; k < K; ++k)
    for (int l = 0; l < k; ++l) M(k, l) = M(l, k) = 0.5 * (M(k, l) + M(l, k));
  r.gramian = M;
  r.cosine = cosine_matrix(M);
  r.conflict = conflict_stats(M);
  counter_.add(r.conflict);
  r.conflict_steps = counter_.fraction();
  r.conflict_steps_weighted = counter_.weighted_fraction();
  std::vector<double> w = update_weights.size() == size_t(K) ? update_weights : std::vector<double>(size_t(K), 1.0);
  auto uc = update_conflicts(M, w);
  r.coherence_all = coherence(Q);
  for (int k = 0; k < K; ++k) {
    TaskRecord& t = r.tasks[size_t(k)];
    t.train_loss = loss_sum[size_t(k)] / double(n);
    t.grad_norm = std::sqrt(M(k, k));
    t.update_conflict = uc[size_t(k)];
    Mat Qk(n, n);
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) Qk(i, j) = Q(i * K + k, j * K + k);
    t.noise = noise_stats(Qk, s);
    t.sharpness = t.hessian_trace = t.fisher = kNaN;
  }

  // Held-out loss and metric.
  {
    ag::NoGradGuard ng;
    const int64_t nt = test_.x.size(0), chunk = 500;
    std::vector<double> loss(size_t(K), 0.0), metric(size_t(K), 0.0);
    for (int64_t a = 0; a < nt; a += chunk) {
      int64_t len = std::min(chunk, nt - a);
      auto outs = m_.forward(Variable(test_.x.narrow(0, a, len)));
      for (int k = 0; k < K; ++k) {
        Tensor y = test_.y[size_t(k)].narrow(0, a, len);
        loss[size_t(k)] += m_.task(k).compute_loss(outs[size_t(k)], y).item() * double(len);
        metric[size_t(k)] += m_.task(k).compute_metric(outs[size_t(k)].data(), y);
      }
    }
    for (int k = 0; k < K; ++k) {
      r.tasks[size_t(k)].test_loss = loss[size_t(k)] / double(nt);
      r.tasks[size_t(k)].test_metric = metric[size_t(k)] / double(nt);
    }
  }

  r.sharpness_mt = kNaN;
  if (r.heavy) {
    const std::vector<Variable> params = o_.curvature_params == "all" ? m_.parameters() : m_.shared_parameters();
    Batch hb = head_of(train_, o_.sharpness_probe);
    PowerOptions po;
    po.max_iters = o_.power_iters;
    po.tol = o_.power_tol;
    po.seed = o_.seed;
    auto lambda = [&](const std::vector<double>& wt, double* trace) {
      FiniteDiffHvp h(m_, hb, wt, params, o_.fd_eps);
      MatVec mv = [&](const std::vector<double>& v) { return h(v); };
      double lam = top_eigenvalue(mv, h.dim(), po).eigenvalue;
      if (trace) *trace = o_.hutchinson > 0 ? hutchinson_trace(mv, h.dim(), o_.hutchinson, o_.seed + 1) : kNaN;
      return lam;
    };
    for (int k = 0; k < K; ++k) {
      std::vector<double> e(size_t(K), 0.0);
      e[size_t(k)] = 1.0;
      r.tasks[size_t(k)].sharpness = lambda(e, &r.tasks[size_t(k)].hessian_trace);
    }
    if (K > 1) r.sharpness_mt = lambda(std::vector<double>(size_t(K), 1.0), nullptr);
    if (o_.fisher_n > 0) {
      FisherOptions fo;
      fo.n = o_.fisher_n;
      fo.kind = parse_fisher_kind(o_.fisher);
      fo.seed = o_.seed;
      auto F = fisher_trace(m_, head_of(train_, o_.fisher_n), params, fo);
      for (int k = 0; k < K; ++k) r.tasks[size_t(k)].fisher = F[size_t(k)];
    }
  }
  r.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace polyhead::mtl::diag
