// mtl/methods/dual_cone.cpp: UPGrad and DualProj (see dual_cone.h).
#include "mtl/methods/dual_cone.h"

#include "mtl/linalg.h"
#include "mtl/methods/solver_common.h"
#include "mtl/solvers/box_qp.h"

namespace polyhead::mtl {

DualConeMethod::DualConeMethod(Kind kind, int K, const Options& opts) : kind_(kind), K_(K) {
  const std::string n = name();
  opts.check_known(n, {"norm_eps", "reg_eps"});
  norm_eps_ = solver_common::positive(opts, n, "norm_eps", 1e-4, true);
  reg_eps_ = solver_common::positive(opts, n, "reg_eps", 1e-4, true);
}

StepOutput DualConeMethod::step(const StepInput& in) {
  const std::string n = name();
  const Mat& M = solver_common::require_gramian(n, K_, in);
  const int K = K_;
  double tr = linalg::trace(M);
  Mat Mr(K, K);
  if (tr >= norm_eps_)
    for (size_t i = 0; i < M.a.size(); ++i) Mr.a[i] = M.a[i] / tr;
  for (int i = 0; i < K; ++i) Mr(i, i) += reg_eps_;
  std::vector<double> w(K, 0.0);
  if (kind_ == Kind::UPGrad) {
    for (int i = 0; i < K; ++i) {
      std::vector<double> u(K, 0.0);
      u[i] = 1.0 / K;
      std::vector<double> v = solvers::dual_cone_weights(Mr, u);
      for (int k = 0; k < K; ++k) w[k] += v[k];
    }
  } else {
    std::vector<double> u(K, 1.0 / K);
    w = solvers::dual_cone_weights(Mr, u);
  }
  std::vector<double> rep = w;
  return solver_common::weights_output(std::move(w), std::move(rep));
}

}  // namespace polyhead::mtl
