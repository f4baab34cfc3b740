// mtl/diagnostics/fisher.h: the trace of the Fisher information per task (D5, after the
// early-phase-Fisher literature, Jastrzebski et al. 2021), from per-example gradients.
//
//   Tr F_k = (1/n) sum_i ||grad_theta log p_theta(yhat_i | x_i)||^2
//   true Fisher:      yhat_i ~ p_theta(. | x_i), drawn from the softmax of task k's logits;
//   empirical Fisher: yhat_i = y_i, the gold label.
// over the first n examples of the batch, one backward pass per example and task (micro-batch of
// size 1), with the parameters `params` (shared ones by default). Classification tasks with the
// default cross-entropy loss only (log p = -CE of one example); anything else is an Error.
// The draws come from a counter-based hash of (seed, example, task), so a measurement is
// reproducible and does not touch the engine's generator.
#pragma once
#include <string>
#include <vector>

#include "mtl/per_task_grads.h"

namespace polyhead::mtl::diag {

enum class FisherKind { True, Empirical };
FisherKind parse_fisher_kind(const std::string& s);  // "true" | "empirical"; Error otherwise
std::string to_string(FisherKind k);

struct FisherOptions {
  int64_t n = 256;
  FisherKind kind = FisherKind::True;
  uint64_t seed = 0;
};

// Tr F_k for every task k (K values).
std::vector<double> fisher_trace(MultiTaskModel& m, const Batch& b, const std::vector<Variable>& params,
                                 const FisherOptions& o = {});

// The class drawn from softmax(logits) by inverse CDF at u in [0, 1).
int sample_categorical(const std::vector<double>& logits, double u);
// A uniform draw in [0, 1) from (seed, a, b).
double hash_uniform(uint64_t seed, uint64_t a, uint64_t b);

}  // namespace polyhead::mtl::diag
