// mtl/diagnostics/noise.cpp: see noise.h.
#include "mtl/diagnostics/noise.h"

#include <cmath>
#include <limits>

#include "engine/error.h"
#include "mtl/diagnostics/conflict.h"

namespace polyhead::mtl::diag {

namespace {
void sums(const Mat& Q, double& tr, double& all) {
  tr = all = 0;
  for (int i = 0; i < Q.rows; ++i) {
    tr += Q(i, i);
    for (int j = 0; j < Q.cols; ++j) all += Q(i, j);
  }
}
}  // namespace

double coherence(const Mat& Q) {
  check_gramian(Q, "diag::coherence");
  double tr, all;
  sums(Q, tr, all);
  const double m = Q.rows;
  if (tr <= 0) return std::numeric_limits<double>::quiet_NaN();
  return std::max(all, 0.0) / (m * tr);  // (all / m^2) / (tr / m)
}

NoiseStats noise_stats(const Mat& Q, int64_t s) {
  check_gramian(Q, "diag::noise_stats");
  PH_CHECK_HINT(Q.rows >= 2, "diag::noise_stats", "needs at least 2 micro-batch gradients, got " << Q.rows,
                "use a probe batch of at least two micro-batches (probe_size >= 2 * micro_batch)");
  PH_CHECK(s >= 1, "diag::noise_stats", "micro-batch size must be >= 1 (got " << s << ")");
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double m = Q.rows, sd = double(s), B = m * sd;
  double tr, all;
  sums(Q, tr, all);
  NoiseStats r;
  r.gs2 = tr / m;
  r.gb2 = std::max(all, 0.0) / (m * m);
  double g2 = (B * r.gb2 - sd * r.gs2) / (B - sd);
  r.trace_cov = (r.gs2 - r.gb2) / (1.0 / sd - 1.0 / B);
  r.grad_sq = std::max(g2, 0.0);
  r.noise_scale = g2 > 0 ? r.trace_cov / g2 : nan;
  r.coherence = r.gs2 > 0 ? r.gb2 / r.gs2 : nan;
  r.diversity = r.gb2 > 0 ? r.gs2 / (m * r.gb2) : nan;
  return r;
}

}  // namespace polyhead::mtl::diag
