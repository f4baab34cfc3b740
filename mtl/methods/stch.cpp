// mtl/methods/stch.cpp: "stch", Smooth Tchebycheff scalarization (Lin et al., "Smooth Tchebycheff
// Scalarization for Multi-Objective Optimization", ICML 2024; LibMTL STCH).
//   epoch e <  warmup_epoch: objective sum_k log(L_k + 1e-20), w_k = 1 / (L_k + 1e-20);
//   epoch e == warmup_epoch: the same, and L is accumulated into the nadir average;
//   epoch e >  warmup_epoch: nadir z = average of the warm-up losses (fixed at the first such step),
//     l_k = log(L_k / z_k + 1e-20), objective K mu logsumexp((l - max l) / mu), so
//     w_k = K softmax(l / mu)_k / (z_k (L_k / z_k + 1e-20)).
// Options mu (default 1), warmup_epoch (default 4). StepOutput.reported = ones (what LibMTL returns).
// State (LibMTL names): step, nadir_vector (absent until fixed), average_loss (the scalar 0 until the
// first warm-up step, then K sums), average_loss_count. load_state(state()) restores exactly.
// Invariants: L_k > 0; reaching e > warmup_epoch without any warm-up step throws.
#include "mtl/methods/basic_methods.h"

namespace polyhead::mtl::basic {
namespace {

class STCH final : public BasicMethod {
public:
  STCH(int K, double mu, int warmup) : BasicMethod("stch", K), mu_(mu), warmup_(warmup) {}
  unsigned needs() const override { return kNeedLosses; }
  HeadGrad head_grad() const override { return HeadGrad::Weighted; }

  StepOutput step(const StepInput& in) override {
    check(in);
    check_positive_losses(name_, in.L);
    const int e = in.epoch;
    StepOutput out;
    out.w.resize(static_cast<size_t>(K_));
    if (e <= warmup_) {
      for (int k = 0; k < K_; ++k) out.w[k] = 1.0 / (in.L[k] + 1e-20);
      if (e == warmup_) {
        if (!avg_) avg_ = Vec(size_t(K_), 0.0);
        for (int k = 0; k < K_; ++k) (*avg_)[k] += in.L[k];
        count_ += 1;
      }
    } else {
      if (!nadir_) {
        if (count_ == 0 || !avg_)
          throw Error(name_,
                      "epoch " + std::to_string(e) + " is past warmup_epoch = " + std::to_string(warmup_) +
                          " but no warm-up step was seen, so the nadir vector is undefined",
                      "train through epoch warmup_epoch first, or restore the state saved after it");
        nadir_ = Vec(static_cast<size_t>(K_));
        for (int k = 0; k < K_; ++k) (*nadir_)[k] = (*avg_)[k] / count_;
      }
      const Vec& z = *nadir_;
      Vec ratio(static_cast<size_t>(K_)), l(static_cast<size_t>(K_));
      for (int k = 0; k < K_; ++k) {
        ratio[k] = in.L[k] / z[k] + 1e-20;
        l[k] = std::log(ratio[k]) / mu_;
      }
      const Vec sm = softmax(l);
      for (int k = 0; k < K_; ++k) out.w[k] = K_ * sm[k] / ratio[k] / z[k];
    }
    step_ += 1;
    out.reported = Vec(size_t(K_), 1.0);
    return out;
  }

  StateDict state() const override {
    StateDict s;
    s["step"] = scalar_mat(step_);
    if (nadir_) s["nadir_vector"] = row_mat(*nadir_);
    s["average_loss"] = avg_ ? row_mat(*avg_) : scalar_mat(0.0);
    s["average_loss_count"] = scalar_mat(count_);
    return s;
  }
  void load_state(const StateDict& s) override {
    check_state_keys(name_, s, {"step", "nadir_vector", "average_loss", "average_loss_count"});
    step_ = read_scalar(name_, s, "step").value_or(0.0);
    nadir_ = read_vec(name_, s, "nadir_vector", K_);
    avg_.reset();
    auto it = s.find("average_loss");
    if (it != s.end()) {
      const Mat& m = it->second;
      if (m.a.size() == 1 && K_ > 1) {
        if (m.a[0] != 0.0) avg_ = Vec(size_t(K_), m.a[0]);  // a broadcast scalar sum
      } else {
        avg_ = read_vec(name_, s, "average_loss", K_);
      }
    }
    count_ = read_scalar(name_, s, "average_loss_count").value_or(0.0);
  }

private:
  double mu_;
  int warmup_;
  double step_ = 0, count_ = 0;
  std::optional<Vec> nadir_, avg_;
};

}  // namespace

std::unique_ptr<Method> make_stch(int K, const Options& o) {
  o.check_known("stch", {"mu", "warmup_epoch"});
  const double mu = o.get_double("mu", 1.0);
  const int warmup = o.get_int("warmup_epoch", 4);
  if (!(mu > 0)) throw Error("make_method", "method 'stch': option mu must be > 0", "the default is mu=1");
  if (warmup < 0) throw Error("make_method", "method 'stch': option warmup_epoch must be >= 0");
  return std::make_unique<STCH>(K, mu, warmup);
}

}  // namespace polyhead::mtl::basic
