// mtl/diagnostics/recorder.h: measures a model's optimization-trajectory diagnostics at chosen
// steps (after Mueller, Dredze & Andrews, TMLR 2025; spec seed-methods.md section 4), on FIXED
// probe batches drawn once and reused at every step, in eval mode, over the shared parameters.
//
// At a recorded step (due(): every `every` steps, plus 0, 1, 2, 4, ... below `every` when
// log_early):
//   - the training probe (probe_size examples) is split into m = probe_size / micro_batch
//     micro-batches; one batched backward per micro-batch gives its K x P Jacobian J_j of the
//     shared parameters; the (m K) x (m K) Gramian of all rows gives, without more passes:
//       per task k: the micro-batch Gramian Q_k -> noise_stats (||grad||^2, tr Sigma, B_noise,
//         coherence, diversity); ||g_k|| of the probe gradient g_k = mean_j J_j[k];
//       M = Gramian of the g_k -> cosines, conflict stats, conflict w.r.t. the update
//         sum_k w_k g_k (w: given by the caller; the run passes the method's last reported task
//         weights, an approximation for methods whose reported weights do not describe their
//         update (GLS, GradVac, ...); none given: equal weights);
//       coherence_all: the coherence of all m K micro-batch gradients (cross-task variant);
//     and the probe training loss of each task (mean of the micro-batch losses);
//   - held-out loss and metric on the test probe (no gradients);
//   - at heavy steps (multiples of every * heavy_every): sharpness lambda_max of each task's loss
//     and of the summed loss (power iteration on finite-difference HVPs on the first
//     sharpness_probe probe examples), optional Hutchinson tr(H), and the Fisher trace of each task
//     on the first fisher_n probe examples; over the shared parameters (the spec's choice) or,
//     with curvature_params = "all", over every parameter including the task heads. The summed
//     loss sum_k L_k is the multi-task objective of sharpness_mt (the mean would divide it by K).
// The running fractions of recorded steps with a conflicting pair (plain and ||sum g||-weighted)
// are carried in each record. The measurement leaves the training state exactly as it was: the
// parameters (restored bit for bit), the .grad buffers (untouched), the train/eval mode and the
// engine's default generator state.
#pragma once
#include <string>
#include <vector>

#include "mtl/diagnostics/record.h"
#include "mtl/per_task_grads.h"

namespace polyhead::mtl::diag {

class Recorder {
public:
  // train_probe: at least probe_size examples (only the first probe_size are used); test_probe:
  // the held-out examples (all used). Both on the model's device, targets in task order.
  Recorder(MultiTaskModel& m, Batch train_probe, Batch test_probe, DiagnosticsOptions o);
  bool due(int64_t step) const;
  bool heavy(int64_t step) const;
  // force_heavy: measure sharpness / Fisher whatever the schedule (a run's last record).
  DiagRecord record(int64_t step, const std::vector<double>& update_weights = {}, bool force_heavy = false);
  // Continue the running conflict fractions from earlier records (resuming a run).
  void restore(const std::vector<DiagRecord>& prior);
  const DiagnosticsOptions& options() const { return o_; }

private:
  MultiTaskModel& m_;
  Batch train_, test_;
  DiagnosticsOptions o_;
  ConflictCounter counter_;
};

// The first n examples of a batch (views).
Batch head_of(const Batch& b, int64_t n);

}  // namespace polyhead::mtl::diag
