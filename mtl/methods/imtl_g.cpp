// mtl/methods/imtl_g.cpp: IMTL-G (see imtl_g.h).
#include "mtl/methods/imtl_g.h"

#include <cmath>

#include "mtl/linalg.h"
#include "mtl/methods/solver_common.h"

namespace polyhead::mtl {

ImtlgMethod::ImtlgMethod(int K, const Options& opts) : K_(K) { opts.check_known("imtl_g", {}); }

StepOutput ImtlgMethod::step(const StepInput& in) {
  const Mat& M = solver_common::require_gramian("imtl_g", K_, in);
  const int K = K_;
  std::vector<double> s(K);
  for (int k = 0; k < K; ++k) s[k] = std::sqrt(std::max(M(k, k), 0.0));
  Mat P = linalg::pinv_sym(M);
  std::vector<double> v = linalg::matvec(P, s);
  double vs = linalg::sum(v);
  std::vector<double> w(K, 0.0);
  if (std::fabs(vs) >= 1e-12)
    for (int k = 0; k < K; ++k) w[k] = v[k] / vs;
  std::vector<double> rep = w;
  return solver_common::weights_output(std::move(w), std::move(rep));
}

}  // namespace polyhead::mtl
