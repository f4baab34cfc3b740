// mtl/solvers/min_norm.h: minimum-norm point of the convex hull of the task gradients (MGDA).
//
// Problem: w* = argmin_{w in simplex} w^T M w, with M = G G^T (K x K, PSD). d = G^T w* is the
// minimum-norm element of conv{g_1..g_K}; at the optimum g_k . d >= |d|^2 for every k (so d is a
// common descent direction unless it is 0).
//
// Three solvers, all working from M only:
//   - min_norm_libmtl: LibMTL's exact iteration (a port of Sener's MinNormSolver): best pair as
//     the start (clamped to 0.999 / 0.001), returned as is for K < 3; then up to 250 projected
//     steps with a 2-point line search, stopping when the L1 change < 1e-5 (returning the iterate
//     BEFORE that last change). Not the exact optimum in general (see golden README).
//   - min_norm_torchjd: torchjd's Frank-Wolfe (start 1/K, stop when the step gamma < epsilon or
//     after max_iters).
//   - min_norm_exact: Wolfe's algorithm on the Gramian (finite active-set method; each iterate is
//     the affine minimum-norm point of a "corral" of affinely independent vertices, solved
//     directly). Accurate to rounding: the optimality gap max_k (|d|^2 - g_k . d) is ~1e-15 * max M_kk.
#pragma once
#include <vector>

#include "mtl/method.h"

namespace polyhead::mtl::solvers {

struct MinNormResult {
  std::vector<double> w;  // point of the simplex
  int iterations = 0;     // solver iterations (FW steps / Wolfe major cycles)
  bool converged = true;  // false when the iteration cap was reached
};

// Throws polyhead::Error when no pair gives a finite cost (e.g. NaN rows), where LibMTL itself
// raises UnboundLocalError.
MinNormResult min_norm_libmtl(const Mat& M, int max_iter = 250, double stop_crit = 1e-5);
MinNormResult min_norm_torchjd(const Mat& M, double epsilon = 1e-3, int max_iters = 100);
MinNormResult min_norm_exact(const Mat& M);

// The optimality gap of w for the min-norm problem, relative to max_k M_kk:
// (w^T M w - min_k (M w)_k) / max_k M_kk  (>= 0 up to rounding; 0 at the optimum).
double min_norm_gap(const Mat& M, const std::vector<double>& w);

}  // namespace polyhead::mtl::solvers
