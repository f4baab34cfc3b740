// mtl/run/cli.cpp: see cli.h.
#include "mtl/run/cli.h"

#include <algorithm>
#include <sstream>

#include "mtl/method.h"
#include "mtl/run/files.h"

namespace polyhead::run {

namespace {

bool given(const CLI::App& app, const std::string& name) {
  const CLI::Option* o = app.get_option_no_throw(name);
  return o && o->count() > 0;
}

}  // namespace

void add_train_flags(CLI::App& app, TrainFlags& f) {
  RunConfig d;
  app.add_option("--config", f.config, "run config JSON (the keys of a run's config.json); flags override it");
  app.add_option("--resume", f.resume, "continue the run in this folder from its checkpoint");
  app.add_option("--out", f.out, "run folder (default: runs/<method>-<dataset>, made unique)");
  app.add_option("--dataset", f.dataset, "multimnist | multifashion | synthetic (default " + d.dataset + ")");
  app.add_option("--data-dir", f.data_dir, "folder of the MNIST / Fashion-MNIST IDX files (default data/mnist, data/fashion)");
  app.add_option("--train-size", f.train_size, "generated training examples, 0 = one per source image (default " + std::to_string(d.train_size) + ")");
  app.add_option("--test-size", f.test_size, "generated test examples, 0 = one per source image (default " + std::to_string(d.test_size) + ")");
  app.add_option("--arch", f.arch, "architecture: hps (default)");
  app.add_option("--model", f.model, "lenet | mlp (default " + d.model + ")");
  app.add_option("--hidden", f.hidden, "MLP width (default " + std::to_string(d.hidden) + ")");
  app.add_option("--method", f.method, "MTL method (see `polyhead methods`), or single-task with --task (default " + d.method + ")");
  app.add_option("--task", f.task, "the task a single-task run trains");
  app.add_option("--opt", f.opts, "method option key=value (repeatable), e.g. --method cagrad --opt calpha=0.4")
      ->allow_extra_args(false);
  app.add_option("--optimizer", f.optimizer, "sgd | adam | adamw (default " + d.optimizer + ")");
  app.add_option("--lr", f.lr, "learning rate (default 1e-3)");
  app.add_option("--momentum", f.momentum, "SGD momentum (default 0)");
  app.add_option("--weight-decay", f.weight_decay, "weight decay (default: the optimizer's)");
  app.add_option("--epochs", f.epochs, "epochs (default " + std::to_string(d.epochs) + ")");
  app.add_option("--batch-size", f.batch_size, "batch size (default " + std::to_string(d.batch_size) + ")");
  app.add_option("--device", f.device, "cpu | cuda | cuda:N (default cpu)");
  app.add_option("--seed", f.seed, "seed of the initialisation, the data order and the method (default 0)");
  app.add_option("--max-steps", f.max_steps, "stop after this many steps in all (default: no limit)");
  app.add_option("--gramian-every", f.gramian_every, "log the K x K Gramian every N steps (default 25, 0 = only when the method computes it)");
  app.add_option("--diagnostics-every", f.diagnostics_every,
                 "record the trajectory diagnostics (gradient norms and cosines, conflict, coherence, noise scale, "
                 "sharpness, Fisher trace) every N steps into diagnostics.jsonl (default 0 = off)");
  app.add_option("--val-size", f.val_size,
                 "training examples held out for the validation losses of methods that need them, e.g. coba (default " +
                     std::to_string(d.val_size) + ")");
  app.add_flag("--overwrite", f.overwrite, "allow --out to name a folder that holds a run");
  app.add_flag("--quiet", f.quiet, "no progress bar or messages");
  app.add_flag("--no-plots", f.no_plots, "do not write plots/*.svg");
}

TrainRequest resolve_train(const CLI::App& app, const TrainFlags& f) {
  TrainRequest r;
  r.options.quiet = f.quiet;
  r.options.overwrite = f.overwrite;
  r.options.plots = !f.no_plots;
  if (given(app, "--resume")) {
    for (const char* fl : {"--config", "--out", "--dataset", "--data-dir", "--train-size", "--test-size", "--arch", "--model",
                           "--hidden", "--method", "--task", "--opt", "--optimizer", "--lr", "--momentum", "--weight-decay",
                           "--batch-size", "--device", "--seed", "--gramian-every", "--diagnostics-every", "--val-size", "--overwrite"})
      if (given(app, fl))
        throw UsageError(std::string(fl) + " cannot be changed when resuming (--resume continues with the run's own config; "
                                           "only --epochs, --max-steps, --quiet and --no-plots may be given)");
    r.resume = f.resume;
    if (given(app, "--epochs")) r.overrides.epochs = f.epochs;
    if (given(app, "--max-steps")) r.overrides.max_steps = f.max_steps;
    return r;
  }
  RunConfig c;
  if (given(app, "--config")) c = run_config_from_json(read_json_file(f.config));
  auto set = [&](const char* flag, auto& field, const auto& value) {
    if (given(app, flag)) field = value;
  };
  set("--dataset", c.dataset, f.dataset);
  set("--data-dir", c.data_dir, f.data_dir);
  set("--train-size", c.train_size, f.train_size);
  set("--test-size", c.test_size, f.test_size);
  set("--arch", c.arch, f.arch);
  set("--model", c.model, f.model);
  set("--hidden", c.hidden, f.hidden);
  if (given(app, "--method") && f.method != c.method) c.method_options.clear();
  set("--method", c.method, f.method);
  set("--task", c.task, f.task);
  set("--optimizer", c.optimizer, f.optimizer);
  set("--lr", c.lr, f.lr);
  set("--momentum", c.momentum, f.momentum);
  set("--weight-decay", c.weight_decay, f.weight_decay);
  set("--epochs", c.epochs, f.epochs);
  set("--batch-size", c.batch_size, f.batch_size);
  set("--device", c.device, f.device);
  set("--seed", c.seed, f.seed);
  set("--max-steps", c.max_steps, f.max_steps);
  set("--gramian-every", c.gramian_every, f.gramian_every);
  set("--diagnostics-every", c.diagnostics_every, f.diagnostics_every);
  set("--val-size", c.val_size, f.val_size);
  for (auto& kv : f.opts) {
    auto [k, v] = parse_key_value(kv);
    c.method_options[k] = v;
  }
  validate(c);
  r.config = c;
  r.out = given(app, "--out") ? f.out
                              : unique_dir("runs/" + safe_name(c.method == kSingleTask ? c.method + "-" + c.task : c.method) +
                                           "-" + c.dataset);
  return r;
}

void add_compare_flags(CLI::App& app, CompareFlags& f) {
  app.add_option("--config", f.config, "compare config JSON (e.g. demos/multimnist_compare.json)")->required();
  app.add_flag("--full", f.full, "apply the config's \"full\" overrides (the paper-length run)");
  app.add_option("--methods", f.methods, "comma-separated methods to run instead of the config's (single-task = the baselines)");
  app.add_option("--out", f.out, "comparison folder (default: the config's \"out\", or runs/<name>, made unique)");
  app.add_option("--epochs", f.epochs, "override the epochs of every run");
  app.add_option("--max-steps", f.max_steps, "override the step limit of every run");
  app.add_option("--device", f.device, "cpu | cuda | cuda:N");
  app.add_option("--diagnostics-every", f.diagnostics_every,
                 "record the trajectory diagnostics in every run every N steps and report the loss-matched "
                 "generalization gap of each method against the single-task runs (diagnostics.md)");
  app.add_flag("--overwrite", f.overwrite, "allow --out to name a folder that holds a comparison");
  app.add_flag("--quiet", f.quiet, "no progress bars or messages (the table is still printed)");
  app.add_flag("--no-plots", f.no_plots, "do not write plots");
}

CompareRequest resolve_compare(const CLI::App& app, const CompareFlags& f) {
  CompareRequest r;
  r.config = compare_config_from_json(read_json_file(f.config));
  if (given(app, "--methods")) {
    r.config.methods = split_list(f.methods);
    if (r.config.methods.empty()) throw UsageError("--methods is empty; give a comma-separated list, e.g. single-task,ew,pcgrad");
  }
  auto both = [&](const char* key, const json& v) {
    r.config.full[key] = v;
    r.config.base = run_config_from_json(json{{key, v}}, r.config.base);
  };
  if (given(app, "--epochs")) both("epochs", f.epochs);
  if (given(app, "--max-steps")) both("max_steps", f.max_steps);
  if (given(app, "--device")) both("device", f.device);
  if (given(app, "--diagnostics-every")) both("diagnostics_every", f.diagnostics_every);
  r.full = f.full;
  r.out = f.out;
  r.options.quiet = f.quiet;
  r.options.overwrite = f.overwrite;
  r.options.plots = !f.no_plots;
  validate(r.config);
  return r;
}

std::string methods_text() {
  auto ms = mtl::list_methods();
  size_t w = 0;
  for (auto& m : ms) w = std::max(w, m.name.size());
  std::ostringstream o;
  o << "Registered MTL methods (" << ms.size() << "; kind: loss = weights from the losses, gramian = from the K x K "
    << "Gramian, full = needs the full K x P Jacobian or more):\n";
  for (auto& m : ms) o << "  " << m.name << std::string(w + 2 - m.name.size(), ' ') << "[" << m.kind << "] " << m.summary << "\n";
  o << "Also for `polyhead compare`: " << kSingleTask << " (one model per task: the baselines of Δm).\n";
  return o.str();
}

TrainRequest parse_train_args(const std::vector<std::string>& args) {
  CLI::App app{"polyhead train"};
  TrainFlags f;
  add_train_flags(app, f);
  std::vector<std::string> rev(args.rbegin(), args.rend());
  app.parse(rev);
  return resolve_train(app, f);
}

CompareRequest parse_compare_args(const std::vector<std::string>& args) {
  CLI::App app{"polyhead compare"};
  CompareFlags f;
  add_compare_flags(app, f);
  std::vector<std::string> rev(args.rbegin(), args.rend());
  app.parse(rev);
  return resolve_compare(app, f);
}

}  // namespace polyhead::run
