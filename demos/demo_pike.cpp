// demos/demo_pike.cpp: PiKE adaptive data mixing in miniature. A small byte-level GPT is
// pre-trained on several text domains under each data-mixing strategy (Mix, Round-Robin, Random,
// temperature sampling, PiKE, Balanced-PiKE, DoReMi, ...) with the same number of tokens for the
// main model, and the per-domain validation losses (mean, worst domain, spread) are compared.
// DoReMi (`--strategies ...,doremi`) first trains a reference model on the uniform mixture (or
// --weights) and a Group-DRO proxy model (mtl/mixing/doremi.h); their tokens are reported apart.
//
//   build/demo_pike --smoke --out DIR      seconds: tiny model, the repository's own files as domains
//   build/demo_pike --out DIR              full mode: the man-page corpus of scripts/fetch_text_corpus.sh
//                                          (data/corpus/<lang>/), else the repository domains (said so)
// Writes DIR/results.md (table + settings + the command), DIR/results.csv, DIR/curves.csv (validation
// loss per domain over steps), DIR/weights.csv (mixture weights per step; for DoReMi also the proxy's
// alpha per step, rows "doremi_proxy", and the final weights, row "doremi_final"), DIR/stats.csv (the
// per-domain gradient statistics of the adaptive strategies) and DIR/plots/*.svg.
// --help lists every option.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "engine/error.h"
#include "mtl/mixing/doremi.h"
#include "mtl/mixing/mixing_schedules.h"
#include "mtl/mixing/mixing_trainer.h"
#include "mtl/mixing/text_domains.h"
#include "mtl/run/files.h"
#include "mtl/run/plot.h"
#include "mtl/run/progress.h"

using namespace polyhead;
using namespace polyhead::mtl::mixing;
namespace fs = std::filesystem;

