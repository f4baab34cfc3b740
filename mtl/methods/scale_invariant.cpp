// mtl/methods/scale_invariant.cpp: "si", the scale-invariant loss sum_k log L_k
// (ScaleInvariantLinearScalarization of the Nash-MTL (Navon et al., ICML 2022) and FAMO repos).
// Its gradient is sum_k (1/L_k) grad L_k, so w_k = 1/L_k: the same objective in every unit of the
// losses. Invariants: stateless, deterministic; L_k > 0 is required (throws otherwise).
#include "mtl/methods/basic_methods.h"

namespace polyhead::mtl::basic {
namespace {

class ScaleInvariant final : public BasicMethod {
public:
  explicit ScaleInvariant(int K) : BasicMethod("si", K) {}
  unsigned needs() const override { return kNeedLosses; }
  HeadGrad head_grad() const override { return HeadGrad::Weighted; }
  StepOutput step(const StepInput& in) override {
    check(in);
    check_positive_losses(name_, in.L);
    StepOutput out;
    out.w.resize(static_cast<size_t>(K_));
    for (int k = 0; k < K_; ++k) out.w[k] = 1.0 / in.L[k];
    return out;
  }
};

}  // namespace

std::unique_ptr<Method> make_si(int K, const Options& o) {
  o.check_known("si", {});
  return std::make_unique<ScaleInvariant>(K);
}

}  // namespace polyhead::mtl::basic
