// mtl/architecture.h: how a multi-task model shares its trunk (LibMTL's architectures).
//
// An Architecture maps the input to task representations: one shared tensor (hard parameter
// sharing) or one per task (MMoE, CGC, PLE, DSelect-k, MTAN, Cross-stitch). is_shared(name)
// tells which of its parameters are the shared parameters theta (the columns of the Jacobian G);
// the others are task-specific, like the heads, and task_owner(name) says which task owns them.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "layers/module.h"

namespace polyhead::mtl {

using ag::Variable;

class Architecture : public nn::Module {
public:
  explicit Architecture(int K) : K_(K) {}
  // Task representations for x: size 1 (shared by all tasks) or K.
  virtual std::vector<Variable> forward(const Variable& x) = 0;
  // Whether parameter `name` (relative to this module) is shared across tasks.
  virtual bool is_shared(const std::string& name) const { return task_owner(name) < 0; }
  // The task that owns a task-specific parameter (relative name), or -1 for shared ones.
  virtual int task_owner(const std::string& name) const { return -1; }
  int num_tasks() const { return K_; }

protected:
  int K_;
};

// Hard parameter sharing (Caruana 1993): one encoder, one representation for all heads.
class HPS : public Architecture {
public:
  HPS(std::shared_ptr<nn::UnaryModule> encoder, int K);
  std::vector<Variable> forward(const Variable& x) override;
  std::string type_name() const override { return "HPS"; }

private:
  std::shared_ptr<nn::UnaryModule> encoder_;
};

}  // namespace polyhead::mtl
