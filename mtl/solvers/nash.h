// mtl/solvers/nash.h: Nash-MTL's weight problem (Navon et al., "Multi-Task Learning as a
// Bargaining Game", ICML 2022), solved as in the official code by a sequence of convex problems.
//
// Target: the Nash bargaining point alpha > 0 with  alpha_i (M alpha)_i = 1  for all i, M = G G^T.
//
// The official code (AvivNavon/nash-mtl, copied by LibMTL and torchjd) normalises M_n = M / nf,
// nf = ||M||_F, and runs a convex-concave procedure (CCP): from alpha_p (the previous step's alpha,
// initially ones) it solves, optim_niter times at most,
//
//   min_alpha  1^T M_n alpha + grad_phi(alpha_p)^T (alpha - alpha_p) / nf
//   s.t.       log(alpha_i nf) + log((M_n alpha)_i) >= 0   (i.e. alpha_i (M alpha)_i >= 1)
//
//   with phi(alpha) = sum_i log alpha_i + sum_i log (M_n alpha)_i,
//        grad_phi   = 1/alpha + M_n (1 / (M_n alpha)),
//
// and stops when the solver fails (alpha kept), when ||M_n alpha_t - 1/(alpha_t + 1e-10)|| < 1e-3
// (checked on the iterate BEFORE the new solution, and on the normalised M_n as in the official
// code), or when ||alpha_new - alpha_t|| < 1e-6. The constraints are on the raw M, so at
// convergence the point satisfies the Nash condition alpha_i (M alpha)_i = 1 of the RAW Gramian
// (when the CCP's fixed point is the vertex where every constraint is active, which is the usual
// case; the tests check it on hand cases).
//
// Each convex subproblem is solved here by a primal log-barrier interior-point method (damped
// Newton on t a^T alpha - sum_i log h_i(alpha), h_i the constraint functions), to a barrier gap
// of 1e-11 of the objective (the active constraints, i.e. the Nash condition, then hold to ~1e-11);
// the official code uses ECOS (accuracy ~1e-8).
//
// One deliberate deviation: when alpha_p is not in the domain of the linearisation (some
// (M alpha_p)_i <= 0, e.g. the initial ones with strongly conflicting gradients) the official
// code's subproblem is ill-posed (ECOS fails or the problem is unbounded, and alpha silently stays
// at its previous value for ever). We restart the CCP from a strictly feasible point built from the
// minimum-norm element (MGDA weights). When no alpha >= 0 gives M alpha > 0 at all (0 lies in the
// convex hull of the gradients) the problem is infeasible and alpha_p is returned unchanged, as
// the official code does when ECOS reports infeasibility.
#pragma once
#include <span>
#include <vector>

#include "mtl/method.h"

namespace polyhead::mtl::solvers {

struct NashResult {
  std::vector<double> alpha;
  int ccp_iterations = 0;    // convex subproblems solved
  bool feasible = true;      // false: no alpha >= 0 with M alpha > 0 (alpha_p returned)
  bool restarted = false;    // alpha_p was outside the domain and was replaced (see above)
};

// The convex subproblem: min a^T alpha s.t. log alpha_i + log (B alpha)_i + log_kappa >= 0, from a
// point `start` with start > 0 and B start > 0 (it is scaled to be strictly feasible). Returns
// false when the problem is unbounded below or the iteration breaks down.
bool nash_subproblem(const Mat& B, double log_kappa, std::span<const double> a, std::span<const double> start,
                     std::vector<double>& alpha);

NashResult nash_ccp(const Mat& M, std::span<const double> alpha_prev, int optim_niter);

// max_i |alpha_i (M alpha)_i - 1|: 0 at the Nash point of M.
double nash_residual(const Mat& M, std::span<const double> alpha);

}  // namespace polyhead::mtl::solvers
