// autograd/engine.cpp: topological backward over the graph, with batched cotangents.
//
// The engine runs single-threaded in a deterministic order (dependency counting; among ready
// nodes the most recently created first), so gradients are summed in the same order every run.
#include "autograd/engine.h"

#include <algorithm>
#include <map>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "autograd/node.h"
#include "engine/backend.h"
#include "engine/ops.h"

namespace polyhead::ag {

namespace {

struct Target {
  Node* node;
  int slot;
};

struct Run {
  std::unordered_map<Node*, int> deps;                  // unprocessed incoming edges
  std::unordered_map<Node*, std::vector<Tensor>> bufs;  // incoming gradients per output
  std::unordered_set<Node*> needed;                     // leads to a wanted sink
  std::vector<std::shared_ptr<Node>> order_keep;        // keep nodes alive
};

void accumulate(Tensor& buf, const Tensor& g) {
  if (!g.defined()) return;
  if (!buf.defined()) { buf = g; return; }
  PH_CHECK(buf.shape() == g.shape(), "backward", "gradient shapes disagree: " << buf.str() << " vs " << g.str());
  buf = ops::add(buf, g);
}

// Run the graph from roots. `wanted(node)` says whether a node's incoming gradient is a result
// (AccumulateGrad sinks or captured inputs); `sink(node, grads)` receives it.
template <class Wanted, class Sink>
void run_graph(const std::vector<Variable>& roots, std::vector<Tensor> grads, int64_t K, bool retain,
               Wanted&& wanted, Sink&& sink) {
  Run r;
  // Collect nodes reachable from roots.
  std::vector<std::shared_ptr<Node>> stack;
  std::unordered_set<Node*> seen;
  for (const auto& v : roots) {
    auto n = v.gradient_edge_node();
    if (n && seen.insert(n.get()).second) stack.push_back(n);
  }
  std::vector<std::shared_ptr<Node>> all;
  while (!stack.empty()) {
    auto n = stack.back();
    stack.pop_back();
    all.push_back(n);
    for (auto& e : n->next)
      if (e.fn) {
        r.deps[e.fn.get()]++;
        if (seen.insert(e.fn.get()).second) stack.push_back(e.fn);
      }
  }
  // Which nodes lead to a wanted node: an iterative post-order DFS decides each node after every
  // node it feeds gradients into. (Creation order is not a topological order: a leaf's
  // AccumulateGrad is created lazily, after the first node that consumes the leaf.)
  {
    std::unordered_set<Node*> done;
    std::vector<std::pair<Node*, size_t>> st;
    for (auto& start : all) {
      if (done.count(start.get())) continue;
      st.emplace_back(start.get(), 0);
      while (!st.empty()) {
        Node* n = st.back().first;
        size_t i = st.back().second;
        if (i < n->next.size()) {
          st.back().second = i + 1;
          Node* c = n->next[i].fn.get();
          if (c && !done.count(c)) st.emplace_back(c, 0);
          continue;
        }
        bool need = wanted(n);
        for (auto& e : n->next) if (e.fn && r.needed.count(e.fn.get())) need = true;
        if (need) r.needed.insert(n);
        done.insert(n);
        st.pop_back();
      }
    }
  }
  // Seed root gradients.
  for (size_t i = 0; i < roots.size(); ++i) {
    auto n = roots[i].gradient_edge_node();
    if (!n) continue;
    auto& b = r.bufs[n.get()];
    b.resize(std::max<size_t>(b.size(), n->output_shapes.size()));
    accumulate(b[size_t(roots[i].output_nr())], grads[i]);
  }
  auto cmp = [](const std::shared_ptr<Node>& a, const std::shared_ptr<Node>& b) { return a->seq < b->seq; };
  std::priority_queue<std::shared_ptr<Node>, std::vector<std::shared_ptr<Node>>, decltype(cmp)> ready(cmp);
  for (auto& n : all)
    if (r.deps[n.get()] == 0) ready.push(n);
  while (!ready.empty()) {
    auto n = ready.top();
    ready.pop();
    std::vector<Tensor> gys = std::move(r.bufs[n.get()]);
    r.bufs.erase(n.get());
    gys.resize(n->output_shapes.size());
    if (wanted(n.get())) sink(n.get(), gys);
    std::vector<Tensor> gxs;
    bool run_it = r.needed.count(n.get()) && !n->next.empty();
    bool any = false;
    for (auto& g : gys) any = any || g.defined();
    if (run_it && any) {
      if (n->released)
        throw Error("backward", "node " + n->name() + " was already freed by an earlier backward",
                    "pass retain_graph = true to the first backward to run backward twice through the graph");
      gxs = n->apply(gys, K);
      PH_CHECK(gxs.size() == n->next.size(), "backward", n->name() << " returned " << gxs.size() << " gradients for "
                                                                     << n->next.size() << " inputs");
    }
    if (!retain) { n->release(); if (!n->next.empty()) n->released = true; }
    for (size_t i = 0; i < n->next.size(); ++i) {
      auto& e = n->next[i];
      if (!e.fn) continue;
      if (i < gxs.size() && gxs[i].defined() && r.needed.count(e.fn.get())) {
        auto& b = r.bufs[e.fn.get()];
        b.resize(std::max<size_t>(b.size(), e.fn->output_shapes.size()));
        const Shape want = batched_shape(K, e.fn->output_shapes[size_t(e.input_nr)]);
        PH_CHECK(gxs[i].shape() == want, "backward", n->name() << " produced gradient " << gxs[i].str()
                                                               << " for input " << i << ", expected " << shape_str(want));
        accumulate(b[size_t(e.input_nr)], gxs[i]);
      }
      if (--r.deps[e.fn.get()] == 0) ready.push(e.fn);
    }
  }
}

std::vector<Tensor> seed_grads(const std::vector<Variable>& roots, const std::vector<Tensor>& grads, bool batched,
                               int64_t& K, const char* op) {
  PH_CHECK(grads.empty() || grads.size() == roots.size(), op,
           grads.size() << " gradients given for " << roots.size() << " roots");
  std::vector<Tensor> out;
  K = -1;
  for (size_t i = 0; i < roots.size(); ++i) {
    const Variable& v = roots[i];
    PH_CHECK_HINT(v.requires_grad(), op, "root " << i << " (" << v.str() << ") does not require grad",
                  "compute it from a variable with requires_grad = true, outside NoGradGuard");
    Tensor g = grads.empty() ? Tensor() : grads[i];
    if (!g.defined()) {
      PH_CHECK_HINT(v.numel() == 1 && !batched, op, "no gradient given for non-scalar root " << v.str(),
                    "pass grad_outputs of the roots' shapes");
      g = Tensor::ones(v.shape(), v.dtype(), v.device());
    }
    PH_CHECK(g.dtype() == v.dtype() && g.device() == v.device(), op,
             "gradient " << g.str() << " does not match root " << v.str());
    if (batched) {
      PH_CHECK(g.dim() == v.dim() + 1 && Shape(g.shape().begin() + 1, g.shape().end()) == v.shape(), op,
               "batched gradient " << g.str() << " must be (K, " << shape_str(v.shape()).substr(1));
      PH_CHECK(K < 0 || K == g.size(0), op, "all batched gradients need the same K, got " << K << " and " << g.size(0));
      K = g.size(0);
      out.push_back(g);
    } else {
      PH_CHECK(g.shape() == v.shape(), op, "gradient " << g.str() << " does not match root " << v.str());
      K = 1;
      out.push_back(g.unsqueeze(0));
    }
  }
  if (K < 0) K = 1;
  return out;
}

}  // namespace

void backward(const std::vector<Variable>& roots, const std::vector<Tensor>& grad_roots, const BackwardOptions& opt) {
  int64_t K;
  auto g = seed_grads(roots, grad_roots, opt.batched, K, "backward");
  std::unordered_set<Node*> only;
  std::vector<std::shared_ptr<Node>> keep;
  for (const auto& v : opt.inputs) {
    PH_CHECK(v.requires_grad(), "backward", "input " << v.str() << " does not require grad");
    auto n = v.gradient_edge_node();
    PH_CHECK_HINT(dynamic_cast<AccumulateGrad*>(n.get()), "backward", "inputs must be leaf variables",
                  "use grad() to get gradients of intermediate variables");
    keep.push_back(n);
    only.insert(n.get());
  }
  auto wanted = [&](Node* n) {
    return dynamic_cast<AccumulateGrad*>(n) != nullptr && (only.empty() || only.count(n));
  };
  auto sink = [&](Node* n, std::vector<Tensor>& gys) {
    auto* acc = static_cast<AccumulateGrad*>(n);
    auto var = acc->var.lock();
    if (!var || !gys[0].defined()) return;
    Tensor gi = opt.batched ? gys[0] : gys[0].squeeze(0);
    if (!var->grad.defined()) {
      var->grad = gi.contiguous();
      if (var->grad.storage() == gi.storage() && gi.storage()) var->grad = gi.clone();
    } else if (!opt.batched) {
      PH_CHECK(var->grad.shape() == gi.shape(), "backward", "leaf .grad " << var->grad.str() << " vs gradient " << gi.str());
      if (var->grad.is_contiguous()) backend_for(gi.device()).binary(BinaryOp::Add, var->grad, gi, var->grad);
      else var->grad.copy_(ops::add(var->grad, gi));
    } else {
      var->grad = ops::add(var->grad, gi);
    }
  };
  run_graph(roots, std::move(g), K, opt.retain_graph, wanted, sink);
}

std::vector<Tensor> grad(const std::vector<Variable>& outputs, const std::vector<Variable>& inputs,
                         const std::vector<Tensor>& grad_outputs, const GradOptions& opt) {
  int64_t K;
  auto g = seed_grads(outputs, grad_outputs, opt.batched, K, "grad");
  // Each input's gradient is what flows into its edge (node, output_nr).
  std::map<std::pair<Node*, int>, std::vector<size_t>> where;
  std::vector<std::shared_ptr<Node>> keep;
  for (size_t i = 0; i < inputs.size(); ++i) {
    PH_CHECK_HINT(inputs[i].requires_grad(), "grad", "input " << i << " (" << inputs[i].str() << ") does not require grad",
                  "set requires_grad on it before computing the outputs");
    auto n = inputs[i].gradient_edge_node();
    keep.push_back(n);
    where[{n.get(), inputs[i].output_nr()}].push_back(i);
  }
  std::vector<Tensor> res(inputs.size());
  auto wanted = [&](Node* n) {
    auto it = where.lower_bound({n, -1});
    return it != where.end() && it->first.first == n;
  };
  auto sink = [&](Node* n, std::vector<Tensor>& gys) {
    for (size_t o = 0; o < gys.size(); ++o) {
      auto it = where.find({n, int(o)});
      if (it == where.end()) continue;
      for (size_t i : it->second) res[i] = gys[o];
    }
  };
  run_graph(outputs, std::move(g), K, opt.retain_graph, wanted, sink);
  for (size_t i = 0; i < res.size(); ++i) {
    if (!res[i].defined()) {
      PH_CHECK_HINT(opt.allow_unused, "grad", "input " << i << " (" << inputs[i].str() << ") is not used by the outputs",
                    "pass allow_unused = true to get an undefined gradient for it");
      continue;
    }
    if (!opt.batched) res[i] = res[i].squeeze(0);
  }
  return res;
}

}  // namespace polyhead::ag
