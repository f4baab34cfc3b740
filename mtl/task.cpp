// mtl/task.cpp: default losses and metrics of tasks.
#include "mtl/task.h"

#include <cmath>

#include "engine/ops.h"
#include "layers/loss.h"

namespace polyhead::mtl {

Task::Task(std::string n, std::shared_ptr<nn::UnaryModule> h, TaskKind k) : name(std::move(n)), kind(k), head(std::move(h)) {
  metric_name = k == TaskKind::Classification ? "acc" : "mae";
  higher_is_better = k == TaskKind::Classification;
}

Variable Task::compute_loss(const Variable& out, const Tensor& target) const {
  if (loss) return loss(out, target);
  if (kind == TaskKind::Classification) return nn::cross_entropy(out, target);
  return nn::mse_loss(out, ag::Variable(target.to(out.dtype()).reshape(out.shape())));
}

double Task::compute_metric(const Tensor& out, const Tensor& target) const {
  if (metric) return metric(out, target);
  if (kind == TaskKind::Classification) {
    Tensor pred = ops::argmax(out, -1).to(Device::cpu()).contiguous();
    Tensor t = target.to(Device::cpu()).to(DType::i64).contiguous().reshape(pred.shape());
    const int64_t* p = pred.data<int64_t>();
    const int64_t* y = t.data<int64_t>();
    double c = 0;
    for (int64_t i = 0; i < pred.numel(); ++i) c += p[i] == y[i];
    return c;
  }
  Tensor d = ops::unary(UnaryOp::Abs, ops::sub(out, target.to(out.dtype()).reshape(out.shape())));
  int64_t n = out.size(0);
  return ops::sum(d.to(DType::f64)).item() / double(std::max<int64_t>(out.numel() / std::max<int64_t>(n, 1), 1));
}

}  // namespace polyhead::mtl
