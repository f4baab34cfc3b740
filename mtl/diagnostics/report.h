// mtl/diagnostics/report.h: relating trajectory factors to the ST-vs-MT generalization gap (D0,
// D1, D8) from the diagnostics records of a single-task run and a multi-task run of one task.
//
// gap_summary: the loss-matched gap GG (test loss, MT - ST) and the speed ratio t_MT / t_ST at the
//   ST losses reached after 10%, 25% and 100% of the ST run (level_at_fraction), the same gap in
//   the test metric (MT - ST; for accuracy positive = MT better), the same at the lowest training
//   loss both runs reach (`last`: the end of the overlap, defined even when MT never reaches the
//   ST run's final loss), and the matched curve over the overlap of both training-loss ranges.
// relate_factors: at every valid matched level l of the curve, each factor is interpolated at
//   t_ST(l) in the ST run and at t_MT(l) in the MT run (interp_at, skipping steps where it was not
//   measured); for factors both runs have (grad_norm, sharpness, fisher, coherence, noise_scale)
//   x = factor_MT - factor_ST, for multi-task-only factors (mean_cosine, conflict_pairs,
//   sharpness_mt) x = the MT value. Reported: Spearman rho(x, GG) and the sign agreement of x with
//   GG, and rho(x, log speed ratio) (optimization harm), with the number of levels used. One run
//   pair gives correlations ACROSS loss levels along one trajectory (not across seeds / settings as
//   in the spec's D8); with several seeds the caller pools the levels of all pairs [E].
#pragma once
#include <string>
#include <vector>

#include "mtl/diagnostics/gap.h"
#include "mtl/diagnostics/record.h"

namespace polyhead::mtl::diag {

// Task k's curve from records: training-probe loss and test loss (metric when use_metric).
Curve curve_of(const std::vector<DiagRecord>& recs, int k, bool use_metric = false);

struct GapSummary {
  double level[3] = {0, 0, 0};     // ST loss after 10%, 25%, 100% of the ST run
  double gap[3] = {0, 0, 0};       // test-loss gap MT - ST at those levels (NaN: MT never got there)
  double metric_gap[3] = {0, 0, 0};
  double speed[3] = {0, 0, 0};     // t_MT / t_ST
  MatchedPoint last;               // at the lowest training loss both runs reach (end of the overlap)
  double last_metric_gap = 0;      // the metric gap there
  std::vector<MatchedPoint> curve; // test loss, over the overlap
};
inline constexpr double kGapFractions[3] = {0.10, 0.25, 1.00};

GapSummary gap_summary(const std::vector<DiagRecord>& st, int k_st, const std::vector<DiagRecord>& mt, int k_mt, int grid = 40);

struct FactorRelation {
  std::string factor;
  bool mt_only = false;     // x is the MT value, not MT - ST
  double rho_gap = 0;       // Spearman(x, GG)
  double sign_agree = 0;    // sign(x) == sign(GG) (MT - ST factors only; NaN for MT-only ones)
  double rho_speed = 0;     // Spearman(x, log t_MT / t_ST)
  int n = 0;                // levels with x, GG and the speed ratio all defined
  double mean_x = 0;        // mean of x over those levels
};

std::vector<std::string> factor_names();
std::vector<FactorRelation> relate_factors(const std::vector<DiagRecord>& st, int k_st, const std::vector<DiagRecord>& mt,
                                           int k_mt, const std::vector<MatchedPoint>& curve);
// Pools relations computed on several run pairs by concatenating their matched levels.
std::vector<FactorRelation> relate_factors_pooled(
    const std::vector<std::pair<const std::vector<DiagRecord>*, const std::vector<DiagRecord>*>>& pairs, int k_st,
    int k_mt, int grid = 40);

// The value of a factor in one record for task k (NaN when absent).
double factor_value(const DiagRecord& r, int k, const std::string& factor);

}  // namespace polyhead::mtl::diag
