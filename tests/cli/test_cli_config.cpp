// tests/cli/test_cli_config.cpp: flags and configs of `polyhead train` / `compare`: bad flags and
// unknown names are usage errors that name the bad value and list the valid choices.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "mtl/run/cli.h"
#include "mtl/run/files.h"

using namespace polyhead::run;

namespace {

// The message of the UsageError that resolving args raises ("" when none).
std::string usage_message(const std::vector<std::string>& args) {
  try {
    parse_train_args(args);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::string temp_file(const std::string& name, const std::string& text) {
  auto p = std::filesystem::temp_directory_path() / ("polyhead_cli_cfg_" + std::to_string(::getpid()) + "_" + name);
  std::ofstream(p) << text;
  return p.string();
}

}  // namespace

TEST_CASE("cli: a valid train command resolves to a validated config") {
  TrainRequest r = parse_train_args({"--dataset", "synthetic", "--model", "mlp", "--method", "cagrad", "--opt", "calpha=0.4",
                                     "--optimizer", "sgd", "--lr", "0.05", "--epochs", "3", "--batch-size", "32", "--seed",
                                     "7", "--max-steps", "5", "--out", "/tmp/x"});
  CHECK(r.config.dataset == "synthetic");
  CHECK(r.config.model == "mlp");
  CHECK(r.config.method == "cagrad");
  CHECK(r.config.method_options.at("calpha") == "0.4");
  CHECK(r.config.optimizer == "sgd");
  CHECK(r.config.lr == 0.05);
  CHECK(r.config.epochs == 3);
  CHECK(r.config.batch_size == 32);
  CHECK(r.config.seed == 7);
  CHECK(r.config.max_steps == 5);
  CHECK(r.out == "/tmp/x");
  CHECK(r.resume.empty());
}

TEST_CASE("cli: unknown names are usage errors listing the valid choices") {
  std::string m = usage_message({"--dataset", "cifar"});
  CHECK(contains(m, "unknown dataset 'cifar'"));
  CHECK(contains(m, "multimnist, multifashion, synthetic"));

  m = usage_message({"--arch", "mmoe-x"});
  CHECK(contains(m, "unknown architecture 'mmoe-x'"));
  CHECK(contains(m, "hps"));

  m = usage_message({"--model", "resnet"});
  CHECK(contains(m, "unknown model 'resnet'"));
  CHECK(contains(m, "lenet, mlp"));

  m = usage_message({"--optimizer", "rmsprop"});
  CHECK(contains(m, "unknown optimizer 'rmsprop'"));
  CHECK(contains(m, "sgd, adam, adamw"));

  m = usage_message({"--method", "magic"});
  CHECK(contains(m, "unknown method 'magic'"));
  CHECK(contains(m, "pcgrad"));
  CHECK(contains(m, "ew"));

  m = usage_message({"--device", "tpu"});
  CHECK(contains(m, "unknown device 'tpu'"));
  CHECK(contains(m, "cpu, cuda"));

  m = usage_message({"--method", "single-task", "--task", "middle"});
  CHECK(contains(m, "unknown task 'middle'"));
  CHECK(contains(m, "left, right"));
}

TEST_CASE("cli: method options are checked against the method") {
  std::string m = usage_message({"--method", "cagrad", "--opt", "bogus=1"});
  CHECK(contains(m, "bogus"));
  CHECK(contains(m, "calpha"));  // the valid options are listed
  // one key=value per --opt; a second bare value is not swallowed
  CHECK_THROWS_AS(parse_train_args({"--method", "cagrad", "--opt", "calpha=0.4", "rescale=0"}), CLI::ParseError);
  TrainRequest two = parse_train_args({"--method", "cagrad", "--opt", "calpha=0.4", "--opt", "rescale=0"});
  CHECK(two.config.method_options.size() == 2);
  m = usage_message({"--method", "cagrad", "--opt", "calpha"});
  CHECK(contains(m, "key=value"));
  m = usage_message({"--method", "cagrad", "--opt", "calpha=abc"});
  CHECK(contains(m, "calpha"));
}

TEST_CASE("cli: bad values and flag combinations are usage errors") {
  CHECK(contains(usage_message({"--lr", "-1"}), "lr must be positive"));
  CHECK(contains(usage_message({"--epochs", "0"}), "epochs must be positive"));
  CHECK(contains(usage_message({"--batch-size", "0"}), "batch_size must be positive"));
  CHECK(contains(usage_message({"--optimizer", "adam", "--momentum", "0.9"}), "momentum"));
  CHECK(contains(usage_message({"--method", "single-task"}), "--task"));
  CHECK(contains(usage_message({"--resume", "/tmp/run", "--lr", "0.1"}), "--lr cannot be changed when resuming"));
}

TEST_CASE("cli: unknown flags are parse errors naming the flag") {
  try {
    parse_train_args({"--bogus-flag", "1"});
    FAIL("expected a parse error");
  } catch (const CLI::ParseError& e) {
    CHECK(contains(e.what(), "--bogus-flag"));
  }
  CHECK_THROWS_AS(parse_train_args({"--epochs", "two"}), CLI::ParseError);
  CHECK_THROWS_AS(parse_compare_args({}), CLI::ParseError);  // --config is required
}

TEST_CASE("cli: --config files are strict and flags override them") {
  std::string f = temp_file("run.json", R"({"dataset": "synthetic", "model": "mlp", "epochs": 5, "method": "uw"})");
  TrainRequest r = parse_train_args({"--config", f, "--epochs", "2"});
  CHECK(r.config.dataset == "synthetic");
  CHECK(r.config.method == "uw");
  CHECK(r.config.epochs == 2);

  std::string bad = temp_file("bad.json", R"({"dataset": "synthetic", "epoch": 5})");
  std::string m = usage_message({"--config", bad});
  CHECK(contains(m, "unknown config key 'epoch'"));
  CHECK(contains(m, "epochs"));

  std::string typed = temp_file("typed.json", R"({"epochs": "five"})");
  CHECK(contains(usage_message({"--config", typed}), "'epochs' has the wrong type"));

  std::string broken = temp_file("broken.json", "{\"epochs\": ");
  CHECK(contains(usage_message({"--config", broken}), "not valid JSON"));

  // A missing file is not a usage error but a plain failure.
  CHECK_THROWS_AS(parse_train_args({"--config", "/nonexistent/polyhead.json"}), std::runtime_error);
  for (auto* p : {&f, &bad, &typed, &broken}) std::filesystem::remove(*p);
}

TEST_CASE("cli: compare configs, --methods and --full") {
  std::string f = temp_file("cmp.json", R"({
    "name": "t", "dataset": "synthetic", "model": "mlp", "epochs": 1, "train_size": 100,
    "methods": ["single-task", "ew", "cagrad"], "method_options": {"cagrad": {"calpha": 0.4}},
    "full": {"epochs": 9, "train_size": 0}})");
  CompareRequest r = parse_compare_args({"--config", f});
  CHECK(r.config.methods == std::vector<std::string>{"single-task", "ew", "cagrad"});
  CHECK(r.config.method_options.at("cagrad").at("calpha") == "0.4");
  RunConfig full = apply_full(r.config);
  CHECK(full.epochs == 9);
  CHECK(full.train_size == 0);
  CHECK(r.config.base.epochs == 1);
  RunConfig cag = method_config(r.config, r.config.base, "cagrad");
  CHECK(cag.method_options.at("calpha") == "0.4");

  r = parse_compare_args({"--config", f, "--methods", "ew, pcgrad", "--epochs", "2", "--full"});
  CHECK(r.config.methods == std::vector<std::string>{"ew", "pcgrad"});
  CHECK(r.full);
  CHECK(apply_full(r.config).epochs == 2);  // the flag wins over "full"

  try {
    parse_compare_args({"--config", f, "--methods", "ew,nope"});
    FAIL("expected a usage error");
  } catch (const UsageError& e) {
    CHECK(contains(e.what(), "unknown method 'nope'"));
    CHECK(contains(e.what(), "single-task"));
  }
  std::string bad = temp_file("cmp_bad.json", R"({"methods": ["ew"], "full": {"epoch": 3}})");
  CHECK_THROWS_AS(parse_compare_args({"--config", bad}), UsageError);
  std::filesystem::remove(f);
  std::filesystem::remove(bad);
}

TEST_CASE("cli: the methods listing names every registered method with its kind") {
  std::string t = methods_text();
  for (auto& m : polyhead::mtl::list_methods()) {
    CHECK(contains(t, "  " + m.name + " "));
    CHECK(contains(t, "[" + m.kind + "]"));
  }
  CHECK(contains(t, "single-task"));
}

TEST_CASE("cli: run configs round-trip through JSON") {
  RunConfig c;
  c.dataset = "synthetic";
  c.method = "cagrad";
  c.method_options = {{"calpha", "0.3"}};
  c.lr = 0.0123;
  c.baselines = {{"left", 0.9}, {"right", 0.8}};
  RunConfig d = run_config_from_json(to_json(c));
  CHECK(to_json(d) == to_json(c));
  CHECK(d.lr == c.lr);
  for (auto& k : run_config_keys()) CHECK(to_json(c).contains(k));
}
