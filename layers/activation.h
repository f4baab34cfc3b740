// layers/activation.h: parameter-free layers (activations, Softmax, Flatten, Dropout).
#pragma once
#include "layers/module.h"

namespace polyhead::nn {

class ReLU : public UnaryModule {
public:
  Variable forward(const Variable& x) override { return ag::relu(x); }
  std::string type_name() const override { return "ReLU"; }
};

// Exact (erf) GELU.
class GELU : public UnaryModule {
public:
  Variable forward(const Variable& x) override { return ag::gelu(x); }
  std::string type_name() const override { return "GELU"; }
};

class Tanh : public UnaryModule {
public:
  Variable forward(const Variable& x) override { return ag::tanh(x); }
  std::string type_name() const override { return "Tanh"; }
};

class Sigmoid : public UnaryModule {
public:
  Variable forward(const Variable& x) override { return ag::sigmoid(x); }
  std::string type_name() const override { return "Sigmoid"; }
};

class SiLU : public UnaryModule {
public:
  Variable forward(const Variable& x) override { return ag::silu(x); }
  std::string type_name() const override { return "SiLU"; }
};

class Softmax : public UnaryModule {
public:
  explicit Softmax(int dim = -1) : dim_(dim) {}
  Variable forward(const Variable& x) override { return ag::softmax(x, dim_); }
  std::string type_name() const override { return "Softmax"; }
  int dim() const { return dim_; }

private:
  int dim_;
};

class LogSoftmax : public UnaryModule {
public:
  explicit LogSoftmax(int dim = -1) : dim_(dim) {}
  Variable forward(const Variable& x) override { return ag::log_softmax(x, dim_); }
  std::string type_name() const override { return "LogSoftmax"; }
  int dim() const { return dim_; }

private:
  int dim_;
};

// Flattens dims [start, end] into one (default: everything but the batch dim).
class Flatten : public UnaryModule {
public:
  explicit Flatten(int start_dim = 1, int end_dim = -1) : start_(start_dim), end_(end_dim) {}
  Variable forward(const Variable& x) override { return ag::flatten(x, start_, end_); }
  std::string type_name() const override { return "Flatten"; }

private:
  int start_, end_;
};

// Inverted dropout in training (mask from the default generator); identity in eval.
class Dropout : public UnaryModule {
public:
  explicit Dropout(double p = 0.5) : p_(p) {
    PH_CHECK(p >= 0 && p <= 1, "Dropout", "probability " << p << " outside [0, 1]");
  }
  Variable forward(const Variable& x) override { return ag::dropout(x, p_, is_training()); }
  std::string type_name() const override { return "Dropout"; }
  double p() const { return p_; }

private:
  double p_;
};

// Identity (a placeholder, e.g. to switch a layer off).
class Identity : public UnaryModule {
public:
  Variable forward(const Variable& x) override { return x; }
  std::string type_name() const override { return "Identity"; }
};

}  // namespace polyhead::nn
