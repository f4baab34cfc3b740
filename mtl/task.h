// mtl/task.h: a task of a multi-task model: its name, head, loss and metric.
// Classification tasks default to cross-entropy and accuracy (higher is better); regression tasks
// to MSE and mean absolute error (lower is better).
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "layers/module.h"

namespace polyhead::mtl {

using ag::Variable;

enum class TaskKind { Classification, Regression };

struct Task {
  std::string name;
  TaskKind kind = TaskKind::Classification;
  std::shared_ptr<nn::UnaryModule> head;
  // loss(output, target) -> scalar; empty = the kind's default.
  std::function<Variable(const Variable&, const Tensor&)> loss;
  // metric(output, target) -> sum over the batch of the per-example metric (accuracy in [0, 1] or
  // absolute error); empty = the kind's default. Averaged by the caller over examples.
  std::function<double(const Tensor&, const Tensor&)> metric;
  std::string metric_name;       // "acc" / "mae" by default
  bool higher_is_better = true;  // of the metric

  Task() = default;
  Task(std::string n, std::shared_ptr<nn::UnaryModule> h, TaskKind k = TaskKind::Classification);
  Variable compute_loss(const Variable& out, const Tensor& target) const;
  double compute_metric(const Tensor& out, const Tensor& target) const;
};

}  // namespace polyhead::mtl
