// mtl/diagnostics/record.h: one diagnostics measurement of a run at one step, its options, and
// their JSON forms: the lines of <run>/diagnostics.jsonl.
//
// diagnostics.jsonl: one JSON object per recorded step:
//   {"step": t (optimizer updates done; 0 = before training), "ms": wall time of the measurement,
//    "heavy": whether sharpness / Fisher were measured,
//    "tasks": {task: {"train_loss", "test_loss", "test_metric", "grad_norm", "grad_sq", "trace_cov",
//                     "noise_scale", "coherence", "diversity", "update_conflict", "sharpness",
//                     "hessian_trace", "fisher"}},
//    "gramian": [[K x K]], "cosine": [[K x K]], "mean_cosine", "min_cosine", "conflict_pairs",
//    "conflict", "directional", "magnitude", "sum_norm", "conflict_steps",
//    "conflict_steps_weighted", "coherence_all", "sharpness_mt"}
// Values that were not measured or are undefined (NaN) are written as null.
#pragma once
#include <cstdint>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mtl/diagnostics/conflict.h"
#include "mtl/diagnostics/noise.h"
#include "mtl/method.h"

namespace polyhead::mtl::diag {

using json = nlohmann::json;

// What is measured and when (defaults: the spec's [E] table, scaled to CPU budgets where noted).
struct DiagnosticsOptions {
  int every = 0;                  // record every N optimizer steps (0 = off)
  bool log_early = true;          // also at steps 0, 1, 2, 4, 8, ... below `every` (the gap appears early)
  int64_t probe_size = 512;       // fixed training probe examples (the first of the training split)
  int64_t micro_batch = 64;       // s of the two-batch estimator; the probe holds probe_size / s micro-batches
  int64_t test_probe_size = 1000; // fixed test examples (the first of the test split) for the held-out loss
  int heavy_every = 4;            // sharpness / Fisher at steps that are multiples of every * heavy_every (0 = never)
  int64_t sharpness_probe = 256;  // examples of the training probe used for the Hessian (spec: 2048; CPU budget [E])
  int power_iters = 20;           // power-iteration products (spec default)
  double power_tol = 1e-3;        // relative change that stops the power iteration (spec default)
  double fd_eps = 1e-3;           // finite-difference step scale: eps = fd_eps / ||v||
  int hutchinson = 0;             // Hutchinson samples for tr(H) (0 = off; spec: 10)
  int64_t fisher_n = 128;         // examples for the Fisher trace (spec: 256; CPU budget [E]); 0 = off
  std::string fisher = "true";    // "true" (sampled labels) | "empirical" (gold labels)
  std::string curvature_params = "shared";  // sharpness / Fisher over "shared" parameters (spec) or "all"
  uint64_t seed = 0;              // power-iteration start, Hutchinson and Fisher draws
};

// Throws polyhead::Error naming the bad option.
void validate(const DiagnosticsOptions& o);
json to_json(const DiagnosticsOptions& o);
// Keys absent keep base's value; unknown keys / wrong types are Errors listing the valid keys.
DiagnosticsOptions options_from_json(const json& j, DiagnosticsOptions base = {});
std::vector<std::string> option_keys();

inline constexpr double kNotMeasured = std::numeric_limits<double>::quiet_NaN();

struct TaskRecord {
  double train_loss = 0, test_loss = 0, test_metric = 0;
  double grad_norm = 0;
  NoiseStats noise;
  bool update_conflict = false;
  double sharpness = kNotMeasured, hessian_trace = kNotMeasured, fisher = kNotMeasured;
};

struct DiagRecord {
  int64_t step = 0;
  double ms = 0;
  bool heavy = false;
  std::vector<TaskRecord> tasks;
  Mat gramian, cosine;
  ConflictStats conflict;
  double conflict_steps = 0, conflict_steps_weighted = 0;  // running fractions over the records so far
  double coherence_all = 0;
  double sharpness_mt = kNotMeasured;  // of the summed loss (NaN when not measured or K = 1)
};

json to_json(const DiagRecord& r, const std::vector<std::string>& tasks);
DiagRecord record_from_json(const json& j, const std::vector<std::string>& tasks);

// Appends records to a JSONL file (flushed after each line).
class DiagLog {
public:
  DiagLog() = default;
  DiagLog(const std::string& path, bool append);
  void write(const DiagRecord& r, const std::vector<std::string>& tasks);
  bool is_open() const { return f_.is_open(); }

private:
  std::ofstream f_;
};

// The records of a diagnostics.jsonl (missing file: none); malformed lines are Errors naming the line.
std::vector<DiagRecord> read_diag_file(const std::string& path, const std::vector<std::string>& tasks);
// Keeps the records with step < first_dropped (resuming re-measures from there); atomic rewrite.
void truncate_diag_file(const std::string& path, int64_t first_dropped);

}  // namespace polyhead::mtl::diag
