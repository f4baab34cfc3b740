// mtl/run/diag_report.cpp: see diag_report.h.
#include "mtl/run/diag_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <limits>
#include <sstream>

#include "mtl/run/files.h"
#include "mtl/run/plot.h"

namespace polyhead::run {

namespace fs = std::filesystem;
using mtl::diag::DiagRecord;

namespace {
const double kNaN = std::numeric_limits<double>::quiet_NaN();

Series series_of(const std::string& name, const std::vector<DiagRecord>& recs, const std::function<double(const DiagRecord&)>& f) {
  Series s{name, {}, {}};
  for (auto& r : recs) {
    s.x.push_back(double(r.step));
    s.y.push_back(f(r));
  }
  return s;
}

bool any_finite(const Series& s) {
  for (double v : s.y)
    if (std::isfinite(v)) return true;
  return false;
}

void write_plot(const std::string& dir, const std::string& file, LinePlot p) {
  std::vector<Series> keep;
  for (auto& s : p.series)
    if (any_finite(s)) keep.push_back(s);
  if (keep.empty()) return;
  p.series = keep;
  write_text_atomic(path_join(dir, file), line_plot_svg(p));
}

LinePlot plot(const std::string& title, const std::string& ylabel, const std::string& xlabel = "step") {
  LinePlot p;
  p.title = title;
  p.xlabel = xlabel;
  p.ylabel = ylabel;
  return p;
}

const RunResult* single_task_run(const std::vector<std::pair<std::string, RunResult>>& runs, const std::string& task) {
  for (auto& [label, r] : runs)
    if (r.config.method == kSingleTask && r.config.task == task && !r.diagnostics.empty()) return &r;
  return nullptr;
}
}  // namespace

std::string fixed(double v, int digits) {
  if (!std::isfinite(v)) return "n/a";
  char b[64];
  std::snprintf(b, sizeof(b), "%.*f", digits, v);
  return b;
}

void write_diagnostics_plots(const RunResult& r, const std::string& dir) {
  const auto& d = r.diagnostics;
  if (d.empty()) return;
  fs::create_directories(dir);
  const size_t K = r.tasks.size();
  const std::string who = " (" + (r.config.method == kSingleTask ? kSingleTask + " " + r.config.task : r.config.method) + ")";
  if (K > 1) {
    LinePlot p = plot("Gradient cosines on the training probe" + who, "cosine");
    for (size_t i = 0; i < K; ++i)
      for (size_t j = i + 1; j < K; ++j)
        p.series.push_back(series_of("cos(" + r.tasks[i] + ", " + r.tasks[j] + ")", d, [&](const DiagRecord& x) {
          return x.cosine.rows > int(j) ? x.cosine(int(i), int(j)) : kNaN;
        }));
    if (K > 2) p.series.push_back(series_of("mean over pairs", d, [](const DiagRecord& x) { return x.conflict.mean_cosine; }));
    write_plot(dir, "diag_cosine.svg", p);
    LinePlot c = plot("Gradient conflict" + who, "fraction");
    c.series.push_back(series_of("conflicting pairs (this record)", d, [](const DiagRecord& x) { return x.conflict.pair_fraction; }));
    c.series.push_back(series_of("records with a conflict (running)", d, [](const DiagRecord& x) { return x.conflict_steps; }));
    c.series.push_back(series_of("the same, ||sum g||-weighted", d, [](const DiagRecord& x) { return x.conflict_steps_weighted; }));
    write_plot(dir, "diag_conflict.svg", c);
  }
  auto per_task = [&](const std::string& file, const std::string& title, const std::string& ylabel,
                      const std::function<double(const mtl::diag::TaskRecord&)>& f, const std::function<double(const DiagRecord&)>& extra = {},
                      const std::string& extra_name = "") {
    LinePlot p = plot(title + who, ylabel);
    for (size_t k = 0; k < K; ++k)
      p.series.push_back(series_of(r.tasks[k], d, [&](const DiagRecord& x) { return k < x.tasks.size() ? f(x.tasks[k]) : kNaN; }));
    if (extra) p.series.push_back(series_of(extra_name, d, extra));
    write_plot(dir, file, p);
  };
  per_task("diag_grad_norm.svg", "Per-task gradient norm ||g_k|| (shared parameters, training probe)", "norm",
           [](const mtl::diag::TaskRecord& t) { return t.grad_norm; });
  per_task("diag_coherence.svg", "Gradient coherence over micro-batches", "coherence",
           [](const mtl::diag::TaskRecord& t) { return t.noise.coherence; },
           K > 1 ? std::function<double(const DiagRecord&)>([](const DiagRecord& x) { return x.coherence_all; }) : nullptr,
           "all tasks together");
  per_task("diag_noise_scale.svg", "Gradient-noise scale B_noise = tr(Sigma) / ||grad L||^2", "examples",
           [](const mtl::diag::TaskRecord& t) { return t.noise.noise_scale; });
  per_task("diag_sharpness.svg", "Sharpness: top Hessian eigenvalue (shared parameters)", "lambda_max",
           [](const mtl::diag::TaskRecord& t) { return t.sharpness; },
           K > 1 ? std::function<double(const DiagRecord&)>([](const DiagRecord& x) { return x.sharpness_mt; }) : nullptr,
           "summed loss");
  per_task("diag_fisher.svg", "Fisher information trace", "tr F", [](const mtl::diag::TaskRecord& t) { return t.fisher; });
  LinePlot pl = plot("Probe losses" + who, "loss");
  for (size_t k = 0; k < K; ++k) {
    pl.series.push_back(series_of(r.tasks[k] + " train probe", d, [&](const DiagRecord& x) { return x.tasks[k].train_loss; }));
    pl.series.push_back(series_of(r.tasks[k] + " test probe", d, [&](const DiagRecord& x) { return x.tasks[k].test_loss; }));
  }
  write_plot(dir, "diag_probe_loss.svg", pl);
}

DiagReport diagnostics_report(const std::vector<std::pair<std::string, RunResult>>& runs, const std::vector<std::string>& tasks) {
  DiagReport rep;
  for (auto& [label, r] : runs) {
    if (r.config.method == kSingleTask || r.diagnostics.empty()) continue;
    for (size_t k = 0; k < tasks.size(); ++k) {
      auto it = std::find(r.tasks.begin(), r.tasks.end(), tasks[k]);
      if (it == r.tasks.end()) continue;
      const int km = int(it - r.tasks.begin());
      const RunResult* st = single_task_run(runs, tasks[k]);
      if (!st) continue;
      DiagGapRow row;
      row.method = label;
      row.task = tasks[k];
      row.gap = mtl::diag::gap_summary(st->diagnostics, 0, r.diagnostics, km);
      row.factors = mtl::diag::relate_factors(st->diagnostics, 0, r.diagnostics, km, row.gap.curve);
      row.st_metric = st->diagnostics.back().tasks[0].test_metric;
      row.mt_metric = r.diagnostics.back().tasks[size_t(km)].test_metric;
      double s = 0;
      int n = 0;
      for (auto& d : r.diagnostics)
        if (std::isfinite(d.conflict.mean_cosine)) {
          s += d.conflict.mean_cosine;
          ++n;
        }
      row.mean_cosine = n ? s / n : kNaN;
      row.conflict_steps = r.diagnostics.back().conflict_steps;
      rep.rows.push_back(row);
    }
  }
  if (rep.rows.empty())
    rep.notes.push_back("No gap report: it needs single-task runs and multi-task runs, both with diagnostics (diagnostics_every > 0).");
  rep.notes.push_back("GG@f: test loss of the MT run minus that of the ST run at equal training-probe loss, the ST loss reached after "
                      "a fraction f of the ST run (negative = MT generalizes better at equal training loss; n/a = MT never "
                      "reached that training loss). Lowest common loss: the lowest training-probe loss both runs reach; GG and the "
                      "accuracy gap (test-probe accuracy MT - ST, positive = MT better) there.");
  rep.notes.push_back("speed: t_MT / t_ST, the steps MT needs to reach that training loss relative to ST (> 1 = MT optimizes the task slower).");
  rep.notes.push_back("Factor rows: x = factor_MT - factor_ST at matched training loss (MT-only factors: the MT value); rho = Spearman "
                      "correlation across the matched loss levels of one run pair, sign = fraction of levels where x and GG have the "
                      "same sign. Correlations along one trajectory are descriptive, not evidence across settings.");
  return rep;
}

namespace {
std::string md_table(const std::vector<std::string>& head, const std::vector<std::vector<std::string>>& rows) {
  std::ostringstream o;
  o << "|";
  for (auto& h : head) o << " " << h << " |";
  o << "\n|";
  for (size_t i = 0; i < head.size(); ++i) o << (i == 0 || i == 1 ? "---|" : "---:|");
  o << "\n";
  for (auto& r : rows) {
    o << "|";
    for (auto& c : r) o << " " << c << " |";
    o << "\n";
  }
  return o.str();
}

std::vector<std::string> gap_head() {
  return {"method", "task", "ST acc", "MT acc", "GG@10%", "GG@25%", "GG@100%", "lowest common loss", "GG there", "acc gap there",
          "speed@25%", "mean cos (MT)", "conflict steps (MT)"};
}

std::vector<std::vector<std::string>> gap_rows(const DiagReport& r) {
  std::vector<std::vector<std::string>> rows;
  for (auto& g : r.rows)
    rows.push_back({g.method, g.task, fixed(100 * g.st_metric, 2) + "%", fixed(100 * g.mt_metric, 2) + "%", fixed(g.gap.gap[0], 4),
                    fixed(g.gap.gap[1], 4), fixed(g.gap.gap[2], 4), fixed(g.gap.last.level, 3), fixed(g.gap.last.gap, 4),
                    std::isfinite(g.gap.last_metric_gap) ? fixed(100 * g.gap.last_metric_gap, 2) + " pt" : "n/a",
                    fixed(g.gap.speed[1], 2), fixed(g.mean_cosine, 3), fixed(g.conflict_steps, 2)});
  return rows;
}
}  // namespace

std::string diagnostics_markdown(const DiagReport& r) {
  std::ostringstream o;
  o << "## Loss-matched generalization gap (multi-task vs single-task)\n\n" << md_table(gap_head(), gap_rows(r)) << "\n";
  std::vector<std::vector<std::string>> rows;
  for (auto& g : r.rows)
    for (auto& f : g.factors)
      rows.push_back({g.method, g.task, f.factor + (f.mt_only ? " (MT)" : " (MT - ST)"), fixed(f.mean_x, 4), fixed(f.rho_gap, 2),
                      fixed(f.sign_agree, 2), fixed(f.rho_speed, 2), std::to_string(f.n)});
  o << "## Trajectory factors against the gap\n\n"
    << md_table({"method", "task", "factor x", "mean x", "rho(x, GG)", "sign(x) = sign(GG)", "rho(x, log speed)", "levels"}, rows) << "\n";
  for (auto& n : r.notes) o << "- " << n << "\n";
  return o.str();
}

std::string diagnostics_text(const DiagReport& r) {
  auto head = gap_head();
  auto rows = gap_rows(r);
  std::vector<size_t> w(head.size());
  for (size_t i = 0; i < head.size(); ++i) w[i] = head[i].size();
  for (auto& row : rows)
    for (size_t i = 0; i < row.size(); ++i) w[i] = std::max(w[i], row[i].size());
  std::ostringstream o;
  auto line = [&](const std::vector<std::string>& cells) {
    for (size_t i = 0; i < cells.size(); ++i) {
      std::string c = cells[i];
      if (i < 2) o << c << std::string(w[i] - c.size() + 2, ' ');
      else o << std::string(w[i] - c.size(), ' ') << c << "  ";
    }
    o << "\n";
  };
  line(head);
  for (auto& row : rows) line(row);
  return o.str();
}

void write_diagnostics_compare_plots(const std::vector<std::pair<std::string, RunResult>>& runs,
                                     const std::vector<std::string>& tasks, const DiagReport& rep, const std::string& dir) {
  fs::create_directories(dir);
  for (auto& task : tasks) {
    LinePlot g = plot("Loss-matched gap of task " + task + ": test loss MT - ST", "gap (test loss)", "training-probe loss (matched)");
    for (auto& row : rep.rows) {
      if (row.task != task) continue;
      Series s{row.method, {}, {}};
      for (auto it = row.gap.curve.rbegin(); it != row.gap.curve.rend(); ++it) {
        s.x.push_back(it->level);
        s.y.push_back(it->gap);
      }
      g.series.push_back(s);
    }
    write_plot(dir, "gap_" + safe_name(task) + ".svg", g);
    LinePlot tv = plot("Test loss against training loss, task " + task, "test-probe loss", "training-probe loss");
    LinePlot sh = plot("Sharpness of task " + task, "lambda_max");
    for (auto& [label, r] : runs) {
      auto it = std::find(r.tasks.begin(), r.tasks.end(), task);
      if (it == r.tasks.end() || r.diagnostics.empty()) continue;
      size_t k = size_t(it - r.tasks.begin());
      std::string name = r.config.method == kSingleTask ? kSingleTask : label;
      Series s{name, {}, {}};
      for (auto& d : r.diagnostics) {
        s.x.push_back(d.tasks[k].train_loss);
        s.y.push_back(d.tasks[k].test_loss);
      }
      tv.series.push_back(s);
      sh.series.push_back(series_of(name, r.diagnostics, [k](const DiagRecord& d) { return d.tasks[k].sharpness; }));
    }
    write_plot(dir, "test_vs_train_loss_" + safe_name(task) + ".svg", tv);
    write_plot(dir, "diag_sharpness_" + safe_name(task) + ".svg", sh);
  }
  LinePlot mc = plot("Mean pairwise gradient cosine (training probe)", "cosine");
  LinePlot cs = plot("Fraction of recorded steps with a conflicting pair", "fraction");
  for (auto& [label, r] : runs) {
    if (r.config.method == kSingleTask || r.diagnostics.empty() || r.tasks.size() < 2) continue;
    mc.series.push_back(series_of(label, r.diagnostics, [](const DiagRecord& d) { return d.conflict.mean_cosine; }));
    cs.series.push_back(series_of(label, r.diagnostics, [](const DiagRecord& d) { return d.conflict_steps; }));
  }
  write_plot(dir, "diag_mean_cosine.svg", mc);
  write_plot(dir, "diag_conflict_steps.svg", cs);
}

}  // namespace polyhead::run
