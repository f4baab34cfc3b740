// mtl/diagnostics/power_iteration.h: the top eigenvalue and the trace of a symmetric operator
// known only through matrix-vector products (here Hessian-vector products), for sharpness (D4).
//
// top_eigenvalue: power iteration from a random unit vector (own splitmix64 + Box-Muller draws, so
// the start is the same on every platform for a given seed): w = H v, lambda = v.w (Rayleigh
// quotient), v = w / ||w||; stops when |lambda - lambda_prev| <= tol * |lambda| (converged) or
// after max_iters products. Power iteration finds the eigenvalue of largest MAGNITUDE; near a
// minimum that is the top (positive) Hessian eigenvalue, the sharpness. A dominant negative
// eigenvalue is reported as it is (negative), not hidden [E]. Defaults follow the spec's [E]
// table: 20 iterations, relative tolerance 1e-3.
// hutchinson_trace: tr(H) ~ mean_i z_i^T H z_i with Rademacher z_i (exact for diagonal H).
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

namespace polyhead::mtl::diag {

using MatVec = std::function<std::vector<double>(const std::vector<double>&)>;

struct PowerOptions {
  int max_iters = 20;
  double tol = 1e-3;
  uint64_t seed = 0;
};

struct PowerResult {
  double eigenvalue = 0;
  int iterations = 0;       // products computed
  bool converged = false;
  std::vector<double> vector;  // the last unit iterate
};

PowerResult top_eigenvalue(const MatVec& hv, int64_t dim, const PowerOptions& o = {});
double hutchinson_trace(const MatVec& hv, int64_t dim, int samples, uint64_t seed = 0);

// Deterministic draws (splitmix64): standard normals and Rademacher signs.
std::vector<double> normal_vector(int64_t dim, uint64_t seed);
std::vector<double> rademacher_vector(int64_t dim, uint64_t seed);

}  // namespace polyhead::mtl::diag
