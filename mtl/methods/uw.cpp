// mtl/methods/uw.cpp: "uw", Uncertainty Weighting (Kendall, Gal & Cipolla, "Multi-Task Learning
// Using Uncertainty to Weigh Losses", CVPR 2018), LibMTL form:
//   objective sum_k [ L_k / (2 e^{s_k}) + s_k / 2 ],  s learnable, initialised to -0.5,
// so w_k = 1 / (2 e^{s_k}) (0.824 at init) and d objective / d s_k = 1/2 - L_k / (2 e^{s_k}).
// (The Nash-MTL/FAMO form 1/2 (e^{-s} L + s) is the same objective with s shifted by log 2.)
// Invariants: params() is s (K), param_grads() its gradient at the last step(); the trainer's
// optimizer steps s. state() = {"loss_scale": s}; load_state(state()) restores exactly.
#include "mtl/methods/basic_methods.h"

namespace polyhead::mtl::basic {
namespace {

class UW final : public BasicMethod {
public:
  explicit UW(int K) : BasicMethod("uw", K), s_(size_t(K), -0.5), grad_(size_t(K), 0.0) {}
  unsigned needs() const override { return kNeedLosses; }
  HeadGrad head_grad() const override { return HeadGrad::Weighted; }
  StepOutput step(const StepInput& in) override {
    check(in);
    if (!all_finite(s_))
      throw Error(name_, "the learnable log-variances s became non-finite",
                  "lower the learning rate of the method's parameters");
    StepOutput out;
    out.w.resize(static_cast<size_t>(K_));
    for (int k = 0; k < K_; ++k) {
      const double two_e = 2.0 * std::exp(s_[k]);
      out.w[k] = 1.0 / two_e;
      grad_[k] = 0.5 - in.L[k] / two_e;
    }
    return out;
  }
  std::span<double> params() override { return s_; }
  std::span<const double> param_grads() const override { return grad_; }
  StateDict state() const override { return {{"loss_scale", row_mat(s_)}}; }
  void load_state(const StateDict& s) override {
    check_state_keys(name_, s, {"loss_scale"});
    s_ = read_vec(name_, s, "loss_scale", K_).value_or(Vec(size_t(K_), -0.5));
    std::fill(grad_.begin(), grad_.end(), 0.0);
  }

private:
  Vec s_, grad_;
};

}  // namespace

std::unique_ptr<Method> make_uw(int K, const Options& o) {
  o.check_known("uw", {});
  return std::make_unique<UW>(K);
}

}  // namespace polyhead::mtl::basic
