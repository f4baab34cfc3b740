// mtl/diagnostics/noise.h: gradient coherence, gradient diversity and the gradient-noise scale
// (trajectory diagnostics D6 / D7) from micro-batch gradients, as pure functions of their Gramian.
//
// A probe batch of B = m * s examples of one task is split into m micro-batches of size s with
// gradients g_1..g_m (each the mean-loss gradient of its micro-batch). With Q the m x m Gramian
// Q_ij = <g_i, g_j>:
//   |G_s|^2 = mean_j ||g_j||^2 = tr(Q) / m,      |G_B|^2 = ||mean_j g_j||^2 = sum_ij Q_ij / m^2
// Two-batch-size estimator (McCandlish et al. 2018; the one the authors' conflict code uses):
//   ||grad L||^2 ~ (B |G_B|^2 - s |G_s|^2) / (B - s),   tr Sigma ~ (|G_s|^2 - |G_B|^2) / (1/s - 1/B)
//   B_noise = tr Sigma / ||grad L||^2   (NaN when the ||grad L||^2 estimate is <= 0; the estimate
//   itself is reported unclamped so the reader sees it; the spec's clamp at 0 is applied to
//   grad_sq only [E])
// Coherence (Chatterjee & Zielinski-style, in [0, 1]): coh = ||mean_j g_j||^2 / mean_j ||g_j||^2
//   = |G_B|^2 / |G_s|^2, here over micro-batch gradients of size s (the spec's per-example or
//   micro-batch choice; micro-batches are the default because they cost m backward passes [E]).
// Gradient diversity (Yin et al.): GD = sum_j ||g_j||^2 / ||sum_j g_j||^2 = |G_s|^2 / (m |G_B|^2).
// A cross-task coherence takes the g_j of all tasks together (one Gramian over K * m vectors).
#pragma once
#include "mtl/method.h"

namespace polyhead::mtl::diag {

struct NoiseStats {
  double gs2 = 0;         // |G_s|^2
  double gb2 = 0;         // |G_B|^2
  double grad_sq = 0;     // unbiased ||grad L||^2 estimate, clamped at 0
  double trace_cov = 0;   // tr Sigma (per-example gradient variance)
  double noise_scale = 0; // B_noise (NaN when grad_sq == 0)
  double coherence = 0;   // |G_B|^2 / |G_s|^2 (NaN when every g_j is 0)
  double diversity = 0;   // |G_s|^2 / (m |G_B|^2) (NaN when |G_B|^2 == 0)
};

// Q: m x m Gramian of m >= 2 micro-batch gradients, each of micro-batch size s >= 1.
NoiseStats noise_stats(const Mat& Q, int64_t s);
// ||mean_j g_j||^2 / mean_j ||g_j||^2 of any set of vectors given by their Gramian.
double coherence(const Mat& Q);

}  // namespace polyhead::mtl::diag
