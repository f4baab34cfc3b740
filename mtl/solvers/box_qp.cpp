// mtl/solvers/box_qp.cpp: active-set solver for non-negative convex QPs (see box_qp.h).
#include "mtl/solvers/box_qp.h"

#include <algorithm>
#include <cmath>

#include "mtl/linalg.h"

namespace polyhead::mtl::solvers {

using linalg::Vec;

namespace {

// Solves Q_FF z_F = -q_F (z = 0 off F). Returns false when Q_FF is not positive definite.
bool solve_free(const Mat& Q, std::span<const double> q, const std::vector<char>& F, Vec& z) {
  const int n = Q.rows;
  std::vector<int> idx;
  for (int i = 0; i < n; ++i)
    if (F[i]) idx.push_back(i);
  const int m = int(idx.size());
  z.assign(n, 0.0);
  if (m == 0) return true;
  Mat A(m, m);
  Vec b(m);
  for (int a = 0; a < m; ++a) {
    for (int c = 0; c < m; ++c) A(a, c) = Q(idx[a], idx[c]);
    b[a] = -q[idx[a]];
  }
  Mat L;
  Vec x;
  if (linalg::cholesky(A, L)) {
    x = linalg::cholesky_solve(L, b);
  } else if (!linalg::lu_solve(A, b, x)) {
    return false;
  }
  for (int a = 0; a < m; ++a) z[idx[a]] = x[a];
  return linalg::all_finite(z);
}

}  // namespace

NnqpResult nnqp(const Mat& Q, std::span<const double> q) {
  const int n = Q.rows;
  if (Q.rows != Q.cols || size_t(n) != q.size())
    throw Error("nnqp", "Q is " + std::to_string(Q.rows) + " x " + std::to_string(Q.cols) + ", q has " +
                            std::to_string(q.size()) + " entries");
  if (!linalg::all_finite(Q) || !linalg::all_finite(q)) throw Error("nnqp", "non-finite QP data");
  NnqpResult res;
  Vec x(n, 0.0);
  std::vector<char> F(n, 0);
  const double qscale = linalg::norm_inf(q);
  const double Qscale = linalg::max_abs(Q);

  auto gradient = [&](const Vec& x) {
    Vec g = linalg::matvec(Q, x);
    for (int i = 0; i < n; ++i) g[i] += q[i];
    return g;
  };

  const int max_outer = 3 * n + 50;
  for (int outer = 0; outer < max_outer; ++outer) {
    Vec g = gradient(x);
    const double tol = 1e-14 * (qscale + Qscale * linalg::norm_inf(x)) + 1e-300;
    int j = -1;
    double gmin = -tol;
    for (int i = 0; i < n; ++i)
      if (!F[i] && g[i] < gmin) gmin = g[i], j = i;
    if (j < 0) break;  // KKT holds
    F[j] = 1;
    ++res.iterations;
    bool stop = false;
    for (int inner = 0; inner <= n + 2; ++inner) {
      Vec z;
      if (!solve_free(Q, q, F, z))
        throw Error("nnqp", "the QP matrix is not positive definite",
                    "add a ridge to the Gramian (UPGrad/DualProj use reg_eps > 0)");
      bool feasible = true;
      for (int i = 0; i < n; ++i)
        if (F[i] && !(z[i] > 0.0)) feasible = false;
      if (feasible) {
        x = z;
        break;
      }
      if (inner == 0 && !(z[j] > 0.0)) {
        // The entering index is not really descending (its multiplier was rounding noise).
        F[j] = 0;
        stop = true;
        break;
      }
      // Step from x towards z until the first free variable hits 0.
      double alpha = 1.0;
      for (int i = 0; i < n; ++i)
        if (F[i] && !(z[i] > 0.0)) {
          double den = x[i] - z[i];
          double a = den > 0 ? x[i] / den : 0.0;
          alpha = std::min(alpha, a);
        }
      alpha = std::clamp(alpha, 0.0, 1.0);
      for (int i = 0; i < n; ++i)
        if (F[i]) x[i] += alpha * (z[i] - x[i]);
      bool dropped = false;
      for (int i = 0; i < n; ++i)
        if (F[i] && !(x[i] > 0.0)) {
          F[i] = 0;
          x[i] = 0.0;
          dropped = true;
        }
      if (!dropped) {  // rounding: drop the variable closest to its bound
        int k = -1;
        for (int i = 0; i < n; ++i)
          if (F[i] && !(z[i] > 0.0) && (k < 0 || x[i] < x[k])) k = i;
        if (k >= 0) F[k] = 0, x[k] = 0.0;
      }
    }
    if (stop) break;
  }
  // Final exact solve on the free set (the last step may have been a partial one).
  {
    Vec z;
    if (solve_free(Q, q, F, z)) {
      bool ok = true;
      for (int i = 0; i < n; ++i)
        if (F[i] && !(z[i] >= 0.0)) ok = false;
      if (ok) x = z;
    }
  }
  for (double& v : x) v = std::max(v, 0.0);
  Vec g = gradient(x);
  double r = 0.0;
  for (int i = 0; i < n; ++i) {
    if (x[i] > 0)
      r = std::max(r, std::fabs(g[i]));
    else
      r = std::max(r, std::max(-g[i], 0.0));
  }
  res.x = x;
  res.kkt_residual = r;
  return res;
}

std::vector<double> dual_cone_weights(const Mat& M, std::span<const double> u, NnqpResult* info) {
  if (size_t(M.rows) != u.size())
    throw Error("dual_cone_weights", "u has " + std::to_string(u.size()) + " entries, the Gramian is " +
                                         std::to_string(M.rows) + " x " + std::to_string(M.cols));
  // v = u + x, x >= 0: v^T M v = x^T M x + 2 (M u)^T x + const.
  Vec Mu = linalg::matvec(M, u);
  NnqpResult r = nnqp(M, Mu);
  Vec v(u.begin(), u.end());
  for (size_t i = 0; i < v.size(); ++i) v[i] += r.x[i];
  if (info) *info = r;
  return v;
}

}  // namespace polyhead::mtl::solvers
