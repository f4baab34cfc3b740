// mtl/methods/modo.cpp: "modo", MoDo, multi-objective gradient with double sampling (Chen, Fernando
// et al., "Three-Way Trade-Off in Multi-Objective Learning: Optimization, Generalization and
// Conflict-Avoidance", NeurIPS 2023), LibMTL version. With three independent gradient samples
// G0, G1, G2 (StepInput.G3):
//   lambda <- Proj_simplex(lambda - gamma (G0 (G1^T lambda) + rho lambda))   (LibMTL's sort-based
//             projection), d = G2^T lambda (returned as d); StepOutput.reported = lambda.
// Options gamma 0.001, rho 0.1. State: lambd (init 1/K). load_state(state()) restores exactly.
// Invariants: lambda stays on the simplex; heads get unweighted gradients (LibMTL averages the
// three head backward passes).
#include "mtl/methods/basic_methods.h"

namespace polyhead::mtl::basic {
namespace {

class MoDo final : public BasicMethod {
public:
  MoDo(int K, double gamma, double rho)
      : BasicMethod("modo", K), gamma_(gamma), rho_(rho), lambd_(size_t(K), 1.0 / K) {}
  unsigned needs() const override { return kNeedThreeSamples; }

  StepOutput step(const StepInput& in) override {
    check(in);
    const Mat &G0 = in.G3[0], &G1 = in.G3[1], &G2 = in.G3[2];
    const Vec v = combine(G1, lambd_);  // G1^T lambda
    Vec y(static_cast<size_t>(K_));
    for (int k = 0; k < K_; ++k) y[k] = lambd_[k] - gamma_ * (dot(G0.row(k), v) + rho_ * lambd_[k]);
    lambd_ = project_simplex_libmtl(y);
    StepOutput out;
    out.d = combine(G2, lambd_);
    out.reported = lambd_;
    return out;
  }

  StateDict state() const override { return {{"lambd", row_mat(lambd_)}}; }
  void load_state(const StateDict& s) override {
    check_state_keys(name_, s, {"lambd"});
    lambd_ = read_vec(name_, s, "lambd", K_).value_or(Vec(size_t(K_), 1.0 / K_));
  }

private:
  double gamma_, rho_;
  Vec lambd_;
};

}  // namespace

std::unique_ptr<Method> make_modo(int K, const Options& o) {
  o.check_known("modo", {"gamma", "rho"});
  return std::make_unique<MoDo>(K, o.get_double("gamma", 1e-3), o.get_double("rho", 0.1));
}

}  // namespace polyhead::mtl::basic
