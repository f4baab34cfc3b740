// mtl/mixing/pike.cpp: see pike.h.
#include "mtl/mixing/pike.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "engine/error.h"
#include "mtl/per_task_grads.h"

namespace polyhead::mtl::mixing {

namespace {

void check_weights(const std::vector<double>& w, const char* op) {
  PH_CHECK(!w.empty(), op, "empty weight vector");
  double s = 0;
  for (size_t k = 0; k < w.size(); ++k) {
    PH_CHECK(std::isfinite(w[k]) && w[k] >= 0, op, "weight " << k << " is " << w[k] << "; weights must be finite and >= 0");
    s += w[k];
  }
  PH_CHECK(s > 0, op, "weights sum to 0; at least one must be positive");
}

std::vector<double> normalised(std::vector<double> w) {
  double s = 0;
  for (double v : w) s += v;
  for (double& v : w) v /= s;
  return w;
}

}  // namespace

GradStats grad_stats_from_gram(const Mat& M, const std::vector<double>& sizes) {
  const char* op = "mixing::grad_stats";
  const int m = M.rows;
  PH_CHECK(M.cols == m && m >= 2, op,
           "need the m x m Gramian of m >= 2 micro-batch gradients, got " << M.rows << " x " << M.cols);
  PH_CHECK(int(sizes.size()) == m, op, "sizes has " << sizes.size() << " entries for " << m << " micro-batches");
  for (int i = 0; i < m; ++i) {
    PH_CHECK(std::isfinite(sizes[size_t(i)]) && sizes[size_t(i)] >= 1, op,
             "micro-batch " << i << " has size " << sizes[size_t(i)] << "; sizes must be >= 1");
    for (int j = 0; j < m; ++j)
      PH_CHECK(std::isfinite(M(i, j)), op, "Gramian entry (" << i << ", " << j << ") is " << M(i, j));
  }
  double dot = 0, var = 0;
  int pairs = 0;
  for (int i = 0; i < m; ++i)
    for (int j = i + 1; j < m; ++j) {
      dot += M(i, j);
      const double d2 = M(i, i) + M(j, j) - 2 * M(i, j);  // ||g_i - g_j||^2
      var += d2 / (1.0 / sizes[size_t(i)] + 1.0 / sizes[size_t(j)]);
      ++pairs;
    }
  return {dot / pairs, std::max(0.0, var / pairs)};
}

GradStats grad_stats(const Tensor& G, const std::vector<double>& sizes) {
  PH_CHECK(G.dim() == 2, "mixing::grad_stats", "expected (m, P) micro-batch gradients, got " << G.str());
  return grad_stats_from_gram(gramian(G), sizes);
}

std::vector<GradStats> grad_stats_per_task(const Mat& M, const std::vector<int>& task_of_row,
                                           const std::vector<double>& sizes, int K) {
  const char* op = "mixing::grad_stats_per_task";
  PH_CHECK(M.rows == M.cols && M.rows == int(task_of_row.size()) && sizes.size() == task_of_row.size(), op,
           "Gramian " << M.rows << " x " << M.cols << ", " << task_of_row.size() << " row tasks and " << sizes.size()
                      << " sizes must agree");
  PH_CHECK(K >= 1, op, "K must be >= 1, got " << K);
  std::vector<std::vector<int>> rows(static_cast<size_t>(K));
  for (size_t r = 0; r < task_of_row.size(); ++r) {
    PH_CHECK(task_of_row[r] >= 0 && task_of_row[r] < K, op, "row " << r << " names task " << task_of_row[r] << " of " << K);
    rows[size_t(task_of_row[r])].push_back(int(r));
  }
  std::vector<GradStats> out(static_cast<size_t>(K));
  for (int k = 0; k < K; ++k) {
    const auto& R = rows[size_t(k)];
    PH_CHECK(R.size() >= 2, op, "task " << k << " has " << R.size() << " micro-batch gradient(s); at least 2 are needed");
    Mat sub(int(R.size()), int(R.size()));
    std::vector<double> s;
    for (size_t i = 0; i < R.size(); ++i) {
      s.push_back(sizes[size_t(R[i])]);
      for (size_t j = 0; j < R.size(); ++j) sub(int(i), int(j)) = M(R[i], R[j]);
    }
    out[size_t(k)] = grad_stats_from_gram(sub, s);
  }
  return out;
}

std::vector<double> pike_update(const std::vector<double>& w0, const std::vector<GradStats>& stats, double zeta1,
                                double zeta2, int64_t b, const std::vector<double>& scale, double max_log_step) {
  const char* op = "mixing::pike_update";
  check_weights(w0, op);
  const size_t K = w0.size();
  PH_CHECK(stats.size() == K, op, stats.size() << " statistics for " << K << " weights");
  PH_CHECK(scale.empty() || scale.size() == K, op, scale.size() << " scales for " << K << " weights");
  PH_CHECK(b >= 1, op, "batch size must be >= 1, got " << b);
  PH_CHECK(std::isfinite(zeta1) && std::isfinite(zeta2) && zeta1 >= 0 && zeta2 >= 0, op,
           "zeta1 = " << zeta1 << ", zeta2 = " << zeta2 << " must be finite and >= 0");
  PH_CHECK(max_log_step >= 0, op, "max_log_step must be >= 0, got " << max_log_step);
  std::vector<double> e(K);
  for (size_t k = 0; k < K; ++k) {
    PH_CHECK(std::isfinite(stats[k].sq_norm) && std::isfinite(stats[k].variance), op,
             "task " << k << " statistics are not finite (||g||^2 = " << stats[k].sq_norm << ", sigma^2 = " << stats[k].variance
                     << ")");
    const double s = scale.empty() ? 1.0 : scale[k];
    PH_CHECK(std::isfinite(s) && s >= 0, op, "scale " << k << " is " << s);
    e[k] = s * (zeta1 * std::max(0.0, stats[k].sq_norm) - zeta2 / (2.0 * double(b)) * std::max(0.0, stats[k].variance));
  }
  if (max_log_step > 0) {  // cap the relative change (a common shift cancels in the normalisation)
    double mean = 0;
    for (double v : e) mean += v / double(K);
    for (double& v : e) v = mean + std::clamp(v - mean, -max_log_step, max_log_step);
  }
  // w_k exp(e_k) / sum, computed in log space (zero weights stay zero).
  const double emax = *std::max_element(e.begin(), e.end());
  std::vector<double> w = normalised(w0);
  for (size_t k = 0; k < K; ++k) w[k] *= std::exp(e[k] - emax);
  double s = 0;
  for (double v : w) s += v;
  PH_CHECK(s > 0 && std::isfinite(s), op, "the update underflowed (all weights 0); lower zeta1 / zeta2");
  for (double& v : w) v /= s;
  return w;
}

std::vector<double> project_simplex_floor(std::vector<double> w, double floor) {
  const char* op = "mixing::project_simplex_floor";
  check_weights(w, op);
  const size_t K = w.size();
  PH_CHECK(floor >= 0 && floor * double(K) <= 1 + 1e-12, op,
           "floor " << floor << " times K = " << K << " must be in [0, 1]");
  w = normalised(std::move(w));
  if (floor <= 0) return w;
  std::vector<bool> fixed(K, false);
  for (size_t iter = 0; iter <= K; ++iter) {
    double free_mass = 0;
    size_t nfixed = 0;
    for (size_t k = 0; k < K; ++k) {
      if (fixed[k]) ++nfixed;
      else free_mass += w[k];
    }
    const double target = 1.0 - double(nfixed) * floor;
    bool changed = false;
    for (size_t k = 0; k < K; ++k) {
      if (fixed[k]) {
        w[k] = floor;
        continue;
      }
      w[k] = free_mass > 0 ? w[k] * target / free_mass : target / double(K - nfixed);
    }
    for (size_t k = 0; k < K; ++k)
      if (!fixed[k] && w[k] < floor) {
        fixed[k] = true;
        w[k] = floor;
        changed = true;
      }
    if (!changed) break;
  }
  return w;
}

std::vector<double> tilt_weights(double tau, const std::vector<double>& L, TiltNorm norm) {
  const char* op = "mixing::tilt_weights";
  PH_CHECK(std::isfinite(tau) && tau >= 0, op, "tau must be finite and >= 0, got " << tau);
  PH_CHECK(!L.empty(), op, "no losses");
  for (size_t k = 0; k < L.size(); ++k) PH_CHECK(std::isfinite(L[k]), op, "loss " << k << " is " << L[k]);
  const double mx = *std::max_element(L.begin(), L.end());
  std::vector<double> y(L.size());
  double s = 0;
  for (size_t k = 0; k < L.size(); ++k) s += (y[k] = std::exp(tau * (L[k] - mx)));
  const double total = norm == TiltNorm::MeanOne ? double(L.size()) : tau;
  for (double& v : y) v = total * v / s;
  return y;
}

double tilted_loss(double tau, const std::vector<double>& L) {
  const char* op = "mixing::tilted_loss";
  PH_CHECK(std::isfinite(tau) && tau > 0, op, "tau must be finite and > 0, got " << tau);
  PH_CHECK(!L.empty(), op, "no losses");
  const double mx = *std::max_element(L.begin(), L.end());
  PH_CHECK(std::isfinite(mx), op, "losses must be finite");
  double s = 0;
  for (double v : L) s += std::exp(tau * (v - mx));
  return mx + std::log(s) / tau;
}

void PikeOptions::validate(int K, int64_t b) const {
  const char* op = "mixing::PikeOptions";
  PH_CHECK(K >= 1, op, "K must be >= 1, got " << K);
  PH_CHECK(b >= 1, op, "batch size must be >= 1, got " << b);
  PH_CHECK(T0 >= 1, op, "T0 must be >= 1, got " << T0);
  PH_CHECK(std::isfinite(zeta1), op, "zeta1 must be finite (<= 0 means auto), got " << zeta1);
  PH_CHECK(zeta1 > 0 || (std::isfinite(auto_step) && auto_step > 0), op, "auto_step must be > 0, got " << auto_step);
  PH_CHECK(std::isfinite(zeta2), op, "zeta2 must be finite (< 0 means zeta2_ratio * zeta1), got " << zeta2);
  PH_CHECK(zeta2 >= 0 || (std::isfinite(zeta2_ratio) && zeta2_ratio >= 0), op,
           "zeta2_ratio must be >= 0, got " << zeta2_ratio);
  PH_CHECK(min_count >= 0 && min_count * K <= b, op,
           "min_count " << min_count << " times K = " << K << " exceeds the batch size " << b);
  PH_CHECK(std::isfinite(max_log_step) && max_log_step >= 0, op, "max_log_step must be >= 0, got " << max_log_step);
  PH_CHECK(std::isfinite(tau) && tau >= 0, op, "tau must be finite and >= 0, got " << tau);
  PH_CHECK(loss_ema >= 0 && loss_ema < 1, op, "loss_ema must be in [0, 1), got " << loss_ema);
  PH_CHECK(stats_ema >= 0 && stats_ema < 1, op, "stats_ema must be in [0, 1), got " << stats_ema);
}

Pike::Pike(int K, int64_t b, PikeOptions o, std::vector<double> w0) : K_(K), b_(b), o_(o) {
  o_.validate(K, b);
  if (w0.empty()) w0.assign(size_t(K), 1.0 / K);
  PH_CHECK(int(w0.size()) == K, "mixing::Pike", w0.size() << " initial weights for " << K << " tasks");
  check_weights(w0, "mixing::Pike");
  w_ = project_simplex_floor(w0, floor());
  ema_.assign(size_t(K), std::numeric_limits<double>::quiet_NaN());
  if (o_.zeta1 > 0) {
    zeta1_ = o_.zeta1;
    zeta2_ = o_.zeta2 >= 0 ? o_.zeta2 : o_.zeta2_ratio * zeta1_;
  }
}

double Pike::floor() const {
  // min_count / b, nudged up by 1e-12 where there is room so that the rounding of b w_k can never
  // land below min_count through floating-point error
  const double f = double(o_.min_count) / double(b_);
  return f > 0 && f * K_ + 1e-9 < 1 ? f + 1e-12 : f;
}

void Pike::observe_losses(const std::vector<double>& L) {
  PH_CHECK(int(L.size()) == K_, "mixing::Pike::observe_losses", L.size() << " losses for " << K_ << " tasks");
  for (size_t k = 0; k < L.size(); ++k) {
    if (std::isnan(L[k])) continue;  // task absent from this batch
    PH_CHECK(std::isfinite(L[k]), "mixing::Pike::observe_losses", "loss of task " << k << " is " << L[k]);
    ema_[k] = std::isnan(ema_[k]) ? L[k] : o_.loss_ema * ema_[k] + (1 - o_.loss_ema) * L[k];
  }
}

std::vector<double> Pike::loss_scale() const {
  if (!o_.balanced) return std::vector<double>(size_t(K_), 1.0);
  // Tasks not yet seen use the mean of the seen ones (all 1 before any loss was observed).
  double sum = 0;
  int n = 0;
  for (double v : ema_)
    if (!std::isnan(v)) sum += v, ++n;
  if (n == 0) return std::vector<double>(size_t(K_), o_.tilt_norm == TiltNorm::MeanOne ? 1.0 : o_.tau / K_);
  std::vector<double> L(ema_);
  for (double& v : L)
    if (std::isnan(v)) v = sum / n;
  return tilt_weights(o_.tau, L, o_.tilt_norm);
}

void Pike::update(const std::vector<GradStats>& raw) {
  PH_CHECK(int(raw.size()) == K_, "mixing::Pike::update", raw.size() << " statistics for " << K_ << " tasks");
  for (size_t k = 0; k < raw.size(); ++k)
    PH_CHECK(std::isfinite(raw[k].sq_norm) && std::isfinite(raw[k].variance), "mixing::Pike::update",
             "statistics of task " << k << " are not finite (" << raw[k].sq_norm << ", " << raw[k].variance << ")");
  last_ = raw;
  if (smooth_.empty()) smooth_ = raw;
  else
    for (size_t k = 0; k < raw.size(); ++k) {
      smooth_[k].sq_norm = o_.stats_ema * smooth_[k].sq_norm + (1 - o_.stats_ema) * raw[k].sq_norm;
      smooth_[k].variance = o_.stats_ema * smooth_[k].variance + (1 - o_.stats_ema) * raw[k].variance;
    }
  const std::vector<GradStats>& stats = smooth_;
  if (zeta1_ <= 0) {  // first update: calibrate
    double g = 0;
    for (const auto& s : stats) g = std::max(g, s.sq_norm);
    if (!(g > 0)) return;  // nothing measurable yet: keep the weights, try again next time
    zeta1_ = o_.auto_step / g;
    zeta2_ = o_.zeta2 >= 0 ? o_.zeta2 : o_.zeta2_ratio * zeta1_;
  }
  std::vector<double> scale;
  if (o_.balanced) {
    scale = loss_scale();
    for (double& v : scale) v *= v;  // statistics of y_k L_k scale with y_k^2
  }
  w_ = pike_update(w_, stats, zeta1_, zeta2_, b_, scale, o_.max_log_step);
  w_ = project_simplex_floor(w_, floor());
  ++updates_;
}

}  // namespace polyhead::mtl::mixing
