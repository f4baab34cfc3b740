// mtl/methods/graddrop.cpp: "graddrop", Gradient Sign Dropout (Chen et al., "Just Pick a Sign:
// Optimizing Deep Multitask Models with Gradient Sign Dropout", NeurIPS 2020).
// Per column p of G (K x P): s_k = G[k][p] * sign(rep[p]) (variant libmtl, the LibMTL form on the
// representation gradients) or s_k = G[k][p] (variant torchjd, on the raw rows);
//   purity P = 1/2 (1 + sum_k s_k / (sum_k |s_k| + eps)), eps = 1e-7 (libmtl) or 0 (torchjd);
//   U ~ U[0,1) per column (rng->uniform(P));
//   mask_k = (P > U and s_k > 0) or (P < U and s_k < 0);
//   d[p] = sum_k G[k][p] (leak + (1 - leak) mask_k).
// Options: variant (libmtl | torchjd, default libmtl), leak (default 0). Returns d (not a weighted
// sum of rows) and no reported weights. A column whose entries are all 0 gives purity 0/0 (torchjd)
// and drops out (d = 0 there), as in the reference.
// Invariants: stateless; the only randomness is P uniform draws per step; the libmtl variant needs
// the representation (StepInput.rep, 1 x P); heads get unweighted gradients.
#include "mtl/methods/basic_methods.h"

namespace polyhead::mtl::basic {
namespace {

class GradDrop final : public BasicMethod {
public:
  GradDrop(int K, bool libmtl, double leak) : BasicMethod("graddrop", K), libmtl_(libmtl), leak_(leak) {}
  unsigned needs() const override { return kNeedJacobian | (libmtl_ ? kNeedRepresentation : 0u); }

  StepOutput step(const StepInput& in) override {
    check(in);
    Random& rng = need_rng(name_, in);
    const Mat& G = *in.G;
    const int P = G.cols;
    Vec U(static_cast<size_t>(P));
    rng.uniform(U);
    Vec s(static_cast<size_t>(K_));
    StepOutput out;
    out.d.assign(size_t(P), 0.0);
    for (int p = 0; p < P; ++p) {
      double sign = 1.0;
      if (libmtl_) {
        const double r = (*in.rep)(0, p);
        sign = r > 0 ? 1.0 : (r < 0 ? -1.0 : 0.0);
      }
      double sum = 0.0, sum_abs = 0.0;
      for (int k = 0; k < K_; ++k) {
        s[k] = G(k, p) * sign;
        sum += s[k];
        sum_abs += std::abs(s[k]);
      }
      const double purity = 0.5 * (1.0 + sum / (sum_abs + (libmtl_ ? 1e-7 : 0.0)));
      double acc = 0.0;
      for (int k = 0; k < K_; ++k) {
        const bool keep = (purity > U[p] && s[k] > 0) || (purity < U[p] && s[k] < 0);
        acc += G(k, p) * (leak_ + (1.0 - leak_) * (keep ? 1.0 : 0.0));
      }
      out.d[p] = acc;
    }
    return out;
  }

private:
  bool libmtl_;
  double leak_;
};

}  // namespace

std::unique_ptr<Method> make_graddrop(int K, const Options& o) {
  o.check_known("graddrop", {"variant", "leak"});
  const std::string v = o.get_string("variant", "libmtl");
  if (v != "libmtl" && v != "torchjd")
    throw Error("make_method", "method 'graddrop': unknown variant '" + v + "'", "valid variants: libmtl, torchjd");
  const double leak = o.get_double("leak", 0.0);
  if (!(leak >= 0 && leak <= 1)) throw Error("make_method", "method 'graddrop': option leak must be in [0, 1]");
  return std::make_unique<GradDrop>(K, v == "libmtl", leak);
}

}  // namespace polyhead::mtl::basic
