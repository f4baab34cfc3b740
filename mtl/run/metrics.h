// mtl/run/metrics.h: what a run records, and the multi-task summary metrics.
//
//   steps.jsonl   one JSON object per training step: {"step", "epoch", "losses": {task: L},
//                 "weights": [w...], "skipped", "ms": {"forward", "grads", "method", "backward",
//                 "optimizer", "total"}, "gramian": [[...]] (K x K) on steps where one was
//                 computed, and "val_losses": {task: L} on steps whose method saw validation losses}. Step numbers count from 1; epochs from 0.
//   epochs.csv    one row per epoch: epoch (1-based), step (global step at its end), partial (1 when
//                 the run stopped inside the epoch), seconds, ms_per_step, then per task
//                 train_loss_<t> (mean of the epoch's step losses), train_<metric>_<t> (on the first
//                 train_eval_size training examples, in eval mode), test_loss_<t>, test_<metric>_<t>.
// Numbers are written in the shortest form that reads back to the same double, so two runs with
// equal metrics give byte-identical metric columns.
//
// Δm% (Nash-MTL / CAGrad / FAMO, spec mtl-methods.md §6.2): 100/K' sum_k (-1)^{δ_k} (M_k - B_k) / B_k
// with δ_k = 1 when higher is better: NEGATIVE = better than the baselines.
// Δp% (LibMTL count_improvement, §6.1): 100/T sum_t 1/M_t sum_m (-1)^{w_tm} (B_tm - N_tm) / B_tm with
// w = 1 when higher is better: POSITIVE = better. With one metric per task, Δm = -Δp.
#pragma once
#include <cstdint>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mtl/method.h"

namespace polyhead::run {

using json = nlohmann::json;

struct StepRecord {
  int64_t step = 0;  // from 1
  int epoch = 0;     // from 0
  std::vector<double> losses;
  std::vector<double> weights;
  bool skipped = false;
  double ms_forward = 0, ms_grads = 0, ms_method = 0, ms_backward = 0, ms_optimizer = 0, ms_total = 0;
  std::optional<mtl::Mat> gramian;
  std::vector<double> val_losses;  // the validation losses the method saw (CoBa); empty if none
};

json to_json(const StepRecord& r, const std::vector<std::string>& tasks);
StepRecord step_from_json(const json& j, const std::vector<std::string>& tasks);

struct EpochRow {
  int epoch = 0;        // 1-based
  int64_t step = 0;     // global step at the end of the epoch
  bool partial = false; // the run stopped (max_steps) inside this epoch
  double seconds = 0;   // wall time of the epoch's training steps
  double ms_per_step = 0;
  std::vector<double> train_loss, train_metric, test_loss, test_metric;  // per task (NaN: not measured)
};

json to_json(const EpochRow& r);
EpochRow epoch_from_json(const json& j);

// The CSV text (header + rows). metric_names: per task ("acc").
std::string epochs_csv(const std::vector<EpochRow>& rows, const std::vector<std::string>& tasks,
                       const std::vector<std::string>& metric_names);
// The header's column names (without the newline).
std::vector<std::string> epochs_csv_header(const std::vector<std::string>& tasks, const std::vector<std::string>& metric_names);

// Shortest round-trip text of a double ("nan" / "inf" / "-inf" for non-finite values).
std::string fmt(double v);

// Appends steps to <run>/steps.jsonl; truncate_steps_file keeps the lines with step <= last_step.
class StepLog {
public:
  StepLog() = default;
  StepLog(const std::string& path, bool append);
  void write(const StepRecord& r, const std::vector<std::string>& tasks);
  void flush();

private:
  std::ofstream f_;
};
std::vector<StepRecord> read_steps_file(const std::string& path, const std::vector<std::string>& tasks, int64_t last_step);
void truncate_steps_file(const std::string& path, int64_t last_step);

// Δm% (negative = better). metrics, baselines, higher_is_better: one entry per metric.
double delta_m(const std::vector<double>& metrics, const std::vector<double>& baselines,
               const std::vector<bool>& higher_is_better);
// Δp% (positive = better). Per task t, its metrics m.
double delta_p(const std::vector<std::vector<double>>& metrics, const std::vector<std::vector<double>>& baselines,
               const std::vector<std::vector<bool>>& higher_is_better);

// Gradient cosines C_ij = M_ij / sqrt(M_ii M_jj) (0 where a norm is 0).
mtl::Mat cosines(const mtl::Mat& gramian);
// The mean of the cosine matrices of the steps that logged a Gramian; rows = 0 when none did.
mtl::Mat mean_cosines(const std::vector<StepRecord>& steps);

// Median of the trainer's step times (ms_total) of non-skipped steps; 0 when none.
double median_ms(const std::vector<StepRecord>& steps);

}  // namespace polyhead::run
