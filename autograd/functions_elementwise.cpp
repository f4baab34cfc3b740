// autograd/functions_elementwise.cpp: elementwise ops and their batched backward rules.
// Saved tensors have the forward shape; gy has a leading K and they broadcast against it
// (right-aligned), so each rule is one or two engine ops.
#include <cmath>

#include "autograd/function_util.h"
#include "autograd/functions.h"
#include "engine/ops.h"

namespace polyhead::ag {

Variable add(const Variable& a, const Variable& b) {
  Shape sa = a.shape(), sb = b.shape();
  return make_op("add", ops::add(a.data(), b.data()), {a, b}, [sa, sb](const Tensor& gy, int64_t, const std::vector<bool>& need) {
    return std::vector<Tensor>{need[0] ? sum_to_batched(gy, sa) : Tensor(), need[1] ? sum_to_batched(gy, sb) : Tensor()};
  });
}

Variable sub(const Variable& a, const Variable& b) {
  Shape sa = a.shape(), sb = b.shape();
  return make_op("sub", ops::sub(a.data(), b.data()), {a, b}, [sa, sb](const Tensor& gy, int64_t, const std::vector<bool>& need) {
    return std::vector<Tensor>{need[0] ? sum_to_batched(gy, sa) : Tensor(),
                               need[1] ? sum_to_batched(ops::neg(gy), sb) : Tensor()};
  });
}

Variable mul(const Variable& a, const Variable& b) {
  Tensor ta = a.data(), tb = b.data();
  return make_op("mul", ops::mul(ta, tb), {a, b}, [ta, tb](const Tensor& gy, int64_t, const std::vector<bool>& need) {
    return std::vector<Tensor>{need[0] ? sum_to_batched(ops::mul(gy, tb), ta.shape()) : Tensor(),
                               need[1] ? sum_to_batched(ops::mul(gy, ta), tb.shape()) : Tensor()};
  });
}

Variable div(const Variable& a, const Variable& b) {
  Tensor ta = a.data(), tb = b.data();
  Tensor out = ops::div(ta, tb);
  return make_op("div", out, {a, b}, [ta, tb, out](const Tensor& gy, int64_t, const std::vector<bool>& need) {
    Tensor ga, gb;
    if (need[0]) ga = sum_to_batched(ops::div(gy, tb), ta.shape());
    if (need[1]) gb = sum_to_batched(ops::neg(ops::div(ops::mul(gy, out), tb)), tb.shape());
    return std::vector<Tensor>{ga, gb};
  });
}

Variable add_scalar(const Variable& x, double s) {
  return make_op("add_scalar", ops::add_scalar(x.data(), s), {x},
                 [](const Tensor& gy, int64_t, const std::vector<bool>&) { return std::vector<Tensor>{gy}; });
}

Variable mul_scalar(const Variable& x, double s) {
  return make_op("mul_scalar", ops::mul_scalar(x.data(), s), {x},
                 [s](const Tensor& gy, int64_t, const std::vector<bool>&) { return std::vector<Tensor>{ops::mul_scalar(gy, s)}; });
}

Variable pow_scalar(const Variable& x, double p) {
  Tensor t = x.data();
  return make_op("pow_scalar", ops::unary(UnaryOp::PowScalar, t, p), {x}, [t, p](const Tensor& gy, int64_t, const std::vector<bool>&) {
    Tensor d = p == 2.0 ? ops::mul_scalar(t, 2.0) : ops::mul_scalar(ops::unary(UnaryOp::PowScalar, t, p - 1.0), p);
    return std::vector<Tensor>{ops::mul(gy, d)};
  });
}

Variable neg(const Variable& x) {
  return make_op("neg", ops::neg(x.data()), {x},
                 [](const Tensor& gy, int64_t, const std::vector<bool>&) { return std::vector<Tensor>{ops::neg(gy)}; });
}

Variable exp(const Variable& x) {
  Tensor y = ops::exp(x.data());
  return make_op("exp", y, {x}, [y](const Tensor& gy, int64_t, const std::vector<bool>&) { return std::vector<Tensor>{ops::mul(gy, y)}; });
}

Variable log(const Variable& x) {
  Tensor t = x.data();
  return make_op("log", ops::log(t), {x}, [t](const Tensor& gy, int64_t, const std::vector<bool>&) { return std::vector<Tensor>{ops::div(gy, t)}; });
}

Variable sqrt(const Variable& x) {
  Tensor y = ops::sqrt(x.data());
  return make_op("sqrt", y, {x}, [y](const Tensor& gy, int64_t, const std::vector<bool>&) {
    return std::vector<Tensor>{ops::div(ops::mul_scalar(gy, 0.5), y)};
  });
}

Variable abs(const Variable& x) {
  Tensor t = x.data();
  return make_op("abs", ops::unary(UnaryOp::Abs, t), {x}, [t](const Tensor& gy, int64_t, const std::vector<bool>&) {
    return std::vector<Tensor>{ops::mul(gy, ops::unary(UnaryOp::Sign, t))};
  });
}

// Activation whose derivative is a BinaryOp helper of (saved, gy).
static Variable activation(const char* name, UnaryOp f, BinaryOp bwd, bool save_output, const Variable& x) {
  Tensor y = ops::unary(f, x.data());
  Tensor saved = save_output ? y : x.data();
  return make_op(name, y, {x}, [saved, bwd](const Tensor& gy, int64_t, const std::vector<bool>&) {
    return std::vector<Tensor>{ops::binary(bwd, saved.expand(gy.shape()), gy)};
  });
}
Variable relu(const Variable& x) { return activation("relu", UnaryOp::Relu, BinaryOp::ReluBwd, false, x); }
Variable gelu(const Variable& x) { return activation("gelu", UnaryOp::Gelu, BinaryOp::GeluBwd, false, x); }
Variable tanh(const Variable& x) { return activation("tanh", UnaryOp::Tanh, BinaryOp::TanhBwd, true, x); }
Variable sigmoid(const Variable& x) { return activation("sigmoid", UnaryOp::Sigmoid, BinaryOp::SigmoidBwd, true, x); }
Variable silu(const Variable& x) { return activation("silu", UnaryOp::Silu, BinaryOp::SiluBwd, false, x); }

Variable where(const Tensor& cond, const Variable& a, const Variable& b) {
  Shape sa = a.shape(), sb = b.shape();
  Tensor out = ops::where(cond, a.data(), b.data());
  return make_op("where", out, {a, b}, [cond, sa, sb](const Tensor& gy, int64_t, const std::vector<bool>& need) {
    Tensor z = Tensor::zeros({}, gy.dtype(), gy.device());
    Tensor ga, gb;
    if (need[0]) ga = sum_to_batched(ops::where(cond, gy, z), sa);
    if (need[1]) gb = sum_to_batched(ops::where(cond, z, gy), sb);
    return std::vector<Tensor>{ga, gb};
  });
}

Variable add_constant(const Variable& a, const Tensor& c) {
  Shape sa = a.shape();
  return make_op("add_constant", ops::add(a.data(), c), {a},
                 [sa](const Tensor& gy, int64_t, const std::vector<bool>&) { return std::vector<Tensor>{sum_to_batched(gy, sa)}; });
}

Variable mul_constant(const Variable& a, const Tensor& c) {
  Shape sa = a.shape();
  return make_op("mul_constant", ops::mul(a.data(), c), {a}, [sa, c](const Tensor& gy, int64_t, const std::vector<bool>&) {
    return std::vector<Tensor>{sum_to_batched(ops::mul(gy, c), sa)};
  });
}

Variable custom_op(const std::string& name, const std::vector<Variable>& inputs, CustomForward fwd, CustomBackward bwd) {
  std::vector<Tensor> ts;
  for (const auto& v : inputs) ts.push_back(v.data());
  Tensor out = fwd(ts);
  out.check_defined(name.c_str());
  Variable r = make_op("custom", out, inputs, [ts, out, bwd, name](const Tensor& gy, int64_t K, const std::vector<bool>&) {
    std::vector<Tensor> g = bwd(gy, ts, out, K);
    PH_CHECK(g.size() == ts.size(), name, "custom backward returned " << g.size() << " gradients for " << ts.size() << " inputs");
    for (size_t i = 0; i < g.size(); ++i)
      if (g[i].defined())
        PH_CHECK(g[i].shape() == batched_shape(K, ts[i].shape()), name,
                 "custom backward gradient " << i << " is " << g[i].str() << ", expected " << shape_str(batched_shape(K, ts[i].shape())));
    return g;
  });
  if (auto* n = dynamic_cast<RuleNode*>(r.grad_fn().get())) n->op = "custom:" + name;
  return r;
}

}  // namespace polyhead::ag
