// mtl/methods/rlw.cpp: "rlw", Random Loss Weighting (Lin et al., "Reasonable Effectiveness of
// Random Weighting", TMLR 2022; LibMTL RLW, torchjd Random). Each step draws z ~ N(0, I_K) from
// StepInput::rng and uses w = softmax(z) (sum 1).
// Invariants: stateless; the only randomness is K normal draws per step from in.rng (throws when
// rng is null); heads get w-weighted gradients.
#include "mtl/methods/basic_methods.h"

namespace polyhead::mtl::basic {
namespace {

class RLW final : public BasicMethod {
public:
  explicit RLW(int K) : BasicMethod("rlw", K) {}
  unsigned needs() const override { return 0; }
  HeadGrad head_grad() const override { return HeadGrad::Weighted; }
  StepOutput step(const StepInput& in) override {
    check(in);
    Random& rng = need_rng(name_, in);
    Vec z(static_cast<size_t>(K_));
    rng.normal(z);
    if (!all_finite(z)) throw Error(name_, "the random source returned a non-finite normal draw");
    StepOutput out;
    out.w = softmax(z);
    return out;
  }
};

}  // namespace

std::unique_ptr<Method> make_rlw(int K, const Options& o) {
  o.check_known("rlw", {});
  return std::make_unique<RLW>(K);
}

}  // namespace polyhead::mtl::basic
