// mtl/run/compare.cpp: see compare.h.
#include "mtl/run/compare.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <limits>

#include "mtl/run/diag_report.h"
#include "mtl/run/files.h"
#include "mtl/run/plot.h"

namespace polyhead::run {

namespace fs = std::filesystem;

namespace {
constexpr const char* kCompareFile = "compare_config.json";
const double kNaN = std::numeric_limits<double>::quiet_NaN();
}  // namespace

CompareResult run_compare(const CompareConfig& c, bool full, const std::string& out_dir, const RunOptions& o) {
  validate(c);
  RunConfig base = full ? apply_full(c) : c.base;
  std::string dir = out_dir;
  if (dir.empty()) dir = unique_dir(c.out.empty() ? "runs/" + safe_name(c.name) : c.out);
  if (fs::exists(path_join(dir, kCompareFile)) && !o.overwrite)
    throw std::runtime_error("'" + dir + "' already holds a comparison; pick another --out or pass --overwrite");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir)) throw std::runtime_error("cannot create folder '" + dir + "': " + ec.message());
  {
    CompareConfig resolved = c;
    resolved.base = base;
    resolved.full = json::object();
    resolved.out = dir;
    json j = to_json(resolved);
    j["full_applied"] = full;
    write_text_atomic(path_join(dir, kCompareFile), j.dump(2) + "\n");
  }
  std::ostream& log = o.log ? *o.log : std::cerr;

  const auto tasks = dataset_tasks(base.dataset);
  const size_t K = tasks.size();
  CompareResult res;
  res.dir = dir;
  ResultTable& t = res.table;
  t.title = "polyhead compare: " + c.name + (full ? " (full)" : "");
  t.tasks = tasks;
  std::vector<std::pair<std::string, RunResult>> runs;
  int n_runs = 0, run_i = 0;
  for (auto& m : c.methods) n_runs += m == kSingleTask ? int(K) : 1;
  std::string data_description;
  auto run_one = [&](const RunConfig& cfg, const std::string& sub, const std::string& label) -> const RunResult* {
    RunOptions ro = o;
    ro.label = "[" + std::to_string(++run_i) + "/" + std::to_string(n_runs) + "] " + label;
    try {
      RunResult r = train_run(cfg, path_join(dir, sub), ro);
      res.synthetic_data = res.synthetic_data || r.synthetic_data;
      data_description = r.data_description;
      if (t.metric_names.empty() && r.tasks.size() == K) {
        t.metric_names = r.metric_names;
        t.higher_is_better = r.higher_is_better;
      }
      runs.emplace_back(label, std::move(r));
      return &runs.back().second;
    } catch (const std::exception& e) {
      res.failed.push_back(label + ": " + e.what());
      if (!o.quiet) log << "polyhead compare: " << label << " failed: " << e.what() << "\n";
      return nullptr;
    }
  };

  std::vector<double> baselines;
  for (auto& m : c.methods) {
    ResultRow row;
    row.method = m;
    row.metric.assign(K, kNaN);
    row.loss.assign(K, kNaN);
    if (m == kSingleTask) {
      bool all = true;
      for (size_t k = 0; k < K; ++k) {
        const RunResult* r = run_one(method_config(c, base, m, tasks[k]), kSingleTask + "-" + safe_name(tasks[k]),
                                     kSingleTask + " (" + tasks[k] + ")");
        if (!r) { all = false; continue; }
        row.metric[k] = r->final_metric().at(0);
        row.loss[k] = r->final_loss().at(0);
        row.ms_per_step += r->ms_per_step;
        if (t.metric_names.empty()) {
          t.metric_names.assign(K, r->metric_names.at(0));
          t.higher_is_better.assign(K, r->higher_is_better.at(0));
        }
      }
      if (all && baselines.empty()) baselines = row.metric;
    } else {
      const RunResult* r = run_one(method_config(c, base, m), safe_name(m), m);
      if (r) {
        row.metric = r->final_metric();
        row.loss = r->final_loss();
        row.ms_per_step = r->ms_per_step;
      }
    }
    t.rows.push_back(row);
  }
  if (t.metric_names.empty()) {
    t.metric_names.assign(K, "acc");
    t.higher_is_better.assign(K, true);
  }
  bool from_config = false;
  if (baselines.empty() && base.baselines.size() == K) {
    for (auto& task : tasks) baselines.push_back(base.baselines.at(task));
    from_config = true;
  }
  if (!baselines.empty()) fill_deltas(t, baselines);

  std::string budget = std::to_string(base.epochs) + " epoch(s), batch " + std::to_string(base.batch_size) + ", " +
                       base.optimizer + " lr " + fmt(base.lr) + ", seed " + std::to_string(base.seed) +
                       (base.max_steps > 0 ? ", at most " + std::to_string(base.max_steps) + " steps" : "");
  t.notes.push_back("Setup: " + base.model + "-" + base.arch + "; " + budget + ". Test metrics after the last epoch.");
  if (baselines.empty())
    t.notes.push_back("Δm%: no single-task baselines (add \"single-task\" to the methods, or \"baselines\" to the config).");
  else
    t.notes.push_back(std::string("Δm% (Nash-MTL/FAMO convention, negative = better) against ") +
                      (from_config ? "the config's baselines." : "the single-task row (one model per task; its ms/step is their sum)."));
  t.notes.push_back("ms/step: median wall time of one trainer step (forward, per-task gradients, method, backward, update).");
  if (!data_description.empty()) t.notes.push_back("Data: " + data_description + (res.synthetic_data ? " (NOT real MNIST)." : "."));
  for (auto& f : res.failed) t.notes.push_back("FAILED: " + f);

  if (base.diagnostics_every > 0) {
    res.diagnostics = diagnostics_report(runs, tasks);
    t.notes.push_back("Trajectory diagnostics: diagnostics.md (loss-matched generalization gap, factors) and plots/gap_*.svg, "
                      "plots/diag_*.svg.");
  }
  write_text_atomic(path_join(dir, "results.md"), table_markdown(t));
  write_text_atomic(path_join(dir, "results.csv"), table_csv(t));
  if (base.diagnostics_every > 0) write_text_atomic(path_join(dir, "diagnostics.md"), diagnostics_markdown(*res.diagnostics));
  if (o.plots) write_compare_plots(runs, t, path_join(dir, "plots"));
  if (o.plots && base.diagnostics_every > 0) write_diagnostics_compare_plots(runs, tasks, *res.diagnostics, path_join(dir, "plots"));
  return res;
}

