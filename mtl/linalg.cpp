// mtl/linalg.cpp: small dense float64 linear algebra (see linalg.h).
#include "mtl/linalg.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace polyhead::mtl::linalg {

namespace {
void require(bool cond, const char* op, const std::string& what) {
  if (!cond) throw Error(op, what);
}
std::string dims(const Mat& A) { return std::to_string(A.rows) + " x " + std::to_string(A.cols); }
}  // namespace

double dot(std::span<const double> a, std::span<const double> b) {
  require(a.size() == b.size(), "linalg::dot", "length mismatch");
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

double norm2(std::span<const double> a) {
  double m = norm_inf(a);
  if (m == 0.0 || !std::isfinite(m)) return m;
  double s = 0.0;
  for (double v : a) {
    double r = v / m;
    s += r * r;
  }
  return m * std::sqrt(s);
}

double norm_inf(std::span<const double> a) {
  double m = 0.0;
  for (double v : a) {
    double x = std::fabs(v);
    if (x > m || std::isnan(x)) m = x;
    if (std::isnan(m)) return m;
  }
  return m;
}

double sum(std::span<const double> a) {
  double s = 0.0;
  for (double v : a) s += v;
  return s;
}

double max_abs(const Mat& A) { return norm_inf(std::span<const double>(A.a)); }

bool all_finite(std::span<const double> a) {
  for (double v : a)
    if (!std::isfinite(v)) return false;
  return true;
}

Mat identity(int n) {
  Mat I(n, n);
  for (int i = 0; i < n; ++i) I(i, i) = 1.0;
  return I;
}

Mat transpose(const Mat& A) {
  Mat T(A.cols, A.rows);
  for (int i = 0; i < A.rows; ++i)
    for (int j = 0; j < A.cols; ++j) T(j, i) = A(i, j);
  return T;
}

Mat matmul(const Mat& A, const Mat& B) {
  require(A.cols == B.rows, "linalg::matmul", "inner dimensions differ: " + dims(A) + " * " + dims(B));
  Mat C(A.rows, B.cols);
  for (int i = 0; i < A.rows; ++i)
    for (int k = 0; k < A.cols; ++k) {
      double a = A(i, k);
      if (a == 0.0) continue;
      for (int j = 0; j < B.cols; ++j) C(i, j) += a * B(k, j);
    }
  return C;
}

Vec matvec(const Mat& A, std::span<const double> x) {
  require(size_t(A.cols) == x.size(), "linalg::matvec", "matrix " + dims(A) + " times vector of length " + std::to_string(x.size()));
  Vec y(A.rows, 0.0);
  for (int i = 0; i < A.rows; ++i) {
    double s = 0.0;
    for (int j = 0; j < A.cols; ++j) s += A(i, j) * x[j];
    y[i] = s;
  }
  return y;
}

Vec matTvec(const Mat& A, std::span<const double> x) {
  require(size_t(A.rows) == x.size(), "linalg::matTvec", "matrix " + dims(A) + " transposed times vector of length " + std::to_string(x.size()));
  Vec y(A.cols, 0.0);
  for (int i = 0; i < A.rows; ++i) {
    double xi = x[i];
    if (xi == 0.0) continue;
    for (int j = 0; j < A.cols; ++j) y[j] += A(i, j) * xi;
  }
  return y;
}

double quad(const Mat& A, std::span<const double> x) { return bilinear(A, x, x); }

double bilinear(const Mat& A, std::span<const double> x, std::span<const double> y) {
  require(size_t(A.rows) == x.size() && size_t(A.cols) == y.size(), "linalg::bilinear", "shape mismatch");
  double s = 0.0;
  for (int i = 0; i < A.rows; ++i) {
    double r = 0.0;
    for (int j = 0; j < A.cols; ++j) r += A(i, j) * y[j];
    s += x[i] * r;
  }
  return s;
}

Mat gram(const Mat& G) {
  Mat M(G.rows, G.rows);
  for (int i = 0; i < G.rows; ++i)
    for (int j = 0; j <= i; ++j) {
      double s = dot(G.row(i), G.row(j));
      M(i, j) = s;
      M(j, i) = s;
    }
  return M;
}

Mat symmetrize(const Mat& A) {
  require(A.rows == A.cols, "linalg::symmetrize", "matrix is " + dims(A) + ", not square");
  Mat S(A.rows, A.cols);
  for (int i = 0; i < A.rows; ++i)
    for (int j = 0; j < A.cols; ++j) S(i, j) = 0.5 * (A(i, j) + A(j, i));
  return S;
}

double trace(const Mat& A) {
  double t = 0.0;
  for (int i = 0; i < std::min(A.rows, A.cols); ++i) t += A(i, i);
  return t;
}

// ---- factorizations ----

bool cholesky(const Mat& A, Mat& L) {
  require(A.rows == A.cols, "linalg::cholesky", "matrix is " + dims(A) + ", not square");
  const int n = A.rows;
  L = Mat(n, n);
  for (int j = 0; j < n; ++j) {
    double d = A(j, j);
    for (int k = 0; k < j; ++k) d -= L(j, k) * L(j, k);
    if (!(d > 0.0) || !std::isfinite(d)) return false;
    double ljj = std::sqrt(d);
    L(j, j) = ljj;
    for (int i = j + 1; i < n; ++i) {
      double s = A(i, j);
      for (int k = 0; k < j; ++k) s -= L(i, k) * L(j, k);
      L(i, j) = s / ljj;
    }
  }
  return true;
}

Vec cholesky_solve(const Mat& L, std::span<const double> b) {
  const int n = L.rows;
  require(size_t(n) == b.size(), "linalg::cholesky_solve", "length mismatch");
  Vec y(b.begin(), b.end());
  for (int i = 0; i < n; ++i) {
    double s = y[i];
    for (int k = 0; k < i; ++k) s -= L(i, k) * y[k];
    y[i] = s / L(i, i);
  }
  for (int i = n - 1; i >= 0; --i) {
    double s = y[i];
    for (int k = i + 1; k < n; ++k) s -= L(k, i) * y[k];
    y[i] = s / L(i, i);
  }
  return y;
}

bool lu_solve(const Mat& A, std::span<const double> b, Vec& x) {
  Mat B(int(b.size()), 1);
  for (size_t i = 0; i < b.size(); ++i) B(int(i), 0) = b[i];
  Mat X;
  if (!lu_solve_mat(A, B, X)) return false;
  x.assign(X.a.begin(), X.a.end());
  return true;
}

bool lu_solve_mat(const Mat& A, const Mat& B, Mat& X) {
  require(A.rows == A.cols, "linalg::lu_solve", "matrix is " + dims(A) + ", not square");
  require(B.rows == A.rows, "linalg::lu_solve", "right-hand side has " + std::to_string(B.rows) + " rows, matrix " + dims(A));
  const int n = A.rows, m = B.cols;
  Mat LU = A;
  X = B;
  double scale = max_abs(A);
  if (!(scale > 0.0) || !std::isfinite(scale)) return false;
  for (int k = 0; k < n; ++k) {
    int piv = k;
    double best = std::fabs(LU(k, k));
    for (int i = k + 1; i < n; ++i)
      if (std::fabs(LU(i, k)) > best) best = std::fabs(LU(i, k)), piv = i;
    if (!(best > 0.0)) return false;
    if (piv != k) {
      for (int j = 0; j < n; ++j) std::swap(LU(k, j), LU(piv, j));
      for (int j = 0; j < m; ++j) std::swap(X(k, j), X(piv, j));
    }
    for (int i = k + 1; i < n; ++i) {
      double f = LU(i, k) / LU(k, k);
      LU(i, k) = f;
      if (f == 0.0) continue;
      for (int j = k + 1; j < n; ++j) LU(i, j) -= f * LU(k, j);
      for (int j = 0; j < m; ++j) X(i, j) -= f * X(k, j);
    }
  }
  for (int j = 0; j < m; ++j)
    for (int i = n - 1; i >= 0; --i) {
      double s = X(i, j);
      for (int k = i + 1; k < n; ++k) s -= LU(i, k) * X(k, j);
      X(i, j) = s / LU(i, i);
    }
  return all_finite(X);
}

// ---- symmetric eigen decomposition: cyclic Jacobi ----
//
// A pair (p, q) is rotated while |a_pq| > eps * sqrt(|a_pp a_qq|) (the Demmel-Veselic criterion,
// which keeps small eigenvalues of positive-definite matrices accurate relative to themselves),
// and the sweeps stop when a whole sweep rotates nothing.
SymEig sym_eig(const Mat& A0) {
  require(A0.rows == A0.cols, "linalg::sym_eig", "matrix is " + dims(A0) + ", not square");
  require(all_finite(A0), "linalg::sym_eig", "matrix has NaN/Inf entries");
  const int n = A0.rows;
  Mat A = symmetrize(A0);
  Mat V = identity(n);
  int sweep = 0;
  for (; sweep < 100; ++sweep) {
    bool rotated = false;
    for (int p = 0; p < n - 1; ++p)
      for (int q = p + 1; q < n; ++q) {
        double apq = A(p, q);
        if (apq == 0.0) continue;
        double app = A(p, p), aqq = A(q, q);
        if (std::fabs(apq) <= kEps * std::sqrt(std::fabs(app) * std::fabs(aqq))) continue;
        if (std::fabs(apq) < 1e-300) {  // denormal: rotating gains nothing
          A(p, q) = A(q, p) = 0.0;
          continue;
        }
        rotated = true;
        double theta = (aqq - app) / (2.0 * apq);
        double t;
        if (std::fabs(theta) > 1e150)
          t = 0.5 / theta;
        else
          t = (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1.0));
        double c = 1.0 / std::sqrt(t * t + 1.0), s = t * c;
        for (int k = 0; k < n; ++k) {
          if (k == p || k == q) continue;
          double akp = A(k, p), akq = A(k, q);
          double nkp = c * akp - s * akq, nkq = s * akp + c * akq;
          A(k, p) = A(p, k) = nkp;
          A(k, q) = A(q, k) = nkq;
        }
        A(p, p) = app - t * apq;
        A(q, q) = aqq + t * apq;
        A(p, q) = A(q, p) = 0.0;
        for (int k = 0; k < n; ++k) {
          double vkp = V(k, p), vkq = V(k, q);
          V(k, p) = c * vkp - s * vkq;
          V(k, q) = s * vkp + c * vkq;
        }
      }
    if (!rotated) break;
  }
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return A(a, a) > A(b, b); });
  SymEig out;
  out.sweeps = sweep;
  out.values.resize(n);
  out.vectors = Mat(n, n);
  for (int j = 0; j < n; ++j) {
    out.values[j] = A(order[j], order[j]);
    for (int i = 0; i < n; ++i) out.vectors(i, j) = V(i, order[j]);
  }
  return out;
}

