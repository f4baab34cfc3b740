// mtl/mixing/mixing_trainer.h: pre-training a small byte-level GPT on a mixture of text domains
// under a data-mixing strategy (mixing_schedules.h), for comparing strategies at equal tokens.
//
// Model: the char-GPT trunk of mtl/zoo.h (token + position embeddings, L blocks, final LayerNorm)
// and ONE shared next-byte head Linear(d, 256): every parameter is shared by all domains, as in
// the PiKE paper's LM pre-training. AdamW, linear warm-up then cosine decay, gradient clipping.
//
// Step t: the strategy's weights w(t) become counts b_k (data::MixtureSampler, largest remainder,
// sum b_k = b; each domain's windows come from its own random order of TextWindows). The loss is
//   sum_k loss_scale_k * (1/b) * sum_{i in domain k} l_i      (l_i: mean next-byte CE of window i)
// i.e. the plain Mix-batch mean when loss_scale = 1. On steps where the strategy wants gradient
// statistics (PiKE: every T0 steps), domain k's b_k windows are split into two halves A, B (sizes
// floor(b_k/2), ceil(b_k/2)); each half gets its own forward/backward, its mean gradient over all
// parameters g_{k,h} is kept as a row of a (2K, P) matrix, and the step's gradient is assembled as
// sum_{k,h} loss_scale_k * s_{k,h} / b * g_{k,h}, which equals the batch gradient: the statistics
// cost no extra backward FLOPs (only smaller GEMMs and one Gramian). The Gramian of the rows gives
// the per-domain ||grad L_k||^2 and sigma_k^2 (mixing::grad_stats_per_task). Such a step needs
// b_k >= 2 for every domain (PiKE's min_count >= 2 guarantees it).
// Validation: fixed windows of every domain's held-out stream (text_domains.h), mean CE per domain,
// measured at step 0, every eval_every steps and at the end.
// A strategy with wants_batch_losses() (DoReMi's proxy) sees each plain step's batch and per-token
// losses after the forward pass and sets that step's loss_scale from them.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "autograd/variable.h"
#include "layers/module.h"
#include "mtl/mixing/mixing_schedules.h"
#include "mtl/mixing/text_domains.h"
#include "mtl/zoo.h"

namespace polyhead::mtl::mixing {

struct MixedLMConfig {
  zoo::GPTConfig gpt{256, 64, 128, 2, 4};  // vocab, block (= context T), d, layers, heads
  int64_t batch = 32, steps = 1000;
  double lr = 2e-3, weight_decay = 0.01, clip = 1.0, final_lr_fraction = 0.1;
  int64_t warmup = 50;
  int64_t eval_every = 100, eval_windows = 64;
  uint64_t seed = 0;  // model initialisation and data order (the same for every strategy)
  void validate() const;
};

struct MixedLMResult {
  std::string strategy;
  std::vector<std::string> domains;
  std::vector<int64_t> eval_steps;                 // 0, eval_every, ..., steps
  std::vector<std::vector<double>> val_loss;       // [eval][k] mean validation CE (nats / byte)
  std::vector<std::vector<double>> weights;        // [step][k] weights used for the step's batch
  std::vector<int64_t> stats_steps;                // steps that delivered gradient statistics
  std::vector<std::vector<GradStats>> stats;       // [i][k]
  std::vector<int64_t> tokens;                     // training tokens seen per domain
  double seconds = 0, ms_per_step = 0;
  double zeta1 = 0, zeta2 = 0;                     // PiKE variants: the gains used
  std::shared_ptr<nn::UnaryModule> model;          // the trained model ((B, T) bytes -> (B, T, 256) logits)
  const std::vector<double>& final_val() const { return val_loss.back(); }
};

// progress(step, per-domain training losses of that step, NaN for absent domains); may be empty.
using MixedLMProgress = std::function<void(int64_t, const std::vector<double>&)>;

// The byte-level model trained here (initialised from the current global seed).
std::shared_ptr<nn::UnaryModule> make_byte_lm(const zoo::GPTConfig& c);
// Per-token next-byte cross-entropy of a model on (N, T) inputs x and targets y: N*T values (with
// autograd when grad mode is on).
Variable lm_token_losses(nn::UnaryModule& m, const Tensor& x, const Tensor& y);
// The Mix-batch training loss sum_k scale_k / (b T) * sum_{tokens i of domain k} l_i, from the per-
// token losses of a batch whose windows are grouped by domain (counts[k] windows of T tokens each).
// With scale = 1 it is the batch mean; with scale_k = a_k b / counts_k it is sum_k a_k L_k.
Variable mix_batch_loss(const Variable& token_losses, const std::vector<int64_t>& counts, const std::vector<double>& scale,
                        int64_t b, int64_t T);

MixedLMResult train_mixed_lm(const std::vector<TextDomain>& domains, MixingStrategy& strategy,
                             const MixedLMConfig& c, const MixedLMProgress& progress = {});

}  // namespace polyhead::mtl::mixing
