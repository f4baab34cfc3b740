// layers/norm.h: BatchNorm1d / BatchNorm2d and LayerNorm.
#pragma once
#include "layers/module.h"

namespace polyhead::nn {

struct BatchNormOptions {
  BatchNormOptions(int64_t num_features) : num_features_(num_features) {}  // NOLINT
  BatchNormOptions& eps(double e) { eps_ = e; return *this; }
  BatchNormOptions& momentum(double m) { momentum_ = m; return *this; }
  BatchNormOptions& affine(bool a) { affine_ = a; return *this; }
  int64_t num_features_;
  double eps_ = 1e-5, momentum_ = 0.1;
  bool affine_ = true;
};

// Batch normalisation over the channel dim 1. Parameters "weight" (ones) and "bias" (zeros) when
// affine; buffers "running_mean" (zeros), "running_var" (ones), "num_batches_tracked" (i64 scalar).
// Training: batch statistics; running = (1 - momentum) running + momentum batch (unbiased
// variance), num_batches_tracked += 1. Eval: running statistics.
class BatchNormBase : public UnaryModule {
public:
  BatchNormBase(const BatchNormOptions& o, const char* name);
  Variable forward(const Variable& x) override;
  std::string type_name() const override { return name_; }
  void reset_running_stats();
  void reset_parameters();
  const BatchNormOptions& options() const { return opt_; }
  Variable weight, bias;  // undefined when !affine

protected:
  virtual void check_input(const Variable& x) const = 0;

private:
  BatchNormOptions opt_;
  const char* name_;
};

// Input (N, C) or (N, C, L).
class BatchNorm1d : public BatchNormBase {
public:
  explicit BatchNorm1d(const BatchNormOptions& o) : BatchNormBase(o, "BatchNorm1d") {}
  BatchNorm1d(int64_t num_features, double eps = 1e-5, double momentum = 0.1)
      : BatchNorm1d(BatchNormOptions(num_features).eps(eps).momentum(momentum)) {}

protected:
  void check_input(const Variable& x) const override;
};

// Input (N, C, H, W).
class BatchNorm2d : public BatchNormBase {
public:
  explicit BatchNorm2d(const BatchNormOptions& o) : BatchNormBase(o, "BatchNorm2d") {}
  BatchNorm2d(int64_t num_features, double eps = 1e-5, double momentum = 0.1)
      : BatchNorm2d(BatchNormOptions(num_features).eps(eps).momentum(momentum)) {}

protected:
  void check_input(const Variable& x) const override;
};

struct LayerNormOptions {
  LayerNormOptions(int64_t normalized_shape) : normalized_shape_(normalized_shape) {}  // NOLINT
  LayerNormOptions& eps(double e) { eps_ = e; return *this; }
  LayerNormOptions& elementwise_affine(bool a) { elementwise_affine_ = a; return *this; }
  int64_t normalized_shape_;
  double eps_ = 1e-5;
  bool elementwise_affine_ = true;
};

// Normalises the last dim (size d). Parameters "weight" (ones) and "bias" (zeros).
class LayerNorm : public UnaryModule {
public:
  explicit LayerNorm(const LayerNormOptions& o);
  LayerNorm(int64_t d, double eps = 1e-5) : LayerNorm(LayerNormOptions(d).eps(eps)) {}
  Variable forward(const Variable& x) override;
  std::string type_name() const override { return "LayerNorm"; }
  void reset_parameters();
  const LayerNormOptions& options() const { return opt_; }
  Variable weight, bias;  // undefined when !elementwise_affine

private:
  LayerNormOptions opt_;
};

}  // namespace polyhead::nn
