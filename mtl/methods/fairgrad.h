// mtl/methods/fairgrad.h: FairGrad (Ban & Ji, "Fair Resource Allocation in Multi-Task Learning",
// ICML 2024).
//
// What it computes: weights x > 0 solving (G G^T) x = x^(-1/alpha) (elementwise power), i.e. the
// alpha-fair allocation of the update's "utility" among tasks; d = G^T x. With alpha = 1 this is
// the Nash-MTL point of the raw Gramian; large alpha approaches max-min fairness.
// LibMTL solves it with scipy least_squares (TRF) from x0 = 1/K; we minimise its strictly convex
// potential by damped Newton (solvers/fairgrad_solve.h), to a residual at rounding level.
// Options: alpha = 1.0 (> 0).
// Invariants: x > 0; (M x)_k = x_k^(-1/alpha) for every task with a non-zero gradient.
// A task with an exactly zero gradient has no equation (LibMTL's solver drives its weight up
// without bound); we give it the largest weight of the other tasks (d does not depend on it).
// StepOutput.w = reported = x. Needs the Gramian only. Heads: x-weighted gradients (LibMTL backward
// of sum_k x_k L_k).
#pragma once
#include "mtl/method.h"

namespace polyhead::mtl {

class FairGradMethod final : public Method {
public:
  FairGradMethod(int K, const Options& opts);
  std::string name() const override { return "fairgrad"; }
  unsigned needs() const override { return kNeedGramian; }
  HeadGrad head_grad() const override { return HeadGrad::Weighted; }
  StepOutput step(const StepInput& in) override;
  double last_residual() const { return last_residual_; }
  // false when the weight equation had no root (0 in the convex hull of the gradients: the weights
  // of the tasks involved grow without bound and the iteration stopped at finite values).
  bool last_converged() const { return last_converged_; }

private:
  int K_;
  double alpha_;
  double last_residual_ = 0.0;
  bool last_converged_ = true;
};

}  // namespace polyhead::mtl