namespace {

struct Args {
  bool smoke = false, repo = false;
  std::string out, corpus = "data/corpus", root;
  std::vector<std::string> strategies{"mix", "round_robin", "random", "temperature", "pike", "balanced_pike"};
  std::vector<std::string> domains;  // corpus subset
  MixedLMConfig cfg;
  PikeOptions pike;
  DoremiOptions doremi;
  double temperature = 3.0;
  std::vector<double> fixed_weights;  // fixed; also PiKE's initial weights when given
  int64_t max_bytes = 4'000'000;
  std::string command;
};

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

const char* kUsage =
    "usage: demo_pike [--smoke] [--out DIR] [--corpus DIR | --repo] [--root DIR] [--domains a,b,..]\n"
    "                 [--strategies s1,s2,..] [--steps N] [--batch B] [--context T] [--d D] [--layers L]\n"
    "                 [--heads H] [--lr LR] [--warmup W] [--eval-every N] [--eval-windows N] [--seed S]\n"
    "                 [--T0 N] [--zeta1 Z] [--auto-step A] [--zeta2 Z] [--zeta2-ratio R] [--min-count N]\n"
    "                 [--max-log-step C] [--stats-ema E] [--tau TAU] [--temperature T] [--weights w1,w2,..] [--max-bytes N]\n"
    "                 [--doremi-eta E] [--doremi-smoothing C] [--doremi-ref-steps N] [--doremi-proxy-steps N]\n"
    "strategies: mix round_robin random proportional temperature fixed (needs --weights) pike balanced_pike doremi\n"
    "doremi: reference and proxy runs of --doremi-ref-steps / --doremi-proxy-steps steps (default: --steps) on\n"
    "        the uniform mixture (or --weights), then the main run with the averaged proxy weights\n";

double num(const std::string& flag, const std::string& v) {
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  PH_CHECK(end && *end == 0 && std::isfinite(x), "options", "option " << flag << " expects a number, got '" << v << "'");
  return x;
}

int64_t integer(const std::string& flag, const std::string& v) {
  const double x = num(flag, v);
  PH_CHECK(x == std::floor(x), "options", "option " << flag << " expects an integer, got '" << v << "'");
  return int64_t(x);
}

Args parse(int argc, char** argv) {
  Args a;
  a.command = "build/demo_pike";
  for (int i = 1; i < argc; ++i) {
    a.command += ' ';
    a.command += argv[i];
  }
  std::vector<std::pair<std::string, std::string>> kv;
  for (int i = 1; i < argc; ++i) {
    std::string f = argv[i];
    if (f == "--smoke") a.smoke = true;
    else if (f == "--repo") a.repo = true;
    else if (f == "--help" || f == "-h") {
      std::printf("%s", kUsage);
      std::exit(0);
    } else {
      PH_CHECK_HINT(f.rfind("--", 0) == 0 && i + 1 < argc, "options", "unexpected argument '" << f << "'", kUsage);
      kv.emplace_back(f, argv[++i]);
    }
  }
  if (a.smoke) {  // defaults of the short mode; explicit options below still apply
    a.repo = true;
    a.cfg.gpt = {256, 32, 32, 1, 2};
    a.cfg.batch = 16;  // 4 repository domains
    a.cfg.steps = 30;
    a.cfg.warmup = 3;
    a.cfg.eval_every = 15;
    a.cfg.eval_windows = 8;
    a.pike.T0 = 5;
    a.max_bytes = 200'000;
  } else {
    a.cfg.gpt = {256, 64, 64, 2, 4};
    a.cfg.batch = 28;  // divisible by 7 and 4 (the corpus and repository domain counts): Mix is exact
    a.cfg.steps = 1500;
    a.cfg.warmup = 50;
    a.cfg.eval_every = 100;
    a.cfg.eval_windows = 64;
    a.pike.T0 = 10;
  }
  for (const auto& [f, v] : kv) {
    if (f == "--out") a.out = v;
    else if (f == "--corpus") a.corpus = v;
    else if (f == "--root") a.root = v;
    else if (f == "--domains") a.domains = split_list(v);
    else if (f == "--strategies") a.strategies = split_list(v);
    else if (f == "--steps") a.cfg.steps = integer(f, v);
    else if (f == "--batch") a.cfg.batch = integer(f, v);
    else if (f == "--context") a.cfg.gpt.block = integer(f, v);
    else if (f == "--d") a.cfg.gpt.d = integer(f, v);
    else if (f == "--layers") a.cfg.gpt.layers = integer(f, v);
    else if (f == "--heads") a.cfg.gpt.heads = integer(f, v);
    else if (f == "--lr") a.cfg.lr = num(f, v);
    else if (f == "--warmup") a.cfg.warmup = integer(f, v);
    else if (f == "--eval-every") a.cfg.eval_every = integer(f, v);
    else if (f == "--eval-windows") a.cfg.eval_windows = integer(f, v);
    else if (f == "--seed") a.cfg.seed = uint64_t(integer(f, v));
    else if (f == "--T0") a.pike.T0 = integer(f, v);
    else if (f == "--zeta1") a.pike.zeta1 = num(f, v);
    else if (f == "--auto-step") a.pike.auto_step = num(f, v);
    else if (f == "--zeta2") a.pike.zeta2 = num(f, v);
    else if (f == "--zeta2-ratio") a.pike.zeta2_ratio = num(f, v);
    else if (f == "--min-count") a.pike.min_count = integer(f, v);
    else if (f == "--max-log-step") a.pike.max_log_step = num(f, v);
    else if (f == "--stats-ema") a.pike.stats_ema = num(f, v);
    else if (f == "--tau") a.pike.tau = num(f, v);
    else if (f == "--temperature") a.temperature = num(f, v);
    else if (f == "--max-bytes") a.max_bytes = integer(f, v);
    else if (f == "--doremi-eta") a.doremi.eta = num(f, v);
    else if (f == "--doremi-smoothing") a.doremi.smoothing = num(f, v);
    else if (f == "--doremi-ref-steps") a.doremi.reference_steps = integer(f, v);
    else if (f == "--doremi-proxy-steps") a.doremi.proxy_steps = integer(f, v);
    else if (f == "--weights")
      for (const auto& w : split_list(v)) a.fixed_weights.push_back(num(f, w));
    else PH_CHECK_HINT(false, "options", "unknown option '" << f << "'", kUsage);
  }
  PH_CHECK(!a.strategies.empty(), "options", "--strategies is empty");
  PH_CHECK(a.pike.min_count >= 2, "options",
           "--min-count must be >= 2 (PiKE's statistics split each domain's windows into two halves), got "
               << a.pike.min_count);
  a.cfg.validate();
  a.doremi.validate();
  for (int64_t n : {a.doremi.reference_steps, a.doremi.proxy_steps})
    PH_CHECK(n == 0 || n > a.cfg.warmup, "options",
             "DoReMi's reference / proxy steps (" << n << ") must exceed the warm-up (" << a.cfg.warmup << ")");
  return a;
}

// The repository root: --root, else the current folder, else the folder above the executable's.
std::string find_root(const std::string& given, const char* argv0) {
  auto looks = [](const fs::path& p) { return fs::is_directory(p / "engine") && fs::exists(p / "CMakeLists.txt"); };
  if (!given.empty()) return given;
  if (looks(fs::current_path())) return ".";
  std::error_code ec;
  fs::path exe = fs::canonical("/proc/self/exe", ec);
  if (ec) exe = fs::absolute(argv0);
  for (fs::path p = exe.parent_path(); !p.empty() && p != p.root_path(); p = p.parent_path())
    if (looks(p)) return p.string();
  return ".";
}

std::string fmt(double v, int prec = 3) {
  if (std::isnan(v)) return "-";
  std::ostringstream o;
  o << std::fixed << std::setprecision(prec) << v;
  return o.str();
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / double(v.size());
}

struct Summary {
  double mean, worst, best;
  std::string worst_name;
};

Summary summarize(const std::vector<double>& v, const std::vector<std::string>& names) {
  Summary s{mean(v), -INFINITY, INFINITY, ""};
  for (size_t k = 0; k < v.size(); ++k) {
    if (v[k] > s.worst) s.worst = v[k], s.worst_name = names[k];
    s.best = std::min(s.best, v[k]);
  }
  return s;
}

void write_outputs(const Args& a, const std::string& source_note, const std::vector<TextDomain>& domains,
                   const std::vector<MixedLMResult>& runs, const DoremiResult* dr) {
  const std::string out = a.out;
  fs::create_directories(fs::path(out) / "plots");
  const auto& names = runs[0].domains;
  const size_t K = names.size();
  // results.md
  std::ostringstream md;
  md << "# PiKE data-mixing comparison\n\n";
  md << "Command: `" << a.command << "`\n\n";
  md << "Data: " << source_note << "\n\n";
  md << "| domain | train bytes | val bytes |\n|---|---|---|\n";
  for (const auto& d : domains) md << "| " << d.name << " | " << d.train.numel() << " | " << d.val.numel() << " |\n";
  const auto& c = a.cfg;
  const int64_t tokens = c.steps * c.batch * c.gpt.block;
  md << "\nModel: byte-level GPT, context " << c.gpt.block << ", d " << c.gpt.d << ", " << c.gpt.layers << " layer(s), "
     << c.gpt.heads << " heads, one shared head. AdamW lr " << c.lr << " (warm-up " << c.warmup << ", cosine to "
     << c.final_lr_fraction << "x), batch " << c.batch << " windows, " << c.steps << " steps = " << tokens
     << " training tokens for every strategy. Seed " << c.seed << ". PiKE: T0 " << a.pike.T0 << ", zeta1 "
     << (a.pike.zeta1 > 0 ? fmt(a.pike.zeta1, 4) : "auto (auto_step " + fmt(a.pike.auto_step, 3) + ")") << ", zeta2 "
     << (a.pike.zeta2 >= 0 ? fmt(a.pike.zeta2, 4) : fmt(a.pike.zeta2_ratio, 3) + " x zeta1") << ", min_count "
     << a.pike.min_count << ", stats EMA " << a.pike.stats_ema << ", log-step cap " << a.pike.max_log_step << "; Balanced-PiKE tau " << a.pike.tau << "; temperature T " << a.temperature << ".\n\n";
  md << "Final validation loss (nats per byte, " << c.eval_windows << " fixed windows per domain; lower is better):\n\n";
  md << "| strategy |";
  for (const auto& n : names) md << " " << n << " |";
  md << " mean | worst | worst - best | ms/step |\n|---|";
  for (size_t k = 0; k < K + 4; ++k) md << "---|";
  md << "\n";
  std::ostringstream csv;
  csv << "strategy";
  for (const auto& n : names) csv << ",val_" << n;
  csv << ",mean,worst,spread,ms_per_step,zeta1,zeta2";
  for (const auto& n : names) csv << ",final_w_" << n;
  csv << "\n";
  for (const auto& r : runs) {
    const auto& v = r.final_val();
    Summary s = summarize(v, names);
    md << "| " << r.strategy << " |";
    for (double x : v) md << " " << fmt(x) << " |";
    md << " " << fmt(s.mean) << " | " << fmt(s.worst) << " (" << s.worst_name << ") | " << fmt(s.worst - s.best) << " | "
       << fmt(r.ms_per_step, 0) << " |\n";
    csv << r.strategy;
    for (double x : v) csv << "," << std::setprecision(10) << x;
    csv << "," << s.mean << "," << s.worst << "," << s.worst - s.best << "," << r.ms_per_step << "," << r.zeta1 << ","
        << r.zeta2;
    for (double w : r.weights.back()) csv << "," << w;
    csv << "\n";
  }
  if (dr) {  // DoReMi's auxiliary runs, weights and token budget
    const int64_t main_tokens = c.steps * c.batch * c.gpt.block;
    const int64_t ref_tokens = int64_t(dr->reference.weights.size()) * c.batch * c.gpt.block;
    const int64_t proxy_tokens = int64_t(dr->proxy.weights.size()) * c.batch * c.gpt.block;
    md << "\nDoReMi: reference model on the " << (a.fixed_weights.empty() ? "uniform mixture" : "--weights mixture") << " ("
       << dr->reference.weights.size() << " steps), proxy model with Group DRO (" << dr->proxy.weights.size()
       << " steps, eta " << a.doremi.eta << ", smoothing c " << a.doremi.smoothing
       << "), main model with the proxy's average weights. Training tokens: main " << main_tokens << " (as every strategy), reference "
       << ref_tokens << ", proxy " << proxy_tokens << "; DoReMi in total " << main_tokens + ref_tokens + proxy_tokens
       << " (" << fmt(double(main_tokens + ref_tokens + proxy_tokens) / double(main_tokens), 2)
       << "x the main run; the proxy step also runs the reference forward pass).\n\n| auxiliary run |";
    for (const auto& n : names) md << " " << n << " |";
    md << " mean | worst | ms/step |\n|---|";
    for (size_t k = 0; k < K + 3; ++k) md << "---|";
    md << "\n";
    for (const MixedLMResult* r : {&dr->reference, &dr->proxy}) {
      Summary s = summarize(r->final_val(), names);
      md << "| " << r->strategy << " (validation loss) |";
      for (double x : r->final_val()) md << " " << fmt(x) << " |";
      md << " " << fmt(s.mean) << " | " << fmt(s.worst) << " (" << s.worst_name << ") | " << fmt(r->ms_per_step, 0) << " |\n";
    }
    md << "| DoReMi weights (average alpha) |";
    for (double w : dr->weights) md << " " << fmt(w) << " |";
    md << " | | |\n| proxy's final alpha |";
    for (double w : dr->trajectory.back()) md << " " << fmt(w) << " |";
    md << " | | |\n";
  }
  md << "\nMixture weights (mean over training / final) and share of training tokens:\n\n| strategy |";
  for (const auto& n : names) md << " " << n << " |";
  md << "\n|---|";
  for (size_t k = 0; k < K; ++k) md << "---|";
  md << "\n";
  for (const auto& r : runs) {
    md << "| " << r.strategy << " |";
    int64_t tot = 0;
    for (auto t : r.tokens) tot += t;
    for (size_t k = 0; k < K; ++k) {
      double avg = 0;
      for (const auto& w : r.weights) avg += w[k] / double(r.weights.size());
      md << " " << fmt(avg, 2) << " / " << fmt(r.weights.back()[k], 2) << " (" << fmt(100.0 * double(r.tokens[k]) / double(tot), 0)
         << "%) |";
    }
    md << "\n";
  }
  run::write_text_atomic(run::path_join(out, "results.md"), md.str());
  run::write_text_atomic(run::path_join(out, "results.csv"), csv.str());
  // curves.csv, weights.csv
  std::ostringstream cv, wv;
  cv << "strategy,step,tokens";
  for (const auto& n : names) cv << "," << n;
  cv << ",mean,worst\n";
  wv << "strategy,step";
  for (const auto& n : names) wv << "," << n;
  wv << "\n";
  for (const auto& r : runs) {
    for (size_t e = 0; e < r.eval_steps.size(); ++e) {
      cv << r.strategy << "," << r.eval_steps[e] << "," << r.eval_steps[e] * c.batch * c.gpt.block;
      for (double x : r.val_loss[e]) cv << "," << std::setprecision(8) << x;
      Summary s = summarize(r.val_loss[e], names);
      cv << "," << s.mean << "," << s.worst << "\n";
    }
    for (size_t t = 0; t < r.weights.size(); ++t) {
      wv << r.strategy << "," << t;
      for (double w : r.weights[t]) wv << "," << std::setprecision(6) << w;
      wv << "\n";
    }
  }
  if (dr) {  // the auxiliary runs' curves, the proxy's alpha per step and DoReMi's final weights
    for (const MixedLMResult* r : {&dr->reference, &dr->proxy})
      for (size_t e = 0; e < r->eval_steps.size(); ++e) {
        cv << r->strategy << "," << r->eval_steps[e] << "," << r->eval_steps[e] * c.batch * c.gpt.block;
        for (double x : r->val_loss[e]) cv << "," << std::setprecision(8) << x;
        Summary s = summarize(r->val_loss[e], names);
        cv << "," << s.mean << "," << s.worst << "\n";
      }
    for (size_t t = 0; t < dr->trajectory.size(); ++t) {
      wv << "doremi_proxy," << t;
      for (double w : dr->trajectory[t]) wv << "," << std::setprecision(6) << w;
      wv << "\n";
    }
    wv << "doremi_final," << dr->trajectory.size();
    for (double w : dr->weights) wv << "," << std::setprecision(6) << w;
    wv << "\n";
  }
  run::write_text_atomic(run::path_join(out, "curves.csv"), cv.str());
  std::ostringstream sv;  // the gradient statistics PiKE measured
  sv << "strategy,step,domain,sq_norm,variance\n";
  for (const auto& r : runs)
    for (size_t i = 0; i < r.stats_steps.size(); ++i)
      for (size_t k = 0; k < K; ++k)
        sv << r.strategy << "," << r.stats_steps[i] << "," << names[k] << "," << std::setprecision(6) << r.stats[i][k].sq_norm
           << "," << r.stats[i][k].variance << "\n";
  run::write_text_atomic(run::path_join(out, "stats.csv"), sv.str());
  run::write_text_atomic(run::path_join(out, "weights.csv"), wv.str());
  // plots: mean and worst validation loss vs tokens (all strategies); weights over time (adaptive ones)
  for (int which = 0; which < 2; ++which) {
    run::LinePlot p;
    p.title = which ? "Worst-domain validation loss" : "Mean validation loss over domains";
    p.xlabel = "training tokens (millions)";
    p.ylabel = "nats per byte";
    for (const auto& r : runs) {
      run::Series s{r.strategy, {}, {}};
      for (size_t e = 1; e < r.eval_steps.size(); ++e) {  // skip step 0 (all equal, far above)
        Summary sm = summarize(r.val_loss[e], names);
        s.x.push_back(double(r.eval_steps[e] * c.batch * c.gpt.block) / 1e6);
        s.y.push_back(which ? sm.worst : sm.mean);
      }
      p.series.push_back(s);
    }
    run::write_text_atomic(run::path_join(out, which ? "plots/worst_val_loss.svg" : "plots/mean_val_loss.svg"),
                           run::line_plot_svg(p));
  }
  for (const auto& r : runs) {
    if (r.stats_steps.empty()) continue;
    run::LinePlot p;
    p.title = r.strategy + ": mixture weights";
    p.xlabel = "step";
    p.ylabel = "w_k";
    for (size_t k = 0; k < K; ++k) {
      run::Series s{names[k], {}, {}};
      for (size_t t = 0; t < r.weights.size(); ++t) {
        s.x.push_back(double(t));
        s.y.push_back(r.weights[t][k]);
      }
      p.series.push_back(s);
    }
    run::write_text_atomic(run::path_join(out, "plots/weights_" + run::safe_name(r.strategy) + ".svg"), run::line_plot_svg(p));
  }
  if (dr) {
    run::LinePlot p;
    p.title = "DoReMi proxy: domain weights alpha";
    p.xlabel = "proxy step";
    p.ylabel = "alpha_k";
    for (size_t k = 0; k < K; ++k) {
      run::Series s{names[k], {}, {}};
      for (size_t t = 0; t < dr->trajectory.size(); ++t) {
        s.x.push_back(double(t));
        s.y.push_back(dr->trajectory[t][k]);
      }
      p.series.push_back(s);
    }
    run::write_text_atomic(run::path_join(out, "plots/weights_doremi_proxy.svg"), run::line_plot_svg(p));
  }
  for (size_t k = 0; k < K; ++k) {
    run::LinePlot p;
    p.title = "Validation loss: " + names[k];
    p.xlabel = "training tokens (millions)";
    p.ylabel = "nats per byte";
    for (const auto& r : runs) {
      run::Series s{r.strategy, {}, {}};
      for (size_t e = 1; e < r.eval_steps.size(); ++e) {
        s.x.push_back(double(r.eval_steps[e] * c.batch * c.gpt.block) / 1e6);
        s.y.push_back(r.val_loss[e][k]);
      }
      p.series.push_back(s);
    }
    run::write_text_atomic(run::path_join(out, "plots/val_" + run::safe_name(names[k]) + ".svg"), run::line_plot_svg(p));
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Args a = parse(argc, argv);
    if (a.out.empty()) a.out = run::unique_dir(a.smoke ? "runs/pike-smoke" : "runs/pike");
    // domains
    DomainOptions dopt;
    dopt.max_bytes = a.max_bytes;
    std::vector<TextDomain> domains;
    std::string note;
    const std::string root = find_root(a.root, argv[0]);
    if (!a.repo && !corpus_available(a.corpus) && fs::path(a.corpus).is_relative() &&
        corpus_available((fs::path(root) / a.corpus).string()))
      a.corpus = (fs::path(root) / a.corpus).string();  // relative to the repository, not the current folder
    if (!a.repo && corpus_available(a.corpus)) {
      domains = load_corpus_domains(a.corpus, dopt, a.domains);
      note = "the man-page corpus in " + a.corpus + " (scripts/fetch_text_corpus.sh), one domain per folder";
    } else {
      PH_CHECK(a.domains.empty(), "options", "--domains selects corpus folders; the repository domains are fixed");
      domains = load_repository_domains(root, dopt);
      note = "this repository's own files (C++, Markdown, build scripts, Python) as four domains";
      if (a.smoke) note += " (short mode always uses them)";
      else
        std::fprintf(stderr,
                     "demo_pike: NOTE: no text corpus in '%s' (run scripts/fetch_text_corpus.sh for the multilingual "
                     "man pages); using the repository's own files as domains instead.\n",
                     a.corpus.c_str());
    }
    std::printf("demo_pike: %zu domains from %s\n", domains.size(), note.c_str());
    for (const auto& d : domains)
      std::printf("  %-10s %9lld train bytes, %8lld val bytes (%lld files)\n", d.name.c_str(),
                  (long long)d.train.numel(), (long long)d.val.numel(), (long long)d.files);

    MixingOptions mo;
    mo.K = int(domains.size());
    mo.batch = a.cfg.batch;
    for (const auto& d : domains) mo.sizes.push_back(double(d.train.numel()));
    mo.temperature = a.temperature;
    mo.fixed_weights = a.fixed_weights;
    mo.seed = a.cfg.seed;
    mo.pike = a.pike;
    std::vector<std::unique_ptr<MixingStrategy>> strategies;
    for (const auto& s : a.strategies) {  // names checked up front; DoReMi's weights come from its phases below
      MixingOptions m = mo;
      if (s == "doremi") m.fixed_weights.assign(size_t(mo.K), 1.0);
      strategies.push_back(make_mixing_strategy(s, m));
    }

    std::vector<MixedLMResult> runs;
    std::unique_ptr<DoremiResult> doremi;
    for (auto& st : strategies) {
      if (st->name() == "doremi" && !doremi) {  // phases 1-3: reference, proxy, average weights
        const int64_t rs = a.doremi.reference_steps > 0 ? a.doremi.reference_steps : a.cfg.steps;
        const int64_t ps = a.doremi.proxy_steps > 0 ? a.doremi.proxy_steps : a.cfg.steps;
        run::Progress rbar("doremi_reference", rs, a.cfg.batch, !a.smoke);
        std::unique_ptr<run::Progress> pbar;  // started with the proxy's first step
        doremi = std::make_unique<DoremiResult>(run_doremi(
            domains, a.cfg, a.doremi, a.fixed_weights,
            [&](int64_t t, const std::vector<double>&) {
              if ((t + 1) % 10 == 0) rbar.update(t + 1);
            },
            [&](int64_t t, const std::vector<double>&) {
              if (!pbar) {
                rbar.finish();
                pbar = std::make_unique<run::Progress>("doremi_proxy", ps, a.cfg.batch, !a.smoke);
              }
              if ((t + 1) % 10 == 0) pbar->update(t + 1);
            }));
        if (pbar) pbar->finish();
        for (const MixedLMResult* r : {&doremi->reference, &doremi->proxy}) {
          Summary s = summarize(r->final_val(), r->domains);
          std::printf("%-16s mean val %.4f  worst %.4f (%s)  %.1f s  %.0f ms/step\n", r->strategy.c_str(), s.mean, s.worst,
                      s.worst_name.c_str(), r->seconds, r->ms_per_step);
        }
        std::printf("doremi weights:");
        for (size_t k = 0; k < doremi->weights.size(); ++k)
          std::printf(" %s %.3f", domains[k].name.c_str(), doremi->weights[k]);
        std::printf("  (reference + proxy: %lld tokens)\n", (long long)doremi->tokens);
        std::fflush(stdout);
        MixingOptions m = mo;
        m.fixed_weights = doremi->weights;
        st = make_mixing_strategy("doremi", m);
      }
      run::Progress bar(st->name(), a.cfg.steps, a.cfg.batch, !a.smoke);
      MixedLMResult r = train_mixed_lm(domains, *st, a.cfg, [&](int64_t t, const std::vector<double>&) {
        if ((t + 1) % 10 == 0) bar.update(t + 1);
      });
      bar.finish();
      Summary s = summarize(r.final_val(), r.domains);
      std::printf("%-14s mean val %.4f  worst %.4f (%s)  spread %.4f  %.1f s  %.0f ms/step\n", r.strategy.c_str(), s.mean,
                  s.worst, s.worst_name.c_str(), s.worst - s.best, r.seconds, r.ms_per_step);
      std::fflush(stdout);
      runs.push_back(std::move(r));
    }
    write_outputs(a, note, domains, runs, doremi.get());
    std::printf("demo_pike: wrote %s/results.md, results.csv, curves.csv, weights.csv, stats.csv and plots/\n", a.out.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "demo_pike: %s\n", e.what());
    return 2;
  }
}
