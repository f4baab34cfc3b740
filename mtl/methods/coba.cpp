// mtl/methods/coba.cpp: "coba", the Convergence Balancer (Gong, Yu, Liao, Liu, Chen, Li; EMNLP 2024),
// as the authors' released code (MFTCoder, CoBaStatus) computes it, with the paper's variant as
// options where the two differ.
//
// Input: StepInput::L_val, the K validation losses of the model at this step (before its update;
// the trainer's validation hook). Step t = 0, 1, ... is counted by the method.
//   t = 0          l0 = L_val (the normalizer; must be > 0).
//   t >= 2, (t-1) % I == 0
//                  append L_val / l0 to the history (the code samples after the update of step
//                  s = t-1 >= 1, s % I == 0, so at update t the history holds samples 1 .. t-1).
//   t % I == 0, t >= W   weight update:
//     window       start = max(0, t/I - H) (integer division), the last (t - start) history entries
//                  (fewer when there are fewer), x = start, start+1, ...
//     alpha_k      OLS slope of task k's normalized loss over the window (window_slope: zeros dropped)
//     alpha_max    OLS slope of the curve max_k (code), or max_k alpha_k (alpha_max=max_of_slopes)
//     RCS          softmax(K alpha / sum_j |alpha_j|)
//     ACS          softmax_k(-n alpha_k / sum_u |alpha_k(u)|) over the slopes of the updates u with
//                  index >= start (counted from the first update at t = W; n of them; code), or
//                  over the last min(H, #updates) (acs_window=paper)
//     DF           M softmax_u(tau (-M alpha_max(u) / sum_u' |alpha_max(u')|)) at the last u, over all
//                  M updates so far; not clamped in the code (df_clamp=1: min(DF, 1), the paper)
//     z            DF RCS + (1 - DF) ACS
//     omega        softmax(K z) (code; sharpen=0: omega = z, the paper)
//     floor        if min omega < m (m = min_weight, default 1/(10K)): omega = omega (1 - K m) + m
//   Before the first update omega = 1; between updates (I > 1) the last omega is kept.
// Output: the code's loss is sum_k omega_k L_k / sum_k omega_k, so w = omega / sum omega (1/K in the
// warm-up); reported = omega. Heads get their weighted gradients (a plain weighted backward).
//
// Options (MFTCoder defaults): warmup W = 100, history H = 200 (>= W), tau = 5, update_interval I = 1,
// min_weight = 1/(10K), variant = code | paper (paper: df_clamp=1, sharpen=0, acs_window=paper),
// and each of df_clamp (0/1), sharpen (0/1), acs_window (code/paper), alpha_max (slope_of_max /
// max_of_slopes) on its own. Guards (not in the code, where they would give NaN): RCS uniform when
// every slope is 0, an ACS logit of 0 for a task whose past slopes are all 0, DF = 1 when every
// alpha_max is 0.
//
// The trainer's val_every = 1 reproduces the code (a fresh validation batch for every history
// entry). With val_every = v > 1 the trainer reuses its last validation losses in between, so an
// entry can be up to v - 1 updates old (cheaper; not the code's behaviour).
// State: step, l0, history (K x n, the entries a later window can still reach), slopes (K x m, the
// per-task slopes the ACS can still reach) and slopes_offset (how many older ones were dropped),
// alpha_max (1 x M, all of them: DF has no window), omega. load_state(state()) resumes exactly.
#include "mtl/methods/coba.h"

#include <algorithm>
#include <cmath>

#include "mtl/methods/basic_methods.h"

