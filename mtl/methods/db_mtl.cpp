// mtl/methods/db_mtl.cpp: "db_mtl", Dual-Balancing MTL (Lin et al., "Dual-Balancing for Multi-Task
// Learning", arXiv 2308.12029; LibMTL DB_MTL).
// Step s (1-based), with h_k = grad log(L_k + 1e-8) = g_k / (L_k + 1e-8):
//   buf <- h + (beta / s^beta_sigma) (buf - h)        (EMA; at s = 1 with beta 0.9, buf = 0.1 h)
//   alpha_k = max_j ||buf_j|| / (||buf_k|| + 1e-8)
//   d = sum_k alpha_k buf_k (returned as d); StepOutput.reported = ones (what LibMTL returns).
// Options beta 0.9, beta_sigma 0. State: grad_buffer (K x P; absent = zeros), step.
// load_state(state()) restores exactly. Invariants: L_k + 1e-8 > 0; P fixed; heads get unweighted
// gradients of log L_k.
#include "mtl/methods/basic_methods.h"

namespace polyhead::mtl::basic {
namespace {

class DBMTL final : public BasicMethod {
public:
  DBMTL(int K, double beta, double beta_sigma) : BasicMethod("db_mtl", K), beta_(beta), beta_sigma_(beta_sigma) {}
  unsigned needs() const override { return kNeedLosses | kNeedJacobian; }

  StepOutput step(const StepInput& in) override {
    check(in);
    for (int k = 0; k < K_; ++k)
      if (!(in.L[k] + 1e-8 > 0))
        throw Error(name_, "loss of task " + std::to_string(k) + " is negative",
                    "DB-MTL takes log(L + 1e-8); use losses >= 0");
    const Mat& G = *in.G;
    const int P = G.cols;
    if (!buf_) buf_ = Mat(K_, P, 0.0);
    if (buf_->cols != P)
      throw Error(
          name_,
          "G has P = " + std::to_string(P) + " columns but the gradient buffer has " + std::to_string(buf_->cols),
          "the shared parameter count must not change during training");
    step_ += 1;
    const double a = beta_ / std::pow(step_, beta_sigma_);
    Mat& buf = *buf_;
    for (int k = 0; k < K_; ++k) {
      const double inv = 1.0 / (in.L[k] + 1e-8);
      for (int p = 0; p < P; ++p) {
        const double h = G(k, p) * inv;
        buf(k, p) = h + a * (buf(k, p) - h);
      }
    }
    Vec u(static_cast<size_t>(K_));
    double umax = 0.0;
    for (int k = 0; k < K_; ++k) umax = std::max(umax, u[k] = norm2(buf.row(k)));
    Vec alpha(static_cast<size_t>(K_));
    for (int k = 0; k < K_; ++k) alpha[k] = umax / (u[k] + 1e-8);
    StepOutput out;
    out.d = combine(buf, alpha);
    out.reported = Vec(size_t(K_), 1.0);
    return out;
  }

  StateDict state() const override {
    StateDict s;
    if (buf_) s["grad_buffer"] = *buf_;
    s["step"] = scalar_mat(step_);
    return s;
  }
  void load_state(const StateDict& s) override {
    check_state_keys(name_, s, {"grad_buffer", "step"});
    buf_ = read_mat(name_, s, "grad_buffer", K_, -1);
    step_ = read_scalar(name_, s, "step").value_or(0.0);
  }

private:
  double beta_, beta_sigma_;
  std::optional<Mat> buf_;
  double step_ = 0;
};

}  // namespace

std::unique_ptr<Method> make_db_mtl(int K, const Options& o) {
  o.check_known("db_mtl", {"beta", "beta_sigma"});
  return std::make_unique<DBMTL>(K, o.get_double("beta", 0.9), o.get_double("beta_sigma", 0.0));
}

}  // namespace polyhead::mtl::basic