Mat pinv_sym(const Mat& A, double rtol) {
  const int n = A.rows;
  if (rtol < 0) rtol = n * kEps;
  SymEig e = sym_eig(A);
  double lmax = 0.0;
  for (double l : e.values) lmax = std::max(lmax, std::fabs(l));
  Mat P(n, n);
  if (lmax == 0.0) return P;
  const double cut = rtol * lmax;
  for (int k = 0; k < n; ++k) {
    double l = e.values[k];
    if (!(std::fabs(l) > cut)) continue;
    double inv = 1.0 / l;
    for (int i = 0; i < n; ++i) {
      double vi = e.vectors(i, k) * inv;
      for (int j = 0; j < n; ++j) P(i, j) += vi * e.vectors(j, k);
    }
  }
  return P;
}

// ---- one-sided Jacobi SVD ----
SVD svd_jacobi(const Mat& A) {
  require(all_finite(A), "linalg::svd_jacobi", "matrix has NaN/Inf entries");
  const int m = A.rows, n = A.cols;
  Mat U = A;
  Mat V = identity(n);
  for (int sweep = 0; sweep < 100; ++sweep) {
    bool rotated = false;
    for (int p = 0; p < n - 1; ++p)
      for (int q = p + 1; q < n; ++q) {
        double alpha = 0, beta = 0, gamma = 0;
        for (int k = 0; k < m; ++k) {
          double up = U(k, p), uq = U(k, q);
          alpha += up * up;
          beta += uq * uq;
          gamma += up * uq;
        }
        if (gamma == 0.0 || std::fabs(gamma) <= kEps * std::sqrt(alpha * beta)) continue;
        if (std::fabs(gamma) < 1e-300) continue;
        rotated = true;
        double zeta = (beta - alpha) / (2.0 * gamma);
        double t;
        if (std::fabs(zeta) > 1e150)
          t = 0.5 / zeta;
        else
          t = (zeta >= 0 ? 1.0 : -1.0) / (std::fabs(zeta) + std::sqrt(1.0 + zeta * zeta));
        double c = 1.0 / std::sqrt(1.0 + t * t), s = c * t;
        for (int k = 0; k < m; ++k) {
          double up = U(k, p), uq = U(k, q);
          U(k, p) = c * up - s * uq;
          U(k, q) = s * up + c * uq;
        }
        for (int k = 0; k < n; ++k) {
          double vp = V(k, p), vq = V(k, q);
          V(k, p) = c * vp - s * vq;
          V(k, q) = s * vp + c * vq;
        }
      }
    if (!rotated) break;
  }
  Vec s(n);
  for (int j = 0; j < n; ++j) {
    double ss = 0.0;
    double mx = 0.0;
    for (int k = 0; k < m; ++k) mx = std::max(mx, std::fabs(U(k, j)));
    if (mx > 0.0)
      for (int k = 0; k < m; ++k) {
        double r = U(k, j) / mx;
        ss += r * r;
      }
    s[j] = mx * std::sqrt(ss);
  }
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return s[a] > s[b]; });
  SVD out;
  out.U = Mat(m, n);
  out.V = Mat(n, n);
  out.s.resize(n);
  for (int j = 0; j < n; ++j) {
    int o = order[j];
    out.s[j] = s[o];
    for (int k = 0; k < m; ++k) out.U(k, j) = s[o] > 0.0 ? U(k, o) / s[o] : 0.0;
    for (int k = 0; k < n; ++k) out.V(k, j) = V(k, o);
  }
  return out;
}

