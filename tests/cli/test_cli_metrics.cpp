// tests/cli/test_cli_metrics.cpp: Δm / Δp on hand-computed values, number formatting, the epoch
// CSV, the results table and the gradient cosines.
#include <doctest/doctest.h>

#include <cmath>

#include "mtl/run/metrics.h"
#include "mtl/run/table.h"

using namespace polyhead;
using namespace polyhead::run;

TEST_CASE("metrics: delta_m, Nash-MTL convention (negative = better)") {
  // Two accuracies below their baselines: 100/2 * ((0.95-0.9)/0.95 + (0.85-0.8)/0.85).
  double dm = delta_m({0.9, 0.8}, {0.95, 0.85}, {true, true});
  CHECK(dm == doctest::Approx(100.0 / 2 * (0.05 / 0.95 + 0.05 / 0.85)).epsilon(1e-12));
  CHECK(dm == doctest::Approx(5.5727554179566).epsilon(1e-10));
  // Better on both: negative.
  CHECK(delta_m({1.0, 1.0}, {0.8, 0.5}, {true, true}) == doctest::Approx(-100.0 / 2 * (0.25 + 1.0)));
  // Lower-is-better metrics: an error of 2 against a baseline of 4 is -50% (better).
  CHECK(delta_m({2.0}, {4.0}, {false}) == doctest::Approx(-50.0));
  CHECK(delta_m({0.9, 0.8}, {0.9, 0.8}, {true, true}) == 0.0);
  CHECK_THROWS(delta_m({1.0}, {1.0, 2.0}, {true}));
}

TEST_CASE("metrics: delta_p, LibMTL convention (positive = better, per-task average first)") {
  // Task A: metric 1 (higher better) 0.5 vs 0.4 -> +25%; metric 2 (lower better) 2.0 vs 2.5 -> +20%;
  //   task mean +22.5%. Task B: one metric (lower better) 10 vs 8 -> -25%. Mean over tasks: -1.25%.
  double dp = delta_p({{0.5, 2.0}, {10.0}}, {{0.4, 2.5}, {8.0}}, {{true, false}, {false}});
  CHECK(dp == doctest::Approx(-1.25).epsilon(1e-12));
  // One metric per task: delta_p = -delta_m.
  double dm = delta_m({0.9, 0.8}, {0.95, 0.85}, {true, true});
  CHECK(delta_p({{0.9}, {0.8}}, {{0.95}, {0.85}}, {{true}, {true}}) == doctest::Approx(-dm).epsilon(1e-12));
  CHECK_THROWS(delta_p({{1.0}}, {{1.0}, {2.0}}, {{true}}));
}

TEST_CASE("metrics: fmt is the shortest exact form") {
  for (double v : {0.1, 1.0 / 3.0, 2.5e-300, 123456789.123, -0.0078125})
    CHECK(std::stod(fmt(v)) == v);
  CHECK(fmt(0.5) == "0.5");
  CHECK(fmt(NAN) == "nan");
  CHECK(fmt(INFINITY) == "inf");
}

TEST_CASE("metrics: the epoch CSV has one row per epoch and a named column per task and quantity") {
  EpochRow r;
  r.epoch = 1;
  r.step = 10;
  r.seconds = 1.5;
  r.ms_per_step = 20;
  r.train_loss = {1.25, 2.5};
  r.train_metric = {0.5, NAN};
  r.test_loss = {1.0, 2.0};
  r.test_metric = {0.75, 0.625};
  std::string csv = epochs_csv({r}, {"left", "right"}, {"acc", "acc"});
  CHECK(csv ==
        "epoch,step,partial,seconds,ms_per_step,train_loss_left,train_acc_left,test_loss_left,test_acc_left,"
        "train_loss_right,train_acc_right,test_loss_right,test_acc_right\n"
        "1,10,0,1.5,20,1.25,0.5,1,0.75,2.5,nan,2,0.625\n");
  EpochRow back = epoch_from_json(to_json(r));
  CHECK(back.test_metric == r.test_metric);
  CHECK(std::isnan(back.train_metric[1]));
}

TEST_CASE("metrics: step records round-trip through JSON, Gramian included") {
  StepRecord s;
  s.step = 3;
  s.epoch = 1;
  s.losses = {0.1, 0.2};
  s.weights = {0.5, 0.5};
  s.ms_total = 4.25;
  mtl::Mat M(2, 2);
  M(0, 0) = 4;
  M(0, 1) = M(1, 0) = -2;
  M(1, 1) = 9;
  s.gramian = M;
  StepRecord b = step_from_json(to_json(s, {"a", "b"}), {"a", "b"});
  CHECK(b.step == 3);
  CHECK(b.losses == s.losses);
  CHECK(b.weights == s.weights);
  CHECK(b.ms_total == 4.25);
  REQUIRE(b.gramian);
  CHECK(b.gramian->a == M.a);
  // cos = -2 / (2 * 3)
  mtl::Mat C = cosines(M);
  CHECK(C(0, 1) == doctest::Approx(-1.0 / 3));
  CHECK(C(0, 0) == doctest::Approx(1.0));
  StepRecord none;
  mtl::Mat mean = mean_cosines({s, none, s});
  CHECK(mean.rows == 2);
  CHECK(mean(1, 0) == doctest::Approx(-1.0 / 3));
  CHECK(median_ms({s, none}) == doctest::Approx(4.25 / 2));
}

TEST_CASE("table: deltas against baselines and the three renderings") {
  ResultTable t;
  t.title = "demo";
  t.tasks = {"left", "right"};
  t.metric_names = {"acc", "acc"};
  t.higher_is_better = {true, true};
  t.rows.push_back({"single-task", {0.95, 0.85}, {0.2, 0.4}, 30.0, {}, {}});
  t.rows.push_back({"ew", {0.9, 0.8}, {0.3, 0.5}, 12.5, {}, {}});
  fill_deltas(t, {0.95, 0.85});
  REQUIRE(t.rows[0].delta_m);
  CHECK(*t.rows[0].delta_m == 0.0);
  CHECK(*t.rows[1].delta_m == doctest::Approx(5.5727554179566));
  CHECK(*t.rows[1].delta_p == doctest::Approx(-5.5727554179566));
  std::string text = table_text(t);
  CHECK(text.find("left acc % ↑") != std::string::npos);
  CHECK(text.find("+5.57") != std::string::npos);
  CHECK(text.find("90.00") != std::string::npos);
  std::string md = table_markdown(t);
  CHECK(md.find("| ew | 90.00 | 80.00 | +5.57 | 12.5 |") != std::string::npos);
  std::string csv = table_csv(t);
  CHECK(csv.rfind("method,test_acc_left,test_acc_right,test_loss_left,test_loss_right,delta_m_pct,delta_p_pct,ms_per_step\n", 0) == 0);
  CHECK(csv.find("\nsingle-task,0.95,0.85,0.2,0.4,0,0,30\n") != std::string::npos);
}
