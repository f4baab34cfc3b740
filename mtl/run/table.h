// mtl/run/table.h: the results table: one row per method with its per-task test metric, Δm% and
// Δp% against the single-task baselines, and the median milliseconds per training step.
//
// Three renderings of the same table: aligned text for stdout, Markdown (results.md, with a short
// legend) and CSV (results.csv, full precision, empty cells where a value is not available).
// Accuracies show as percentages in text and Markdown; CSV keeps the raw fractions.
#pragma once
#include <optional>
#include <string>
#include <vector>

namespace polyhead::run {

struct ResultRow {
  std::string method;
  std::vector<double> metric;  // test metric per task
  std::vector<double> loss;    // test loss per task
  double ms_per_step = 0;
  std::optional<double> delta_m, delta_p;
};

struct ResultTable {
  std::string title;
  std::vector<std::string> tasks, metric_names;
  std::vector<bool> higher_is_better;
  std::vector<ResultRow> rows;
  std::vector<std::string> notes;  // printed under the table (Markdown / text)
};

// Sets delta_m / delta_p of every row against per-task baselines (one metric per task).
void fill_deltas(ResultTable& t, const std::vector<double>& baselines);

std::string table_text(const ResultTable& t);
std::string table_markdown(const ResultTable& t);
std::string table_csv(const ResultTable& t);

}  // namespace polyhead::run
