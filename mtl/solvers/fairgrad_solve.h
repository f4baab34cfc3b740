// mtl/solvers/fairgrad_solve.h: the weight equation of FairGrad (Ban & Ji, ICML 2024).
//
//   find x > 0 with  A x = x^(-1/alpha)   (elementwise power), A = G G^T, alpha > 0.
//
// F(x) = A x - x^(-1/alpha) is the gradient of the strictly convex function
//   Psi(x) = 1/2 x^T A x - sum_i psi(x_i),  psi(x) = log x (alpha = 1), x^(1-1/alpha)/(1-1/alpha) else,
// whose Hessian A + (1/alpha) diag(x^(-1/alpha-1)) is positive definite on x > 0. So the root is
// the unique minimiser of Psi, and a damped Newton method with a backtracking line search that
// keeps x > 0 converges to it globally (quadratically at the end), to a residual at rounding
// level. LibMTL uses scipy least_squares (TRF, tolerances 1e-8) from x0 = 1/K; we start there too.
//
// No root exists when some non-negative combination of the gradients vanishes (0 in the convex
// hull of the rows, e.g. a zero row): Psi is then unbounded below and the weights of the
// tasks involved grow without bound. A zero row (A_kk = 0) is taken out of the system and its
// weight reported separately (see fairgrad_solve); in the other degenerate cases the iteration
// stops after max_iter steps with converged = false and finite weights.
#pragma once
#include <vector>

#include "mtl/method.h"

namespace polyhead::mtl::solvers {

struct FairGradResult {
  std::vector<double> x;
  int iterations = 0;
  double residual = 0.0;  // max_i |(A x)_i - x_i^(-1/alpha)| / x_i^(-1/alpha) over the solved rows
  bool converged = true;
  std::vector<int> zero_rows;  // tasks with A_kk == 0 (no equation); their x is set to max of the others
};

FairGradResult fairgrad_solve(const Mat& A, double alpha, int max_iter = 200);

}  // namespace polyhead::mtl::solvers
