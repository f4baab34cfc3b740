// mtl/mixing/pike.h: PiKE, adaptive data mixing from per-task gradient statistics (Li, Deng,
// Zhong, Razaviyayn, Mirrokni, NeurIPS 2025), and Balanced-PiKE (its tilted-objective variant).
//
// Setting: one model trained on "Mix" batches of b examples, b_k of them from task (domain) k,
// w_k = b_k / b. Every T0 steps PiKE takes one exponentiated-gradient step on the simplex
// (Algorithm 1 of the paper):
//     w_k <- w_k * exp( s_k * ( zeta1 * ||grad L_k||^2  -  zeta2 / (2b) * sigma_k^2 ) ),   w <- w / sum(w)
// where ||grad L_k||^2 is the squared norm of task k's expected gradient (rewards sampling it),
// sigma_k^2 = E||grad l_k(x) - grad L_k||^2 the per-example gradient variance (penalises it), and
// s_k = 1 (PiKE) or y_k^2 (Balanced-PiKE, see below). The integer counts are the largest-remainder
// rounding of b w (data::MixtureSampler::allocate), so sum_k b_k = b exactly.
//
// Estimator of ||grad L_k||^2 and sigma_k^2 (the paper's own estimator is in an appendix we could
// not read; this is our choice). Task k's b_k examples of the current batch are split into m >= 2
// disjoint micro-batches of sizes s_1..s_m; g_j is the mean gradient of micro-batch j (the per-task
// gradients the training step computes anyway: their weighted sum is the batch gradient, so no
// extra backward work is done). The micro-batches are independent, so E[g_i . g_j] = ||grad L_k||^2
// for i != j and E||g_i - g_j||^2 = sigma_k^2 (1/s_i + 1/s_j). Hence the unbiased estimates
//     ||grad L_k||^2 ~ mean over pairs i < j of  g_i . g_j
//     sigma_k^2      ~ mean over pairs i < j of  ||g_i - g_j||^2 / (1/s_i + 1/s_j)
// With m = 2 halves A, B: g_A . g_B and ||g_A - g_B||^2 / (1/s_A + 1/s_B). For equal sizes these are
// exactly McCandlish et al.'s (2018) two-batch-size estimates (|G_B|^2 with B = m s, |G_s|^2).
// Everything is read from the Gramian of the micro-batch gradients (mtl::gramian), in float64. The
// squared-norm estimate can be negative when the signal is below the noise; it is clamped at 0
// before use (the raw value is kept for logging). Statistics are computed only every T0 steps.
//
// Balanced-PiKE minimises the tilted loss (1/tau) log sum_k exp(tau L_k). By Lemma 3.6 of the paper
// this equals min_theta max_y sum_k y_k L_k - sum_k y_k log(y_k / tau) with y = tau softmax(tau L).
// Alternating: y from the current losses (exponential moving averages of the per-task training
// losses), then PiKE on the weighted losses y_k L_k, whose statistics are y_k^2 ||grad L_k||^2 and
// y_k^2 sigma_k^2 (hence s_k = y_k^2), with the training loss sum_k y_k (b_k / b) L_k. y is
// normalised either literally (sum tau) or to mean 1, y = K softmax(tau L) (default; tau -> 0 gives
// plain PiKE exactly).
//
// Options beyond the paper (off by default except the floor): a floor on every weight (so that each
// task keeps at least b_min examples and stays measured), a cap on the change of any log-weight per
// update, and an exponential moving average of the statistics across updates (the two-halves
// estimate from a small b_k is noisy; the paper's own estimator and batch sizes are unknown to us).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.h"
#include "mtl/method.h"

