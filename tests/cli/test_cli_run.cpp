// tests/cli/test_cli_run.cpp: short training runs on the synthetic data set through the run
// library: the run folder holds every file; resuming from a mid-run checkpoint (inside an epoch
// and at an epoch boundary) gives the same per-epoch metrics, bit for bit, as an uninterrupted
// run; failed runs (existing folder, corrupt checkpoint) leave existing files alone; a small
// comparison writes its table with Δm against the single-task row.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "mtl/run/compare.h"
#include "mtl/run/experiment.h"
#include "mtl/run/files.h"

using namespace polyhead;
using namespace polyhead::run;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path p;
  explicit TempDir(const std::string& tag) {
    static int n = 0;
    p = fs::temp_directory_path() / ("polyhead_cli_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
    fs::remove_all(p);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(p, ec);
  }
  std::string operator/(const std::string& s) const { return (p / s).string(); }
};

// 256 training examples, batches of 64: 4 steps per epoch.
RunConfig tiny(const std::string& method) {
  RunConfig c;
  c.dataset = "synthetic";
  c.model = "mlp";
  c.hidden = 24;
  c.train_size = 256;
  c.test_size = 96;
  c.train_eval_size = 64;
  c.eval_batch_size = 64;
  c.batch_size = 64;
  c.epochs = 3;
  c.method = method;
  c.optimizer = "adam";
  c.lr = 3e-3;
  c.seed = 5;
  c.gramian_every = 2;
  return c;
}

RunOptions quiet() {
  RunOptions o;
  o.quiet = true;
  return o;
}

// The columns of epochs.csv without the timing ones (seconds, ms_per_step).
std::vector<std::string> metric_columns(const std::string& csv) {
  std::vector<std::string> out;
  std::istringstream in(csv);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string cell, kept;
    int i = 0;
    while (std::getline(ls, cell, ',')) {
      if (i != 3 && i != 4) kept += cell + ",";
      ++i;
    }
    out.push_back(kept);
  }
  return out;
}

std::vector<double> step_losses(const RunResult& r) {
  std::vector<double> v;
  for (auto& s : r.steps) v.insert(v.end(), s.losses.begin(), s.losses.end());
  return v;
}

}  // namespace

TEST_CASE("run: a short synthetic run writes every file of the run folder") {
  TempDir d("files");
  RunConfig c = tiny("pcgrad");
  c.epochs = 2;
  RunResult r = train_run(c, d / "run", quiet());
  CHECK(r.complete);
  CHECK(r.global_step == 8);
  CHECK(r.epochs.size() == 2);
  for (const char* f : {"config.json", "steps.jsonl", "epochs.csv", "checkpoint.safetensors", "results.md", "results.csv",
                        "plots/loss_left.svg", "plots/loss_right.svg", "plots/metric_left.svg", "plots/metric_right.svg",
                        "plots/weights.svg", "plots/grad_cosine.svg"})
    CHECK_MESSAGE(fs::exists(d / ("run/" + std::string(f))), f);
  // config.json reads back as the same config
  RunConfig back = run_config_from_json(json::parse(read_text(d / "run/config.json")));
  CHECK(to_json(back) == to_json(c));
  // one JSON line per step, with losses, weights, phase times and (PCGrad) the Gramian
  std::istringstream steps(read_text(d / "run/steps.jsonl"));
  std::string line;
  int n = 0;
  while (std::getline(steps, line)) {
    json j = json::parse(line);
    CHECK(j["step"] == ++n);
    CHECK(j["losses"].contains("left"));
    CHECK(j["weights"].size() == 2);
    CHECK(j["ms"].contains("backward"));
    CHECK(j.contains("gramian"));
  }
  CHECK(n == 8);
  std::string csv = read_text(d / "run/epochs.csv");
  CHECK(csv.rfind("epoch,step,partial,seconds,ms_per_step,train_loss_left,train_acc_left,test_loss_left,test_acc_left,", 0) == 0);
  CHECK(std::count(csv.begin(), csv.end(), '\n') == 3);
  std::string md = read_text(d / "run/results.md");
  CHECK(md.find("| pcgrad |") != std::string::npos);
  // The losses go down on this easy problem.
  CHECK(r.epochs.back().train_loss[0] < r.epochs.front().train_loss[0] + 0.5);
  CHECK(r.ms_per_step > 0);
}

