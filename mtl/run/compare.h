// mtl/run/compare.h: several methods on one setup, against single-task baselines.
//
// For a CompareConfig (config.h) run_compare trains, one after the other and with the same budget
// (data, model, optimizer, epochs, batch size, seed):
//   - "single-task": one model per task, trained on that task alone (run folders
//     single-task-<task>); their test metrics are the baselines B_k of Δm;
//   - every other listed method on all tasks (run folder <method>).
// The comparison folder then holds compare_config.json (the resolved config), the run folders,
// results.md / results.csv (one row per method: per-task test metric after the last epoch, Δm% and
// Δp% against the single-task row, median ms/step; the single-task row's ms/step is the sum over its
// K models) and plots/: test_<metric>_<task>.svg and test_loss_<task>.svg (one line per method, by
// epoch). A method whose run fails is reported (row without values, note) and
// the others still run. With diagnostics_every > 0 every run records its trajectory diagnostics and
// the folder also holds diagnostics.md and the gap / conflict plots (diag_report.h).
#pragma once
#include <string>
#include <vector>

#include <optional>

#include "mtl/run/config.h"
#include "mtl/run/diag_report.h"
#include "mtl/run/experiment.h"
#include "mtl/run/table.h"

namespace polyhead::run {

struct CompareResult {
  std::string dir;
  ResultTable table;
  std::vector<std::string> failed;  // "method: message"
  bool synthetic_data = false;
  std::optional<DiagReport> diagnostics;  // with diagnostics_every > 0 (also in diagnostics.md)
};

// full: apply the config's "full" overrides. out_dir "" = the config's out, else runs/<name> made
// unique (-2, -3, ...). An explicit out_dir that already holds a comparison is refused unless
// o.overwrite.
CompareResult run_compare(const CompareConfig& c, bool full, const std::string& out_dir, const RunOptions& o = {});

// The combined plots of finished runs (label -> run), into plots_dir.
void write_compare_plots(const std::vector<std::pair<std::string, RunResult>>& runs, const ResultTable& t,
                         const std::string& plots_dir);

}  // namespace polyhead::run
