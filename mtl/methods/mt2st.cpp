// mtl/methods/mt2st.cpp: MT2ST, from multi-task to single-task (Liu & Yu, ACL 2025 MAGMaR).
//
// One primary task (option primary, default 0) keeps weight 1; every auxiliary task k gets gamma_k(t)
// at step t (0-based, counted by this method):
//   schedule=diminish  gamma(t) = gamma0 * exp(-eta * t^nu)  (paper; eta from half_life h as
//                      ln 2 / h^nu when eta is not given)
//   schedule=switch    gamma(t) = 1 while t < t_switch, then 0 (the loss becomes the primary's)
//   schedule=both      the diminishing weight until t_switch, then 0
//   schedule=code      the released code's per-epoch rule gamma = 0.95^(2^epoch) (a double
//                      exponential; uses StepInput::epoch)
// Options: gamma0 = 1, nu = 1, eta (or half_life, default 1000 steps), t_switch (default 3000),
// gamma_off (default 0: off): an auxiliary weight below gamma_off is set to exactly 0, so the
// diminishing schedule also stops computing the auxiliary heads once they no longer matter.
// Unlike the released code, whose auxiliary losses are computed from detached embeddings, the
// weighted auxiliary losses here send their gradients to the shared model. The weights depend on
// the step only (needs() == 0), so the trainer asks for them before the forward and does not
// compute the heads of tasks whose weight is exactly 0 (after the switch: the FLOP saving).
// State: the step counter.
#include <cmath>

#include "mtl/methods/basic_methods.h"

namespace polyhead::mtl::basic {

namespace {

class Mt2st final : public BasicMethod {
public:
  Mt2st(int K, const Options& o) : BasicMethod("mt2st", K) {
    o.check_known("mt2st", {"schedule", "primary", "gamma0", "eta", "half_life", "nu", "t_switch", "gamma_off"});
    schedule_ = o.get_string("schedule", "diminish");
    if (schedule_ != "diminish" && schedule_ != "switch" && schedule_ != "both" && schedule_ != "code")
      throw Error("mt2st", "unknown schedule '" + schedule_ + "'", "valid schedules: diminish, switch, both, code");
    primary_ = o.get_int("primary", 0);
    PH_CHECK(primary_ >= 0 && primary_ < K, "mt2st", "primary task " << primary_ << " outside [0, " << K << ")");
    gamma0_ = o.get_double("gamma0", 1.0);
    nu_ = o.get_double("nu", 1.0);
    PH_CHECK(gamma0_ > 0 && nu_ >= 1, "mt2st", "need gamma0 > 0 and nu >= 1 (got " << gamma0_ << ", " << nu_ << ")");
    double h = o.get_double("half_life", 1000.0);
    PH_CHECK(h > 0, "mt2st", "half_life must be positive, got " << h);
    eta_ = o.has("eta") ? o.get_double("eta", 0.0) : std::log(2.0) / std::pow(h, nu_);
    PH_CHECK(eta_ > 0, "mt2st", "eta must be positive, got " << eta_);
    t_switch_ = o.get_double("t_switch", 3000.0);
    gamma_off_ = o.get_double("gamma_off", 0.0);
    PH_CHECK(gamma_off_ >= 0 && gamma_off_ < 1, "mt2st", "gamma_off must be in [0, 1), got " << gamma_off_);
  }
  unsigned needs() const override { return 0; }
  HeadGrad head_grad() const override { return HeadGrad::Weighted; }

  // The auxiliary weight at step t (epoch e for schedule=code).
  double aux_weight(double t, int epoch) const {
    if (schedule_ == "code") return std::pow(0.95, std::pow(2.0, double(epoch)));
    if (schedule_ == "switch") return t < t_switch_ ? 1.0 : 0.0;
    double g = gamma0_ * std::exp(-eta_ * std::pow(t, nu_));
    return schedule_ == "both" && t >= t_switch_ ? 0.0 : g;
  }
  double weight_at(double t, int epoch) const {
    double g = aux_weight(t, epoch);
    return g < gamma_off_ ? 0.0 : g;
  }

  StepOutput step(const StepInput& in) override {
    check(in);
    StepOutput out;
    double g = weight_at(double(t_), in.epoch);
    out.w.assign(size_t(K_), g);
    out.w[size_t(primary_)] = 1.0;
    ++t_;
    return out;
  }
  StateDict state() const override {
    StateDict s;
    s["step"] = Mat(1, 1, double(t_));
    return s;
  }
  void load_state(const StateDict& s) override {
    auto it = s.find("step");
    PH_CHECK(it != s.end() && it->second.a.size() == 1, "mt2st", "state needs 'step'");
    t_ = int64_t(it->second.a[0]);
  }

private:
  std::string schedule_;
  int primary_;
  double gamma0_, nu_, eta_, t_switch_, gamma_off_;
  int64_t t_ = 0;
};

}  // namespace

std::unique_ptr<Method> make_mt2st(int K, const Options& o) { return std::make_unique<Mt2st>(K, o); }

}  // namespace polyhead::mtl::basic
