// mtl/run/cli.h: the flags of `polyhead train` and `polyhead compare` (CLI11) and their translation
// into a resolved request.
//
// train:   --config FILE gives a run config (JSON, the keys of config.json); flags given on the
//          command line override it; everything else keeps the RunConfig defaults. --opt key=value
//          (repeatable) sets method options. --resume DIR continues the run in DIR from its
//          checkpoint; only --epochs, --max-steps, --quiet may accompany it.
// compare: --config FILE (required) is a compare config; --full applies its "full" overrides;
//          --methods a,b,c replaces its method list; --epochs / --max-steps / --device override
//          the base config (smoke runs); --diagnostics-every N records the trajectory diagnostics
//          in every run and adds the loss-matched gap report (diagnostics.md) to the comparison.
// Resolution validates everything and throws UsageError (exit status 2) naming the bad value and
// the valid choices; a missing config file is a std::runtime_error (exit status 1).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "mtl/run/compare.h"
#include "mtl/run/config.h"
#include "mtl/run/experiment.h"

namespace polyhead::run {

struct TrainFlags {
  std::string config, resume, out;
  std::string dataset, data_dir, arch, model, method, task, optimizer, device;
  std::vector<std::string> opts;
  double lr = 0, momentum = 0, weight_decay = 0;
  int epochs = 0;
  int64_t batch_size = 0, max_steps = 0, train_size = 0, test_size = 0, hidden = 0;
  uint64_t seed = 0;
  int gramian_every = 0;
  int diagnostics_every = 0;
  int64_t val_size = 0;
  bool overwrite = false, quiet = false, no_plots = false;
};

struct TrainRequest {
  RunConfig config;
  std::string out;        // run folder (fresh runs)
  std::string resume;     // run folder to continue ("" = fresh)
  ResumeOverrides overrides;
  RunOptions options;
};

void add_train_flags(CLI::App& app, TrainFlags& f);
TrainRequest resolve_train(const CLI::App& app, const TrainFlags& f);

struct CompareFlags {
  std::string config, methods, out, device;
  int epochs = 0;
  int diagnostics_every = 0;
  int64_t max_steps = 0;
  bool full = false, overwrite = false, quiet = false, no_plots = false;
};

struct CompareRequest {
  CompareConfig config;
  bool full = false;
  std::string out;
  RunOptions options;
};

void add_compare_flags(CLI::App& app, CompareFlags& f);
CompareRequest resolve_compare(const CLI::App& app, const CompareFlags& f);

// `polyhead methods`: one line per registered method: name, kind, summary.
std::string methods_text();

// Parses args (without the program name) with a fresh app holding the train (or compare) flags and
// resolves them: the library path the tests use for usage errors. Throws CLI::ParseError or
// UsageError.
TrainRequest parse_train_args(const std::vector<std::string>& args);
CompareRequest parse_compare_args(const std::vector<std::string>& args);

}  // namespace polyhead::run
