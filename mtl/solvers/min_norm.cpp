// mtl/solvers/min_norm.cpp: LibMTL / torchjd Frank-Wolfe replicas and an exact Wolfe solver.
#include "mtl/solvers/min_norm.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "mtl/linalg.h"

namespace polyhead::mtl::solvers {

using linalg::Vec;

namespace {

void check_square(const Mat& M, const char* op) {
  if (M.rows != M.cols || M.rows < 1)
    throw Error(op, "Gramian must be a non-empty square matrix, got " + std::to_string(M.rows) + " x " +
                        std::to_string(M.cols));
}

// LibMTL _min_norm_element_from2: min over the segment [v1, v2] of |gamma v1 + (1-gamma) v2|^2,
// with the 0.999 / 0.001 clamps.
void from2(double v1v1, double v1v2, double v2v2, double& gamma, double& cost) {
  if (v1v2 >= v1v1) {
    gamma = 0.999;
    cost = v1v1;
    return;
  }
  if (v1v2 >= v2v2) {
    gamma = 0.001;
    cost = v2v2;
    return;
  }
  gamma = -1.0 * ((v1v2 - v2v2) / (v1v1 + v2v2 - 2 * v1v2));
  cost = v2v2 + gamma * (v1v2 - v2v2);
}

// LibMTL _projection2simplex (as written there: the first break index of the sorted scan).
Vec libmtl_projection2simplex(const Vec& y) {
  const int m = int(y.size());
  Vec sorted_y = y;
  std::sort(sorted_y.begin(), sorted_y.end(), std::greater<double>());
  double tmpsum = 0.0;
  double tmax_f = (linalg::sum(y) - 1.0) / m;
  for (int i = 0; i < m - 1; ++i) {
    tmpsum += sorted_y[i];
    double tmax = (tmpsum - 1) / (i + 1.0);
    if (tmax > sorted_y[i + 1]) {
      tmax_f = tmax;
      break;
    }
  }
  Vec out(m);
  for (int i = 0; i < m; ++i) out[i] = std::max(y[i] - tmax_f, 0.0);
  return out;
}

// LibMTL _next_point.
Vec libmtl_next_point(const Vec& cur, const Vec& grad) {
  const int n = int(cur.size());
  double gs = linalg::sum(grad) / n;
  Vec pg(n);
  for (int i = 0; i < n; ++i) pg[i] = grad[i] - gs;
  bool have1 = false, have2 = false;
  double t1 = 0.0, t2 = 0.0;
  for (int i = 0; i < n; ++i) {
    if (pg[i] < 0) {
      double tm = -1.0 * cur[i] / pg[i];
      if (tm > 1e-7 && (!have1 || tm < t1)) t1 = tm, have1 = true;
    } else if (pg[i] > 0) {
      double tm = (1.0 - cur[i]) / pg[i];
      if (tm > 1e-7 && (!have2 || tm < t2)) t2 = tm, have2 = true;
    }
  }
  double t = 1.0;
  if (have1) t = t1;
  if (have2) t = std::min(t, t2);
  Vec next(n);
  for (int i = 0; i < n; ++i) next[i] = pg[i] * t + cur[i];
  return libmtl_projection2simplex(next);
}

}  // namespace

MinNormResult min_norm_libmtl(const Mat& M, int max_iter, double stop_crit) {
  check_square(M, "mgda (libmtl solver)");
  const int n = M.rows;
  MinNormResult r;
  r.w.assign(n, 0.0);
  if (n == 1) {
    r.w[0] = 1.0;
    return r;
  }
  // Best pair. LibMTL starts from dmin = 1e8 and raises when no pair beats it; we start from +inf
  // (so large but finite gradients work) and raise only when no pair has a finite cost.
  double dmin = std::numeric_limits<double>::infinity();
  int bi = -1, bj = -1;
  double bgamma = 0.0;
  for (int i = 0; i < n; ++i)
    for (int j = i + 1; j < n; ++j) {
      double c, d;
      from2(M(i, i), M(i, j), M(j, j), c, d);
      if (d < dmin) {
        dmin = d;
        bi = i, bj = j, bgamma = c;
      }
    }
  if (bi < 0)
    throw Error("mgda (libmtl solver)", "no pair of tasks has a finite min-norm cost (the Gramian has NaN entries)",
                "a zero gradient with gn=l2 or gn=loss+ divides 0 by 0; use gn=none or gn=loss");
  r.w[bi] = bgamma;
  r.w[bj] = 1 - bgamma;
  if (n < 3) return r;

  Vec sol = r.w;
  int it = 0;
  while (it < max_iter) {
    Vec grad = linalg::matvec(M, sol);
    for (double& g : grad) g = -1.0 * g;
    Vec np = libmtl_next_point(sol, grad);
    double v1v1 = linalg::bilinear(M, sol, sol);
    double v1v2 = linalg::bilinear(M, sol, np);
    double v2v2 = linalg::bilinear(M, np, np);
    double nc, nd;
    from2(v1v1, v1v2, v2v2, nc, nd);
    Vec nsol(n);
    double change = 0.0;
    for (int i = 0; i < n; ++i) {
      nsol[i] = nc * sol[i] + (1 - nc) * np[i];
      change += std::fabs(nsol[i] - sol[i]);
    }
    if (change < stop_crit) {
      r.w = sol;
      r.iterations = it;
      return r;
    }
    sol = nsol;
    ++it;
  }
  r.w = sol;
  r.iterations = it;
  r.converged = false;
  return r;
}

MinNormResult min_norm_torchjd(const Mat& M, double epsilon, int max_iters) {
  check_square(M, "mgda (torchjd solver)");
  const int n = M.rows;
  MinNormResult r;
  Vec alpha(n, 1.0 / n);
  r.converged = false;
  for (int i = 0; i < max_iters; ++i) {
    Vec Ma = linalg::matvec(M, alpha);
    int t = 0;
    for (int k = 1; k < n; ++k)
      if (Ma[k] < Ma[t]) t = k;
    double a = 0.0;
    for (int k = 0; k < n; ++k) a += alpha[k] * M(k, t);
    double b = linalg::dot(alpha, Ma);
    double c = M(t, t);
    double gamma;
    if (c <= a)
      gamma = 1.0;
    else if (b <= a)
      gamma = 0.0;
    else
      gamma = (b - a) / (b + c - 2 * a);
    for (int k = 0; k < n; ++k) alpha[k] = (1 - gamma) * alpha[k] + (k == t ? gamma : 0.0);
    r.iterations = i + 1;
    if (gamma < epsilon) {
      r.converged = true;
      break;
    }
  }
  r.w = alpha;
  return r;
}

// Wolfe's minimum-norm-point algorithm, on the Gramian scaled by its largest diagonal entry.
MinNormResult min_norm_exact(const Mat& M0) {
  check_square(M0, "mgda (exact solver)");
  const int n = M0.rows;
  MinNormResult r;
  double s = 0.0;
  for (int i = 0; i < n; ++i) s = std::max(s, M0(i, i));
  if (!(s > 0.0)) {  // all gradients zero: every point has norm 0
    r.w.assign(n, 1.0 / n);
    return r;
  }
  Mat M = M0;
  for (double& v : M.a) v /= s;
  const double tol_opt = 1e-14;   // optimality: min_k (Mw)_k >= w^T M w - tol
  const double tol_zero = 1e-15;  // coefficients this small leave the corral

  // Start at the vertex of least norm.
  int j0 = 0;
  for (int i = 1; i < n; ++i)
    if (M(i, i) < M(j0, j0)) j0 = i;
  std::vector<int> S{j0};
  Vec w(n, 0.0);
  w[j0] = 1.0;

  // Affine minimum-norm point of the corral S: min v^T M_SS v s.t. sum v = 1.
  auto affine_min = [&](const std::vector<int>& S, Vec& v) -> bool {
    const int m = int(S.size());
    Mat A(m + 1, m + 1);
    Vec rhs(m + 1, 0.0);
    for (int a = 0; a < m; ++a) {
      for (int b = 0; b < m; ++b) A(a, b) = M(S[a], S[b]);
      A(a, m) = 1.0;
      A(m, a) = 1.0;
    }
    rhs[m] = 1.0;
    Vec x;
    if (!linalg::lu_solve(A, rhs, x)) return false;
    v.assign(x.begin(), x.begin() + m);
    return true;
  };

  int major = 0;
  const int max_major = 50 * n + 100;
  for (; major < max_major; ++major) {
    Vec Mw = linalg::matvec(M, w);
    double xx = linalg::dot(w, Mw);
    int j = 0;
    for (int k = 1; k < n; ++k)
      if (Mw[k] < Mw[j]) j = k;
    if (Mw[j] >= xx - tol_opt) break;
    if (std::find(S.begin(), S.end(), j) != S.end()) break;  // rounding: cannot improve further
    S.push_back(j);
    // Minor cycles.
    for (int minor = 0; minor < n + 5; ++minor) {
      Vec v;
      if (!affine_min(S, v)) {
        // Affinely dependent corral (rounding): drop the newest point and stop.
        S.pop_back();
        major = max_major;
        break;
      }
      bool all_pos = true;
      for (double vi : v)
        if (!(vi > tol_zero)) all_pos = false;
      if (all_pos) {
        std::fill(w.begin(), w.end(), 0.0);
        for (size_t a = 0; a < S.size(); ++a) w[S[a]] = v[a];
        break;
      }
      // Move from w towards v until a coefficient hits 0, and drop it.
      double theta = 1.0;
      for (size_t a = 0; a < S.size(); ++a) {
        double wa = w[S[a]];
        if (v[a] <= tol_zero) {
          double den = wa - v[a];
          double th = den > 0 ? wa / den : 0.0;
          theta = std::min(theta, th);
        }
      }
      theta = std::clamp(theta, 0.0, 1.0);
      std::vector<int> keep;
      for (size_t a = 0; a < S.size(); ++a) {
        double nw = w[S[a]] + theta * (v[a] - w[S[a]]);
        w[S[a]] = nw;
      }
      for (size_t a = 0; a < S.size(); ++a) {
        if (w[S[a]] > tol_zero)
          keep.push_back(S[a]);
        else
          w[S[a]] = 0.0;
      }
      if (keep.empty()) {  // cannot happen in exact arithmetic; restart from the best vertex
        keep.push_back(j);
        std::fill(w.begin(), w.end(), 0.0);
        w[j] = 1.0;
      }
      S = keep;
      double sw = 0.0;
      for (int k : S) sw += w[k];
      for (int k : S) w[k] /= sw;
    }
  }
  // Clean up: non-negative, sums to 1.
  double sw = 0.0;
  for (double& v : w) {
    v = std::max(v, 0.0);
    sw += v;
  }
  for (double& v : w) v /= sw;
  r.w = w;
  r.iterations = major;
  r.converged = major < max_major;
  return r;
}

double min_norm_gap(const Mat& M, const std::vector<double>& w) {
  Vec Mw = linalg::matvec(M, w);
  double xx = linalg::dot(w, Mw);
  double mn = *std::min_element(Mw.begin(), Mw.end());
  double s = 0.0;
  for (int i = 0; i < M.rows; ++i) s = std::max(s, M(i, i));
  return s > 0 ? (xx - mn) / s : 0.0;
}

}  // namespace polyhead::mtl::solvers
