// mtl/methods/excessmtl.cpp: "excessmtl", ExcessMTL (He et al., "Robust Multi-Task Learning with
// Excess Risks", ICML 2024), LibMTL version.
// Each step: H_k += g_k^2 (elementwise AdaGrad accumulator), r_k = sum_p g_kp^2 / sqrt(H_kp + 1e-7).
//   First step: r_init = r, weights stay 1 (LibMTL's flag is named first_epoch but means first
//   batch). Later steps: w <- w * exp(eta r / r_init), w <- K w / sum w.
//   d = sum_k w_k g_k (returned as w; heads get w-weighted gradients: LibMTL autograd mode).
// Option robust_step_size eta (default 0.01).
// State (LibMTL names): loss_weight (K), grad_sum (K x P, absent before the first step),
// initial_w (absent before the first step), first_epoch (1 until the first step, then 0).
// load_state(state()) restores exactly. Invariants: a task whose first-step gradient was zero has
// r_init = 0 and would give 0/0 (NaN in LibMTL); this throws polyhead::Error instead. P is fixed.
#include "mtl/methods/basic_methods.h"

namespace polyhead::mtl::basic {
namespace {

class ExcessMTL final : public BasicMethod {
public:
  ExcessMTL(int K, double eta) : BasicMethod("excessmtl", K), eta_(eta), w_(size_t(K), 1.0) {}
  unsigned needs() const override { return kNeedLosses | kNeedJacobian; }
  HeadGrad head_grad() const override { return HeadGrad::Weighted; }

  StepOutput step(const StepInput& in) override {
    check(in);
    const Mat& G = *in.G;
    const int P = G.cols;
    if (!H_) H_ = Mat(K_, P, 0.0);
    if (H_->cols != P)
      throw Error(
          name_,
          "G has P = " + std::to_string(P) + " columns but the AdaGrad accumulator has " + std::to_string(H_->cols),
          "the shared parameter count must not change during training");
    if (!first_) {
      for (int k = 0; k < K_; ++k)
        if (!((*init_)[k] > 0))
          throw Error(name_,
                      "task " + std::to_string(k) +
                          " had a zero gradient on the first step, so its excess-risk "
                          "normaliser is 0 and the weight update is 0/0",
                      "make sure every task has a non-zero gradient on the first step (or reset the method)");
    }
    Mat& H = *H_;
    Vec r(static_cast<size_t>(K_));
    for (int k = 0; k < K_; ++k) {
      double s = 0.0;
      for (int p = 0; p < P; ++p) {
        const double g = G(k, p);
        H(k, p) += g * g;
        s += g * (1.0 / std::sqrt(H(k, p) + 1e-7)) * g;
      }
      r[k] = s;
    }
    if (first_) {
      init_ = r;
      first_ = false;
    } else {
      double total = 0.0;
      for (int k = 0; k < K_; ++k) total += (w_[k] = w_[k] * std::exp(r[k] / (*init_)[k] * eta_));
      for (int k = 0; k < K_; ++k) w_[k] = w_[k] / total * K_;
    }
    StepOutput out;
    out.w = w_;
    return out;
  }

  StateDict state() const override {
    StateDict s;
    s["loss_weight"] = row_mat(w_);
    if (H_) s["grad_sum"] = *H_;
    if (init_) s["initial_w"] = row_mat(*init_);
    s["first_epoch"] = scalar_mat(first_ ? 1.0 : 0.0);
    return s;
  }
  void load_state(const StateDict& s) override {
    check_state_keys(name_, s, {"loss_weight", "grad_sum", "initial_w", "first_epoch"});
    w_ = read_vec(name_, s, "loss_weight", K_).value_or(Vec(size_t(K_), 1.0));
    H_ = read_mat(name_, s, "grad_sum", K_, -1);
    init_ = read_vec(name_, s, "initial_w", K_);
    first_ = read_scalar(name_, s, "first_epoch").value_or(init_ ? 0.0 : 1.0) != 0.0;
    if (!first_ && !init_)
      throw Error(name_, "load_state: first_epoch is 0 but initial_w is missing", "save and load the complete state");
  }

private:
  double eta_;
  Vec w_;
  std::optional<Mat> H_;
  std::optional<Vec> init_;
  bool first_ = true;
};

}  // namespace

std::unique_ptr<Method> make_excessmtl(int K, const Options& o) {
  o.check_known("excessmtl", {"robust_step_size"});
  const double eta = o.get_double("robust_step_size", 0.01);
  if (!std::isfinite(eta)) throw Error("make_method", "method 'excessmtl': option robust_step_size must be finite");
  return std::make_unique<ExcessMTL>(K, eta);
}

}  // namespace polyhead::mtl::basic
