// mtl/diagnostics/gap.h: the training-loss-matched generalization gap between a single-task (ST)
// and a multi-task (MT) run of one task (D0), the optimization-speed ratio (D1), and the
// statistics that relate trajectory factors to the gap (D8).
//
// A Curve is one run's record of one task at recorded steps: training loss on a FIXED training
// probe set (not noisy batch losses) and a held-out value (test loss, or a test metric).
//   running_min      the training loss made monotone: m(t_i) = min_{j <= i} train(t_j).
//   first_crossing   the first (fractional) step at which m reaches a level l, by linear
//                    interpolation between the two records around the crossing (m(t_{i-1}) > l >=
//                    m(t_i): a = (m_{i-1} - l) / (m_{i-1} - m_i), t = t_{i-1} + a (t_i - t_{i-1})),
//                    and the held-out value interpolated with the same a between the raw held-out
//                    values of those two records [E: the spec says "linear interpolation" only].
//                    A level at or above m(t_0) crosses at the first record; one below min m never.
//   matched_gap      over `grid` levels evenly spaced across the overlap of both runs' ranges
//                    [max(min m_ST, min m_MT), min(m_ST(t_0), m_MT(t_0))]:
//                      GG(l) = heldout_MT(t_MT(l)) - heldout_ST(t_ST(l))   (loss: negative = MT
//                      transfers positively; for a higher-is-better metric read it the other way)
//                      speed ratio(l) = t_MT(l) / t_ST(l)   (steps; NaN when t_ST(l) = 0)
//   level_at_fraction  the ST running-min loss reached after a fraction f of the ST run's steps
//                    (interpolated): the spec's "matched-loss point corresponding to 10%, 25%,
//                    100% of ST training"; gap_at gives GG there (NaN when MT never reaches it).
// interp_at interpolates any recorded series (a trajectory factor) at a fractional step, skipping
// NaN entries (factors measured on a sparser schedule). spearman is the rank correlation (ties get
// average ranks; NaN pairs dropped; NaN when fewer than 3 pairs or a constant side).
#pragma once
#include <vector>

namespace polyhead::mtl::diag {

struct Curve {
  std::vector<double> step, train, heldout;
};

std::vector<double> running_min(const std::vector<double>& v);

struct Crossing {
  bool reached = false;
  double step = 0, heldout = 0;
};
Crossing first_crossing(const Curve& c, double level);

struct MatchedPoint {
  double level = 0;
  double t_st = 0, t_mt = 0;
  double heldout_st = 0, heldout_mt = 0;
  double gap = 0;          // heldout_mt - heldout_st
  double speed_ratio = 0;  // t_mt / t_st
  bool valid = false;      // both runs reach the level
};

MatchedPoint gap_at(const Curve& st, const Curve& mt, double level);
std::vector<MatchedPoint> matched_gap(const Curve& st, const Curve& mt, int grid = 50);
double level_at_fraction(const Curve& st, double fraction);

double interp_at(const std::vector<double>& steps, const std::vector<double>& values, double t);
double spearman(const std::vector<double>& a, const std::vector<double>& b);
// Fraction of pairs (NaN dropped, zeros excluded) where a and b have the same sign; NaN if none.
double sign_agreement(const std::vector<double>& a, const std::vector<double>& b);

// Throws polyhead::Error when steps are not strictly increasing, sizes differ, or the curve is empty.
void check_curve(const Curve& c, const char* op);

}  // namespace polyhead::mtl::diag
