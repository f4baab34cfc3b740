// autograd/functions.h: differentiable ops on Variables.
// Each op's forward is an engine op; its backward rule sits next to it in functions_*.cpp and
// accepts batched cotangents (see node.h). The names in kDifferentiableOps (op_list.h) are the
// ops the gradcheck suite must cover.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "autograd/variable.h"
#include "engine/backend.h"

namespace polyhead::ag {

// elementwise (broadcasting)
Variable add(const Variable& a, const Variable& b);
Variable sub(const Variable& a, const Variable& b);
Variable mul(const Variable& a, const Variable& b);
Variable div(const Variable& a, const Variable& b);
Variable add_scalar(const Variable& x, double s);
Variable mul_scalar(const Variable& x, double s);
Variable pow_scalar(const Variable& x, double p);
Variable neg(const Variable& x);
Variable exp(const Variable& x);
Variable log(const Variable& x);
Variable sqrt(const Variable& x);
Variable abs(const Variable& x);
Variable relu(const Variable& x);
Variable gelu(const Variable& x);
Variable tanh(const Variable& x);
Variable sigmoid(const Variable& x);
Variable silu(const Variable& x);
// where(cond, a, b): cond is a u8 tensor (no gradient)
Variable where(const Tensor& cond, const Variable& a, const Variable& b);
// a + constant tensor (no gradient to the constant; e.g. an attention mask)
Variable add_constant(const Variable& a, const Tensor& c);
// a * constant tensor (no gradient to the constant)
Variable mul_constant(const Variable& a, const Tensor& c);

// reductions
Variable sum(const Variable& x, std::vector<int> dims = {}, bool keepdim = false);
Variable mean(const Variable& x, std::vector<int> dims = {}, bool keepdim = false);
Variable amax(const Variable& x, int dim, bool keepdim = false);

// linear algebra
Variable matmul(const Variable& a, const Variable& b);
// y = x W^T + b (b may be undefined): x (..., in), W (out, in)
Variable linear(const Variable& x, const Variable& w, const Variable& b);

// views and shape ops
Variable reshape(const Variable& x, const Shape& shape);
Variable transpose(const Variable& x, int a, int b);
Variable permute(const Variable& x, const std::vector<int>& dims);
Variable narrow(const Variable& x, int dim, int64_t start, int64_t length);
Variable select(const Variable& x, int dim, int64_t index);
Variable expand(const Variable& x, const Shape& shape);
Variable squeeze(const Variable& x, int dim);
Variable unsqueeze(const Variable& x, int dim);
Variable flatten(const Variable& x, int start = 0, int end = -1);
Variable contiguous(const Variable& x);
Variable cat(const std::vector<Variable>& xs, int dim);
Variable stack(const std::vector<Variable>& xs, int dim);

// neural-network ops
Variable softmax(const Variable& x, int dim = -1);
Variable log_softmax(const Variable& x, int dim = -1);
Variable layer_norm(const Variable& x, const Variable& gamma, const Variable& beta, double eps = 1e-5);
// x (N, C) or (N, C, ...); running buffers updated in training.
Variable batch_norm(const Variable& x, const Variable& gamma, const Variable& beta, Tensor& running_mean,
                    Tensor& running_var, bool training, double momentum = 0.1, double eps = 1e-5);
Variable conv2d(const Variable& x, const Variable& w, const Variable& b, const ConvParams& p);
Variable max_pool2d(const Variable& x, const PoolParams& p);
Variable avg_pool2d(const Variable& x, const PoolParams& p);
Variable embedding(const Variable& weight, const Tensor& idx);
// Inverted dropout with a fresh Philox mask from the default generator; identity when !training.
Variable dropout(const Variable& x, double p, bool training);
enum class Reduction { None, Mean, Sum };
// logits (N, C) or (N, C, d1...) with targets (N) / (N, d1...) i64.
Variable cross_entropy(const Variable& logits, const Tensor& target, Reduction r = Reduction::Mean,
                       int64_t ignore_index = -100, double label_smoothing = 0.0);
// Causal multi-head self-attention core: q, k, v (B, H, T, Dh) -> (B, H, T, Dh).
Variable causal_attention(const Variable& q, const Variable& k, const Variable& v);

// Custom op hook: forward computes the output tensor from the input tensors; backward maps the
// batched output gradient (K, *out) and the saved inputs/output to one batched gradient per
// input (undefined for none).
using CustomForward = std::function<Tensor(const std::vector<Tensor>&)>;
using CustomBackward =
    std::function<std::vector<Tensor>(const Tensor& gy, const std::vector<Tensor>& inputs, const Tensor& out, int64_t K)>;
Variable custom_op(const std::string& name, const std::vector<Variable>& inputs, CustomForward fwd, CustomBackward bwd);

// Operators.
inline Variable operator+(const Variable& a, const Variable& b) { return add(a, b); }
inline Variable operator-(const Variable& a, const Variable& b) { return sub(a, b); }
inline Variable operator*(const Variable& a, const Variable& b) { return mul(a, b); }
inline Variable operator/(const Variable& a, const Variable& b) { return div(a, b); }
inline Variable operator-(const Variable& a) { return neg(a); }
inline Variable operator*(const Variable& a, double s) { return mul_scalar(a, s); }
inline Variable operator*(double s, const Variable& a) { return mul_scalar(a, s); }
inline Variable operator+(const Variable& a, double s) { return add_scalar(a, s); }

}  // namespace polyhead::ag
