// mtl/methods/gls.cpp: "gls", Geometric Loss Strategy (Chennupati et al., MultiNet++, CVPR
// Workshops 2019; LibMTL GLS). Objective (prod_k L_k)^(1/K), whose gradient is
// sum_k [(prod L)^(1/K) / (K L_k)] grad L_k, so w_k = exp(mean_j log L_j) / (K L_k) (computed in
// log space: no under/overflow of the product).
// LibMTL returns (logs) L_k / (K prod L), which is NOT the weight that produced d; that value is
// StepOutput.reported. Invariants: stateless, deterministic, L_k > 0 required.
#include "mtl/methods/basic_methods.h"

namespace polyhead::mtl::basic {
namespace {

class GLS final : public BasicMethod {
public:
  explicit GLS(int K) : BasicMethod("gls", K) {}
  unsigned needs() const override { return kNeedLosses; }
  HeadGrad head_grad() const override { return HeadGrad::Weighted; }
  StepOutput step(const StepInput& in) override {
    check(in);
    check_positive_losses(name_, in.L);
    double mean_log = 0.0, prod = 1.0;
    for (double l : in.L) {
      mean_log += std::log(l);
      prod *= l;
    }
    const double geo = std::exp(mean_log / K_);
    StepOutput out;
    out.w.resize(static_cast<size_t>(K_));
    Vec rep(static_cast<size_t>(K_));
    for (int k = 0; k < K_; ++k) {
      out.w[k] = geo / (K_ * in.L[k]);
      rep[k] = in.L[k] / (K_ * prod);
    }
    out.reported = std::move(rep);
    return out;
  }
};

}  // namespace

std::unique_ptr<Method> make_gls(int K, const Options& o) {
  o.check_known("gls", {});
  return std::make_unique<GLS>(K);
}

}  // namespace polyhead::mtl::basic