TEST_CASE("run: methods that compute no Gramian get one on the side without changing training") {
  TempDir d("side");
  RunConfig c = tiny("ew");
  c.epochs = 1;
  RunResult with = train_run(c, d / "a", quiet());
  c.gramian_every = 0;
  RunResult without = train_run(c, d / "b", quiet());
  int logged = 0;
  for (auto& s : with.steps) logged += s.gramian.has_value();
  CHECK(logged == 2);  // steps 1 and 3 of 4
  for (auto& s : without.steps) CHECK_FALSE(s.gramian.has_value());
  CHECK(step_losses(with) == step_losses(without));
  CHECK(metric_columns(read_text(d / "a/epochs.csv")) == metric_columns(read_text(d / "b/epochs.csv")));
}

TEST_CASE("run: resuming gives the same per-epoch metrics as an uninterrupted run (bit-identical)") {
  // Stateful and random methods: PCGrad (shuffles), UW (learned parameters), DWA (loss history),
  // FAMO (state updated after the step), and SGD with momentum for the optimizer state.
  for (std::string method : {"pcgrad", "uw", "dwa", "famo", "sgd-momentum"}) {
    CAPTURE(method);
    RunConfig c = tiny(method == "sgd-momentum" ? "ew" : method);
    if (method == "sgd-momentum") {
      c.optimizer = "sgd";
      c.momentum = 0.9;
      c.lr = 0.05;
    }
    TempDir d("resume_" + method);
    RunResult full = train_run(c, d / "full", quiet());
    REQUIRE(full.complete);
    std::string full_csv = read_text(d / "full/epochs.csv");

    for (int64_t stop : {6, 4}) {  // inside epoch 2, and exactly at the end of epoch 1
      CAPTURE(stop);
      std::string dir = d / ("part" + std::to_string(stop));
      RunConfig cut = c;
      cut.max_steps = stop;
      RunResult part = train_run(cut, dir, quiet());
      CHECK_FALSE(part.complete);
      CHECK(part.global_step == stop);
      if (stop == 6) {
        REQUIRE(part.epochs.size() == 2);
        CHECK(part.epochs.back().partial);  // the stopped epoch's row, marked
      } else {
        CHECK(part.epochs.size() == 1);
      }
      ResumeOverrides ov;
      if (stop == 6) ov.max_steps = 0;  // explicit; at 4 the reached limit is lifted by itself
      RunResult resumed = resume_run(dir, ov, quiet());
      CHECK(resumed.complete);
      CHECK(resumed.global_step == full.global_step);
      CHECK(metric_columns(read_text(dir + "/epochs.csv")) == metric_columns(full_csv));
      CHECK(step_losses(resumed) == step_losses(full));
      REQUIRE(resumed.epochs.size() == full.epochs.size());
      for (size_t e = 0; e < full.epochs.size(); ++e) {
        CHECK(resumed.epochs[e].test_loss == full.epochs[e].test_loss);
        CHECK(resumed.epochs[e].test_metric == full.epochs[e].test_metric);
        CHECK(resumed.epochs[e].train_loss == full.epochs[e].train_loss);
      }
      // the resumed run's config.json drops the step limit
      CHECK(run_config_from_json(json::parse(read_text(dir + "/config.json"))).max_steps == 0);
    }
  }
}

TEST_CASE("run: resume can extend a finished run by more epochs") {
  TempDir d("extend");
  RunConfig c = tiny("ew");
  RunResult full = train_run(c, d / "full", quiet());
  c.epochs = 2;
  train_run(c, d / "short", quiet());
  ResumeOverrides ov;
  ov.epochs = 3;
  RunResult more = resume_run(d / "short", ov, quiet());
  CHECK(more.epochs.size() == 3);
  CHECK(metric_columns(read_text(d / "short/epochs.csv")) == metric_columns(read_text(d / "full/epochs.csv")));
}

