// demos/demo_diagnostics.cpp: optimization-trajectory diagnostics (after Mueller, Dredze & Andrews,
// "Can Optimization Trajectories Explain Multi-Task Transfer?", TMLR 2025) for single-task vs
// multi-task training on MultiMNIST.
//
// For each seed, one `polyhead compare` (the run library) of: the two single-task models (left,
// right), equal-weight multi-task training (ew) and PCGrad, all with the same LeNet trunk, data,
// optimizer, budget and seed, and the diagnostics recorder on (mtl/diagnostics): per-task gradient
// norms, pairwise cosines and conflict fractions, coherence and noise scale on a fixed 512-example
// training probe, held-out loss on a fixed test probe, and on a sparser schedule the sharpness
// (power iteration on finite-difference HVPs) and the Fisher trace. Then:
//   - the loss-matched generalization gap of each task, MT - ST test loss at equal training loss
//     (at the ST losses of 10%, 25%, 100% of ST training), its spread over seeds, the speed ratio
//     t_MT / t_ST, the test accuracies, the mean gradient cosine and the fraction of recorded
//     steps with a conflicting pair;
//   - the relation of each factor to the gap: Spearman rho of x = factor_MT - factor_ST (or the
//     MT value for conflict measures) with the gap, and with log t_MT / t_ST (optimization speed),
//     over the matched loss levels of all seeds pooled.
// Written into --out: summary.md (both tables, the setup), seed<k>/ (the comparison folders, with
// diagnostics.md, every run's diagnostics.jsonl and plots), plots/gap_<task>.svg (gap against the
// matched training loss, a line per method and seed), plots/mean_cosine.svg and
// plots/conflict_steps.svg (the conflict curves over training) and plots/test_vs_train_<task>.svg.
// Real MNIST from data/mnist (scripts/fetch_mnist.sh); without it a synthetic stand-in, said loudly.
//   build/demo_diagnostics [--smoke] [--out DIR] [--data DIR] [--seeds S] [--epochs E]
//                          [--train-size N] [--methods ew,pcgrad] [--every N] [--report-only]
// --smoke: seconds (small MLP, 512 examples, 2 epochs, cheap diagnostics), for CI.
// --report-only: no training; the tables and plots again from the seed folders already in --out.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>
#include <string>

#include "mtl/diagnostics/report.h"
#include "mtl/run/compare.h"
#include "mtl/run/diag_report.h"
#include "mtl/run/files.h"
#include "mtl/run/plot.h"

using namespace polyhead;
using namespace polyhead::run;
namespace fs = std::filesystem;
namespace dg = polyhead::mtl::diag;

