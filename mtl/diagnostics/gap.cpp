// mtl/diagnostics/gap.cpp: see gap.h.
#include "mtl/diagnostics/gap.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "engine/error.h"

namespace polyhead::mtl::diag {

namespace {
const double kNaN = std::numeric_limits<double>::quiet_NaN();
}

void check_curve(const Curve& c, const char* op) {
  PH_CHECK_HINT(!c.step.empty(), op, "empty curve", "record at least one step");
  PH_CHECK(c.train.size() == c.step.size() && c.heldout.size() == c.step.size(), op,
           "curve sizes differ: " << c.step.size() << " steps, " << c.train.size() << " train, " << c.heldout.size() << " held-out");
  for (size_t i = 1; i < c.step.size(); ++i)
    PH_CHECK(c.step[i] > c.step[i - 1], op, "steps must increase strictly (step " << c.step[i] << " after " << c.step[i - 1] << ")");
  for (double v : c.train) PH_CHECK(std::isfinite(v), op, "non-finite training loss in the curve");
}

std::vector<double> running_min(const std::vector<double>& v) {
  std::vector<double> m(v.size());
  double cur = std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < v.size(); ++i) m[i] = cur = std::min(cur, v[i]);
  return m;
}

Crossing first_crossing(const Curve& c, double level) {
  check_curve(c, "diag::first_crossing");
  auto m = running_min(c.train);
  Crossing r;
  if (m[0] <= level) {
    r.reached = true;
    r.step = c.step[0];
    r.heldout = c.heldout[0];
    return r;
  }
  for (size_t i = 1; i < m.size(); ++i) {
    if (m[i] <= level) {
      double a = (m[i - 1] - level) / (m[i - 1] - m[i]);
      r.reached = true;
      r.step = c.step[i - 1] + a * (c.step[i] - c.step[i - 1]);
      r.heldout = c.heldout[i - 1] + a * (c.heldout[i] - c.heldout[i - 1]);
      return r;
    }
  }
  return r;
}

MatchedPoint gap_at(const Curve& st, const Curve& mt, double level) {
  MatchedPoint p;
  p.level = level;
  Crossing a = first_crossing(st, level), b = first_crossing(mt, level);
  if (!a.reached || !b.reached) {
    p.t_st = p.t_mt = p.heldout_st = p.heldout_mt = p.gap = p.speed_ratio = kNaN;
    return p;
  }
  p.valid = true;
  p.t_st = a.step;
  p.t_mt = b.step;
  p.heldout_st = a.heldout;
  p.heldout_mt = b.heldout;
  p.gap = b.heldout - a.heldout;
  p.speed_ratio = a.step != 0 ? b.step / a.step : kNaN;
  return p;
}

std::vector<MatchedPoint> matched_gap(const Curve& st, const Curve& mt, int grid) {
  check_curve(st, "diag::matched_gap");
  check_curve(mt, "diag::matched_gap");
  PH_CHECK(grid >= 1, "diag::matched_gap", "grid must be >= 1 (got " << grid << ")");
  auto ms = running_min(st.train), mm = running_min(mt.train);
  double lo = std::max(ms.back(), mm.back()), hi = std::min(ms.front(), mm.front());
  std::vector<MatchedPoint> out;
  if (!(lo <= hi)) return out;  // the ranges do not overlap
  for (int i = 0; i < grid; ++i) {
    double l = grid == 1 ? lo : hi - (hi - lo) * double(i) / double(grid - 1);
    out.push_back(gap_at(st, mt, l));
  }
  return out;
}

double level_at_fraction(const Curve& st, double fraction) {
  check_curve(st, "diag::level_at_fraction");
  PH_CHECK(fraction >= 0 && fraction <= 1, "diag::level_at_fraction", "fraction must be in [0, 1] (got " << fraction << ")");
  auto m = running_min(st.train);
  double t = st.step.front() + fraction * (st.step.back() - st.step.front());
  return interp_at(st.step, m, t);
}

double interp_at(const std::vector<double>& steps, const std::vector<double>& values, double t) {
  PH_CHECK(steps.size() == values.size(), "diag::interp_at", steps.size() << " steps for " << values.size() << " values");
  std::vector<double> s, v;
  for (size_t i = 0; i < steps.size(); ++i)
    if (std::isfinite(values[i])) {
      s.push_back(steps[i]);
      v.push_back(values[i]);
    }
  if (s.empty() || !std::isfinite(t)) return kNaN;
  if (t <= s.front()) return t == s.front() ? v.front() : kNaN;
  if (t >= s.back()) return t == s.back() ? v.back() : kNaN;
  size_t i = size_t(std::upper_bound(s.begin(), s.end(), t) - s.begin());
  double a = (t - s[i - 1]) / (s[i] - s[i - 1]);
  return v[i - 1] + a * (v[i] - v[i - 1]);
}

namespace {
std::vector<double> ranks(const std::vector<double>& x) {
  std::vector<size_t> idx(x.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return x[a] < x[b]; });
  std::vector<double> r(x.size());
  for (size_t i = 0; i < idx.size();) {
    size_t j = i;
    while (j + 1 < idx.size() && x[idx[j + 1]] == x[idx[i]]) ++j;
    double avg = (double(i) + double(j)) / 2.0 + 1.0;
    for (size_t k = i; k <= j; ++k) r[idx[k]] = avg;
    i = j + 1;
  }
  return r;
}
}  // namespace

double spearman(const std::vector<double>& a, const std::vector<double>& b) {
  PH_CHECK(a.size() == b.size(), "diag::spearman", a.size() << " vs " << b.size() << " values");
  std::vector<double> x, y;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::isfinite(a[i]) && std::isfinite(b[i])) {
      x.push_back(a[i]);
      y.push_back(b[i]);
    }
  if (x.size() < 3) return kNaN;
  auto rx = ranks(x), ry = ranks(y);
  double mx = std::accumulate(rx.begin(), rx.end(), 0.0) / rx.size(), my = std::accumulate(ry.begin(), ry.end(), 0.0) / ry.size();
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < rx.size(); ++i) {
    sxy += (rx[i] - mx) * (ry[i] - my);
    sxx += (rx[i] - mx) * (rx[i] - mx);
    syy += (ry[i] - my) * (ry[i] - my);
  }
  if (sxx == 0 || syy == 0) return kNaN;
  return sxy / std::sqrt(sxx * syy);
}

double sign_agreement(const std::vector<double>& a, const std::vector<double>& b) {
  PH_CHECK(a.size() == b.size(), "diag::sign_agreement", a.size() << " vs " << b.size() << " values");
  int n = 0, same = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i]) || a[i] == 0 || b[i] == 0) continue;
    ++n;
    if ((a[i] > 0) == (b[i] > 0)) ++same;
  }
  return n ? double(same) / n : kNaN;
}

}  // namespace polyhead::mtl::diag
