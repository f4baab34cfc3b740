// mtl/linalg.h: small dense float64 linear algebra on mtl::Mat for the MTL solvers.
//
// Everything here is meant for K x K problems with K = number of tasks (typically 2..50), plus a
// few K x P helpers (Gramian, row QR) where P may be large. No external library: plain loops,
// written for accuracy first (Jacobi methods give eigen/singular values to high relative accuracy).
//
// Conventions:
//   - Mat is row-major (mtl/method.h). Vectors are std::vector<double>.
//   - sym_eig returns eigenvalues sorted in DESCENDING order, eigenvectors as the COLUMNS of V.
//   - Functions that can fail on bad input (shape mismatch, not positive definite) throw
//     polyhead::Error or report failure through their return value, as documented per function.
#pragma once
#include <span>
#include <vector>

#include "mtl/method.h"

namespace polyhead::mtl::linalg {

using Vec = std::vector<double>;

// ---- basic vector / matrix operations ----
double dot(std::span<const double> a, std::span<const double> b);
double norm2(std::span<const double> a);        // Euclidean norm (scaled, no overflow)
double norm_inf(std::span<const double> a);     // max |a_i| (0 for empty)
double sum(std::span<const double> a);
double max_abs(const Mat& A);                   // max_ij |A_ij| (0 for empty)
bool all_finite(std::span<const double> a);
inline bool all_finite(const Mat& A) { return all_finite(std::span<const double>(A.a)); }

Mat identity(int n);
Mat transpose(const Mat& A);
Mat matmul(const Mat& A, const Mat& B);         // A (m x k) * B (k x n)
Vec matvec(const Mat& A, std::span<const double> x);    // A x
Vec matTvec(const Mat& A, std::span<const double> x);   // A^T x
double quad(const Mat& A, std::span<const double> x);   // x^T A x
double bilinear(const Mat& A, std::span<const double> x, std::span<const double> y);  // x^T A y
Mat gram(const Mat& G);                         // G G^T (K x K) of a K x P matrix
Mat symmetrize(const Mat& A);                   // (A + A^T) / 2
double trace(const Mat& A);

// ---- factorizations and solves ----
// Cholesky A = L L^T of a symmetric positive-definite matrix (only the lower triangle is read).
// Returns false when a pivot is <= 0 or not finite (A not numerically positive definite).
bool cholesky(const Mat& A, Mat& L);
// Solves L L^T x = b given the Cholesky factor L.
Vec cholesky_solve(const Mat& L, std::span<const double> b);
// LU with partial pivoting; solves A x = b for square A. Returns false when A is singular
// (a zero pivot) or produces non-finite values.
bool lu_solve(const Mat& A, std::span<const double> b, Vec& x);
// Solves A X = B column by column (B: n x m). Returns false when A is singular.
bool lu_solve_mat(const Mat& A, const Mat& B, Mat& X);

// ---- symmetric eigen decomposition (cyclic Jacobi) ----
struct SymEig {
  Vec values;  // descending
  Mat vectors; // column j is the unit eigenvector of values[j]
  int sweeps = 0;
};
// A must be square; it is symmetrized first. Throws polyhead::Error on non-square input.
SymEig sym_eig(const Mat& A);

// Pseudo-inverse of a symmetric matrix: eigenvalues with |lambda| <= rtol * max|lambda| are
// treated as 0 (this equals the SVD-based pinv with the same relative cut, since for a symmetric
// matrix the singular values are |lambda|). rtol < 0 selects n * machine epsilon, the default of
// torch.linalg.pinv / numpy for an n x n matrix.
Mat pinv_sym(const Mat& A, double rtol = -1.0);

// ---- singular value decomposition of a small matrix (one-sided Jacobi, Hestenes) ----
struct SVD {
  Mat U;    // m x n (columns for nonzero singular values are orthonormal; others are 0)
  Vec s;    // n singular values, descending
  Mat V;    // n x n orthogonal
};
// A = U diag(s) V^T for an m x n matrix (any m): the n columns of A are rotated until mutually
// orthogonal (one-sided Jacobi), so the cost is O(sweeps * n^2 * m); intended for small n.
// Singular values come with high relative accuracy.
SVD svd_jacobi(const Mat& A);
// Pseudo-inverse of a general small matrix through svd_jacobi; cut s <= rtol * s_max
// (rtol < 0: max(m, n) * eps).
Mat pinv(const Mat& A, double rtol = -1.0);

// ---- simplex ----
// Euclidean projection onto the probability simplex {w >= 0, sum w = 1} (sort-based, exact).
Vec project_simplex(std::span<const double> y);

// Machine epsilon of double.
constexpr double kEps = 2.220446049250313e-16;

}  // namespace polyhead::mtl::linalg
