// mtl/methods/config.cpp: ConFIG (see config.h).
#include "mtl/methods/config.h"

#include <algorithm>
#include <cmath>

#include "mtl/linalg.h"
#include "mtl/methods/solver_common.h"

namespace polyhead::mtl {

ConfigMethod::ConfigMethod(int K, const Options& opts) : K_(K) { opts.check_known("config", {}); }

StepOutput ConfigMethod::step(const StepInput& in) {
  const Mat& G = solver_common::require_jacobian("config", K_, in);
  const int K = K_, P = G.cols;
  // Unit rows (torch.nan_to_num(G / |G_k|, 0): a zero row stays 0).
  std::vector<double> nrm(K);
  Mat U(K, P);
  for (int k = 0; k < K; ++k) {
    nrm[k] = linalg::norm2(G.row(k));
    for (int p = 0; p < P; ++p) U(k, p) = nrm[k] > 0 ? G(k, p) / nrm[k] : 0.0;
  }
  // U = L Q by classical Gram-Schmidt with re-orthogonalisation (CGS2) over the rows.
  Mat Q(K, P);
  Mat L(K, K);
  for (int k = 0; k < K; ++k) {
    std::vector<double> q(U.row(k).begin(), U.row(k).end());
    for (int pass = 0; pass < 2; ++pass) {
      std::vector<double> c(k, 0.0);
      for (int j = 0; j < k; ++j) c[j] = linalg::dot(q, Q.row(j));
      for (int j = 0; j < k; ++j) {
        if (c[j] == 0.0) continue;
        L(k, j) += c[j];
        auto qj = Q.row(j);
        for (int p = 0; p < P; ++p) q[p] -= c[j] * qj[p];
      }
    }
    double r = linalg::norm2(q);
    L(k, k) = r;
    if (r > 0)
      for (int p = 0; p < P; ++p) Q(k, p) = q[p] / r;
  }
  // b = pinv(U) 1 = Q^T pinv(L) 1, with the singular values of L = those of U.
  Mat Lp = linalg::pinv(L, std::max(K, P) * linalg::kEps);
  std::vector<double> ones(K, 1.0);
  std::vector<double> z = linalg::matvec(Lp, ones);
  double zn = linalg::norm2(z);
  double denom = std::max(zn, 1e-12);
  // length = sum_k g_k . (Q^T z / denom) = sum_k |g_k| (L z)_k / denom.
  std::vector<double> Lz = linalg::matvec(L, z);
  double length = 0.0;
  for (int k = 0; k < K; ++k) length += nrm[k] * Lz[k] / denom;
  std::vector<double> u = linalg::matTvec(Q, z);
  StepOutput out;
  out.d.resize(P);
  for (int p = 0; p < P; ++p) out.d[p] = length * u[p] / denom;
  return out;
}

}  // namespace polyhead::mtl
