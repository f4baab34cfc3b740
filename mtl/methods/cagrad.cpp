// mtl/methods/cagrad.cpp: CAGrad (see cagrad.h).
#include "mtl/methods/cagrad.h"

#include <cmath>

#include "mtl/linalg.h"
#include "mtl/methods/solver_common.h"
#include "mtl/solvers/cagrad_dual.h"

namespace polyhead::mtl {

CagradMethod::CagradMethod(int K, const Options& opts) : K_(K) {
  opts.check_known("cagrad", {"calpha", "rescale", "scale", "norm_eps"});
  calpha_ = solver_common::positive(opts, "cagrad", "calpha", 0.5, true);
  rescale_ = opts.get_int("rescale", 1);
  if (rescale_ < 0 || rescale_ > 2)
    throw Error("make_method", "method 'cagrad': option rescale = " + std::to_string(rescale_) + " is not valid",
                "valid values: 0 (none), 1 (divide by 1 + calpha^2), 2 (divide by 1 + calpha)");
  scale_ = solver_common::choice(opts, "cagrad", "scale", "libmtl", {"libmtl", "torchjd"});
  norm_eps_ = solver_common::positive(opts, "cagrad", "norm_eps", 1e-4, true);
}

StepOutput CagradMethod::step(const StepInput& in) {
  const Mat& M = solver_common::require_gramian("cagrad", K_, in);
  const int K = K_;
  const std::vector<double> b(K, 1.0 / K);
  if (scale_ == "libmtl") {
    double meanA = linalg::sum(M.a) / double(M.a.size());
    double g0_norm = std::sqrt(meanA + 1e-8);
    double c = calpha_ * g0_norm + 1e-8;
    std::vector<double> p = linalg::matvec(M, b);
    solvers::CagradDualResult r = solvers::cagrad_dual(M, p, c, 1e-8);
    last_objective_ = r.objective;
    double gw_norm = std::sqrt(std::max(linalg::quad(M, r.w), 0.0));
    double lambda = c / (gw_norm + 1e-8);
    double div = rescale_ == 1 ? 1.0 + calpha_ * calpha_ : rescale_ == 2 ? 1.0 + calpha_ : 1.0;
    std::vector<double> w(K);
    for (int k = 0; k < K; ++k) w[k] = (1.0 / K + lambda * r.w[k]) / div;
    return solver_common::weights_output(std::move(w), r.w);
  }
  // torchjd convention.
  double tr = linalg::trace(M);
  Mat Mn(K, K);
  if (tr >= norm_eps_)
    for (size_t i = 0; i < M.a.size(); ++i) Mn.a[i] = M.a[i] / tr;
  std::vector<double> p = linalg::matvec(Mn, b);
  double phi = calpha_ * std::sqrt(std::max(linalg::dot(b, p), 0.0));
  solvers::CagradDualResult r = solvers::cagrad_dual(Mn, p, phi, 1e-20);
  last_objective_ = r.objective;
  double gw_norm = std::sqrt(std::max(linalg::quad(Mn, r.w), 0.0));
  std::vector<double> w(K, 0.0);
  if (gw_norm >= norm_eps_)
    for (int k = 0; k < K; ++k) w[k] = 1.0 / K + (phi / gw_norm) * r.w[k];
  std::vector<double> rep = w;
  return solver_common::weights_output(std::move(w), std::move(rep));
}

}  // namespace polyhead::mtl
