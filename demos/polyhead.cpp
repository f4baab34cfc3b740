// demos/polyhead.cpp: the `polyhead` command line: subcommands wired to the run library (mtl/run/).
//   polyhead methods                       the registered MTL methods
//   polyhead train   --dataset ... --method ... [--resume DIR] [--config FILE] ...
//   polyhead compare --config FILE [--full] [--methods a,b,c]
//   polyhead bench   [args]                runs build/polyhead_bench (see `make bench`)
// Exit status: 0 success, 2 usage error (bad flag, unknown name: the message lists the valid
// choices), 1 any other failure (missing file, corrupt checkpoint, a failed run).
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>

#include "mtl/run/cli.h"
#include "mtl/run/compare.h"
#include "mtl/run/experiment.h"

using namespace polyhead::run;

namespace {

int usage_error(const std::string& cmd, const std::string& msg) {
  std::cerr << "polyhead" << (cmd.empty() ? "" : " " + cmd) << ": usage error: " << msg << "\n"
            << "Run 'polyhead" << (cmd.empty() ? "" : " " + cmd) << " --help' for the options.\n";
  return 2;
}

int bench(const std::vector<std::string>& args) {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  std::filesystem::path exe = (ec ? std::filesystem::path("build") : self.parent_path()) / "polyhead_bench";
  if (!std::filesystem::exists(exe)) {
    std::cerr << "polyhead bench: " << exe.string() << " is not built; run `make bench` (builds it, runs B1/B2, and the "
              << "PyTorch anchor when available)\n";
    return 1;
  }
  std::vector<char*> argv;
  std::string path = exe.string();
  argv.push_back(path.data());
  std::vector<std::string> copy = args;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  ::execv(path.c_str(), argv.data());
  std::perror("polyhead bench: exec");
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Polyhead: multi-task learning. Train one method, or compare methods against single-task baselines."};
  app.require_subcommand(1);
  auto* methods = app.add_subcommand("methods", "list the registered MTL methods");
  TrainFlags tf;
  auto* train = app.add_subcommand("train", "train one multi-task model and write a run folder");
  add_train_flags(*train, tf);
  CompareFlags cf;
  auto* compare = app.add_subcommand("compare", "single-task baselines and several methods on one setup: table + plots");
  add_compare_flags(*compare, cf);
  auto* bench_cmd = app.add_subcommand("bench", "run the training-step benchmarks (build/polyhead_bench)");
  bench_cmd->allow_extras();

  std::string cmd;
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    for (auto* s : app.get_subcommands()) cmd = s->get_name();
    std::string msg = e.what();
    if (cmd.empty() && argc > 1 && argv[1][0] != '-')
      msg = "unknown subcommand '" + std::string(argv[1]) + "'; valid choices: methods, train, compare, bench";
    else if (cmd.empty())
      msg += " (subcommands: methods, train, compare, bench)";
    return usage_error(cmd, msg);
  }

  try {
    if (methods->parsed()) {
      std::cout << methods_text();
      return 0;
    }
    if (bench_cmd->parsed()) return bench(bench_cmd->remaining());
    if (train->parsed()) {
      cmd = "train";
      TrainRequest r = resolve_train(*train, tf);
      RunResult res = r.resume.empty() ? train_run(r.config, r.out, r.options) : resume_run(r.resume, r.overrides, r.options);
      std::cout << table_text(run_table(res)) << "Run folder: " << res.dir << "\n";
      return 0;
    }
    if (compare->parsed()) {
      cmd = "compare";
      CompareRequest r = resolve_compare(*compare, cf);
      CompareResult res = run_compare(r.config, r.full, r.out, r.options);
      std::cout << "\n" << table_text(res.table) << "Comparison folder: " << res.dir << " (results.md, results.csv, plots/)\n";
      if (res.synthetic_data && r.config.base.dataset != "synthetic")
        std::cout << "WARNING: these results are on the SYNTHETIC stand-in, not on real MNIST (run scripts/fetch_mnist.sh).\n";
      if (!res.failed.empty()) {
        std::cerr << "polyhead compare: " << res.failed.size() << " run(s) failed\n";
        return 1;
      }
      return 0;
    }
  } catch (const UsageError& e) {
    return usage_error(cmd, e.what());
  } catch (const std::exception& e) {
    std::cerr << "polyhead" << (cmd.empty() ? "" : " " + cmd) << ": error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
