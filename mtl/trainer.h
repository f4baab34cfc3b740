// mtl/trainer.h: one multi-task training step: forward, per-task losses, the method, backward(s)
// and the optimizer step, with the time of each phase recorded.
//
// What runs depends on what the method needs (Method::needs()):
//   loss-level methods (EW, UW, DWA, ...): w from the losses, then ONE backward of sum_k w_k L_k
//     (heads get weighted gradients);
//   gradient methods: the representation is cut from the trunk (split_forward), heads give
//     dL_k/dZ, then either
//       - Jacobian path: one batched backward over the K stacked cotangents gives G (K x P) over
//         the shared parameters, the method sees M = G G^T (and/or G) and returns w or d, and
//         d = G^T w is written into the shared gradients; or
//       - representation path (MGDA-UB style, LibMTL rep_grad): the method sees the batch-summed
//         dL_k/dZ (K x D) and the trunk gets one backward of sum_k w_k dL_k/dZ;
//     heads get their unweighted gradient or the w_k-weighted one (HeadGrad, per method, overridable).
// Non-finite losses: NanPolicy::Error (default) throws naming the task; Skip leaves parameters
// unchanged and reports the step as skipped.
//
// Validation losses (methods with kNeedValidationLosses, e.g. CoBa): the trainer calls
// TrainerOptions::validation_losses (K per-task losses on a held-out batch) with the model in eval
// mode and without gradients, before the forward of every val_every-th step, and passes the last
// value in StepInput::L_val (reused in between). A method that needs it with no callback set is an
// error at construction.
//
// Skipping zero-weight heads (MT2ST after its switch): a loss-level method whose weights do not
// depend on the step's data (needs() == 0: EW, RLW, MT2ST) is asked for its weights before the
// forward; a task whose weight is exactly 0 then has no head forward, loss or backward (its loss
// is reported as NaN in StepResult::losses and it is left out of the epoch loss means). The update
// is the same as with the head computed, since the task's gradient would be multiplied by 0.
// Such a method is stepped before the forward, so also on a step that NanPolicy::Skip then skips.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "layers/optim/optimizer.h"
#include "mtl/method.h"
#include "mtl/per_task_grads.h"
#include "mtl/random_source.h"

namespace polyhead::mtl {

enum class GradPath { Auto, Jacobian, Representation };
enum class NanPolicy { Error, Skip };

struct TrainerOptions {
  std::string method = "ew";
  Options method_options;
  GradPath grad_path = GradPath::Auto;
  std::optional<HeadGrad> head_grad;  // default: the method's convention
  NanPolicy nan_policy = NanPolicy::Error;
  double method_lr = -1;              // lr of the method's own parameters (UW, GradNorm, IMTL); <0: optimizer lr
  uint64_t seed = 0;                  // the methods' random source
  // K per-task losses on a held-out batch, computed without gradients (kNeedValidationLosses).
  std::function<std::vector<double>()> validation_losses;
  int val_every = 1;                  // call validation_losses every val_every steps (>= 1)
  bool skip_zero_weight_heads = true; // see the file comment
};

struct StepResult {
  std::vector<double> losses;
  std::vector<double> weights;  // the method's task weights (reported or w), empty if none
  bool skipped = false;
  std::vector<double> val_losses;  // the validation losses the method saw (empty if none)
  int heads_skipped = 0;           // tasks whose head was not computed (weight exactly 0)
  double ms_validation = 0;        // time in validation_losses (0 when the last value was reused)
  double ms_forward = 0, ms_grads = 0, ms_method = 0, ms_backward = 0, ms_optimizer = 0, ms_total = 0;
  std::optional<Mat> gramian;   // when computed
};

class Trainer {
public:
  Trainer(MultiTaskModel& model, optim::Optimizer& opt, TrainerOptions o);
  StepResult step(const Batch& b);
  // Call at the end of each epoch: records the epoch-mean training losses (DWA, GradNorm).
  void end_epoch();
  int epoch() const { return epoch_; }
  Method& method() { return *method_; }
  GradPath grad_path() const { return path_; }
  HeadGrad head_grad() const { return head_; }
  int64_t steps() const { return steps_; }  // calls of step() so far
  // Trainer state for checkpoints: method state, loss history, RNG, method-parameter Adam state,
  // the step counter and the last validation losses.
  std::map<std::string, Tensor> state_dict() const;
  void load_state_dict(const std::map<std::string, Tensor>& s);

private:
  void check_losses(const std::vector<double>& L) const;
  void update_validation(StepResult& r);
  void step_method_params();
  StepResult loss_level_step(const Batch& b);
  StepResult gradient_step(const Batch& b);
  StepResult three_sample_step(const Batch& b);

  MultiTaskModel& model_;
  optim::Optimizer& opt_;
  TrainerOptions o_;
  std::unique_ptr<Method> method_;
  GradPath path_;
  HeadGrad head_;
  PhiloxRandom rng_;
  int epoch_ = 0;
  Mat history_;                      // K x epochs: epoch-mean training losses
  std::vector<double> epoch_sum_;    // running sums of this epoch
  int64_t epoch_steps_ = 0;
  std::vector<double> mp_m_, mp_v_;  // Adam moments of the method's parameters
  int64_t mp_step_ = 0;
  int64_t steps_ = 0;                // calls of step()
  std::vector<double> val_;          // last validation losses (K), empty before the first call
};

}  // namespace polyhead::mtl