namespace polyhead::mtl::mixing {

struct GradStats {
  double sq_norm = 0;      // estimate of ||grad L_k||^2 (may be negative; clamp before use)
  double variance = 0;     // estimate of sigma_k^2 = tr Cov of the per-example gradient
};

// Statistics of one task from the Gramian M (m x m, m >= 2) of its micro-batch mean gradients and
// the micro-batch sizes (each >= 1). Throws on a bad shape, a non-finite entry or a bad size.
GradStats grad_stats_from_gram(const Mat& M, const std::vector<double>& sizes);
// The same from the (m, P) micro-batch gradients themselves.
GradStats grad_stats(const Tensor& G, const std::vector<double>& sizes);
// Several tasks at once: rows of the Gramian M belong to task task_of_row[r] (0..K-1), each task
// owning >= 2 rows; sizes[r] is row r's micro-batch size.
std::vector<GradStats> grad_stats_per_task(const Mat& M, const std::vector<int>& task_of_row,
                                           const std::vector<double>& sizes, int K);

// One practical-PiKE step (Algorithm 1): w_k * exp(scale_k * (zeta1 max(G2_k, 0) - zeta2 S_k / (2b))),
// renormalised. scale empty = all 1. max_log_step > 0 caps |exponent - mean exponent| per task (0 =
// no cap). w must be on the simplex (finite, >= 0, positive sum; it is renormalised first).
std::vector<double> pike_update(const std::vector<double>& w, const std::vector<GradStats>& stats, double zeta1,
                                double zeta2, int64_t b, const std::vector<double>& scale = {},
                                double max_log_step = 0);

// The floor projection PiKE applies after each update: entries below `floor` are set to it and the
// others are rescaled (keeping their ratios) to fill 1 - (#clamped) floor, repeated until stable;
// the result sums to 1 with every entry >= floor.
// Requires 0 <= floor * K <= 1.
std::vector<double> project_simplex_floor(std::vector<double> w, double floor);

enum class TiltNorm { MeanOne, Literal };
// y = K softmax(tau L) (MeanOne) or tau softmax(tau L) (Literal); tau >= 0, losses finite.
std::vector<double> tilt_weights(double tau, const std::vector<double>& losses, TiltNorm norm = TiltNorm::MeanOne);
// The tilted objective (1/tau) log sum_k exp(tau L_k) (tau > 0), computed stably.
double tilted_loss(double tau, const std::vector<double>& losses);

struct PikeOptions {
  int64_t T0 = 10;            // steps between weight updates
  // zeta1 > 0: used as given. zeta1 <= 0: calibrated at the first update so that
  // zeta1 * max_k max(G2_k, 0) = auto_step (the scale advice of the method notes).
  double zeta1 = 0, auto_step = 0.2;
  // zeta2 = zeta2_ratio * zeta1 (the paper's derivation gives zeta2 / zeta1 = L eta / beta), unless
  // zeta2 >= 0 is given explicitly.
  double zeta2 = -1, zeta2_ratio = 1.0;
  int64_t min_count = 2;      // floor b_min on every b_k (weights >= min_count / b); 0 = none
  double max_log_step = 0;    // cap per update on a log-weight change (0 = none)
  // Smoothing of the statistics across updates: the update uses an EMA (factor stats_ema) of the
  // raw per-update estimates, taken before the clamp of ||grad L_k||^2 at 0 (so the clamp does not
  // bias the average upwards). 0 = use each update's own estimates (Algorithm 1 as written).
  double stats_ema = 0;
  // Balanced-PiKE
  bool balanced = false;
  double tau = 3.0;
  TiltNorm tilt_norm = TiltNorm::MeanOne;
  double loss_ema = 0.9;      // EMA factor of the per-task training losses feeding y
  void validate(int K, int64_t b) const;  // throws naming the bad option
};

class Pike {
public:
  // w0 empty = uniform. b: the global batch size.
  Pike(int K, int64_t b, PikeOptions o, std::vector<double> w0 = {});

  // True when the batch of step t must deliver statistics (every T0-th step: t % T0 == T0 - 1).
  bool wants_stats(int64_t step) const { return (step + 1) % o_.T0 == 0; }
  // Per-task mean training losses of a step (NaN for tasks absent from the batch): EMA update.
  void observe_losses(const std::vector<double>& losses);
  // One weight update from per-task statistics (calibrates zeta1 / zeta2 on the first call).
  void update(const std::vector<GradStats>& stats);

  const std::vector<double>& weights() const { return w_; }
  // Multipliers of the per-task losses in the training loss: y (Balanced-PiKE) or all 1.
  std::vector<double> loss_scale() const;
  const std::vector<double>& loss_ema() const { return ema_; }
  double zeta1() const { return zeta1_; }
  double zeta2() const { return zeta2_; }
  int64_t updates() const { return updates_; }
  const PikeOptions& options() const { return o_; }
  const std::vector<GradStats>& last_stats() const { return last_; }          // raw, last update
  const std::vector<GradStats>& smoothed_stats() const { return smooth_; }   // what the update used

private:
  double floor() const;
  int K_;
  int64_t b_;
  PikeOptions o_;
  std::vector<double> w_, ema_;
  std::vector<GradStats> last_, smooth_;
  double zeta1_ = 0, zeta2_ = 0;
  int64_t updates_ = 0;
};

}  // namespace polyhead::mtl::mixing