Mat pinv(const Mat& A, double rtol) {
  const int m = A.rows, n = A.cols;
  if (rtol < 0) rtol = std::max(m, n) * kEps;
  SVD d = svd_jacobi(A);
  Mat P(n, m);
  double smax = d.s.empty() ? 0.0 : d.s[0];
  if (smax == 0.0) return P;
  const double cut = rtol * smax;
  for (int k = 0; k < n; ++k) {
    if (!(d.s[k] > cut)) continue;
    double inv = 1.0 / d.s[k];
    for (int i = 0; i < n; ++i) {
      double vi = d.V(i, k) * inv;
      if (vi == 0.0) continue;
      for (int j = 0; j < m; ++j) P(i, j) += vi * d.U(j, k);
    }
  }
  return P;
}

// ---- simplex projection ----
Vec project_simplex(std::span<const double> y) {
  const size_t n = y.size();
  require(n > 0, "linalg::project_simplex", "empty vector");
  Vec u(y.begin(), y.end());
  std::sort(u.begin(), u.end(), std::greater<double>());
  double css = 0.0, theta = 0.0;
  for (size_t j = 0; j < n; ++j) {
    css += u[j];
    double t = (css - 1.0) / double(j + 1);
    if (u[j] - t > 0.0) theta = t;
  }
  Vec w(n);
  for (size_t i = 0; i < n; ++i) w[i] = std::max(y[i] - theta, 0.0);
  return w;
}

}  // namespace polyhead::mtl::linalg
