// mtl/solvers/nash.cpp: Nash-MTL's CCP with a log-barrier solver for each convex subproblem.
#include "mtl/solvers/nash.h"

#include <algorithm>
#include <cmath>

#include "mtl/linalg.h"
#include "mtl/solvers/min_norm.h"

namespace polyhead::mtl::solvers {

using linalg::Vec;

namespace {

// h_i(alpha) = log alpha_i + log (B alpha)_i + log_kappa; false if alpha is outside the domain.
bool constraint_values(const Mat& B, double lk, const Vec& alpha, Vec& r, Vec& h) {
  const int n = B.rows;
  r = linalg::matvec(B, alpha);
  h.resize(n);
  for (int i = 0; i < n; ++i) {
    if (!(alpha[i] > 0.0) || !(r[i] > 0.0)) return false;
    h[i] = std::log(alpha[i]) + std::log(r[i]) + lk;
    if (!std::isfinite(h[i])) return false;
  }
  return true;
}

bool spd_solve(const Mat& H, const Vec& b, Vec& x) {
  const int n = H.rows;
  double dmax = 0.0;
  for (int i = 0; i < n; ++i) dmax = std::max(dmax, std::fabs(H(i, i)));
  double ridge = 0.0;
  Mat L;
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

bool nash_subproblem(const Mat& B, double lk, std::span<const double> a, std::span<const double> start,
                     std::vector<double>& alpha_out) {
  const int n = B.rows;
  Vec alpha(start.begin(), start.end());
  Vec r, h;
  if (!constraint_values(B, lk, alpha, r, h)) return false;
  // Scale into the strict interior: h_i(s alpha) = h_i(alpha) + 2 log s; make min h = 1.
  double hmin = *std::min_element(h.begin(), h.end());
  double s = std::exp(std::max(0.0, (1.0 - hmin) / 2.0));
  for (double& v : alpha) v *= s;
  if (!constraint_values(B, lk, alpha, r, h)) return false;
  const double a0 = linalg::norm_inf(alpha);

  auto fscale = [&](const Vec& x) {
    double v = 0.0;
    for (int i = 0; i < n; ++i) v += std::fabs(a[i]) * x[i];
    return v;
  };
  double sf = fscale(alpha);
  if (!(sf > 0.0) || !std::isfinite(sf)) return false;
  double t = n / sf;

  // Barrier levels t = n / sf * 10^k until the gap n / t is 1e-11 of the objective's scale: then
  // h_i ~ 1e-11 on the active constraints (the Nash condition holds to ~1e-11), while h is still
  // well above the rounding of its evaluation (a sum of logs, ~1e-15). `good` is the last iterate
  // with every h_i > 0 as evaluated.
  Vec good = alpha;
  bool broke_down = false;
  for (int outer = 0; outer < 40 && !broke_down; ++outer) {
    double prev_lam2 = 1e300;
    for (int it = 0; it < 60; ++it) {
      if (!constraint_values(B, lk, alpha, r, h) || *std::min_element(h.begin(), h.end()) <= 0.0) {
        alpha = good;  // rounding pushed a constraint across 0: keep the last strictly feasible point
        broke_down = true;
        break;
      }
      good = alpha;
      Vec g(n);
      Mat H(n, n);
      for (int i = 0; i < n; ++i) g[i] = t * a[i];
      Vec gh(n);
      for (int i = 0; i < n; ++i) {
        // grad h_i = e_i / alpha_i + B_i / r_i ;  -hess h_i = e_i e_i^T / alpha_i^2 + B_i B_i^T / r_i^2
        const double hi = h[i], inv_r = 1.0 / r[i];
        for (int j = 0; j < n; ++j) gh[j] = B(i, j) * inv_r;
        gh[i] += 1.0 / alpha[i];
        const double c1 = 1.0 / (hi * hi), c2 = inv_r * inv_r / hi, inv_h = 1.0 / hi;
        for (int j = 0; j < n; ++j) {
          g[j] -= gh[j] * inv_h;
          const double a1 = c1 * gh[j], a2 = c2 * B(i, j);
          for (int k = 0; k <= j; ++k) H(j, k) += a1 * gh[k] + a2 * B(i, k);
        }
        H(i, i) += 1.0 / (alpha[i] * alpha[i] * hi);
      }
      for (int j = 0; j < n; ++j)
        for (int k = 0; k < j; ++k) H(k, j) = H(j, k);
      Vec dx;
      if (!spd_solve(H, g, dx)) return false;
      for (double& v : dx) v = -v;
      const double lam2 = linalg::quad(H, dx);  // Newton decrement^2
      if (!(lam2 > 1e-10)) break;
      // At the largest t the decrement stalls at the rounding level of h (no more quadratic
      // convergence): stop centering there.
      if (it >= 6 && lam2 > 0.25 * prev_lam2 && lam2 < 1.0) break;
      prev_lam2 = lam2;
      // Change of the barrier function along dx from differences (no cancellation at large t):
      // h_i(alpha + s dx) - h_i(alpha) = log1p(s dx_i / alpha_i) + log1p(s (B dx)_i / r_i).
      const Vec Bdx = linalg::matvec(B, dx);
      const double adx = linalg::dot(a, dx);
      auto dPhi = [&](double st, bool& ok, double& mag) {
        ok = true;
        double v = t * st * adx;
        mag = std::fabs(v);
        for (int i = 0; i < n; ++i) {
          double u1 = st * dx[i] / alpha[i], u2 = st * Bdx[i] / r[i];
          if (!(u1 > -1.0) || !(u2 > -1.0)) {
            ok = false;
            return 0.0;
          }
          double dh = std::log1p(u1) + std::log1p(u2);
          double rel = dh / h[i];
          if (!(rel > -1.0)) {
            ok = false;
            return 0.0;
          }
          double l = std::log1p(rel);
          v -= l;
          mag += std::fabs(l);
        }
        return v;
      };
      double step = 1.0;
      for (int i = 0; i < n; ++i)
        if (dx[i] < 0) step = std::min(step, -0.99 * alpha[i] / dx[i]);
      Vec xn(n);
      bool accepted = false;
      for (int ls = 0; ls < 80; ++ls) {
        bool ok;
        double mag;
        double d = dPhi(step, ok, mag);
        if (ok && std::isfinite(d) && d <= -0.25 * step * lam2 + 1e-14 * mag) {
          accepted = true;
          break;
        }
        step *= 0.5;
      }
      if (!accepted) break;
      for (int i = 0; i < n; ++i) xn[i] = alpha[i] + step * dx[i];
      alpha = xn;
      if (linalg::norm_inf(alpha) > 1e30 * a0) return false;  // unbounded below
    }
    if (broke_down) break;
    sf = fscale(alpha);
    if (n / t < 1e-11 * sf) break;
    t *= 10.0;
  }
  if (!linalg::all_finite(alpha)) return false;
  alpha_out = alpha;
  return true;
}

NashResult nash_ccp(const Mat& M, std::span<const double> alpha_prev, int optim_niter) {
  const int K = M.rows;
  if (M.rows != M.cols || size_t(K) != alpha_prev.size())
    throw Error("nash_ccp", "Gramian is " + std::to_string(M.rows) + " x " + std::to_string(M.cols) +
                                ", previous alpha has " + std::to_string(alpha_prev.size()) + " entries");
  NashResult res;
  res.alpha.assign(alpha_prev.begin(), alpha_prev.end());
  double nf = 0.0;
  for (double v : M.a) nf += v * v;
  nf = std::sqrt(nf);
  if (!(nf > 0.0) || !std::isfinite(nf)) {
    res.feasible = false;
    return res;
  }
  Mat Mn = M;
  for (double& v : Mn.a) v /= nf;
  const double lk = std::log(nf);
  const Vec ones(K, 1.0);
  const Vec Mn1 = linalg::matvec(Mn, ones);

  Vec alpha_t(alpha_prev.begin(), alpha_prev.end());
  auto in_domain = [&](const Vec& al) {
    Vec r = linalg::matvec(Mn, al);
    for (int i = 0; i < K; ++i)
      if (!(al[i] > 0.0) || !(r[i] > 0.0) || !std::isfinite(al[i])) return false;
    return true;
  };
  if (!in_domain(alpha_t)) {
    MinNormResult mn = min_norm_exact(Mn);
    double dd = linalg::quad(Mn, mn.w);
    double dmax = 0.0;
    for (int i = 0; i < K; ++i) dmax = std::max(dmax, Mn(i, i));
    if (!(dd > 1e-14 * dmax)) {
      res.feasible = false;
      return res;
    }
    double delta = 0.5 * dd / std::max(linalg::norm_inf(Mn1), 1e-300);
    Vec st = mn.w;
    for (double& v : st) v += delta;
    Vec r = linalg::matvec(Mn, st);
    double hmin = 1e300;
    for (int i = 0; i < K; ++i) hmin = std::min(hmin, std::log(st[i]) + std::log(r[i]) + lk);
    double s = std::exp(-hmin / 2.0);
    for (double& v : st) v *= s;
    if (!in_domain(st)) {
      res.feasible = false;
      return res;
    }
    alpha_t = st;
    res.restarted = true;
  }

  for (int it = 0; it < optim_niter; ++it) {
    Vec r = linalg::matvec(Mn, alpha_t);
    Vec inv_r(K);
    for (int i = 0; i < K; ++i) inv_r[i] = 1.0 / r[i];
    Vec Minv = linalg::matvec(Mn, inv_r);
    Vec a(K);
    for (int i = 0; i < K; ++i) a[i] = Mn1[i] + (1.0 / alpha_t[i] + Minv[i]) / nf;
    if (!linalg::all_finite(a)) break;
    Vec anew;
    bool ok = nash_subproblem(Mn, lk, a, alpha_t, anew);
    ++res.ccp_iterations;
    if (!ok) break;  // the official code keeps alpha_t when the solver fails
    double c1 = 0.0, c2 = 0.0;
    for (int i = 0; i < K; ++i) {
      double e1 = r[i] - 1.0 / (alpha_t[i] + 1e-10);
      c1 += e1 * e1;
      double e2 = anew[i] - alpha_t[i];
      c2 += e2 * e2;
    }
    if (std::sqrt(c1) < 1e-3 || std::sqrt(c2) < 1e-6) break;
    alpha_t = anew;
  }
  res.alpha = alpha_t;
  return res;
}

double nash_residual(const Mat& M, std::span<const double> alpha) {
  Vec r = linalg::matvec(M, alpha);
  double m = 0.0;
  for (size_t i = 0; i < alpha.size(); ++i) m = std::max(m, std::fabs(alpha[i] * r[i] - 1.0));
  return m;
}

}  // namespace polyhead::mtl::solvers
