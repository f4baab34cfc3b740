// mtl/methods/aligned_mtl.cpp: Aligned-MTL (see aligned_mtl.h).
#include "mtl/methods/aligned_mtl.h"

#include <algorithm>
#include <cmath>

#include "mtl/linalg.h"
#include "mtl/methods/solver_common.h"

namespace polyhead::mtl {

AlignedMtlMethod::AlignedMtlMethod(int K, const Options& opts) : K_(K) {
  opts.check_known("aligned_mtl", {"scale", "scale_mode"});
  scale_ = solver_common::choice(opts, "aligned_mtl", "scale", "libmtl", {"libmtl", "torchjd"});
  scale_mode_ = solver_common::choice(opts, "aligned_mtl", "scale_mode", "min", {"min", "median", "rmse"});
}

StepOutput AlignedMtlMethod::step(const StepInput& in) {
  const Mat& M = solver_common::require_gramian("aligned_mtl", K_, in);
  const int K = K_;
  linalg::SymEig e = linalg::sym_eig(M);
  const double lmax = e.values[0];
  const double tol = lmax * K * linalg::kEps;
  int r = 0;
  for (double l : e.values)
    if (l > tol) ++r;
  last_rank_ = r;
  std::vector<double> w(K, 0.0);
  if (r == 0) {
    for (int k = 0; k < K; ++k) w[k] = 1.0;
  } else {
    double sigma;
    if (scale_mode_ == "min") {
      sigma = e.values[r - 1];
    } else if (scale_mode_ == "median") {
      sigma = e.values[r - 1 - (r - 1) / 2];  // lower median (torch.median) of the kept values
    } else {
      double s = 0.0;
      for (int j = 0; j < r; ++j) s += e.values[j];
      sigma = s / r;
    }
    const double root = std::sqrt(sigma);
    // w = B 1 = sqrt(sigma) sum_j v_j (v_j . 1) / sqrt(lambda_j)
    for (int j = 0; j < r; ++j) {
      double vs = 0.0;
      for (int i = 0; i < K; ++i) vs += e.vectors(i, j);
      double f = root * vs / std::sqrt(e.values[j]);
      for (int i = 0; i < K; ++i) w[i] += f * e.vectors(i, j);
    }
  }
  if (scale_ == "torchjd")
    for (double& v : w) v /= K;
  std::vector<double> rep = w;
  return solver_common::weights_output(std::move(w), std::move(rep));
}

}  // namespace polyhead::mtl
