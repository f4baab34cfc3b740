// mtl/methods/gradnorm.cpp: "gradnorm", GradNorm (Chen et al., "GradNorm: Gradient Normalization
// for Adaptive Loss Balancing in Deep Multitask Networks", ICML 2018), LibMTL version:
//   epoch 0: w = 1 (EW), no gradient for the logits.
//   epoch >= 1: w = K softmax(s) (s learnable, init 1); n_k = ||g_k|| = sqrt(M_kk);
//     GW_k = w_k n_k, Gbar = mean_k GW_k, r = (L / L0) / mean(L / L0) with L0 = loss_history[:, 0]
//     (the epoch-0 mean loss), and the GradNorm loss sum_k |GW_k - stopgrad(Gbar r_k^alpha)| is
//     differentiated w.r.t. s only: param_grads = z * (a - z.a), a_k = K sign(GW_k - c_k) n_k,
//     z = softmax(s). d = sum_k w_k g_k (w taken before the optimizer steps s).
// Option alpha (default 1.5). Needs only the Gramian's diagonal (gradient norms over all shared
// parameters, as LibMTL). Invariants: params() = s, stepped by the trainer's optimizer;
// state() = {"loss_scale": s}; load_state(state()) restores exactly; heads get unweighted gradients.
#include "mtl/methods/basic_methods.h"

namespace polyhead::mtl::basic {
namespace {

class GradNorm final : public BasicMethod {
public:
  GradNorm(int K, double alpha)
      : BasicMethod("gradnorm", K), alpha_(alpha), s_(size_t(K), 1.0), grad_(size_t(K), 0.0) {}
  unsigned needs() const override { return kNeedLosses | kNeedGramian | kNeedLossHistory; }

  StepOutput step(const StepInput& in) override {
    check(in);
    std::fill(grad_.begin(), grad_.end(), 0.0);
    StepOutput out;
    if (in.epoch < 1) {
      out.w.assign(size_t(K_), 1.0);
      return out;
    }
    const Mat& H = *in.loss_history;
    if (H.cols < 1)
      throw Error(name_, "from epoch 1 on GradNorm needs the epoch-0 mean losses, but loss_history is empty",
                  "record the mean training loss of every finished epoch in loss_history");
    if (!all_finite(s_))
      throw Error(name_, "the learnable logits became non-finite",
                  "lower the learning rate of the method's parameters");
    const Mat M = gramian_of(in);
    const Vec z = softmax(s_);
    Vec w(static_cast<size_t>(K_)), n(static_cast<size_t>(K_)), GW(static_cast<size_t>(K_)),
        Lt(static_cast<size_t>(K_));
    double Gbar = 0.0, Lmean = 0.0;
    for (int k = 0; k < K_; ++k) {
      if (!(H(k, 0) > 0))
        throw Error(name_, "loss_history[" + std::to_string(k) + "][0] is not > 0",
                    "GradNorm divides by the epoch-0 mean loss; use positive losses");
      w[k] = K_ * z[k];
      n[k] = std::sqrt(std::max(M(k, k), 0.0));
      GW[k] = w[k] * n[k];
      Gbar += GW[k];
      Lt[k] = in.L[k] / H(k, 0);
      Lmean += Lt[k];
    }
    Gbar /= K_;
    Lmean /= K_;
    Vec a(static_cast<size_t>(K_));
    for (int k = 0; k < K_; ++k) {
      const double c = Gbar * std::pow(Lt[k] / Lmean, alpha_);
      const double diff = GW[k] - c;
      const double sgn = diff > 0 ? 1.0 : (diff < 0 ? -1.0 : 0.0);
      a[k] = K_ * (sgn * n[k]);
    }
    const double za = dot(z, a);
    for (int k = 0; k < K_; ++k) grad_[k] = (a[k] - za) * z[k];
    out.w = std::move(w);
    return out;
  }

  std::span<double> params() override { return s_; }
  std::span<const double> param_grads() const override { return grad_; }
  StateDict state() const override { return {{"loss_scale", row_mat(s_)}}; }
  void load_state(const StateDict& s) override {
    check_state_keys(name_, s, {"loss_scale"});
    s_ = read_vec(name_, s, "loss_scale", K_).value_or(Vec(size_t(K_), 1.0));
    std::fill(grad_.begin(), grad_.end(), 0.0);
  }

private:
  double alpha_;
  Vec s_, grad_;
};

}  // namespace

std::unique_ptr<Method> make_gradnorm(int K, const Options& o) {
  o.check_known("gradnorm", {"alpha"});
  const double alpha = o.get_double("alpha", 1.5);
  if (!std::isfinite(alpha)) throw Error("make_method", "method 'gradnorm': option alpha must be finite");
  return std::make_unique<GradNorm>(K, alpha);
}

}  // namespace polyhead::mtl::basic
