// mtl/mixing/doremi.h: DoReMi (Xie et al., NeurIPS 2023), domain weights found with a reference
// model and a Group-DRO proxy model, then used as FIXED sampling weights for the main model.
//
// Phases (run_doremi):
//   1. reference model: trained on the reference mixture u (uniform unless given);
//   2. proxy model (the same architecture): trained on uniform Mix batches. At step t, with l_i the
//      proxy's and r_i the frozen reference's next-byte loss of token i of the batch,
//        lambda_k = (1 / |tokens of domain k|) * sum_{i in domain k} max(l_i - r_i, 0)   (per-token clip)
//        alpha'   = alpha_{t-1} * exp(eta * lambda),  alpha' <- alpha' / sum(alpha')
//        alpha_t  = (1 - c) * alpha' + c * u                                             (smoothing)
//      and the proxy's training loss is sum_k alpha_t,k * L_k (L_k: domain k's mean token loss);
//   3. DoReMi's weights are the average of alpha_t over the proxy's steps t = 1..T.
// The main model is then trained by the `doremi` strategy of mixing_schedules.h, which is the
// `fixed` path with those weights. A domain absent from a batch gets lambda_k = 0.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/tensor.h"
#include "mtl/mixing/mixing_schedules.h"
#include "mtl/mixing/mixing_trainer.h"
#include "mtl/mixing/text_domains.h"

namespace polyhead::mtl::mixing {

struct DoremiOptions {
  double eta = 1.0;               // step size of the exponentiated update (> 0)
  double smoothing = 1e-3;        // c in [0, 1]: alpha <- (1 - c) alpha + c u
  int64_t reference_steps = 0;    // run_doremi: steps of the reference model (0: the main run's steps)
  int64_t proxy_steps = 0;        // run_doremi: steps of the proxy model (0: the main run's steps)
  void validate() const;
};

// lambda_k of one batch: token_losses / ref_losses hold the proxy's and the reference's per-token
// losses of a batch whose tokens are grouped by domain (tokens[k] consecutive tokens of domain k).
std::vector<double> excess_losses(const std::vector<float>& token_losses, const std::vector<float>& ref_losses,
                                  const std::vector<int64_t>& tokens);

// The DoReMi weight state: alpha (on the simplex), the prior u, and the running average of alpha.
class Doremi {
public:
  // prior: u (normalised; empty = uniform over K). alpha starts at u.
  Doremi(int K, const DoremiOptions& o, std::vector<double> prior = {});
  // One step: the exponentiated update with excess losses lambda (K values >= 0), smoothing, and the
  // running average. Returns the new alpha.
  const std::vector<double>& update(const std::vector<double>& lambda);
  const std::vector<double>& alpha() const { return alpha_; }
  const std::vector<double>& prior() const { return prior_; }
  // Mean of alpha over the updates so far (the prior before the first one).
  std::vector<double> average() const;
  int64_t steps() const { return steps_; }

private:
  DoremiOptions o_;
  std::vector<double> prior_, alpha_, sum_;
  int64_t steps_ = 0;
};

// Per-token losses of the frozen reference model on a batch: (x, y) -> N*T floats.
using ReferenceLosses = std::function<std::vector<float>(const Tensor& x, const Tensor& y)>;

// The proxy's strategy: uniform Mix batches; after each forward it takes the DoReMi step from the
// proxy's and the reference's per-token losses, and scales domain k's loss so the training loss is
// sum_k alpha_k L_k. Keeps the alpha trajectory (one row per step, after the step's update).
class DoremiProxyStrategy : public MixingStrategy {
public:
  DoremiProxyStrategy(int K, const DoremiOptions& o, std::vector<double> prior, ReferenceLosses ref);
  std::string name() const override { return "doremi_proxy"; }
  int num_tasks() const override { return K_; }
  std::vector<double> weights(int64_t) override { return std::vector<double>(size_t(K_), 1.0 / K_); }
  bool wants_batch_losses() const override { return true; }
  void observe_batch(int64_t step, const Tensor& x, const Tensor& y, const std::vector<int64_t>& counts,
                     const std::vector<float>& token_losses) override;
  std::vector<double> loss_scale() const override;
  const Doremi& state() const { return dr_; }
  const std::vector<std::vector<double>>& trajectory() const { return traj_; }
  const std::vector<std::vector<double>>& excess() const { return excess_; }

private:
  int K_;
  Doremi dr_;
  ReferenceLosses ref_;
  std::vector<int64_t> counts_;
  std::vector<std::vector<double>> traj_, excess_;
};

struct DoremiResult {
  MixedLMResult reference, proxy;               // the two auxiliary runs
  std::vector<double> weights;                  // DoReMi's final weights (average of alpha)
  std::vector<std::vector<double>> trajectory;  // [step][k] alpha after each proxy step
  std::vector<std::vector<double>> excess;      // [step][k] lambda of each proxy step
  int64_t tokens = 0;                           // training tokens of the reference + proxy runs
};

// Phases 1-3. c is the main run's configuration (model, optimiser, batch); the reference and proxy
// runs use it with their own step counts. reference_mix: u (empty = uniform).
DoremiResult run_doremi(const std::vector<TextDomain>& domains, const MixedLMConfig& c, const DoremiOptions& o,
                        const std::vector<double>& reference_mix = {}, const MixedLMProgress& ref_progress = {},
                        const MixedLMProgress& proxy_progress = {});

}  // namespace polyhead::mtl::mixing
