// mtl/solvers/box_qp.h: small convex QPs with lower bounds (UPGrad, DualProj).
//
// nnqp: min 1/2 x^T Q x + q^T x  s.t. x >= 0, Q symmetric positive definite (K x K).
//   A primal active-set method (Lawson-Hanson style): the free set grows by the most negative
//   multiplier; each subproblem Q_FF x_F = -q_F is solved exactly (Cholesky), and a step that
//   would leave the feasible set stops at the first bound and drops that index. Finite; the
//   result satisfies the KKT conditions to rounding (x >= 0, grad >= -tol, x_i * grad_i = 0).
//
// dual_cone_weights: the weights v of the projection of G^T u onto the dual cone
//   {x : G x >= 0} of the rows of G, given only M = G G^T (Quinton & Rey, "Jacobian Descent for
//   Multi-Objective Optimization", Prop. 1):  v = argmin_v v^T M v  s.t. v >= u.
//   Solved as nnqp(M, M u) on x = v - u. M must be positive definite (UPGrad / DualProj add
//   reg_eps * I). torchjd solves the same problem with quadprog (Goldfarb-Idnani); both are
//   exact active-set methods and agree to rounding.
#pragma once
#include <span>
#include <vector>

#include "mtl/method.h"

namespace polyhead::mtl::solvers {

struct NnqpResult {
  std::vector<double> x;
  int iterations = 0;          // active-set changes
  double kkt_residual = 0.0;   // max(|min(x,0)|, |min(grad,0)| on x=0, |grad| on x>0), absolute
};

// Throws polyhead::Error when Q is not square / not positive definite or the sizes differ.
NnqpResult nnqp(const Mat& Q, std::span<const double> q);

std::vector<double> dual_cone_weights(const Mat& M, std::span<const double> u, NnqpResult* info = nullptr);

}  // namespace polyhead::mtl::solvers
