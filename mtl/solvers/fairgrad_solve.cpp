// mtl/solvers/fairgrad_solve.cpp: damped Newton on the convex potential of FairGrad's equation.
#include "mtl/solvers/fairgrad_solve.h"

#include <algorithm>
#include <cmath>

#include "mtl/linalg.h"

namespace polyhead::mtl::solvers {

using linalg::Vec;

FairGradResult fairgrad_solve(const Mat& A0, double alpha, int max_iter) {
  const int K = A0.rows;
  if (A0.rows != A0.cols || K < 1)
    throw Error("fairgrad_solve", "A must be square, got " + std::to_string(A0.rows) + " x " + std::to_string(A0.cols));
  if (!(alpha > 0.0) || !std::isfinite(alpha))
    throw Error("fairgrad_solve", "alpha = " + std::to_string(alpha), "FairGrad needs alpha > 0");
  FairGradResult res;
  std::vector<int> act;
  for (int i = 0; i < K; ++i) {
    if (A0(i, i) > 0.0)
      act.push_back(i);
    else
      res.zero_rows.push_back(i);
  }
  const int n = int(act.size());
  res.x.assign(K, 1.0 / K);
  if (n == 0) return res;  // every gradient is zero: nothing to balance
  Mat A(n, n);
  for (int a = 0; a < n; ++a)
    for (int b = 0; b < n; ++b) A(a, b) = A0(act[a], act[b]);

  const double e = 1.0 / alpha;
  auto powm = [&](double v) { return std::pow(v, -e); };  // v^(-1/alpha)
  Vec x(n, 1.0 / K);
  bool converged = false;
  int it = 0;
  double resid = 0.0;
  for (; it < max_iter; ++it) {
    Vec Ax = linalg::matvec(A, x);
    Vec F(n);
    resid = 0.0;
    double rel = 0.0;
    for (int i = 0; i < n; ++i) {
      double pi = powm(x[i]);
      F[i] = Ax[i] - pi;
      double si = pi;
      for (int j = 0; j < n; ++j) si += std::fabs(A(i, j) * x[j]);
      rel = std::max(rel, std::fabs(F[i]) / si);
      resid = std::max(resid, std::fabs(F[i]) / pi);
    }
    if (rel <= 1e-15 * n) {
      converged = true;
      break;
    }
    Mat H = A;
    for (int i = 0; i < n; ++i) H(i, i) += e * std::pow(x[i], -e - 1.0);
    Mat L;
    Vec dx;
    if (linalg::cholesky(H, L)) {
      dx = linalg::cholesky_solve(L, F);
    } else if (!linalg::lu_solve(H, F, dx)) {
      break;
    }
    for (double& v : dx) v = -v;
    double slope = linalg::dot(F, dx);  // < 0
    if (!(slope < 0.0)) {
      // Rounding-level: no descent direction left.
      converged = rel <= 1e-10;
      break;
    }
    double smax = 1.0;
    for (int i = 0; i < n; ++i)
      if (dx[i] < 0) smax = std::min(smax, -0.99 * x[i] / dx[i]);
    // Change of Psi along dx from differences (no cancellation):
    // Psi(x + s dx) - Psi(x) = s (Ax).dx + s^2/2 dx.A.dx - sum_i [psi(x_i + s dx_i) - psi(x_i)].
    const double Axdx = linalg::dot(Ax, dx), dAd = linalg::quad(A, dx);
    auto dPsi = [&](double st, double& mag) {
      double v = st * Axdx + 0.5 * st * st * dAd;
      mag = std::fabs(st * Axdx) + std::fabs(0.5 * st * st * dAd);
      for (int i = 0; i < n; ++i) {
        double l = std::log1p(st * dx[i] / x[i]);
        double dpsi = alpha == 1.0 ? l : std::pow(x[i], 1.0 - e) * std::expm1((1.0 - e) * l) / (1.0 - e);
        v -= dpsi;
        mag += std::fabs(dpsi);
      }
      return v;
    };
    double step = smax;
    Vec xn(n);
    bool accepted = false;
    for (int ls = 0; ls < 60; ++ls) {
      for (int i = 0; i < n; ++i) xn[i] = x[i] + step * dx[i];
      bool pos = true;
      for (double v : xn)
        if (!(v > 0.0)) pos = false;
      if (pos) {
        double mag;
        double d = dPsi(step, mag);
        if (std::isfinite(d) && d <= 0.25 * step * slope + 1e-14 * mag) {
          accepted = true;
          break;
        }
      }
      step *= 0.5;
    }
    if (!accepted) {
      converged = rel <= 1e-10;
      break;
    }
    x = xn;
    if (linalg::norm_inf(x) > 1e150) break;  // no root: weights diverge (0 in the convex hull)
  }
  res.iterations = it;
  res.residual = resid;
  res.converged = converged;
  double xmax = 0.0;
  for (int a = 0; a < n; ++a) {
    res.x[act[a]] = x[a];
    xmax = std::max(xmax, x[a]);
  }
  for (int k : res.zero_rows) res.x[k] = xmax;
  return res;
}

}  // namespace polyhead::mtl::solvers
