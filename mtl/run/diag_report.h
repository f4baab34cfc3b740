// mtl/run/diag_report.h: plots and tables of the trajectory diagnostics of runs (mtl/diagnostics).
//
// Per run (write_diagnostics_plots, into the run's plots/): diag_cosine.svg (each pair's gradient
// cosine and their mean over steps), diag_conflict.svg (fraction of conflicting pairs per record,
// running fraction of recorded steps with a conflict, plain and ||sum g||-weighted),
// diag_grad_norm.svg, diag_coherence.svg, diag_noise_scale.svg, diag_sharpness.svg (each task and
// the summed loss), diag_fisher.svg and diag_probe_loss.svg (training-probe and test-probe loss).
//
// Per comparison (diagnostics_report): for every multi-task method with diagnostics and every task
// that has a single-task run with diagnostics, the loss-matched generalization gap (test loss
// MT - ST at the ST losses of 10%, 25%, 100% of ST training; accuracy gap at 100%), the speed ratio
// t_MT / t_ST, the MT run's mean cosine and conflicting-step fraction, and the relation of each
// factor (MT - ST at matched losses, or the MT value) to the gap and to the speed ratio
// (mtl/diagnostics/report.h). diagnostics.md holds both tables; the plots are
// plots/gap_<task>.svg (GG against the matched training loss, one line per method),
// plots/test_vs_train_loss_<task>.svg (held-out against training-probe loss: the gap made visible),
// plots/diag_mean_cosine.svg, plots/diag_conflict_steps.svg and plots/diag_sharpness_<task>.svg.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "mtl/diagnostics/report.h"
#include "mtl/run/experiment.h"

namespace polyhead::run {

void write_diagnostics_plots(const RunResult& r, const std::string& plots_dir);

struct DiagGapRow {
  std::string method, task;
  mtl::diag::GapSummary gap;
  std::vector<mtl::diag::FactorRelation> factors;
  double st_metric = 0, mt_metric = 0;        // final test metric of the task (last record's test probe)
  double mean_cosine = 0, conflict_steps = 0; // MT run: mean over records, last running fraction
};

struct DiagReport {
  std::vector<DiagGapRow> rows;
  std::vector<std::string> notes;
};

// runs: (label, run) as run_compare collects them; tasks: the data set's tasks.
DiagReport diagnostics_report(const std::vector<std::pair<std::string, RunResult>>& runs, const std::vector<std::string>& tasks);
std::string diagnostics_markdown(const DiagReport& r);
// The gap table as aligned text (console).
std::string diagnostics_text(const DiagReport& r);
void write_diagnostics_compare_plots(const std::vector<std::pair<std::string, RunResult>>& runs,
                                     const std::vector<std::string>& tasks, const DiagReport& rep, const std::string& plots_dir);

// Small helpers shared with the demo: "%.*f" with NaN as "n/a".
std::string fixed(double v, int digits);

}  // namespace polyhead::run
