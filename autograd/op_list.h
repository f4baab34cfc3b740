// autograd/op_list.h: every differentiable op, by name. The gradcheck suite
// (tests/autograd/test_gradcheck.cpp) has one case per name and fails if one is missing, so a
// new op must be added here and tested there.
#pragma once
#include <array>
#include <string_view>

namespace polyhead::ag {

inline constexpr std::array<std::string_view, 48> kDifferentiableOps = {
    "add", "sub", "mul", "div", "add_scalar", "mul_scalar", "pow_scalar", "neg", "exp", "log", "sqrt", "abs",
    "relu", "gelu", "tanh", "sigmoid", "silu", "where", "add_constant", "mul_constant", "sum", "mean", "amax",
    "matmul", "linear", "reshape", "transpose", "permute", "narrow", "select", "expand", "squeeze", "unsqueeze",
    "flatten", "contiguous", "cat", "stack", "softmax", "log_softmax", "layer_norm", "batch_norm", "conv2d",
    "max_pool2d", "avg_pool2d", "embedding", "dropout", "cross_entropy", "causal_attention",
};

}  // namespace polyhead::ag
