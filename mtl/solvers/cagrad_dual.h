// mtl/solvers/cagrad_dual.h: the dual problem of CAGrad (Liu et al., NeurIPS 2021).
//
//   w* = argmin_{w in simplex}  f(w) = p^T w + c * sqrt(w^T A w + eps)
//
// with A = G G^T (PSD), p = A b (b = 1/K for CAGrad), c >= 0, eps > 0 (LibMTL: 1e-8). f is convex
// (the square root is the norm of (G^T w, sqrt(eps))), so the minimum over the simplex is global.
//
// Solver: a primal log-barrier interior-point method on {w > 0, sum w = 1}: for increasing t,
// damped Newton steps (equality-constrained KKT system, Cholesky) on t f(w) - sum log w_i, until
// the barrier gap K / t is below 1e-13 of the scale of f; then coefficients that the barrier left
// at rounding level are set to 0 if that does not raise f. The returned objective is within
// ~1e-13 * (|p| + c sqrt(max|A|)) of the optimum (LibMTL's SLSQP stops at ftol 1e-6 and sometimes
// at a far worse point; see the golden README).
#pragma once
#include <span>
#include <vector>

#include "mtl/method.h"

namespace polyhead::mtl::solvers {

struct CagradDualResult {
  std::vector<double> w;
  double objective = 0.0;
  int newton_iterations = 0;
  bool converged = true;
};

double cagrad_objective(const Mat& A, std::span<const double> p, double c, double eps, std::span<const double> w);
CagradDualResult cagrad_dual(const Mat& A, std::span<const double> p, double c, double eps);

}  // namespace polyhead::mtl::solvers
