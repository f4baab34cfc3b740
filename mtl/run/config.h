// mtl/run/config.h: the resolved configuration of one training run (and of a comparison), as JSON.
//
// A RunConfig names everything a run depends on: data set and its size, architecture and model,
// MTL method and its options, optimizer, learning rate, epochs, batch size, device, seeds and the
// step limit. It is written to <run>/config.json, read back by `--config` and `--resume`, and
// validated before anything is built or written: a bad name (data set, architecture, model,
// method, method option, optimizer, device) or value is a UsageError that names the bad value and
// lists the valid choices. JSON files are strict: an unknown key is a UsageError listing the keys.
//
// Trajectory diagnostics (mtl/diagnostics): diagnostics_every N > 0 records them every N steps into
// <run>/diagnostics.jsonl; the "diagnostics" object sets the other options of
// mtl::diag::DiagnosticsOptions by name (probe_size, micro_batch, heavy_every, ...; not "every").
// Validation split (methods that need validation losses, e.g. CoBa): the first val_size examples of
// the generated training set are held out (the model never trains on them) and the trainer gets the
// K per-task losses on batches of val_batch_size of them (cycled in order) every val_every steps.
// Runs of other methods leave the training set whole.
//
// A CompareConfig is a RunConfig plus the methods to compare (the pseudo-method "single-task"
// stands for the single-task baselines), per-method options, the overrides that `--full` applies
// and the output folder.
#pragma once
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mtl/diagnostics/record.h"

namespace polyhead::run {

using json = nlohmann::json;

// A user mistake in flags or a config file (exit status 2 in the CLI).
class UsageError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

inline const std::vector<std::string> kDatasets = {"multimnist", "multifashion", "synthetic"};
inline const std::vector<std::string> kArchs = {"hps"};
inline const std::vector<std::string> kModels = {"lenet", "mlp"};
inline const std::vector<std::string> kOptimizers = {"sgd", "adam", "adamw"};
inline const std::vector<std::string> kDevices = {"cpu", "cuda"};
// The pseudo-method of the single-task baselines: one model per task, trained on that task alone.
inline const std::string kSingleTask = "single-task";

struct RunConfig {
  std::string dataset = "multimnist";
  std::string data_dir;              // folder of the IDX files; "" = data/mnist or data/fashion
  int64_t train_size = 10000;        // generated training examples; 0 = one per source image
  int64_t test_size = 10000;         // generated test examples; 0 = one per source image
  uint64_t data_seed = 0;            // the data set's generation (fixed across training seeds)
  std::string arch = "hps";
  std::string model = "lenet";
  int64_t hidden = 256;              // MLP width
  std::string method = "ew";         // a registry name, or "single-task" (with `task`)
  std::map<std::string, std::string> method_options;
  std::string task;                  // single-task runs: the one task trained
  std::string optimizer = "adam";
  double lr = 1e-3;
  double momentum = 0.0;             // SGD
  double weight_decay = -1;          // < 0: the optimizer's default (0; AdamW 0.01)
  int epochs = 2;
  int64_t batch_size = 256;
  int64_t eval_batch_size = 1000;
  int64_t train_eval_size = 2000;    // training examples evaluated after each epoch (0 = none)
  std::string device = "cpu";        // "cpu", "cuda" or "cuda:N"
  uint64_t seed = 0;                 // model initialisation and the method's random draws
  int64_t max_steps = 0;             // stop after this many steps in all (0 = no limit)
  int gramian_every = 25;            // extra Gramian every N steps for methods that compute none (0 = never)
  std::map<std::string, double> baselines;  // single-task test metric per task, for Δm (optional)
  int diagnostics_every = 0;         // trajectory diagnostics every N steps (0 = off)
  json diagnostics = json::object(); // further diagnostics options by name
  int64_t val_size = 1000;           // held-out validation examples (methods that need validation losses)
  int64_t val_batch_size = 0;        // validation batch; 0 = batch_size
  int val_every = 1;                 // validation losses every N steps
};

json to_json(const RunConfig& c);
// Keys absent from j keep their value in `base`. Unknown keys (other than those in `allow_extra`)
// and values of the wrong type are UsageErrors.
RunConfig run_config_from_json(const json& j, RunConfig base = {}, const std::vector<std::string>& allow_extra = {});
// The valid keys of a run config, in output order.
std::vector<std::string> run_config_keys();

// The number of tasks of a data set (2 for the MultiMNIST family) and their names.
std::vector<std::string> dataset_tasks(const std::string& dataset);
// The method actually built for this config (single-task runs train with "ew" on one task).
std::string trainer_method(const RunConfig& c);
// Tasks this run trains (one for single-task runs).
std::vector<std::string> run_tasks(const RunConfig& c);

// Throws UsageError naming the bad value and the valid choices. Checks the method and its options
// by building the method once.
void validate(const RunConfig& c);
// The diagnostics options of a run (every = diagnostics_every); UsageError when invalid.
mtl::diag::DiagnosticsOptions diagnostics_options(const RunConfig& c);

// "key=value" -> {key, value}; UsageError otherwise.
std::pair<std::string, std::string> parse_key_value(const std::string& s);
// "a, b,c" -> {"a", "b", "c"}.
std::vector<std::string> split_list(const std::string& s);
// "unknown X 'v'; valid choices: a, b, c" when v is not among choices.
void check_choice(const std::string& what, const std::string& v, const std::vector<std::string>& choices);
std::string join(const std::vector<std::string>& v, const std::string& sep = ", ");

struct CompareConfig {
  std::string name = "compare";
  RunConfig base;                    // shared by every method's run
  std::vector<std::string> methods;  // registry names and/or "single-task"
  std::map<std::string, std::map<std::string, std::string>> method_options;  // per method
  json full = json::object();        // run-config keys that --full overrides
  std::string out;                   // output folder; "" = runs/<name>
};

// The file's keys: those of a run config plus "name", "methods", "method_options", "full", "out".
CompareConfig compare_config_from_json(const json& j);
json to_json(const CompareConfig& c);
// Reads and parses a JSON file; missing file -> std::runtime_error (exit 1), bad JSON -> UsageError.
json read_json_file(const std::string& path);
// The base config with --full's overrides applied.
RunConfig apply_full(const CompareConfig& c);
// The config of one method's run within the comparison (task: single-task baseline of that task).
RunConfig method_config(const CompareConfig& c, const RunConfig& base, const std::string& method,
                        const std::string& task = "");
void validate(const CompareConfig& c);

}  // namespace polyhead::run