namespace polyhead::mtl::coba {

using basic::Vec;

double window_slope(double x0, std::span<const double> y) {
  Vec v;
  for (double a : y)
    if (a != 0.0) v.push_back(a);
  const size_t n = v.size();
  if (n < 2) return 0.0;
  // x_j = x0 + j; the slope does not depend on x0, but keep the code's x for clarity.
  const double xm = x0 + 0.5 * double(n - 1);
  double ym = 0;
  for (double a : v) ym += a;
  ym /= double(n);
  double sxy = 0, sxx = 0;
  for (size_t j = 0; j < n; ++j) {
    const double dx = x0 + double(j) - xm;
    sxy += dx * (v[j] - ym);
    sxx += dx * dx;
  }
  return sxy / sxx;
}

std::vector<double> rcs(std::span<const double> alpha) {
  const size_t K = alpha.size();
  double s = 0;
  for (double a : alpha) s += std::abs(a);
  if (s == 0) return Vec(K, 1.0 / double(K));
  Vec z(K);
  for (size_t k = 0; k < K; ++k) z[k] = double(K) * alpha[k] / s;
  return basic::softmax(z);
}

std::vector<double> acs(std::span<const double> alpha, const std::vector<std::vector<double>>& past) {
  const size_t K = alpha.size();
  PH_CHECK(past.size() == K, "coba", "ACS needs the past slopes of " << K << " tasks, got " << past.size());
  Vec z(K, 0.0);
  for (size_t k = 0; k < K; ++k) {
    double s = 0;
    for (double a : past[k]) s += std::abs(a);
    z[k] = s == 0 ? 0.0 : -double(past[k].size()) * alpha[k] / s;
  }
  return basic::softmax(z);
}

double divergence_factor(std::span<const double> amax, double tau) {
  const size_t M = amax.size();
  if (M == 0) return 1.0;
  double s = 0;
  for (double a : amax) s += std::abs(a);
  if (s == 0) return 1.0;
  Vec z(M);
  for (size_t u = 0; u < M; ++u) z[u] = tau * (-double(M) * amax[u] / s);
  return double(M) * basic::softmax(z)[M - 1];
}

namespace {

class CoBa final : public basic::BasicMethod {
public:
  CoBa(int K, const Options& o) : BasicMethod("coba", K), omega_(size_t(K), 1.0) {
    o.check_known("coba", {"warmup", "history", "tau", "update_interval", "min_weight", "variant", "df_clamp", "sharpen",
                           "acs_window", "alpha_max"});
    W_ = o.get_int("warmup", 100);
    H_ = o.get_int("history", 200);
    I_ = o.get_int("update_interval", 1);
    tau_ = o.get_double("tau", 5.0);
    m_ = o.get_double("min_weight", 1.0 / (10.0 * K));
    const std::string variant = o.get_string("variant", "code");
    if (variant != "code" && variant != "paper")
      throw Error("coba", "unknown variant '" + variant + "'", "valid variants: code (the released code), paper");
    const bool paper = variant == "paper";
    df_clamp_ = o.get_int("df_clamp", paper ? 1 : 0) != 0;
    sharpen_ = o.get_int("sharpen", paper ? 0 : 1) != 0;
    const std::string aw = o.get_string("acs_window", paper ? "paper" : "code");
    if (aw != "code" && aw != "paper") throw Error("coba", "unknown acs_window '" + aw + "'", "valid: code, paper");
    acs_paper_ = aw == "paper";
    const std::string am = o.get_string("alpha_max", "slope_of_max");
    if (am != "slope_of_max" && am != "max_of_slopes")
      throw Error("coba", "unknown alpha_max '" + am + "'", "valid: slope_of_max (the code), max_of_slopes");
    max_of_slopes_ = am == "max_of_slopes";
    PH_CHECK_HINT(W_ >= 0 && H_ >= 1 && I_ >= 1, "coba",
                  "need warmup >= 0, history >= 1, update_interval >= 1 (got " << W_ << ", " << H_ << ", " << I_ << ")",
                  "the defaults are warmup 100, history 200, update_interval 1");
    PH_CHECK_HINT(H_ >= W_, "coba", "history " << H_ << " is shorter than warmup " << W_ << ": the ACS window would be empty",
                  "use history >= warmup (the authors suggest 2 to 5 times the warm-up)");
    PH_CHECK(std::isfinite(tau_) && tau_ > 0, "coba", "tau must be positive, got " << tau_);
    PH_CHECK_HINT(m_ >= 0 && m_ * K < 1, "coba", "min_weight " << m_ << " must be in [0, 1/K)", "the default is 1/(10K)");
    PH_CHECK_HINT(sharpen_ || df_clamp_, "coba", "sharpen=0 with df_clamp=0 can give negative weights",
                  "use variant=paper (sharpen=0, df_clamp=1) or keep sharpen=1");
  }
  unsigned needs() const override { return kNeedValidationLosses; }
  HeadGrad head_grad() const override { return HeadGrad::Weighted; }

