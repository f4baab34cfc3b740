// mtl/methods/fairgrad.cpp: FairGrad (see fairgrad.h).
#include "mtl/methods/fairgrad.h"

#include "mtl/methods/solver_common.h"
#include "mtl/solvers/fairgrad_solve.h"

namespace polyhead::mtl {

FairGradMethod::FairGradMethod(int K, const Options& opts) : K_(K) {
  opts.check_known("fairgrad", {"alpha"});
  alpha_ = solver_common::positive(opts, "fairgrad", "alpha", 1.0, false);
}

StepOutput FairGradMethod::step(const StepInput& in) {
  const Mat& M = solver_common::require_gramian("fairgrad", K_, in);
  solvers::FairGradResult r = solvers::fairgrad_solve(M, alpha_);
  last_residual_ = r.residual;
  last_converged_ = r.converged;
  std::vector<double> rep = r.x;
  return solver_common::weights_output(std::move(r.x), std::move(rep));
}

}  // namespace polyhead::mtl