namespace {

struct Args {
  bool smoke = false;
  std::string out = "runs/demo_diagnostics", data_dir;
  int seeds = 3, epochs = 3, every = 20;
  int64_t train_size = 10000;
  std::string methods = "ew,pcgrad";
  bool report_only = false;
};

double mean(const std::vector<double>& v) {
  double s = 0;
  int n = 0;
  for (double x : v)
    if (std::isfinite(x)) {
      s += x;
      ++n;
    }
  return n ? s / n : NAN;
}

double sd(const std::vector<double>& v) {
  double m = mean(v), s = 0;
  int n = 0;
  for (double x : v)
    if (std::isfinite(x)) {
      s += (x - m) * (x - m);
      ++n;
    }
  return n > 1 ? std::sqrt(s / (n - 1)) : NAN;
}

std::string pm(const std::vector<double>& v, int digits, double scale = 1) {
  std::vector<double> w;
  for (double x : v) w.push_back(x * scale);
  std::string s = fixed(mean(w), digits);
  int n = 0;
  for (double x : w) n += std::isfinite(x);
  if (n > 1) s += " ± " + fixed(sd(w), digits);
  if (n < int(v.size())) s += " (" + std::to_string(n) + "/" + std::to_string(v.size()) + ")";
  return s;
}

std::string table(const std::vector<std::string>& head, const std::vector<std::vector<std::string>>& rows, bool markdown) {
  std::ostringstream o;
  if (markdown) {
    o << "|";
    for (auto& h : head) o << " " << h << " |";
    o << "\n|";
    for (size_t i = 0; i < head.size(); ++i) o << (i < 2 ? "---|" : "---:|");
    o << "\n";
    for (auto& r : rows) {
      o << "|";
      for (auto& c : r) o << " " << c << " |";
      o << "\n";
    }
    return o.str();
  }
  std::vector<size_t> w(head.size());
  auto width = [](const std::string& s) {  // display width: count UTF-8 lead bytes
    size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
  };
  for (size_t i = 0; i < head.size(); ++i) w[i] = width(head[i]);
  for (auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) w[i] = std::max(w[i], width(r[i]));
  auto line = [&](const std::vector<std::string>& c) {
    for (size_t i = 0; i < c.size(); ++i) {
      std::string pad(w[i] - width(c[i]), ' ');
      o << (i < 2 ? c[i] + pad : pad + c[i]) << "  ";
    }
    o << "\n";
  };
  line(head);
  for (auto& r : rows) line(r);
  return o.str();
}

int run_demo(const Args& a) {
  const std::vector<std::string> tasks = {"left", "right"};
  CompareConfig c;
  c.name = "diagnostics";
  RunConfig& b = c.base;
  b.dataset = "multimnist";
  b.data_dir = a.data_dir;
  b.optimizer = "adam";
  b.lr = 1e-3;
  b.train_eval_size = 0;
  b.gramian_every = 0;
  b.diagnostics_every = a.every;
  if (a.smoke) {
    b.model = "mlp";
    b.hidden = 64;
    b.train_size = 512;
    b.test_size = 256;
    b.epochs = 2;
    b.batch_size = 64;
    b.diagnostics_every = 4;
    b.diagnostics = {{"probe_size", 128}, {"micro_batch", 32}, {"test_probe_size", 256}, {"heavy_every", 2},
                     {"sharpness_probe", 64}, {"power_iters", 5}, {"fisher_n", 16}};
  } else {
    b.model = "lenet";
    b.train_size = a.train_size;
    b.test_size = 2000;
    b.epochs = a.epochs;
    b.batch_size = 128;
    // CPU budget: sharpness on 128 probe examples with 10 power iterations, Fisher on 64 examples,
    // every 4th scheduled record (and the last one).
    b.diagnostics = {{"probe_size", 512}, {"micro_batch", 64}, {"test_probe_size", 1000}, {"heavy_every", 4},
                     {"sharpness_probe", 128}, {"power_iters", 10}, {"fisher_n", 64}};
  }
  c.methods = {kSingleTask};
  for (auto& m : split_list(a.methods)) c.methods.push_back(m);
  const int seeds = a.smoke ? 1 : a.seeds;
  fs::create_directories(a.out);
  RunOptions ro;
  ro.quiet = a.smoke;
  ro.overwrite = true;

  // (method, task) -> per-seed gap summaries; records for pooling.
  std::map<std::pair<std::string, std::string>, std::vector<dg::GapSummary>> gaps;
  std::map<std::pair<std::string, std::string>, std::vector<double>> st_acc, mt_acc, cosm, confl;
  std::map<std::string, std::vector<std::vector<dg::DiagRecord>>> records;  // run folder name -> per seed
  bool synthetic = false;
  std::string data_desc;
  for (int s = 0; s < seeds; ++s) {
    c.base.seed = uint64_t(s);
    std::string dir = path_join(a.out, "seed" + std::to_string(s));
    if (!a.report_only) {
      CompareResult res = run_compare(c, false, dir, ro);
      if (!res.failed.empty()) {
        for (auto& f : res.failed) std::fprintf(stderr, "FAILED: %s\n", f.c_str());
        return 1;
      }
      std::printf("== seed %d\n%s\n%s\n", s, table_text(res.table).c_str(), diagnostics_text(*res.diagnostics).c_str());
      std::fflush(stdout);
    }
    for (auto& t : tasks)
      records["single-task-" + t].push_back(dg::read_diag_file(path_join(path_join(dir, "single-task-" + t), "diagnostics.jsonl"), {t}));
    for (size_t i = 1; i < c.methods.size(); ++i)
      records[c.methods[i]].push_back(dg::read_diag_file(path_join(path_join(dir, safe_name(c.methods[i])), "diagnostics.jsonl"), tasks));
    for (auto& [name, recs] : records)
      if (recs.back().empty())
        throw std::runtime_error("no diagnostics records for " + name + " in " + dir + (a.report_only ? " (run without --report-only first)" : ""));
    for (size_t i = 1; i < c.methods.size(); ++i)
      for (size_t k = 0; k < tasks.size(); ++k) {
        auto key = std::make_pair(c.methods[i], tasks[k]);
        const auto& st = records["single-task-" + tasks[k]].back();
        const auto& mt = records[c.methods[i]].back();
        gaps[key].push_back(dg::gap_summary(st, 0, mt, int(k)));
        st_acc[key].push_back(st.back().tasks[0].test_metric);
        mt_acc[key].push_back(mt.back().tasks[k].test_metric);
        std::vector<double> cos;
        for (auto& d : mt) cos.push_back(d.conflict.mean_cosine);
        cosm[key].push_back(mean(cos));
        confl[key].push_back(mt.back().conflict_steps);
      }
    if (s == 0) {
      std::string res_md = read_text(path_join(dir, "results.md"));
      auto p = res_md.find("Data: ");
      if (p != std::string::npos) data_desc = res_md.substr(p + 6, res_md.find('\n', p) - p - 6);
      synthetic = data_desc.find("NOT real") != std::string::npos;
      while (!data_desc.empty() && data_desc.back() == '.') data_desc.pop_back();
    }
  }

  // Summary tables.
  std::vector<std::string> gh = {"method", "task", "ST acc %", "MT acc %", "GG@10%", "GG@25%", "GG@100%", "lowest common loss",
                                 "GG there", "acc gap there (pt)", "speed@25%", "mean cos", "conflict steps"};
  std::vector<std::vector<std::string>> grows;
  for (size_t i = 1; i < c.methods.size(); ++i)
    for (auto& t : tasks) {
      auto key = std::make_pair(c.methods[i], t);
      auto& g = gaps[key];
      std::vector<double> g10, g25, g100, lo, glo, alo, sp25;
      for (auto& x : g) {
        g10.push_back(x.gap[0]);
        g25.push_back(x.gap[1]);
        g100.push_back(x.gap[2]);
        lo.push_back(x.last.level);
        glo.push_back(x.last.gap);
        alo.push_back(x.last_metric_gap);
        sp25.push_back(x.speed[1]);
      }
      grows.push_back({c.methods[i], t, pm(st_acc[key], 2, 100), pm(mt_acc[key], 2, 100), pm(g10, 4), pm(g25, 4), pm(g100, 4),
                       pm(lo, 3), pm(glo, 4), pm(alo, 2, 100), pm(sp25, 2), pm(cosm[key], 3), pm(confl[key], 2)});
    }
  std::vector<std::string> fh = {"method", "task", "factor x", "mean x", "rho(x, GG)", "sign agree", "rho(x, log speed)", "levels"};
  std::vector<std::vector<std::string>> frows;
  for (size_t i = 1; i < c.methods.size(); ++i)
    for (size_t k = 0; k < tasks.size(); ++k) {
      std::vector<std::pair<const std::vector<dg::DiagRecord>*, const std::vector<dg::DiagRecord>*>> pairs;
      for (int s = 0; s < seeds; ++s)
        pairs.emplace_back(&records["single-task-" + tasks[k]][size_t(s)], &records[c.methods[i]][size_t(s)]);
      for (auto& f : dg::relate_factors_pooled(pairs, 0, int(k)))
        frows.push_back({c.methods[i], tasks[k], f.factor + (f.mt_only ? " (MT)" : " (MT-ST)"), fixed(f.mean_x, 4), fixed(f.rho_gap, 2),
                         fixed(f.sign_agree, 2), fixed(f.rho_speed, 2), std::to_string(f.n)});
    }
  std::printf("== loss-matched generalization gap, %d seed(s) (mean ± sd)\n%s\n", seeds, table(gh, grows, false).c_str());
  std::printf("== trajectory factors against the gap (matched loss levels of all seeds pooled)\n%s\n", table(fh, frows, false).c_str());

  // Plots: gap curves and conflict curves over training.
  fs::create_directories(path_join(a.out, "plots"));
  for (size_t k = 0; k < tasks.size(); ++k) {
    LinePlot gp, tv;
    gp.title = "Loss-matched gap, task " + tasks[k] + ": test loss MT - ST";
    gp.xlabel = "training-probe loss (matched)";
    gp.ylabel = "gap (test loss)";
    tv.title = "Test against training loss, task " + tasks[k];
    tv.xlabel = "training-probe loss";
    tv.ylabel = "test-probe loss";
    for (int s = 0; s < seeds; ++s) {
      const auto& st = records["single-task-" + tasks[k]][size_t(s)];
      Series sv{"single-task s" + std::to_string(s), {}, {}};
      for (auto& d : st) {
        sv.x.push_back(d.tasks[0].train_loss);
        sv.y.push_back(d.tasks[0].test_loss);
      }
      tv.series.push_back(sv);
      for (size_t i = 1; i < c.methods.size(); ++i) {
        const auto& mt = records[c.methods[i]][size_t(s)];
        auto curve = dg::matched_gap(dg::curve_of(st, 0), dg::curve_of(mt, int(k)), 40);
        Series g{c.methods[i] + " s" + std::to_string(s), {}, {}};
        for (auto it = curve.rbegin(); it != curve.rend(); ++it) {
          g.x.push_back(it->level);
          g.y.push_back(it->gap);
        }
        gp.series.push_back(g);
        Series m{c.methods[i] + " s" + std::to_string(s), {}, {}};
        for (auto& d : mt) {
          m.x.push_back(d.tasks[k].train_loss);
          m.y.push_back(d.tasks[k].test_loss);
        }
        tv.series.push_back(m);
      }
    }
    write_text_atomic(path_join(a.out, "plots/gap_" + tasks[k] + ".svg"), line_plot_svg(gp));
    write_text_atomic(path_join(a.out, "plots/test_vs_train_" + tasks[k] + ".svg"), line_plot_svg(tv));
  }
  LinePlot mc, cs;
  mc.title = "Mean gradient cosine between the tasks (training probe)";
  cs.title = "Fraction of recorded steps with conflicting task gradients";
  mc.xlabel = cs.xlabel = "step";
  mc.ylabel = "cosine";
  cs.ylabel = "fraction";
  for (size_t i = 1; i < c.methods.size(); ++i)
    for (int s = 0; s < seeds; ++s) {
      Series m{c.methods[i] + " s" + std::to_string(s), {}, {}}, f{c.methods[i] + " s" + std::to_string(s), {}, {}};
      for (auto& d : records[c.methods[i]][size_t(s)]) {
        m.x.push_back(double(d.step));
        m.y.push_back(d.conflict.mean_cosine);
        f.x.push_back(double(d.step));
        f.y.push_back(d.conflict_steps);
      }
      mc.series.push_back(m);
      cs.series.push_back(f);
    }
  write_text_atomic(path_join(a.out, "plots/mean_cosine.svg"), line_plot_svg(mc));
  write_text_atomic(path_join(a.out, "plots/conflict_steps.svg"), line_plot_svg(cs));

  std::ostringstream md;
  md << "# Trajectory diagnostics: single-task vs multi-task on MultiMNIST\n\n"
     << "Setup: " << b.model << "-hps, adam lr " << b.lr << ", batch " << b.batch_size << ", " << b.epochs << " epoch(s), " << seeds
     << " seed(s); diagnostics every " << b.diagnostics_every << " steps (and 0, 1, 2, 4, ...), options " << b.diagnostics.dump()
     << ". Data: " << data_desc << (synthetic ? " (NOT real MNIST)" : "") << ".\n\n"
     << "## Loss-matched generalization gap (mean ± sd over seeds)\n\n"
     << table(gh, grows, true) << "\n"
     << "GG@f: test loss MT - ST at the training-probe loss the ST run reached after a fraction f of its steps "
        "(negative = MT generalizes better at equal training loss; n/a or (m/n) = MT did not reach that loss in some seeds). "
        "Lowest common loss: the lowest training-probe loss both runs reach; GG and the test-probe accuracy gap (MT - ST, "
        "positive = MT better) there. speed: t_MT / t_ST to reach the 25% loss. "
        "ST/MT acc: test-probe accuracy at the end. mean cos: gradient cosine of the two tasks on the training probe, "
        "averaged over the records; conflict steps: fraction of records with a negative cosine.\n\n"
     << "## Trajectory factors against the gap (matched levels of all seeds pooled)\n\n"
     << table(fh, frows, true) << "\n"
     << "x = factor_MT - factor_ST at matched training loss (conflict measures: the MT value); rho = Spearman rank "
        "correlation over the matched loss levels; sign agree = fraction of levels where x and GG have the same sign.\n";
  write_text_atomic(path_join(a.out, "summary.md"), md.str());
  if (synthetic) std::printf("\nNOTE: the data was the SYNTHETIC stand-in, not MNIST (scripts/fetch_mnist.sh).\n");
  std::printf("Written: %s/summary.md, %s/plots/*.svg, %s/seed*/\n", a.out.c_str(), a.out.c_str(), a.out.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "demo_diagnostics: %s needs a value\n", s.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    try {
      if (s == "--smoke") a.smoke = true;
      else if (s == "--out") a.out = next();
      else if (s == "--data") a.data_dir = next();
      else if (s == "--seeds") a.seeds = std::stoi(next());
      else if (s == "--epochs") a.epochs = std::stoi(next());
      else if (s == "--train-size") a.train_size = std::stoll(next());
      else if (s == "--methods") a.methods = next();
      else if (s == "--every") a.every = std::stoi(next());
      else if (s == "--report-only") a.report_only = true;
      else throw std::invalid_argument("unknown flag");
    } catch (const std::exception&) {
      std::fprintf(stderr,
                   "usage: demo_diagnostics [--smoke] [--out DIR] [--data DIR] [--seeds S] [--epochs E] [--train-size N] "
                   "[--methods ew,pcgrad] [--every N] [--report-only]\n(bad flag or value: %s)\n",
                   s.c_str());
      return 2;
    }
  }
  if (a.seeds < 1 || a.epochs < 1 || a.every < 1 || a.train_size < 1024) {
    std::fprintf(stderr, "demo_diagnostics: --seeds, --epochs, --every must be >= 1 and --train-size >= 1024\n");
    return 2;
  }
  try {
    return run_demo(a);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "demo_diagnostics: %s\n", e.what());
    return 1;
  }
}
