// mtl/methods/sdmgrad.cpp: "sdmgrad", SDMGrad, stochastic direction-oriented multi-objective
// gradient descent (Xiao, Ban & Ji, "Direction-oriented Multi-objective Learning: Simple and
// Provable Stochastic Algorithms", NeurIPS 2023), LibMTL version. With three independent gradient
// samples zeta = G3[0], xi1 = G3[1], xi2 = G3[2]:
//   GG = xi1 xi2^T; s = mean_k sqrt(max(GG_kk, 0)); GG /= (s^2 + 1e-8); Gg = row means of GG;
//   niter iterations of SGD (lr 5, momentum 0.5, a fresh momentum buffer every step) on w with
//   gradient GG w + lamda Gg, each followed by numpy's sort-based Euclidean simplex projection;
//   d = (zeta^T w + lamda mean_k zeta_k) / (1 + lamda) (returned as d; LibMTL returns no weights).
// Options lamda 0.3, niter 20. State: w (init 1/K), carried across steps.
// load_state(state()) restores exactly. Invariants: w stays on the simplex; heads get unweighted
// gradients.
#include "mtl/methods/basic_methods.h"

namespace polyhead::mtl::basic {
namespace {

class SDMGrad final : public BasicMethod {
public:
  SDMGrad(int K, double lamda, int niter)
      : BasicMethod("sdmgrad", K), lamda_(lamda), niter_(niter), w_(size_t(K), 1.0 / K) {}
  unsigned needs() const override { return kNeedThreeSamples; }

  StepOutput step(const StepInput& in) override {
    check(in);
    const Mat &Z = in.G3[0], &X1 = in.G3[1], &X2 = in.G3[2];
    Mat GG(K_, K_);
    for (int i = 0; i < K_; ++i)
      for (int j = 0; j < K_; ++j) GG(i, j) = dot(X1.row(i), X2.row(j));
    double scale = 0.0;
    for (int k = 0; k < K_; ++k) scale += std::sqrt(std::max(GG(k, k), 0.0));
    scale /= K_;
    const double den = scale * scale + 1e-8;
    for (double& x : GG.a) x /= den;
    Vec Gg(static_cast<size_t>(K_));
    for (int i = 0; i < K_; ++i) {
      double s = 0.0;
      for (int j = 0; j < K_; ++j) s += GG(i, j);
      Gg[i] = s / K_;
    }
    Vec buf(static_cast<size_t>(K_)), grad(static_cast<size_t>(K_));
    for (int it = 0; it < niter_; ++it) {
      for (int i = 0; i < K_; ++i) {
        double s = 0.0;
        for (int j = 0; j < K_; ++j) s += GG(i, j) * w_[j];
        grad[i] = s + lamda_ * Gg[i];
      }
      for (int i = 0; i < K_; ++i) buf[i] = it == 0 ? grad[i] : buf[i] * 0.5 + grad[i];
      for (int i = 0; i < K_; ++i) w_[i] = w_[i] + (-5.0) * buf[i];
      w_ = project_simplex_sdmgrad(w_);
    }
    if (!all_finite(w_))
      throw Error(name_, "the task weights became non-finite", "check the gradients for extreme values");
    const int P = Z.cols;
    StepOutput out;
    out.d.assign(size_t(P), 0.0);
    for (int p = 0; p < P; ++p) {
      double mean = 0.0, gw = 0.0;
      for (int k = 0; k < K_; ++k) {
        mean += Z(k, p);
        gw += Z(k, p) * w_[k];
      }
      mean /= K_;
      out.d[p] = (gw + lamda_ * mean) / (1.0 + lamda_);
    }
    return out;
  }

  StateDict state() const override { return {{"w", row_mat(w_)}}; }
  void load_state(const StateDict& s) override {
    check_state_keys(name_, s, {"w"});
    w_ = read_vec(name_, s, "w", K_).value_or(Vec(size_t(K_), 1.0 / K_));
  }

private:
  double lamda_;
  int niter_;
  Vec w_;
};

}  // namespace

std::unique_ptr<Method> make_sdmgrad(int K, const Options& o) {
  o.check_known("sdmgrad", {"lamda", "niter"});
  const double lamda = o.get_double("lamda", 0.3);
  const int niter = o.get_int("niter", 20);
  if (!(lamda >= 0)) throw Error("make_method", "method 'sdmgrad': option lamda must be >= 0");
  if (niter < 0) throw Error("make_method", "method 'sdmgrad': option niter must be >= 0");
  return std::make_unique<SDMGrad>(K, lamda, niter);
}

}  // namespace polyhead::mtl::basic
