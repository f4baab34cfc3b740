// mtl/methods/famo.cpp: "famo", Fast Adaptive Multitask Optimization (Liu et al., NeurIPS 2023;
// LibMTL FAMO, official Cranial-XIX/FAMO).
// step(L):           z = softmax(xi), D = L - min_losses + 1e-8, c = sum_k z_k / D_k,
//                    objective sum_k z_k log(D_k) / c, so w_k = z_k / (c D_k) (sum 1).
// after_update(L'):  delta = log D - log(L' - min_losses + 1e-8) (the log-loss decrease on the same
//                    batch), xi.grad = z * (delta - z.delta), then one torch-style Adam step on xi
//                    (lr option `lr`, default 0.025; L2 weight decay option `weight_decay`, default
//                    1e-3; betas 0.9/0.999, eps 1e-8). LibMTL never clips.
// State (LibMTL names): w (the logits xi), step, min_losses (zeros), adam_exp_avg / adam_exp_avg_sq
// (absent until the first update), adam_step, prev_losses (the L of the last step, needed by
// after_update). load_state(state()) restores exactly. Invariants: L > min_losses and
// L' > min_losses; after_update before any step() throws. Returns no reported weights (LibMTL
// returns None).
#include "mtl/methods/basic_methods.h"

namespace polyhead::mtl::basic {
namespace {

class FAMO final : public BasicMethod {
public:
  FAMO(int K, double lr, double wd)
      : BasicMethod("famo", K), lr_(lr), wd_(wd), xi_(size_t(K), 0.0), min_(size_t(K), 0.0) {}
  unsigned needs() const override { return kNeedLosses | kNeedLossesAfter; }
  HeadGrad head_grad() const override { return HeadGrad::Weighted; }

  StepOutput step(const StepInput& in) override {
    check(in);
    check_above_min("L", in.L);
    step_ += 1;
    prev_ = in.L;
    const Vec z = softmax(xi_);
    Vec D(static_cast<size_t>(K_));
    double c = 0.0;
    for (int k = 0; k < K_; ++k) {
      D[k] = in.L[k] - min_[k] + 1e-8;
      c += z[k] / D[k];
    }
    StepOutput out;
    out.w.resize(static_cast<size_t>(K_));
    for (int k = 0; k < K_; ++k) out.w[k] = z[k] / c / D[k];
    return out;
  }

  void after_update(std::span<const double> L_after) override {
    check_vector(name_, "L_after", L_after, K_);
    if (!prev_)
      throw Error(name_, "after_update() was called before any step()",
                  "call step() with the losses of the batch, update the model, then after_update()");
    check_above_min("L_after", L_after);
    Vec delta(static_cast<size_t>(K_));
    for (int k = 0; k < K_; ++k)
      delta[k] = std::log((*prev_)[k] - min_[k] + 1e-8) - std::log(L_after[k] - min_[k] + 1e-8);
    const Vec z = softmax(xi_);
    const double zd = dot(z, delta);
    Vec g(static_cast<size_t>(K_));
    for (int k = 0; k < K_; ++k) g[k] = z[k] * (delta[k] - zd);
    // torch.optim.Adam (single-tensor path), L2 weight decay.
    if (!m_) m_ = Vec(size_t(K_), 0.0);
    if (!v_) v_ = Vec(size_t(K_), 0.0);
    adam_step_ += 1;
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    const double bc1 = 1.0 - std::pow(b1, adam_step_), bc2 = 1.0 - std::pow(b2, adam_step_);
    const double step_size = lr_ / bc1, bc2_sqrt = std::sqrt(bc2);
    for (int k = 0; k < K_; ++k) {
      const double gk = wd_ != 0.0 ? g[k] + wd_ * xi_[k] : g[k];
      (*m_)[k] = (*m_)[k] * b1 + (1.0 - b1) * gk;
      (*v_)[k] = (*v_)[k] * b2 + (1.0 - b2) * gk * gk;
      const double denom = std::sqrt((*v_)[k]) / bc2_sqrt + eps;
      xi_[k] += -step_size * ((*m_)[k] / denom);
    }
    if (!all_finite(xi_))
      throw Error(name_, "the task logits became non-finite after the Adam update",
                  "check L and L_after for extreme values");
  }

  StateDict state() const override {
    StateDict s;
    s["w"] = row_mat(xi_);
    s["step"] = scalar_mat(step_);
    s["min_losses"] = row_mat(min_);
    if (m_) s["adam_exp_avg"] = row_mat(*m_);
    if (v_) s["adam_exp_avg_sq"] = row_mat(*v_);
    s["adam_step"] = scalar_mat(adam_step_);
    if (prev_) s["prev_losses"] = row_mat(*prev_);
    return s;
  }
  void load_state(const StateDict& s) override {
    check_state_keys(name_, s,
                     {"w", "step", "min_losses", "adam_exp_avg", "adam_exp_avg_sq", "adam_step", "prev_losses"});
    xi_ = read_vec(name_, s, "w", K_).value_or(Vec(size_t(K_), 0.0));
    step_ = read_scalar(name_, s, "step").value_or(0.0);
    min_ = read_vec(name_, s, "min_losses", K_).value_or(Vec(size_t(K_), 0.0));
    m_ = read_vec(name_, s, "adam_exp_avg", K_);
    v_ = read_vec(name_, s, "adam_exp_avg_sq", K_);
    adam_step_ = read_scalar(name_, s, "adam_step").value_or(0.0);
    prev_ = read_vec(name_, s, "prev_losses", K_);
  }

private:
  void check_above_min(const char* what, std::span<const double> L) const {
    for (int k = 0; k < K_; ++k)
      if (!(L[k] - min_[k] + 1e-8 > 0))
        throw Error(name_,
                    std::string(what) + "[" + std::to_string(k) + "] = " + std::to_string(L[k]) +
                        " is not above the task's minimum loss " + std::to_string(min_[k]),
                    "FAMO takes log(L - min_loss); use losses bounded below by min_losses (default 0)");
  }
  double lr_, wd_;
  Vec xi_, min_;
  double step_ = 0, adam_step_ = 0;
  std::optional<Vec> m_, v_, prev_;
};

}  // namespace

std::unique_ptr<Method> make_famo(int K, const Options& o) {
  o.check_known("famo", {"lr", "weight_decay"});
  const double lr = o.get_double("lr", 0.025), wd = o.get_double("weight_decay", 1e-3);
  if (!(lr > 0)) throw Error("make_method", "method 'famo': option lr must be > 0", "the default is lr=0.025");
  if (!(wd >= 0)) throw Error("make_method", "method 'famo': option weight_decay must be >= 0");
  return std::make_unique<FAMO>(K, lr, wd);
}

}  // namespace polyhead::mtl::basic
