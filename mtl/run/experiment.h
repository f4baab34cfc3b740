// mtl/run/experiment.h: one training run from a RunConfig, into a run folder, and its resumption.
//
// A run builds the data (datasets.h), the model (zoo: LeNet or MLP trunk, hard parameter sharing,
// one head per task, tasks named after the data set's tasks), the optimizer and the mtl::Trainer,
// then trains epoch by epoch:
//   - every step: Trainer::step, a line in steps.jsonl (losses, weights, phase times, and the K x K
//     Gramian every `gramian_every` steps: the trainer's own when the method computes one, else
//     computed on the side from the same batch without touching the training state);
//   - every epoch: Trainer::end_epoch, evaluation (test split; first train_eval_size training
//     examples), a row of epochs.csv and a checkpoint;
//   - with diagnostics_every N > 0: before the steps the recorder's schedule names (every N steps,
//     and 0, 1, 2, 4, ... below N) and once at the end (with sharpness and Fisher), the trajectory
//     diagnostics (mtl/diagnostics/recorder.h) on fixed probes, as a line of diagnostics.jsonl;
//     the measurement leaves the training state untouched, so the run's results do not change;
//   - methods that need validation losses (CoBa): the trainer's validation_losses hook gives the K
//     losses on a batch of the validation split (the first val_size training examples, held out);
//   - at the end (all epochs, or max_steps): a final checkpoint, results.md / results.csv and the
//     plots (plots/loss_<task>.svg, plots/metric_<task>.svg, plots/weights.svg,
//     plots/grad_cosine.svg, and with diagnostics plots/diag_*.svg: cosines, conflict fractions,
//     gradient norms, coherence, noise scale, sharpness, Fisher trace, probe losses).
// The run folder: config.json, steps.jsonl, [diagnostics.jsonl,] epochs.csv, checkpoint.safetensors, results.md,
// results.csv, plots/*.svg. Text files are replaced atomically; the checkpoint is written with
// nn::save_checkpoint (atomic).
//
// Checkpoint (one safetensors file): the model, the optimizer, "extra.trainer.*" (Trainer::
// state_dict: method state, loss history, the method's RNG), "extra.run.rng" (the default
// generator's seed and offset), "extra.run.loss_sum" (this epoch's running loss sums), and metadata:
// the resolved config, the data-loader position (epoch, step_in_epoch), the global step and the
// finished epochs' rows. resume_run continues from there and gives the same per-epoch metrics,
// bit for bit, as a run that was never interrupted (timing columns aside). A run stopped by
// max_steps inside an epoch gets a row marked partial in epochs.csv; the checkpoint keeps only the
// finished epochs, so resuming it finishes that epoch and replaces the partial row.
//
// Everything is validated before the run folder is touched: a bad config is a UsageError, a folder
// that already holds a run is refused (unless overwrite), a missing or corrupt checkpoint is a
// std::runtime_error / polyhead::Error naming the file; none of these modify existing files.
#pragma once
#include <cstdio>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "mtl/diagnostics/record.h"
#include "mtl/run/config.h"
#include "mtl/run/metrics.h"
#include "mtl/run/table.h"

namespace polyhead::run {

struct RunOptions {
  bool quiet = false;              // no progress bar and no messages
  bool overwrite = false;          // allow a fresh run into a folder that holds one
  bool plots = true;
  std::ostream* log = nullptr;     // messages (warnings, epoch summaries); nullptr = std::cerr
  std::FILE* progress = nullptr;   // the progress bar's stream; nullptr = stderr
  std::string label;               // progress-bar label; "" = the method name
};

struct ResumeOverrides {
  std::optional<int> epochs;
  std::optional<int64_t> max_steps;
};

struct RunResult {
  RunConfig config;
  std::string dir;
  std::vector<std::string> tasks, metric_names;
  std::vector<bool> higher_is_better;
  std::vector<EpochRow> epochs;    // as in epochs.csv (a final partial row included)
  std::vector<StepRecord> steps;   // as in steps.jsonl
  int64_t global_step = 0;
  bool complete = false;           // every epoch ran
  bool synthetic_data = false;
  std::string data_description;
  double ms_per_step = 0;          // median trainer step time
  std::vector<mtl::diag::DiagRecord> diagnostics;  // as in diagnostics.jsonl (empty when off)
  int64_t validation_size = 0;     // training examples held out for validation losses (0 = none)
  // Test metric / loss of the last evaluated epoch (NaN when none).
  std::vector<double> final_metric() const;
  std::vector<double> final_loss() const;
};

// Trains cfg into out_dir (created; refused when it holds a run and !o.overwrite).
RunResult train_run(const RunConfig& cfg, const std::string& out_dir, const RunOptions& o = {});
// Continues the run in run_dir from its checkpoint. Without an override, a step limit the run has
// already reached is lifted (the run goes on to its last epoch).
RunResult resume_run(const std::string& run_dir, const ResumeOverrides& ov = {}, const RunOptions& o = {});

// The results table of one run (one row; Δm against cfg.baselines when given) and its files.
ResultTable run_table(const RunResult& r);
// plots/*.svg of one run.
void write_run_plots(const RunResult& r, const std::string& plots_dir);

}  // namespace polyhead::run
