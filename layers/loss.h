// layers/loss.h: loss functions on Variables (PyTorch semantics).
// Reduction::None keeps the element-wise (or per-sample) losses, Mean averages them (nll_loss /
// cross_entropy: over the non-ignored targets), Sum adds them. Shapes are validated (the error
// names the loss and both shapes); the loss value itself is not checked for NaN here.
// These live in nn:: and are called qualified (nn::cross_entropy): ag::cross_entropy has the
// same parameters.
#pragma once
#include "autograd/functions.h"

namespace polyhead::nn {

using ag::Reduction;
using ag::Variable;

// logits (N, C) or (N, C, d1, ...), target i64 (N) or (N, d1, ...) class indices; rows whose
// target is ignore_index contribute 0 (and are left out of the mean).
Variable cross_entropy(const Variable& logits, const Tensor& target, Reduction r = Reduction::Mean,
                       int64_t ignore_index = -100, double label_smoothing = 0.0);
// log_probs (N, C) or (N, C, d1, ...), target as for cross_entropy: loss = -log_probs[n, target[n]].
Variable nll_loss(const Variable& log_probs, const Tensor& target, Reduction r = Reduction::Mean,
                  int64_t ignore_index = -100);
// (x - y)^2.
Variable mse_loss(const Variable& input, const Variable& target, Reduction r = Reduction::Mean);
Variable mse_loss(const Variable& input, const Tensor& target, Reduction r = Reduction::Mean);
// |x - y|.
Variable l1_loss(const Variable& input, const Variable& target, Reduction r = Reduction::Mean);
Variable l1_loss(const Variable& input, const Tensor& target, Reduction r = Reduction::Mean);
// d = x - y: 0.5 d^2 where |d| <= delta, else delta (|d| - 0.5 delta).
Variable huber_loss(const Variable& input, const Variable& target, Reduction r = Reduction::Mean, double delta = 1.0);
Variable huber_loss(const Variable& input, const Tensor& target, Reduction r = Reduction::Mean, double delta = 1.0);
// Binary cross-entropy on logits x with targets y in [0, 1]:
// max(x, 0) - x y + log(1 + exp(-|x|)) (stable for any x; gradient sigmoid(x) - y, exact at x = 0).
Variable bce_with_logits(const Variable& logits, const Variable& target, Reduction r = Reduction::Mean);
Variable bce_with_logits(const Variable& logits, const Tensor& target, Reduction r = Reduction::Mean);

}  // namespace polyhead::nn