TEST_CASE("run: failed runs do not clobber existing files") {
  TempDir d("clobber");
  RunConfig c = tiny("ew");
  c.epochs = 1;
  train_run(c, d / "run", quiet());
  std::string cfg = read_text(d / "run/config.json"), csv = read_text(d / "run/epochs.csv");
  auto ck_time = fs::last_write_time(d / "run/checkpoint.safetensors");

  // A fresh run into a folder that holds one is refused.
  RunConfig other = c;
  other.method = "uw";
  CHECK_THROWS_WITH_AS(train_run(other, d / "run", quiet()), doctest::Contains("already holds a run"), std::runtime_error);
  // A bad config is a usage error before anything is touched.
  other.dataset = "imagenet";
  CHECK_THROWS_AS(train_run(other, d / "run", quiet()), UsageError);
  CHECK(read_text(d / "run/config.json") == cfg);
  CHECK(read_text(d / "run/epochs.csv") == csv);
  CHECK(fs::last_write_time(d / "run/checkpoint.safetensors") == ck_time);

  // No checkpoint / a corrupt checkpoint: a clear error, nothing rewritten.
  CHECK_THROWS_WITH_AS(resume_run(d / "nowhere", {}, quiet()), doctest::Contains("no checkpoint"), std::runtime_error);
  fs::copy(d / "run", d / "broken", fs::copy_options::recursive);
  {
    std::string bytes = read_text(d / "broken/checkpoint.safetensors");
    std::ofstream(d / "broken/checkpoint.safetensors", std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() / 2);
  }
  std::string broken_cfg = read_text(d / "broken/config.json"), steps = read_text(d / "broken/steps.jsonl");
  CHECK_THROWS(resume_run(d / "broken", {}, quiet()));
  CHECK(read_text(d / "broken/config.json") == broken_cfg);
  CHECK(read_text(d / "broken/steps.jsonl") == steps);
  // A folder with a checkpoint from another kind of file.
  {
    std::ofstream(d / "broken/checkpoint.safetensors", std::ios::binary | std::ios::trunc) << "not a safetensors file";
  }
  CHECK_THROWS(resume_run(d / "broken", {}, quiet()));

  // --overwrite replaces the old run completely.
  RunOptions ow = quiet();
  ow.overwrite = true;
  other = c;
  other.method = "uw";
  RunResult r = train_run(other, d / "run", ow);
  CHECK(r.complete);
  CHECK(run_config_from_json(json::parse(read_text(d / "run/config.json"))).method == "uw");
}

TEST_CASE("run: a small comparison writes the table, Δm against the single-task row, and combined plots") {
  TempDir d("compare");
  CompareConfig c;
  c.name = "tiny";
  c.base = tiny("ew");
  c.base.epochs = 1;
  c.methods = {"single-task", "ew", "mgda"};
  CompareResult r = run_compare(c, false, d / "cmp", quiet());
  CHECK(r.failed.empty());
  REQUIRE(r.table.rows.size() == 3);
  CHECK(r.table.rows[0].method == "single-task");
  REQUIRE(r.table.rows[0].delta_m);
  CHECK(*r.table.rows[0].delta_m == 0.0);
  REQUIRE(r.table.rows[1].delta_m);
  std::vector<double> base = r.table.rows[0].metric, m = r.table.rows[1].metric;
  CHECK(*r.table.rows[1].delta_m == doctest::Approx(delta_m(m, base, {true, true})));
  for (const char* f : {"compare_config.json", "results.md", "results.csv", "plots/test_acc_left.svg", "plots/test_acc_right.svg",
                        "plots/test_loss_left.svg", "single-task-left/epochs.csv", "single-task-right/epochs.csv",
                        "ew/epochs.csv", "mgda/results.md"})
    CHECK_MESSAGE(fs::exists(d / ("cmp/" + std::string(f))), f);
  // The single-task runs train one task each.
  CHECK(read_text(d / "cmp/single-task-left/epochs.csv").find("right") == std::string::npos);
  // A second comparison into the same folder is refused.
  CHECK_THROWS_AS(run_compare(c, false, d / "cmp", quiet()), std::runtime_error);
}
