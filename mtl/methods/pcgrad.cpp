// mtl/methods/pcgrad.cpp: "pcgrad", Project Conflicting Gradients (Yu et al., "Gradient Surgery
// for Multi-Task Learning", NeurIPS 2020), written on the Gramian as torchjd's PCGradWeighting:
// each projected gradient p_i = sum_l c(i)_l g_l is tracked by its coefficients c(i), so
// p_i.g_j = (M c(i))_j and projecting p_i off g_j is c(i)_j -= (p_i.g_j) / ||g_j||^2.
// d = sum_i p_i, i.e. w = sum_i c(i) (the sum, not the mean, as in LibMTL, torchjd and the paper).
// Option variant:
//   libmtl (default): for task i, shuffle ALL K tasks (i included) and project when p_i.g_j < 0,
//     with 1e-8 added to ||g_j||^2 (LibMTL PCGrad);
//   torchjd: one random permutation of all K per row, row i skipped, no epsilon (torchjd PCGrad).
// Randomness: K calls of rng->shuffle on [0..K-1] per step (throws when rng is null).
// Invariants: stateless, Gram-only; w is what LibMTL returns, so no separate reported weights;
// heads get unweighted gradients.
#include <numeric>

#include "mtl/methods/basic_methods.h"

namespace polyhead::mtl::basic {
namespace {

class PCGrad final : public BasicMethod {
public:
  PCGrad(int K, bool libmtl) : BasicMethod("pcgrad", K), libmtl_(libmtl) {}
  unsigned needs() const override { return kNeedGramian; }

  StepOutput step(const StepInput& in) override {
    check(in);
    Random& rng = need_rng(name_, in);
    const Mat M = gramian_of(in);
    const double eps = libmtl_ ? 1e-8 : 0.0;
    Vec w(size_t(K_), 0.0), c(static_cast<size_t>(K_));
    std::vector<int> order(static_cast<size_t>(K_));
    for (int i = 0; i < K_; ++i) {
      std::iota(order.begin(), order.end(), 0);
      rng.shuffle(order);
      check_permutation(order);
      std::fill(c.begin(), c.end(), 0.0);
      c[i] = 1.0;
      for (int j : order) {
        if (!libmtl_ && j == i) continue;
        double g = 0.0;
        for (int l = 0; l < K_; ++l) g += c[l] * M(l, j);
        if (g < 0.0) c[j] -= g / (M(j, j) + eps);
      }
      for (int l = 0; l < K_; ++l) w[l] += c[l];
    }
    StepOutput out;
    out.w = std::move(w);
    return out;
  }

private:
  void check_permutation(const std::vector<int>& order) const {
    std::vector<char> seen(size_t(K_), 0);
    bool ok = int(order.size()) == K_;
    for (int j : order) {
      if (j < 0 || j >= K_ || seen[j])
        ok = false;
      else
        seen[j] = 1;
    }
    if (!ok) throw Error(name_, "the random source's shuffle did not return a permutation of the tasks");
  }
  bool libmtl_;
};

}  // namespace

std::unique_ptr<Method> make_pcgrad(int K, const Options& o) {
  o.check_known("pcgrad", {"variant"});
  const std::string v = o.get_string("variant", "libmtl");
  if (v != "libmtl" && v != "torchjd")
    throw Error("make_method", "method 'pcgrad': unknown variant '" + v + "'", "valid variants: libmtl, torchjd");
  return std::make_unique<PCGrad>(K, v == "libmtl");
}

}  // namespace polyhead::mtl::basic
