// mtl/diagnostics/report.cpp: see report.h.
#include "mtl/diagnostics/report.h"

#include <cmath>
#include <limits>

#include "engine/error.h"

namespace polyhead::mtl::diag {

namespace {
const double kNaN = std::numeric_limits<double>::quiet_NaN();
const std::vector<std::string> kBoth = {"grad_norm", "sharpness", "fisher", "coherence", "noise_scale"};
const std::vector<std::string> kMtOnly = {"mean_cosine", "conflict_pairs", "sharpness_mt"};
bool is_mt_only(const std::string& f) {
  for (auto& n : kMtOnly)
    if (n == f) return true;
  return false;
}
}  // namespace

std::vector<std::string> factor_names() {
  std::vector<std::string> v = kBoth;
  v.insert(v.end(), kMtOnly.begin(), kMtOnly.end());
  return v;
}

double factor_value(const DiagRecord& r, int k, const std::string& f) {
  if (f == "mean_cosine") return r.conflict.mean_cosine;
  if (f == "conflict_pairs") return r.tasks.size() > 1 ? r.conflict.pair_fraction : kNaN;
  if (f == "sharpness_mt") return r.sharpness_mt;
  PH_CHECK(k >= 0 && k < int(r.tasks.size()), "diag::factor_value", "task index " << k << " out of range");
  const TaskRecord& t = r.tasks[size_t(k)];
  if (f == "grad_norm") return t.grad_norm;
  if (f == "sharpness") return t.sharpness;
  if (f == "fisher") return t.fisher;
  if (f == "coherence") return t.noise.coherence;
  if (f == "noise_scale") return t.noise.noise_scale;
  throw Error("diag::factor_value", "unknown factor '" + f + "'");
}

Curve curve_of(const std::vector<DiagRecord>& recs, int k, bool use_metric) {
  Curve c;
  for (auto& r : recs) {
    PH_CHECK(k >= 0 && k < int(r.tasks.size()), "diag::curve_of", "task index " << k << " out of range");
    if (!std::isfinite(r.tasks[size_t(k)].train_loss)) continue;
    if (!c.step.empty() && double(r.step) <= c.step.back()) continue;  // duplicate steps: keep the first
    c.step.push_back(double(r.step));
    c.train.push_back(r.tasks[size_t(k)].train_loss);
    c.heldout.push_back(use_metric ? r.tasks[size_t(k)].test_metric : r.tasks[size_t(k)].test_loss);
  }
  return c;
}

GapSummary gap_summary(const std::vector<DiagRecord>& st, int k_st, const std::vector<DiagRecord>& mt, int k_mt, int grid) {
  Curve cs = curve_of(st, k_st), cm = curve_of(mt, k_mt);
  Curve ms = curve_of(st, k_st, true), mm = curve_of(mt, k_mt, true);
  GapSummary g;
  for (int i = 0; i < 3; ++i) {
    g.level[i] = level_at_fraction(cs, kGapFractions[i]);
    MatchedPoint p = gap_at(cs, cm, g.level[i]), q = gap_at(ms, mm, g.level[i]);
    g.gap[i] = p.gap;
    g.speed[i] = p.speed_ratio;
    g.metric_gap[i] = q.gap;
  }
  g.curve = matched_gap(cs, cm, grid);
  g.last.valid = false;
  g.last.gap = g.last_metric_gap = kNaN;
  if (!g.curve.empty()) {
    g.last = g.curve.back();
    g.last_metric_gap = gap_at(ms, mm, g.last.level).gap;
  }
  return g;
}

namespace {
struct Series {
  std::vector<double> step, value;
};
Series series(const std::vector<DiagRecord>& recs, int k, const std::string& f) {
  Series s;
  for (auto& r : recs) {
    if (!s.step.empty() && double(r.step) <= s.step.back()) continue;
    s.step.push_back(double(r.step));
    s.value.push_back(factor_value(r, k, f));
  }
  return s;
}

void collect(const std::vector<DiagRecord>& st, int k_st, const std::vector<DiagRecord>& mt, int k_mt,
             const std::vector<MatchedPoint>& curve, const std::string& f, std::vector<double>& x, std::vector<double>& gap,
             std::vector<double>& speed) {
  const bool mto = is_mt_only(f);
  Series a = series(st, k_st, f), b = series(mt, k_mt, f);
  for (auto& p : curve) {
    if (!p.valid) continue;
    double vm = interp_at(b.step, b.value, p.t_mt);
    double v = mto ? vm : vm - interp_at(a.step, a.value, p.t_st);
    x.push_back(v);
    gap.push_back(p.gap);
    speed.push_back(p.speed_ratio > 0 ? std::log(p.speed_ratio) : kNaN);
  }
}

FactorRelation relation(const std::string& f, const std::vector<double>& x, const std::vector<double>& gap,
                        const std::vector<double>& speed) {
  FactorRelation r;
  r.factor = f;
  r.mt_only = is_mt_only(f);
  r.rho_gap = spearman(x, gap);
  r.rho_speed = spearman(x, speed);
  r.sign_agree = r.mt_only ? kNaN : sign_agreement(x, gap);
  double sum = 0;
  for (size_t i = 0; i < x.size(); ++i)
    if (std::isfinite(x[i]) && std::isfinite(gap[i])) {
      ++r.n;
      sum += x[i];
    }
  r.mean_x = r.n ? sum / r.n : kNaN;
  return r;
}
}  // namespace

std::vector<FactorRelation> relate_factors(const std::vector<DiagRecord>& st, int k_st, const std::vector<DiagRecord>& mt,
                                           int k_mt, const std::vector<MatchedPoint>& curve) {
  std::vector<FactorRelation> out;
  for (auto& f : factor_names()) {
    std::vector<double> x, gap, speed;
    collect(st, k_st, mt, k_mt, curve, f, x, gap, speed);
    out.push_back(relation(f, x, gap, speed));
  }
  return out;
}

std::vector<FactorRelation> relate_factors_pooled(
    const std::vector<std::pair<const std::vector<DiagRecord>*, const std::vector<DiagRecord>*>>& pairs, int k_st, int k_mt,
    int grid) {
  std::vector<FactorRelation> out;
  std::vector<std::vector<MatchedPoint>> curves;
  for (auto& [st, mt] : pairs) curves.push_back(matched_gap(curve_of(*st, k_st), curve_of(*mt, k_mt), grid));
  for (auto& f : factor_names()) {
    std::vector<double> x, gap, speed;
    for (size_t i = 0; i < pairs.size(); ++i) collect(*pairs[i].first, k_st, *pairs[i].second, k_mt, curves[i], f, x, gap, speed);
    out.push_back(relation(f, x, gap, speed));
  }
  return out;
}

}  // namespace polyhead::mtl::diag
