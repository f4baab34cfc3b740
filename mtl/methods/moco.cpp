// mtl/methods/moco.cpp: "moco", MoCo (Fernando et al., "Mitigating Gradient Bias in
// Multi-objective Learning: A Provably Convergent Approach", ICLR 2023), LibMTL version.
// Step s (1-based):
//   ghat_k = g_k / (||g_k|| + 1e-8) * L_k;
//   y <- y - (beta / s^beta_sigma) (y - ghat)                       (K x P tracking estimate);
//   lambda <- softmax(lambda - (gamma / s^gamma_sigma) (y y^T + rho I) lambda);
//   d = y^T lambda (returned as d), StepOutput.reported = lambda.
// Options beta 0.5, beta_sigma 0.5, gamma 0.1, gamma_sigma 0.5, rho 0 (LibMTL defaults).
// State: y (K x P; absent = zeros, created at the first step), lambd (init 1/K), step.
// load_state(state()) restores exactly. Invariants: P must stay the same across steps; heads get
// unweighted gradients.
#include "mtl/methods/basic_methods.h"

namespace polyhead::mtl::basic {
namespace {

class MoCo final : public BasicMethod {
public:
  MoCo(int K, double beta, double beta_sigma, double gamma, double gamma_sigma, double rho)
      : BasicMethod("moco", K),
        beta_(beta),
        beta_sigma_(beta_sigma),
        gamma_(gamma),
        gamma_sigma_(gamma_sigma),
        rho_(rho),
        lambd_(size_t(K), 1.0 / K) {}
  unsigned needs() const override { return kNeedLosses | kNeedJacobian; }

  StepOutput step(const StepInput& in) override {
    check(in);
    const Mat& G = *in.G;
    const int P = G.cols;
    if (!y_) y_ = Mat(K_, P, 0.0);
    if (y_->cols != P)
      throw Error(
          name_,
          "G has P = " + std::to_string(P) + " columns but the tracked gradients y have " + std::to_string(y_->cols),
          "the shared parameter count must not change during training");
    step_ += 1;
    const double a = beta_ / std::pow(step_, beta_sigma_);
    const double b = gamma_ / std::pow(step_, gamma_sigma_);
    Mat& y = *y_;
    for (int k = 0; k < K_; ++k) {
      auto g = G.row(k);
      const double scale_den = norm2(g) + 1e-8;
      for (int p = 0; p < P; ++p) {
        const double gh = g[p] / scale_den * in.L[k];
        y(k, p) = y(k, p) - a * (y(k, p) - gh);
      }
    }
    const Mat YY = gram(y);
    Vec z(static_cast<size_t>(K_));
    for (int i = 0; i < K_; ++i) {
      double s = 0.0;
      for (int j = 0; j < K_; ++j) s += (YY(i, j) + (i == j ? rho_ : 0.0)) * lambd_[j];
      z[i] = lambd_[i] - b * s;
    }
    lambd_ = softmax(z);
    StepOutput out;
    out.d = combine(y, lambd_);
    out.reported = lambd_;
    return out;
  }

  StateDict state() const override {
    StateDict s;
    if (y_) s["y"] = *y_;
    s["lambd"] = row_mat(lambd_);
    s["step"] = scalar_mat(step_);
    return s;
  }
  void load_state(const StateDict& s) override {
    check_state_keys(name_, s, {"y", "lambd", "step"});
    y_ = read_mat(name_, s, "y", K_, -1);
    lambd_ = read_vec(name_, s, "lambd", K_).value_or(Vec(size_t(K_), 1.0 / K_));
    step_ = read_scalar(name_, s, "step").value_or(0.0);
  }

private:
  double beta_, beta_sigma_, gamma_, gamma_sigma_, rho_;
  std::optional<Mat> y_;
  Vec lambd_;
  double step_ = 0;
};

}  // namespace

std::unique_ptr<Method> make_moco(int K, const Options& o) {
  o.check_known("moco", {"beta", "beta_sigma", "gamma", "gamma_sigma", "rho"});
  return std::make_unique<MoCo>(K, o.get_double("beta", 0.5), o.get_double("beta_sigma", 0.5),
                                o.get_double("gamma", 0.1), o.get_double("gamma_sigma", 0.5), o.get_double("rho", 0.0));
}

}  // namespace polyhead::mtl::basic
