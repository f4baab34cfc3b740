// mtl/model.cpp: MultiTaskModel.
#include "mtl/model.h"

namespace polyhead::mtl {

namespace {
class Heads : public nn::Module {
public:
  std::string type_name() const override { return "Heads"; }
  using nn::Module::add_child;
};
}  // namespace

MultiTaskModel::MultiTaskModel(std::shared_ptr<Architecture> arch, std::vector<Task> tasks)
    : arch_(std::move(arch)), tasks_(std::move(tasks)) {
  PH_CHECK(arch_ != nullptr, "MultiTaskModel", "architecture is null");
  PH_CHECK_HINT(int(tasks_.size()) == arch_->num_tasks(), "MultiTaskModel",
                tasks_.size() << " tasks for an architecture built for " << arch_->num_tasks(),
                "build the architecture with K = number of tasks");
  register_module("arch", arch_);
  auto heads = std::make_shared<Heads>();
  for (size_t k = 0; k < tasks_.size(); ++k) {
    const auto& t = tasks_[k];
    PH_CHECK(!t.name.empty() && t.name.find('.') == std::string::npos, "MultiTaskModel",
             "task name '" << t.name << "' must be non-empty and without dots");
    PH_CHECK(t.head != nullptr, "MultiTaskModel", "task '" << t.name << "' has no head");
    for (size_t j = 0; j < k; ++j) PH_CHECK(tasks_[j].name != t.name, "MultiTaskModel", "duplicate task name '" << t.name << "'");
    heads->add_child(t.name, t.head);
  }
  register_module("heads", heads);
  task_params_.resize(tasks_.size());
  for (auto& [name, p] : arch_->named_parameters()) {
    if (arch_->is_shared(name)) {
      shared_.push_back(p);
      shared_names_.push_back("arch." + name);
      num_shared_ += p.numel();
    } else {
      int owner = arch_->task_owner(name);
      PH_CHECK(owner >= 0 && owner < num_tasks(), "MultiTaskModel",
               "architecture parameter '" << name << "' is neither shared nor owned by a task");
      task_params_[size_t(owner)].push_back(p);
    }
  }
  for (size_t k = 0; k < tasks_.size(); ++k) {
    arch_task_count_.push_back(task_params_[k].size());
    for (auto& p : tasks_[k].head->parameters()) task_params_[k].push_back(p);
  }
}

int MultiTaskModel::task_index(const std::string& name) const {
  std::string names;
  for (size_t k = 0; k < tasks_.size(); ++k) {
    if (tasks_[k].name == name) return int(k);
    names += (k ? ", " : "") + tasks_[k].name;
  }
  throw Error("MultiTaskModel", "no task named '" + name + "'", "tasks: " + names);
}

std::vector<Variable> MultiTaskModel::forward(const Variable& x) {
  auto reps = arch_->forward(x);
  PH_CHECK(reps.size() == 1 || int(reps.size()) == num_tasks(), "MultiTaskModel::forward",
           "architecture returned " << reps.size() << " representations for " << num_tasks() << " tasks");
  std::vector<Variable> out;
  for (int k = 0; k < num_tasks(); ++k) out.push_back(head_forward(k, reps.size() == 1 ? reps[0] : reps[size_t(k)]));
  return out;
}

Variable MultiTaskModel::forward_task(const Variable& x, int k) {
  auto reps = arch_->forward(x);
  return head_forward(k, reps.size() == 1 ? reps[0] : reps.at(size_t(k)));
}

}  // namespace polyhead::mtl
