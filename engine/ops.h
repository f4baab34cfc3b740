// engine/ops.h: functional tensor ops without autograd, dispatched to the tensor's backend.
// Autograd rules and user code without gradients are written with these.
// Binary ops broadcast (numpy rules); both operands must share dtype and device.
#pragma once
#include <vector>

#include "engine/backend.h"
#include "engine/tensor.h"

namespace polyhead::ops {

void check_same(const Tensor& a, const Tensor& b, const char* op);  // dtype + device

Tensor unary(UnaryOp op, const Tensor& x, double p = 0, double q = 0);
Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);
inline Tensor add(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Add, a, b); }
inline Tensor sub(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Sub, a, b); }
inline Tensor mul(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Mul, a, b); }
inline Tensor div(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Div, a, b); }
inline Tensor maximum(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Max, a, b); }
inline Tensor minimum(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Min, a, b); }
inline Tensor affine(const Tensor& x, double alpha, double beta) { return unary(UnaryOp::Affine, x, alpha, beta); }
inline Tensor mul_scalar(const Tensor& x, double s) { return affine(x, s, 0.0); }
inline Tensor add_scalar(const Tensor& x, double s) { return affine(x, 1.0, s); }
inline Tensor neg(const Tensor& x) { return unary(UnaryOp::Neg, x); }
inline Tensor exp(const Tensor& x) { return unary(UnaryOp::Exp, x); }
inline Tensor log(const Tensor& x) { return unary(UnaryOp::Log, x); }
inline Tensor sqrt(const Tensor& x) { return unary(UnaryOp::Sqrt, x); }
inline Tensor square(const Tensor& x) { return unary(UnaryOp::Square, x); }
inline Tensor relu(const Tensor& x) { return unary(UnaryOp::Relu, x); }
// Comparison into a 0/1 tensor of the same dtype.
inline Tensor gt(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Gt, a, b); }
Tensor where(const Tensor& cond_u8, const Tensor& a, const Tensor& b);

// Reductions. dims empty = all dims.
Tensor sum(const Tensor& x, std::vector<int> dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, std::vector<int> dims = {}, bool keepdim = false);
Tensor amax(const Tensor& x, std::vector<int> dims = {}, bool keepdim = false);
Tensor amin(const Tensor& x, std::vector<int> dims = {}, bool keepdim = false);
Tensor argmax(const Tensor& x, int dim, bool keepdim = false);
// Sum x down to `shape` (the inverse of broadcasting `shape` to x.shape()).
Tensor sum_to(const Tensor& x, const Shape& shape);

// Matrix product with numpy semantics: (..., m, k) @ (..., k, n), batch dims broadcast.
// When b is 2-D, a's leading dims fold into one GEMM.
Tensor matmul(const Tensor& a, const Tensor& b);

Tensor cat(const std::vector<Tensor>& xs, int dim);
Tensor stack(const std::vector<Tensor>& xs, int dim);

// Dot product and norms of whole tensors (as f64 on the host).
double dot(const Tensor& a, const Tensor& b);
bool all_finite(const Tensor& x);

}  // namespace polyhead::ops
