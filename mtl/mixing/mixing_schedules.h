// mtl/mixing/mixing_schedules.h: data-mixing strategies by name (the baselines of the PiKE paper
// that need no second model, plus PiKE and Balanced-PiKE), one interface for a training loop.
//
// A strategy gives the mixture weights w (on the simplex) of the batch of step t; the loop turns
// them into integer per-task counts b_k (data::MixtureSampler, largest-remainder rounding).
//   mix            uniform w_k = 1/K every step ("Mix": every batch holds all tasks)
//   round_robin    the whole batch from task t mod K (one-hot weights)
//   random         the whole batch from one task drawn uniformly each step: task =
//                  uniform_index(derive_seed(seed, 0x524e44), t, K) (data/sampler.h), reproducible
//   proportional   w_k = n_k / sum_j n_j (n_k: task k's size, e.g. its number of bytes)
//   temperature    w_k ∝ n_k^(1/T) (temperature sampling; T = 1 proportional, T -> inf uniform)
//   fixed          user-given weights (normalised)
//   pike           PiKE (mtl/mixing/pike.h), starting from uniform (or `fixed_weights` if given)
//   balanced_pike  Balanced-PiKE (tilted objective, temperature pike.tau)
//   doremi         DoReMi's main run: fixed weights found by a reference and a proxy model
//                  (mtl/mixing/doremi.h, run_doremi); they are given as fixed_weights (required)
// Adaptive strategies ask for per-task gradient statistics on some steps (wants_stats) and receive
// them through observe(); all strategies receive the per-task training losses of every step (NaN
// for tasks absent from the batch). loss_scale() gives per-task loss multipliers (Balanced-PiKE's
// y_k, else 1): the training loss is sum_k loss_scale_k * (b_k / b) * L_k.
// make_mixing_strategy throws polyhead::Error for an unknown name, listing the valid ones.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/tensor.h"
#include "mtl/mixing/pike.h"

namespace polyhead::mtl::mixing {

struct MixingOptions {
  int K = 0;
  int64_t batch = 0;
  std::vector<double> sizes;          // proportional / temperature: n_k (> 0)
  double temperature = 3.0;           // temperature: T >= 1 is usual; must be > 0
  std::vector<double> fixed_weights;  // fixed, doremi (required); pike / balanced_pike: initial weights (optional)
  uint64_t seed = 0;                  // random
  PikeOptions pike;                   // pike / balanced_pike (balanced is set by the name)
};

class MixingStrategy {
public:
  virtual ~MixingStrategy() = default;
  virtual std::string name() const = 0;
  virtual int num_tasks() const = 0;
  // Weights of the batch of step t (t = 0, 1, ... in order).
  virtual std::vector<double> weights(int64_t step) = 0;
  // Whether step t's batch must deliver per-task gradient statistics to observe().
  virtual bool wants_stats(int64_t step) const { return false; }
  // After step t: per-task mean training losses (NaN when absent) and, when wants_stats(t), the
  // per-task gradient statistics (else nullptr).
  virtual void observe(int64_t step, const std::vector<double>& losses, const std::vector<GradStats>* stats) {}
  // Strategies whose loss weights depend on the step's own batch (DoReMi's proxy): after the forward
  // pass of a plain step, observe_batch receives the batch (windows grouped by domain, counts[k]
  // windows of domain k) and its per-token losses; loss_scale() is read after it.
  virtual bool wants_batch_losses() const { return false; }
  virtual void observe_batch(int64_t step, const Tensor& x, const Tensor& y, const std::vector<int64_t>& counts,
                             const std::vector<float>& token_losses) {}
  // Per-task loss multipliers (all 1 except Balanced-PiKE and DoReMi's proxy).
  virtual std::vector<double> loss_scale() const { return std::vector<double>(size_t(num_tasks()), 1.0); }
  // The adaptive state behind the weights, when there is one (PiKE variants), else nullptr.
  virtual const Pike* pike() const { return nullptr; }
};

std::unique_ptr<MixingStrategy> make_mixing_strategy(const std::string& name, const MixingOptions& o);
const std::vector<std::string>& mixing_strategy_names();

// Static weight rules, exposed for tests and for callers that want the numbers only.
std::vector<double> proportional_weights(const std::vector<double>& sizes);
std::vector<double> temperature_weights(const std::vector<double>& sizes, double T);

}  // namespace polyhead::mtl::mixing
