// mtl/diagnostics/power_iteration.cpp: see power_iteration.h.
#include "mtl/diagnostics/power_iteration.h"

#include <cmath>

#include "engine/error.h"

namespace polyhead::mtl::diag {

namespace {
uint64_t splitmix(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
double uniform01(uint64_t& x) { return (double(splitmix(x) >> 11) + 0.5) * 0x1.0p-53; }  // in (0, 1)

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

std::vector<double> apply(const MatVec& hv, const std::vector<double>& v, const char* op) {
  std::vector<double> w = hv(v);
  PH_CHECK(w.size() == v.size(), op, "the product returned " << w.size() << " entries for a vector of " << v.size());
  for (double x : w) PH_CHECK(std::isfinite(x), op, "the product returned a non-finite entry");
  return w;
}
}  // namespace

std::vector<double> normal_vector(int64_t dim, uint64_t seed) {
  std::vector<double> v(static_cast<size_t>(dim));
  uint64_t st = seed ^ 0x5851F42D4C957F2Dull;
  for (int64_t i = 0; i < dim; i += 2) {
    double u1 = uniform01(st), u2 = uniform01(st);
    double r = std::sqrt(-2.0 * std::log(u1)), t = 2.0 * M_PI * u2;
    v[size_t(i)] = r * std::cos(t);
    if (i + 1 < dim) v[size_t(i + 1)] = r * std::sin(t);
  }
  return v;
}

std::vector<double> rademacher_vector(int64_t dim, uint64_t seed) {
  std::vector<double> v(static_cast<size_t>(dim));
  uint64_t st = seed ^ 0x2545F4914F6CDD1Dull;
  for (auto& x : v) x = (splitmix(st) >> 63) ? 1.0 : -1.0;
  return v;
}

PowerResult top_eigenvalue(const MatVec& hv, int64_t dim, const PowerOptions& o) {
  PH_CHECK(dim >= 1, "diag::top_eigenvalue", "dimension must be >= 1 (got " << dim << ")");
  PH_CHECK(o.max_iters >= 1, "diag::top_eigenvalue", "max_iters must be >= 1 (got " << o.max_iters << ")");
  PH_CHECK(o.tol >= 0, "diag::top_eigenvalue", "tol must be >= 0 (got " << o.tol << ")");
  PowerResult r;
  std::vector<double> v = normal_vector(dim, o.seed);
  double n = std::sqrt(dot(v, v));
  for (auto& x : v) x /= n;
  double prev = 0;
  for (int it = 1; it <= o.max_iters; ++it) {
    std::vector<double> w = apply(hv, v, "diag::top_eigenvalue");
    r.iterations = it;
    double lam = dot(v, w), wn = std::sqrt(dot(w, w));
    r.eigenvalue = lam;
    if (wn == 0) {  // v is in the null space: H v = 0 (H = 0 or an unlucky start)
      r.converged = true;
      r.vector = v;
      return r;
    }
    for (auto& x : w) x /= wn;
    v = std::move(w);
    if (it > 1 && std::abs(lam - prev) <= o.tol * std::abs(lam)) {
      r.converged = true;
      break;
    }
    prev = lam;
  }
  r.vector = v;
  return r;
}

double hutchinson_trace(const MatVec& hv, int64_t dim, int samples, uint64_t seed) {
  PH_CHECK(samples >= 1, "diag::hutchinson_trace", "needs at least one sample (got " << samples << ")");
  double s = 0;
  for (int i = 0; i < samples; ++i) {
    std::vector<double> z = rademacher_vector(dim, seed + uint64_t(i) * 0x9E3779B97F4A7C15ull);
    s += dot(z, apply(hv, z, "diag::hutchinson_trace"));
  }
  return s / samples;
}

}  // namespace polyhead::mtl::diag