  StepOutput step(const StepInput& in) override {
    check(in);
    if (in.L_val.empty())
      throw Error("coba", "needs the validation losses (StepInput.L_val) but none were given",
                  "set TrainerOptions::validation_losses (K losses on a held-out batch)");
    basic::check_vector("coba", "L_val", in.L_val, K_);
    const int64_t t = t_;
    if (t == 0) {
      for (int k = 0; k < K_; ++k)
        PH_CHECK_HINT(in.L_val[size_t(k)] > 0, "coba", "validation loss of task " << k << " at step 0 is " << in.L_val[size_t(k)],
                      "CoBa divides by the first validation loss; use a loss that is positive");
      l0_ = in.L_val;
    } else if (t >= 2 && (t - 1) % I_ == 0) {
      Vec v(static_cast<size_t>(K_));
      for (int k = 0; k < K_; ++k) v[size_t(k)] = in.L_val[size_t(k)] / l0_[size_t(k)];
      hist_.push_back(std::move(v));
      if (I_ == 1 && int64_t(hist_.size()) > H_) hist_.erase(hist_.begin());  // the window never reaches further
    }
    if (t % I_ == 0 && t >= W_) update(t);
    ++t_;
    StepOutput out;
    double s = 0;
    for (double w : omega_) s += w;
    out.w.resize(size_t(K_));
    for (int k = 0; k < K_; ++k) out.w[size_t(k)] = omega_[size_t(k)] / s;
    out.reported = omega_;
    return out;
  }

  const Components& last() const { return last_; }

  StateDict state() const override {
    StateDict s;
    s["step"] = basic::scalar_mat(double(t_));
    s["omega"] = basic::row_mat(omega_);
    s["slopes_offset"] = basic::scalar_mat(double(slope_base_));
    if (!l0_.empty()) s["l0"] = basic::row_mat(l0_);
    if (!hist_.empty()) s["history"] = columns(hist_);
    if (!slopes_.empty()) s["slopes"] = columns(slopes_);
    if (!amax_.empty()) s["alpha_max"] = basic::row_mat(amax_);
    return s;
  }
  void load_state(const StateDict& s) override {
    basic::check_state_keys("coba", s, {"step", "omega", "slopes_offset", "l0", "history", "slopes", "alpha_max"});
    auto step = basic::read_scalar("coba", s, "step");
    auto omega = basic::read_vec("coba", s, "omega", K_);
    auto off = basic::read_scalar("coba", s, "slopes_offset");
    PH_CHECK(step && omega && off && *step >= 0 && *off >= 0, "coba", "state needs 'step', 'omega' and 'slopes_offset'");
    auto l0 = basic::read_vec("coba", s, "l0", K_);
    auto hist = basic::read_mat("coba", s, "history", K_, -1);
    auto slopes = basic::read_mat("coba", s, "slopes", K_, -1);
    auto it = s.find("alpha_max");
    PH_CHECK(*step == 0 || l0, "coba", "state at step " << *step << " has no 'l0'");
    PH_CHECK(it == s.end() || it->second.rows == 1, "coba", "'alpha_max' must be 1 x M");
    t_ = int64_t(*step);
    omega_ = *omega;
    slope_base_ = int64_t(*off);
    l0_ = l0 ? *l0 : Vec{};
    hist_ = hist ? rows_of(*hist) : std::vector<Vec>{};
    slopes_ = slopes ? rows_of(*slopes) : std::vector<Vec>{};
    amax_ = it != s.end() ? it->second.a : Vec{};
    last_ = Components{};
  }

private:
  // K x n matrix whose column j is v[j].
  Mat columns(const std::vector<Vec>& v) const {
    Mat m(K_, int(v.size()));
    for (size_t j = 0; j < v.size(); ++j)
      for (int k = 0; k < K_; ++k) m(k, int(j)) = v[j][size_t(k)];
    return m;
  }
  std::vector<Vec> rows_of(const Mat& m) const {
    std::vector<Vec> v(size_t(m.cols), Vec(size_t(K_)));
    for (int j = 0; j < m.cols; ++j)
      for (int k = 0; k < K_; ++k) v[size_t(j)][size_t(k)] = m(k, j);
    return v;
  }

