// mtl/solvers/cagrad_dual.cpp: log-barrier Newton solver for the CAGrad dual (see cagrad_dual.h).
#include "mtl/solvers/cagrad_dual.h"

#include <algorithm>
#include <cmath>

#include "mtl/linalg.h"

namespace polyhead::mtl::solvers {

using linalg::Vec;

double cagrad_objective(const Mat& A, std::span<const double> p, double c, double eps, std::span<const double> w) {
  double q = linalg::quad(A, w);
  return linalg::dot(p, w) + c * std::sqrt(std::max(q, 0.0) + eps);
}

namespace {

// Solves H x = b for a symmetric positive (semi)definite H; adds a growing ridge if Cholesky fails.
bool spd_solve(const Mat& H, const Vec& b, Vec& x) {
  const int n = H.rows;
  Mat L;
  double ridge = 0.0;
  double dmax = 0.0;
  for (int i = 0; i < n; ++i) dmax = std::max(dmax, std::fabs(H(i, i)));
  for (int attempt = 0; attempt < 12; ++attempt) {
    Mat Hr = H;
    for (int i = 0; i < n; ++i) Hr(i, i) += ridge;
    if (linalg::cholesky(Hr, L)) {
      x = linalg::cholesky_solve(L, b);
      return linalg::all_finite(x);
    }
    ridge = ridge == 0.0 ? 1e-14 * (dmax > 0 ? dmax : 1.0) : ridge * 100.0;
  }
  return false;
}

}  // namespace

CagradDualResult cagrad_dual(const Mat& A, std::span<const double> p, double c, double eps) {
  const int n = A.rows;
  if (A.rows != A.cols || size_t(n) != p.size() || n < 1)
    throw Error("cagrad_dual", "A is " + std::to_string(A.rows) + " x " + std::to_string(A.cols) + ", p has " +
                                   std::to_string(p.size()) + " entries");
  if (!linalg::all_finite(A) || !linalg::all_finite(p) || !std::isfinite(c) || !std::isfinite(eps))
    throw Error("cagrad_dual", "non-finite problem data");
  CagradDualResult res;
  Vec w(n, 1.0 / n);
  auto f = [&](const Vec& x) { return cagrad_objective(A, p, c, eps, x); };
  if (n == 1) {
    res.w = {1.0};
    res.objective = f(res.w);
    return res;
  }
  if (c <= 0.0) {  // linear program: the best vertex
    int j = int(std::min_element(p.begin(), p.end()) - p.begin());
    std::fill(w.begin(), w.end(), 0.0);
    w[j] = 1.0;
    res.w = w;
    res.objective = f(w);
    return res;
  }
  const double F = linalg::norm_inf(p) + c * std::sqrt(linalg::max_abs(A) + eps);
  if (!(F > 0.0)) {
    res.w = w;
    res.objective = f(w);
    return res;
  }
  double t = n / F;
  const double mu = 10.0;
  bool converged = false;
  for (int outer = 0; outer < 60; ++outer) {
    // Centering: damped Newton on t f(w) - sum log w, subject to sum w = 1, in the coordinates
    // w_i (i != m) with w_m = 1 - sum_{i != m} w_i, m the largest weight (a null-space method:
    // no cancellation between the multiplier and the large components of t grad f).
    double prev_lam2 = 1e300;
    for (int it = 0; it < 100; ++it) {
      Vec Aw = linalg::matvec(A, w);
      double q = std::max(linalg::dot(w, Aw), 0.0);
      double s = std::sqrt(q + eps);
      const int m = int(std::max_element(w.begin(), w.end()) - w.begin());
      Vec gf(n);  // grad f
      for (int i = 0; i < n; ++i) gf[i] = p[i] + c * Aw[i] / s;
      Mat Hf(n, n);  // t * hess f + diag(1 / w^2)
      for (int i = 0; i < n; ++i) {
        for (int j = 0; j < n; ++j) Hf(i, j) = t * c * (A(i, j) / s - Aw[i] * Aw[j] / (s * s * s));
        Hf(i, i) += 1.0 / (w[i] * w[i]);
      }
      std::vector<int> idx;
      for (int i = 0; i < n; ++i)
        if (i != m) idx.push_back(i);
      const int r = n - 1;
      Mat Hr(r, r);
      Vec gr(r);
      for (int a = 0; a < r; ++a) {
        const int i = idx[a];
        gr[a] = t * (gf[i] - gf[m]) - (1.0 / w[i] - 1.0 / w[m]);
        for (int b = 0; b < r; ++b) {
          const int j = idx[b];
          Hr(a, b) = Hf(i, j) - Hf(i, m) - Hf(m, j) + Hf(m, m);
        }
      }
      Vec dz;
      if (!spd_solve(Hr, gr, dz)) break;
      Vec dw(n, 0.0);
      for (int a = 0; a < r; ++a) {
        dw[idx[a]] = -dz[a];
        dw[m] += dz[a];
      }
      const double lam2 = linalg::dot(gr, dz);  // Newton decrement^2 = gr . Hr^-1 gr
      ++res.newton_iterations;
      if (!(lam2 > 1e-14)) break;
      // At the largest t the decrement stalls at rounding level (no more quadratic convergence).
      if (it >= 6 && lam2 > 0.25 * prev_lam2 && lam2 < 1.0) break;
      prev_lam2 = lam2;
      double smax = 1.0;
      for (int i = 0; i < n; ++i)
        if (dw[i] < 0) smax = std::min(smax, -0.99 * w[i] / dw[i]);
      // Change of the barrier function along dw, computed from differences (no cancellation):
      // q(w + a dw) - q(w) = 2 a Aw.dw + a^2 dw.A.dw.
      const double Awdw = linalg::dot(Aw, dw), dAd = linalg::quad(A, dw), pdw = linalg::dot(p, dw);
      auto dphi = [&](double a, double& mag) {
        double dq = 2 * a * Awdw + a * a * dAd;
        double s2 = std::sqrt(std::max(q + dq, 0.0) + eps);
        double df = a * pdw + c * dq / (s2 + s);
        double dl = 0.0;
        mag = std::fabs(t * a * pdw) + std::fabs(t * c * dq / (s2 + s));
        for (int i = 0; i < n; ++i) {
          double l = std::log1p(a * dw[i] / w[i]);
          dl += l;
          mag += std::fabs(l);
        }
        return t * df - dl;
      };
      double step = smax;
      bool accepted = false;
      for (int ls = 0; ls < 60; ++ls) {
        bool pos = true;
        for (int i = 0; i < n; ++i)
          if (!(w[i] + step * dw[i] > 0.0)) pos = false;
        if (pos) {
          double mag;
          double d = dphi(step, mag);
          if (std::isfinite(d) && d <= -0.25 * step * lam2 + 1e-14 * mag) {
            accepted = true;
            break;
          }
        }
        step *= 0.5;
      }
      if (!accepted) break;
      double rest = 0.0;
      for (int i = 0; i < n; ++i)
        if (i != m) {
          w[i] += step * dw[i];
          rest += w[i];
        }
      w[m] = 1.0 - rest;
    }
    if (n / t < 1e-13 * F) {
      converged = true;
      break;
    }
    t *= mu;
  }
  // Clean coefficients the barrier left near 0 (they are ~1/t), if that does not raise f.
  double fw = f(w);
  for (double thr : {1e-8, 1e-10, 1e-12}) {
    Vec wc = w;
    double wmax = *std::max_element(wc.begin(), wc.end());
    bool changed = false;
    for (double& v : wc)
      if (v > 0.0 && v < thr * wmax) v = 0.0, changed = true;
    if (!changed) continue;
    double sc = linalg::sum(wc);
    for (double& v : wc) v /= sc;
    double fc = f(wc);
    if (fc <= fw + 1e-15 * F) {
      w = wc;
      fw = fc;
      break;
    }
  }
  res.w = w;
  res.objective = fw;
  res.converged = converged;
  return res;
}

}  // namespace polyhead::mtl::solvers
