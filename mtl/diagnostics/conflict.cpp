// mtl/diagnostics/conflict.cpp: see conflict.h.
#include "mtl/diagnostics/conflict.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/error.h"

namespace polyhead::mtl::diag {

void check_gramian(const Mat& M, const char* op) {
  PH_CHECK_HINT(M.rows == M.cols && M.rows > 0, op, "expected a non-empty square K x K Gramian, got " << M.rows << " x " << M.cols,
                "pass M = G G^T of the K per-task gradients");
  double scale = 0;
  for (double v : M.a) {
    PH_CHECK(std::isfinite(v), op, "the Gramian has a non-finite entry (" << v << ")");
    scale = std::max(scale, std::abs(v));
  }
  for (int i = 0; i < M.rows; ++i) {
    PH_CHECK(M(i, i) >= 0, op, "Gramian diagonal entry " << i << " is negative (" << M(i, i) << ")");
    for (int j = 0; j < i; ++j)
      PH_CHECK(std::abs(M(i, j) - M(j, i)) <= 1e-9 * scale, op,
               "the Gramian is not symmetric: M(" << i << "," << j << ") = " << M(i, j) << " vs " << M(j, i));
  }
}

std::vector<double> norms(const Mat& M) {
  check_gramian(M, "diag::norms");
  std::vector<double> n(size_t(M.rows));
  for (int k = 0; k < M.rows; ++k) n[size_t(k)] = std::sqrt(M(k, k));
  return n;
}

Mat cosine_matrix(const Mat& M) {
  auto n = norms(M);
  Mat C(M.rows, M.cols);
  for (int i = 0; i < M.rows; ++i)
    for (int j = 0; j < M.cols; ++j) {
      double d = n[size_t(i)] * n[size_t(j)];
      C(i, j) = d > 0 ? std::clamp(M(i, j) / d, -1.0, 1.0) : 0.0;
    }
  return C;
}

ConflictStats conflict_stats(const Mat& M) {
  const int K = M.rows;
  Mat C = cosine_matrix(M);
  ConflictStats s;
  int pairs = 0, neg = 0;
  double sum = 0, mn = std::numeric_limits<double>::infinity();
  for (int i = 0; i < K; ++i)
    for (int j = i + 1; j < K; ++j) {
      ++pairs;
      sum += C(i, j);
      mn = std::min(mn, C(i, j));
      if (C(i, j) < 0) ++neg;
    }
  const double nan = std::numeric_limits<double>::quiet_NaN();
  s.mean_cosine = pairs ? sum / pairs : nan;
  s.min_cosine = pairs ? mn : nan;
  s.pair_fraction = pairs ? double(neg) / pairs : 0.0;
  s.any = neg > 0;
  double csum = 0, tot = 0;
  for (int i = 0; i < K; ++i)
    for (int j = 0; j < K; ++j) {
      csum += C(i, j);
      tot += M(i, j);
    }
  s.directional = std::sqrt(std::max(csum, 0.0)) / K;
  double mean_sq = 0;
  for (int k = 0; k < K; ++k) mean_sq += M(k, k) / K;
  for (int k = 0; k < K; ++k) s.magnitude += (M(k, k) - mean_sq) * (M(k, k) - mean_sq) / K;
  s.sum_norm = std::sqrt(std::max(tot, 0.0));
  return s;
}

std::vector<bool> update_conflicts(const Mat& M, const std::vector<double>& w) {
  check_gramian(M, "diag::update_conflicts");
  PH_CHECK_HINT(int(w.size()) == M.rows, "diag::update_conflicts", w.size() << " weights for " << M.rows << " tasks",
                "give one row weight per task (the update is sum_k w_k g_k)");
  std::vector<bool> out(w.size());
  for (int k = 0; k < M.rows; ++k) {
    double dot = 0;
    for (int j = 0; j < M.rows; ++j) dot += w[size_t(j)] * M(j, k);
    out[size_t(k)] = dot < 0;
  }
  return out;
}

void ConflictCounter::add(const ConflictStats& s) {
  ++n_;
  if (s.any) ++conflicting_;
  wsum_ += s.sum_norm;
  if (s.any) wconf_ += s.sum_norm;
}

}  // namespace polyhead::mtl::diag
