// autograd/variable.cpp: Variable basics, grad mode, node helpers.
#include "autograd/variable.h"

#include <atomic>

#include "autograd/engine.h"
#include "autograd/node.h"
#include "engine/ops.h"

namespace polyhead::ag {

Variable::Variable(Tensor data, bool requires_grad) : impl_(std::make_shared<VariableImpl>()) {
  data.check_defined("Variable");
  impl_->data = std::move(data);
  set_requires_grad(requires_grad);
}

Variable Variable::from_node(Tensor data, std::shared_ptr<Node> fn, int output_nr) {
  Variable v;
  v.impl_ = std::make_shared<VariableImpl>();
  v.impl_->data = std::move(data);
  v.impl_->requires_grad = fn != nullptr;
  v.impl_->grad_fn = std::move(fn);
  v.impl_->output_nr = output_nr;
  return v;
}

static void check(const Variable& v, const char* op) {
  if (!v.defined()) throw Error(op, "variable is undefined", "construct it from a Tensor first");
}
const Tensor& Variable::data() const { check(*this, "Variable::data"); return impl_->data; }
void Variable::set_data(const Tensor& t) {
  check(*this, "Variable::set_data");
  PH_CHECK(t.shape() == impl_->data.shape() && t.dtype() == impl_->data.dtype(), "Variable::set_data",
           "new data " << t.str() << " does not match " << impl_->data.str());
  impl_->data = t;
}
const Tensor& Variable::grad() const { check(*this, "Variable::grad"); return impl_->grad; }
void Variable::set_grad(const Tensor& g) {
  check(*this, "Variable::set_grad");
  if (g.defined())
    PH_CHECK(g.shape() == impl_->data.shape() && g.dtype() == impl_->data.dtype(), "Variable::set_grad",
             "gradient " << g.str() << " does not match data " << impl_->data.str());
  impl_->grad = g;
}
Variable& Variable::set_requires_grad(bool r) {
  check(*this, "Variable::set_requires_grad");
  PH_CHECK_HINT(!r || is_floating(impl_->data.dtype()), "set_requires_grad",
                "only floating tensors can require gradients, got " << impl_->data.str(), "convert with .to(DType::f32)");
  PH_CHECK(is_leaf() || r, "set_requires_grad", "cannot turn off requires_grad of a non-leaf; use detach()");
  impl_->requires_grad = r;
  return *this;
}
const std::shared_ptr<Node>& Variable::grad_fn() const {
  static const std::shared_ptr<Node> none;
  return impl_ ? impl_->grad_fn : none;
}
const std::string& Variable::name() const { check(*this, "Variable::name"); return impl_->name; }
Variable& Variable::set_name(const std::string& n) { check(*this, "Variable::set_name"); impl_->name = n; return *this; }

std::shared_ptr<Node> Variable::gradient_edge_node() const {
  if (!requires_grad()) return nullptr;
  if (impl_->grad_fn) return impl_->grad_fn;
  auto acc = impl_->accumulator.lock();
  if (!acc) {
    auto a = std::make_shared<AccumulateGrad>();
    a->var = impl_;
    a->output_shapes = {impl_->data.shape()};
    a->dtype = impl_->data.dtype();
    a->device = impl_->data.device();
    impl_->accumulator = a;
    acc = a;
  }
  return acc;
}

void Variable::backward(const Tensor& grad_output, bool retain_graph) const {
  check(*this, "backward");
  Tensor g = grad_output;
  if (!g.defined()) {
    PH_CHECK_HINT(numel() == 1, "backward", "implicit gradient only for scalars, got " << str(),
                  "pass a grad_output of the same shape");
    g = Tensor::ones(shape(), dtype(), device());
  }
  BackwardOptions o;
  o.retain_graph = retain_graph;
  ag::backward({*this}, {g}, o);
}

// ---- grad mode ----
static thread_local bool g_grad_enabled = true;
bool grad_mode_enabled() { return g_grad_enabled; }
NoGradGuard::NoGradGuard() : prev_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = prev_; }

// ---- node helpers ----
static std::atomic<uint64_t> g_seq{0};
Node::Node() : seq(g_seq.fetch_add(1)) {}

Shape batched_shape(int64_t K, const Shape& s) {
  Shape r{K};
  r.insert(r.end(), s.begin(), s.end());
  return r;
}

Tensor sum_to_batched(const Tensor& g, const Shape& shape) {
  int64_t K = g.size(0);
  int rest = g.dim() - 1;
  if (rest == int(shape.size()) && Shape(g.shape().begin() + 1, g.shape().end()) == shape) return g;
  PH_CHECK(rest >= int(shape.size()), "sum_to_batched", "gradient " << g.str() << " smaller than " << shape_str(shape));
  Shape t{K};
  for (int i = 0; i < rest - int(shape.size()); ++i) t.push_back(1);
  t.insert(t.end(), shape.begin(), shape.end());
  return ops::sum_to(g, t).reshape(batched_shape(K, shape));
}

}  // namespace polyhead::ag