  void update(int64_t t) {
    const int64_t start = std::max<int64_t>(0, t / I_ - H_);
    const size_t n = size_t(std::min<int64_t>(t - start, int64_t(hist_.size())));
    const size_t h0 = hist_.size() - n;
    Components c;
    c.step = int(t);
    c.alpha.resize(size_t(K_));
    Vec y(n);
    for (int k = 0; k < K_; ++k) {
      for (size_t j = 0; j < n; ++j) y[j] = hist_[h0 + j][size_t(k)];
      c.alpha[size_t(k)] = window_slope(double(start), y);
    }
    if (max_of_slopes_) {
      c.alpha_max = *std::max_element(c.alpha.begin(), c.alpha.end());
    } else {
      for (size_t j = 0; j < n; ++j) y[j] = *std::max_element(hist_[h0 + j].begin(), hist_[h0 + j].end());
      c.alpha_max = window_slope(double(start), y);
    }
    slopes_.push_back(c.alpha);
    amax_.push_back(c.alpha_max);
    const int64_t total = slope_base_ + int64_t(slopes_.size());  // updates so far; this one is total-1
    c.rcs = rcs(c.alpha);
    // ACS over the past slopes: indices >= start (code) or the last min(H, total) (paper).
    const int64_t from = acs_paper_ ? std::max<int64_t>(0, total - H_) : start;
    PH_CHECK(from < total && from >= slope_base_, "coba", "internal: ACS window [" << from << ", " << total << ") unavailable");
    std::vector<Vec> past(static_cast<size_t>(K_));
    for (int64_t u = from; u < total; ++u)
      for (int k = 0; k < K_; ++k) past[size_t(k)].push_back(slopes_[size_t(u - slope_base_)][size_t(k)]);
    c.acs = acs(c.alpha, past);
    c.df = divergence_factor(amax_, tau_);
    if (df_clamp_) c.df = std::min(c.df, 1.0);
    Vec z(static_cast<size_t>(K_));
    for (int k = 0; k < K_; ++k) z[size_t(k)] = c.df * c.rcs[size_t(k)] + (1 - c.df) * c.acs[size_t(k)];
    if (sharpen_) {
      for (double& a : z) a *= double(K_);
      c.omega = basic::softmax(z);
    } else {
      c.omega = z;
    }
    if (*std::min_element(c.omega.begin(), c.omega.end()) < m_)
      for (double& w : c.omega) w = w * (1 - double(K_) * m_) + m_;
    omega_ = c.omega;
    last_ = std::move(c);
    // Drop slopes no later ACS window can reach: both windows only move forward.
    const int64_t next_start = std::max<int64_t>(0, (t + 1) / I_ - H_);
    const int64_t keep_from = std::min(acs_paper_ ? std::max<int64_t>(0, total + 1 - H_) : next_start, total);
    if (keep_from > slope_base_) {
      slopes_.erase(slopes_.begin(), slopes_.begin() + (keep_from - slope_base_));
      slope_base_ = keep_from;
    }
  }

  int W_, H_, I_;
  double tau_, m_;
  bool df_clamp_, sharpen_, acs_paper_, max_of_slopes_;
  int64_t t_ = 0;
  Vec l0_;
  std::vector<Vec> hist_;    // normalized validation losses, oldest first
  std::vector<Vec> slopes_;  // per-task slopes of the updates slope_base_, slope_base_+1, ...
  int64_t slope_base_ = 0;
  Vec amax_;                 // alpha_max of every update
  Vec omega_;
  Components last_;
};

}  // namespace

std::unique_ptr<Method> make_coba(int K, const Options& o) { return std::make_unique<CoBa>(K, o); }

const Components& last_components(const Method& m) {
  auto* c = dynamic_cast<const CoBa*>(&m);
  PH_CHECK(c != nullptr, "coba", "method '" << m.name() << "' is not CoBa");
  return c->last();
}

}  // namespace polyhead::mtl::coba
