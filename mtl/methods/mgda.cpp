// mtl/methods/mgda.cpp: MGDA (see mgda.h).
#include "mtl/methods/mgda.h"

#include <cmath>

#include "mtl/linalg.h"
#include "mtl/methods/solver_common.h"
#include "mtl/solvers/min_norm.h"

namespace polyhead::mtl {

MgdaMethod::MgdaMethod(int K, const Options& opts) : K_(K) {
  opts.check_known("mgda", {"gn", "solver"});
  gn_ = solver_common::choice(opts, "mgda", "gn", "none", {"none", "l2", "loss", "loss+"});
  solver_ = solver_common::choice(opts, "mgda", "solver", "libmtl", {"libmtl", "torchjd", "exact"});
}

unsigned MgdaMethod::needs() const {
  return kNeedGramian | ((gn_ == "loss" || gn_ == "loss+") ? kNeedLosses : 0u);
}

StepOutput MgdaMethod::step(const StepInput& in) {
  const Mat& M = solver_common::require_gramian("mgda", K_, in);
  std::vector<double> gn(K_, 1.0);
  if (gn_ != "none") {
    const std::vector<double>* L = nullptr;
    if (gn_ == "loss" || gn_ == "loss+") L = &solver_common::require_losses("mgda", K_, in);
    for (int k = 0; k < K_; ++k) {
      double norm = std::sqrt(std::max(M(k, k), 0.0));
      gn[k] = gn_ == "l2" ? norm : gn_ == "loss" ? (*L)[k] : (*L)[k] * norm;
      if (!(gn[k] != 0.0) || !std::isfinite(gn[k]))
        throw Error("mgda", "gradient normaliser of task " + std::to_string(k) + " is " + std::to_string(gn[k]) +
                                " (gn = " + gn_ + "): the normalised gradient is 0/0",
                    gn_ == "loss" ? "a task loss is exactly 0; use gn=none or gn=l2"
                                  : "task " + std::to_string(k) + " has a zero gradient; use gn=none or gn=loss");
    }
  }
  Mat Mn(K_, K_);
  for (int i = 0; i < K_; ++i)
    for (int j = 0; j < K_; ++j) Mn(i, j) = M(i, j) / (gn[i] * gn[j]);
  solvers::MinNormResult r = solver_ == "libmtl"    ? solvers::min_norm_libmtl(Mn)
                             : solver_ == "torchjd" ? solvers::min_norm_torchjd(Mn)
                                                    : solvers::min_norm_exact(Mn);
  last_iterations_ = r.iterations;
  std::vector<double> w(K_);
  for (int k = 0; k < K_; ++k) w[k] = r.w[k] / gn[k];
  return solver_common::weights_output(std::move(w), r.w);
}

}  // namespace polyhead::mtl
