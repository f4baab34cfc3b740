// mtl/per_task_grads.cpp: see per_task_grads.h.
#include "mtl/per_task_grads.h"

#include <algorithm>
#include <cmath>

#include "autograd/engine.h"
#include "engine/ops.h"

namespace polyhead::mtl {

std::vector<double> SplitForward::loss_values() const {
  std::vector<double> v;
  for (const auto& l : losses) v.push_back(l.item());
  return v;
}

SplitForward split_forward(MultiTaskModel& m, const Batch& b) {
  int K = m.num_tasks();
  PH_CHECK_HINT(int(b.y.size()) == K, "split_forward", "batch has " << b.y.size() << " targets for " << K << " tasks",
                "give one target tensor per task, in task order");
  SplitForward f;
  f.reps = m.representations(Variable(b.x));
  PH_CHECK(f.reps.size() == 1 || int(f.reps.size()) == K, "split_forward",
           "architecture returned " << f.reps.size() << " representations for " << K << " tasks");
  for (auto& r : f.reps) f.cut.emplace_back(r.data(), true);
  for (int k = 0; k < K; ++k) {
    Variable out = m.head_forward(k, f.cut[size_t(f.rep_of(k))]);
    f.outputs.push_back(out);
    f.losses.push_back(m.task(k).compute_loss(out, b.y[size_t(k)]));
  }
  return f;
}

RepGrads representation_grads(MultiTaskModel& m, SplitForward& f) {
  int K = m.num_tasks();
  RepGrads g;
  std::vector<std::vector<Tensor>> rows(f.cut.size(), std::vector<Tensor>(size_t(K)));
  for (int k = 0; k < K; ++k) {
    int r = f.rep_of(k);
    std::vector<Variable> in{f.cut[size_t(r)]};
    const auto& tp = m.task_parameters(k);
    in.insert(in.end(), tp.begin(), tp.end());
    ag::GradOptions o;
    o.allow_unused = true;
    auto gr = ag::grad({f.losses[size_t(k)]}, in, {}, o);
    rows[size_t(r)][size_t(k)] = gr[0].defined() ? gr[0] : Tensor::zeros(f.cut[size_t(r)].shape(), f.cut[size_t(r)].dtype(), f.cut[size_t(r)].device());
    g.head_grads.emplace_back(gr.begin() + 1, gr.end());
  }
  for (size_t r = 0; r < f.cut.size(); ++r) {
    for (auto& t : rows[r])
      if (!t.defined()) t = Tensor::zeros(f.cut[r].shape(), f.cut[r].dtype(), f.cut[r].device());
    g.dz.push_back(ops::stack(rows[r], 0));
  }
  return g;
}

void accumulate_head_grads(MultiTaskModel& m, const RepGrads& g, const std::vector<double>& scale) {
  for (int k = 0; k < m.num_tasks(); ++k) {
    const auto& tp = m.task_parameters(k);
    for (size_t i = 0; i < tp.size(); ++i) {
      const Tensor& gi = g.head_grads[size_t(k)][i];
      if (!gi.defined()) continue;
      Tensor add = scale[size_t(k)] == 1.0 ? gi : ops::mul_scalar(gi, scale[size_t(k)]);
      Variable p = tp[i];
      if (p.grad().defined()) {
        Tensor gr = p.grad();
        gr.copy_(ops::add(gr, add));
      } else {
        p.set_grad(add.clone());
      }
    }
  }
}

static Tensor jacobian_from_param_grads(MultiTaskModel& m, const std::vector<Tensor>& pg, int64_t K, const Tensor& like) {
  const auto& sp = m.shared_parameters();
  std::vector<Tensor> cols;
  for (size_t i = 0; i < sp.size(); ++i) {
    if (pg[i].defined()) cols.push_back(pg[i].reshape({K, sp[i].numel()}));
    else cols.push_back(Tensor::zeros({K, sp[i].numel()}, like.dtype(), like.device()));
  }
  PH_CHECK_HINT(!cols.empty(), "shared_jacobian", "the model has no shared parameters",
                "per-task gradient methods need a shared trunk");
  return ops::cat(cols, 1);
}

Tensor shared_jacobian(MultiTaskModel& m, SplitForward& f, RepGrads& g, bool retain_graph) {
  int K = m.num_tasks();
  ag::GradOptions o;
  o.batched = true;
  o.allow_unused = true;
  o.retain_graph = retain_graph;
  std::vector<Variable> inputs = m.shared_parameters();
  const size_t nshared = inputs.size();
  std::vector<std::pair<int, size_t>> owned;  // (task, index in task_parameters)
  for (int k = 0; k < K; ++k)
    for (size_t i = 0; i < m.num_arch_task_parameters(k); ++i) {
      inputs.push_back(m.task_parameters(k)[i]);
      owned.emplace_back(k, i);
    }
  auto pg = ag::grad(f.reps, inputs, g.dz, o);
  for (size_t j = 0; j < owned.size(); ++j) {
    auto [k, i] = owned[j];
    const Tensor& t = pg[nshared + j];
    if (t.defined()) g.head_grads[size_t(k)][i] = t.select(0, k).contiguous();
  }
  pg.resize(nshared);
  return jacobian_from_param_grads(m, pg, K, f.reps[0].data());
}

Tensor shared_jacobian_reference(MultiTaskModel& m, const Batch& b) {
  int K = m.num_tasks();
  auto outs = m.forward(Variable(b.x));
  std::vector<Tensor> rows;
  for (int k = 0; k < K; ++k) {
    Variable l = m.task(k).compute_loss(outs[size_t(k)], b.y[size_t(k)]);
    ag::GradOptions o;
    o.allow_unused = true;
    o.retain_graph = true;
    auto pg = ag::grad({l}, m.shared_parameters(), {}, o);
    std::vector<Tensor> one;
    for (auto& t : pg) one.push_back(t.defined() ? t.unsqueeze(0) : Tensor());
    rows.push_back(jacobian_from_param_grads(m, one, 1, outs[0].data()));
  }
  return ops::cat(rows, 0);
}

Mat to_mat(const Tensor& G) {
  PH_CHECK(G.dim() == 2, "to_mat", "expected a (K, P) matrix, got " << G.str());
  Tensor d = G.to(Device::cpu()).to(DType::f64).contiguous();
  Mat r(int(G.size(0)), int(G.size(1)));
  const double* p = d.data<double>();
  std::copy(p, p + d.numel(), r.a.begin());
  return r;
}

// G (K, P) is summed over column blocks of about 2^20 float64 values each, in block order: a
// float32 Jacobian is widened block by block (never as a whole K x P float64 copy), and each
// block's G_b G_b^T is one small GEMM. The blocks depend on the shape only.
Mat gramian(const Tensor& G) {
  PH_CHECK(G.dim() == 2, "gramian", "expected a (K, P) matrix, got " << G.str());
  const int64_t K = G.size(0), P = G.size(1);
  Tensor M;
  if (G.dtype() == DType::f64 || K == 0 || P == 0) {
    Tensor d = G.to(DType::f64);
    M = ops::matmul(d, d.t());
  } else {
    const int64_t blk = std::max<int64_t>(4096, (int64_t(1) << 20) / K);
    for (int64_t c0 = 0; c0 < P; c0 += blk) {
      Tensor d = G.narrow(1, c0, std::min(blk, P - c0)).to(DType::f64);
      Tensor part = ops::matmul(d, d.t());
      M = M.defined() ? ops::add(M, part) : part;
    }
  }
  M = M.to(Device::cpu()).contiguous();
  Mat r{int(K), int(K)};
  const double* p = M.data<double>();
  std::copy(p, p + M.numel(), r.a.begin());
  return r;
}

Tensor from_vector_as(const std::vector<double>& v, const Tensor& like) {
  return Tensor::from_vector(v, {int64_t(v.size())}).to(like.dtype()).to(like.device());
}

void trunk_backward(SplitForward& f, const RepGrads& g, const std::vector<double>& w, bool retain_graph) {
  std::vector<Variable> roots;
  std::vector<Tensor> cots;
  for (size_t r = 0; r < f.reps.size(); ++r) {
    if (!f.reps[r].requires_grad()) continue;
    Tensor wt = from_vector_as(w, g.dz[r]);
    Shape s{int64_t(w.size())};
    for (int i = 1; i < g.dz[r].dim(); ++i) s.push_back(1);
    Tensor c = ops::sum(ops::mul(g.dz[r], wt.reshape(s)), {0});
    roots.push_back(f.reps[r]);
    cots.push_back(c);
  }
  if (roots.empty()) return;
  ag::BackwardOptions o;
  o.retain_graph = retain_graph;
  ag::backward(roots, cots, o);
}

void add_shared_grad(MultiTaskModel& m, const Tensor& d) {
  PH_CHECK(d.numel() == m.num_shared(), "add_shared_grad", "d has " << d.numel() << " entries, shared parameters " << m.num_shared());
  int64_t off = 0;
  for (auto p : m.shared_parameters()) {
    Tensor piece = d.narrow(0, off, p.numel()).reshape(p.shape()).to(p.dtype());
    off += p.numel();
    if (p.grad().defined()) {
      Tensor gr = p.grad();
      gr.copy_(ops::add(gr, piece));
    } else {
      p.set_grad(piece.contiguous().clone());
    }
  }
}

}  // namespace polyhead::mtl
