// mtl/model.h: MultiTaskModel, an architecture (shared trunk) plus one head per task.
//
// Parameter names: "arch.<...>" for the architecture, "heads.<task name>.<...>" for the heads.
// shared_parameters() are the architecture's shared parameters theta in named order; their
// concatenation defines the columns of the per-task Jacobian G (K x P).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "mtl/architecture.h"
#include "mtl/task.h"

namespace polyhead::mtl {

class MultiTaskModel : public nn::Module {
public:
  MultiTaskModel(std::shared_ptr<Architecture> arch, std::vector<Task> tasks);

  int num_tasks() const { return int(tasks_.size()); }
  const std::vector<Task>& tasks() const { return tasks_; }
  const Task& task(int k) const { return tasks_.at(size_t(k)); }
  int task_index(const std::string& name) const;  // throws listing the task names
  Architecture& arch() { return *arch_; }

  // Task representations (size 1 or K) and the heads applied to them.
  std::vector<Variable> representations(const Variable& x) { return arch_->forward(x); }
  Variable head_forward(int k, const Variable& rep) { return tasks_.at(size_t(k)).head->forward(rep); }
  // Per-task outputs for one input (single-input setup).
  std::vector<Variable> forward(const Variable& x);
  // Output of task k on its own input (multi-input setup).
  Variable forward_task(const Variable& x, int k);

  const std::vector<Variable>& shared_parameters() const { return shared_; }
  const std::vector<std::string>& shared_names() const { return shared_names_; }
  int64_t num_shared() const { return num_shared_; }
  // Task-specific parameters of task k: the architecture's parameters it owns (gates, task
  // experts, attention), then its head's parameters.
  const std::vector<Variable>& task_parameters(int k) const { return task_params_.at(size_t(k)); }
  // How many of task_parameters(k) (the leading ones) belong to the architecture.
  size_t num_arch_task_parameters(int k) const { return arch_task_count_.at(size_t(k)); }
  std::string type_name() const override { return "MultiTaskModel"; }

private:
  std::shared_ptr<Architecture> arch_;
  std::vector<Task> tasks_;
  std::vector<Variable> shared_;
  std::vector<std::string> shared_names_;
  std::vector<std::vector<Variable>> task_params_;
  std::vector<size_t> arch_task_count_;
  int64_t num_shared_ = 0;
};

}  // namespace polyhead::mtl
