// mtl/methods/robust.cpp: robust aggregators from Byzantine-tolerant federated learning, torchjd
// versions.
//   krum (Blanchard et al., "Machine Learning with Adversaries: Byzantine Tolerant Gradient
//     Descent", NeurIPS 2017): distances delta_ij = sqrt(M_ii + M_jj - 2 M_ij) (negative rounding
//     clamped to 0); score_i = sum of the K - f - 2 smallest distances to the other rows; the
//     n_selected rows of lowest score get weight 1/n_selected (Multi-Krum). Options n_byzantine f
//     (default 0), n_selected (default 1); K >= f + 3 and K >= n_selected. Gram-only.
//   trimmedmean (Yin et al., "Byzantine-Robust Distributed Learning: Towards Optimal Statistical
//     Rates", ICML 2018): per column, sort the K values, drop the trim_number largest and smallest,
//     average the rest (returned as d). Option trim_number (default 0); K >= 2 trim_number + 1.
// Invariants: stateless, deterministic (ties broken by task index); heads get unweighted gradients.
#include <algorithm>
#include <numeric>

#include "mtl/methods/basic_methods.h"

namespace polyhead::mtl::basic {
namespace {

class Krum final : public BasicMethod {
public:
  Krum(int K, int f, int m) : BasicMethod("krum", K), f_(f), m_(m) {}
  unsigned needs() const override { return kNeedGramian; }

  StepOutput step(const StepInput& in) override {
    check(in);
    const Mat M = gramian_of(in);
    const int n_closest = K_ - f_ - 2;
    Vec score(static_cast<size_t>(K_));
    Vec dist(static_cast<size_t>(K_));
    for (int i = 0; i < K_; ++i) {
      for (int j = 0; j < K_; ++j) dist[j] = std::sqrt(std::max(M(j, j) + M(i, i) - 2 * M(i, j), 0.0));
      std::sort(dist.begin(), dist.end());
      double s = 0.0;
      for (int t = 1; t <= n_closest; ++t) s += dist[t];  // dist[0] is the row itself (0)
      score[i] = s;
    }
    std::vector<int> idx(static_cast<size_t>(K_));
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return score[a] < score[b]; });
    StepOutput out;
    out.w.assign(size_t(K_), 0.0);
    for (int t = 0; t < m_; ++t) out.w[idx[t]] += 1.0 / m_;
    return out;
  }

private:
  int f_, m_;
};

class TrimmedMean final : public BasicMethod {
public:
  TrimmedMean(int K, int trim) : BasicMethod("trimmedmean", K), trim_(trim) {}
  unsigned needs() const override { return kNeedJacobian; }

  StepOutput step(const StepInput& in) override {
    check(in);
    const Mat& G = *in.G;
    const int keep = K_ - 2 * trim_;
    StepOutput out;
    out.d.assign(size_t(G.cols), 0.0);
    Vec col(static_cast<size_t>(K_));
    for (int p = 0; p < G.cols; ++p) {
      for (int k = 0; k < K_; ++k) col[k] = G(k, p);
      std::sort(col.begin(), col.end());
      double s = 0.0;
      for (int t = trim_; t < trim_ + keep; ++t) s += col[t];
      out.d[p] = s / keep;
    }
    return out;
  }

private:
  int trim_;
};

}  // namespace

std::unique_ptr<Method> make_krum(int K, const Options& o) {
  o.check_known("krum", {"n_byzantine", "n_selected"});
  const int f = o.get_int("n_byzantine", 0), m = o.get_int("n_selected", 1);
  if (f < 0) throw Error("make_method", "method 'krum': option n_byzantine must be >= 0");
  if (m < 1) throw Error("make_method", "method 'krum': option n_selected must be >= 1");
  if (K < f + 3)
    throw Error(
        "make_method",
        "method 'krum' needs K >= n_byzantine + 3 = " + std::to_string(f + 3) + " tasks, got K = " + std::to_string(K),
        "lower n_byzantine or use another aggregator for so few tasks");
  if (K < m)
    throw Error("make_method",
                "method 'krum': n_selected = " + std::to_string(m) + " exceeds K = " + std::to_string(K));
  return std::make_unique<Krum>(K, f, m);
}

std::unique_ptr<Method> make_trimmedmean(int K, const Options& o) {
  o.check_known("trimmedmean", {"trim_number"});
  const int t = o.get_int("trim_number", 0);
  if (t < 0) throw Error("make_method", "method 'trimmedmean': option trim_number must be >= 0");
  if (K < 2 * t + 1)
    throw Error("make_method",
                "method 'trimmedmean' needs K >= 2 trim_number + 1 = " + std::to_string(2 * t + 1) +
                    " tasks, got K = " + std::to_string(K),
                "lower trim_number");
  return std::make_unique<TrimmedMean>(K, t);
}

}  // namespace polyhead::mtl::basic
