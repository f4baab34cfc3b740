// layers/norm.cpp: see norm.h.
#include "layers/norm.h"

#include "engine/ops.h"
#include "layers/init.h"

namespace polyhead::nn {

BatchNormBase::BatchNormBase(const BatchNormOptions& o, const char* name) : opt_(o), name_(name) {
  PH_CHECK(o.num_features_ > 0, name, "num_features must be positive, got " << o.num_features_);
  PH_CHECK(o.eps_ > 0, name, "eps must be positive, got " << o.eps_);
  PH_CHECK(o.momentum_ >= 0 && o.momentum_ <= 1, name, "momentum " << o.momentum_ << " outside [0, 1]");
  const int64_t C = o.num_features_;
  if (o.affine_) {
    weight = register_parameter("weight", Tensor::ones({C}));
    bias = register_parameter("bias", Tensor::zeros({C}));
  }
  register_buffer("running_mean", Tensor::zeros({C}));
  register_buffer("running_var", Tensor::ones({C}));
  register_buffer("num_batches_tracked", Tensor::zeros({}, DType::i64));
}

void BatchNormBase::reset_running_stats() {
  buffer("running_mean").zero_();
  buffer("running_var").fill_(1.0);
  buffer("num_batches_tracked").zero_();
}

void BatchNormBase::reset_parameters() {
  reset_running_stats();
  if (weight.defined()) init::ones_(weight);
  if (bias.defined()) init::zeros_(bias);
}

Variable BatchNormBase::forward(const Variable& x) {
  check_input(x);
  PH_CHECK_HINT(x.size(1) == opt_.num_features_, name_,
                "input " << x.str() << " has " << x.size(1) << " channels, expected " << opt_.num_features_,
                "channels are dim 1");
  Tensor& rm = buffer("running_mean");
  Tensor& rv = buffer("running_var");
  PH_CHECK_HINT(rm.dtype() == x.dtype() && rm.device() == x.device(), name_,
                "input " << x.str() << " vs running statistics " << rm.str(), "move the module with to(DType) / to(Device)");
  bool training = is_training();
  Variable y = ag::batch_norm(x, weight, bias, rm, rv, training, opt_.momentum_, opt_.eps_);
  if (training) {
    Tensor& nb = buffer("num_batches_tracked");
    if (nb.device().is_cpu()) nb.fill_(nb.item() + 1.0);
    else nb.copy_(ops::add_scalar(nb.to(DType::f64), 1.0));  // on the device: no host synchronisation
  }
  return y;
}

void BatchNorm1d::check_input(const Variable& x) const {
  PH_CHECK_HINT(x.dim() == 2 || x.dim() == 3, "BatchNorm1d", "input " << x.str() << " must be (N, C) or (N, C, L)",
                "use BatchNorm2d for (N, C, H, W)");
}

void BatchNorm2d::check_input(const Variable& x) const {
  PH_CHECK_HINT(x.dim() == 4, "BatchNorm2d", "input " << x.str() << " must be (N, C, H, W)",
                "use BatchNorm1d for (N, C) or (N, C, L)");
}

LayerNorm::LayerNorm(const LayerNormOptions& o) : opt_(o) {
  PH_CHECK(o.normalized_shape_ > 0, "LayerNorm", "normalized size must be positive, got " << o.normalized_shape_);
  PH_CHECK(o.eps_ > 0, "LayerNorm", "eps must be positive, got " << o.eps_);
  if (o.elementwise_affine_) {
    weight = register_parameter("weight", Tensor::ones({o.normalized_shape_}));
    bias = register_parameter("bias", Tensor::zeros({o.normalized_shape_}));
  }
}

void LayerNorm::reset_parameters() {
  if (weight.defined()) init::ones_(weight);
  if (bias.defined()) init::zeros_(bias);
}

Variable LayerNorm::forward(const Variable& x) {
  PH_CHECK_HINT(x.dim() >= 1 && x.size(-1) == opt_.normalized_shape_, "LayerNorm",
                "input " << x.str() << " does not end in " << opt_.normalized_shape_,
                "LayerNorm(d) normalises the last dim of size d");
  return ag::layer_norm(x, weight, bias, opt_.eps_);
}

}  // namespace polyhead::nn