void write_compare_plots(const std::vector<std::pair<std::string, RunResult>>& runs, const ResultTable& t,
                         const std::string& dir) {
  fs::create_directories(dir);
  for (size_t k = 0; k < t.tasks.size(); ++k) {
    const std::string& task = t.tasks[k];
    const std::string& m = k < t.metric_names.size() ? t.metric_names[k] : "metric";
    LinePlot mp, lp;
    mp.title = "Test " + m + " of task " + task;
    mp.xlabel = lp.xlabel = "epoch";
    mp.integer_x = lp.integer_x = true;
    mp.ylabel = m;
    lp.title = "Test loss of task " + task;
    lp.ylabel = "loss";
    for (auto& [label, r] : runs) {
      auto it = std::find(r.tasks.begin(), r.tasks.end(), task);
      if (it == r.tasks.end()) continue;
      size_t j = size_t(it - r.tasks.begin());
      std::string name = r.config.method == kSingleTask ? kSingleTask : label;
      Series sm{name, {}, {}}, sl{name, {}, {}};
      for (auto& e : r.epochs) {
        sm.x.push_back(double(e.epoch));
        sm.y.push_back(j < e.test_metric.size() ? e.test_metric[j] : NAN);
        sl.x.push_back(double(e.epoch));
        sl.y.push_back(j < e.test_loss.size() ? e.test_loss[j] : NAN);
      }
      mp.series.push_back(sm);
      lp.series.push_back(sl);
    }
    write_text_atomic(path_join(dir, "test_" + safe_name(m) + "_" + safe_name(task) + ".svg"), line_plot_svg(mp));
    write_text_atomic(path_join(dir, "test_loss_" + safe_name(task) + ".svg"), line_plot_svg(lp));
  }
}

}  // namespace polyhead::run
