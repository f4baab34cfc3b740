// mtl/architectures.cpp: MMoE, CGC, PLE, DSelect-k, Cross-stitch and MTAN (see architectures.h).
#include "mtl/architectures.h"

#include <cctype>
#include <cmath>
#include <string>

#include "engine/ops.h"
#include "layers/activation.h"
#include "layers/init.h"
#include "layers/linear.h"
#include "layers/sequential.h"

namespace polyhead::mtl {

namespace {

using nn::UnaryModule;

std::string first_component(const std::string& name) { return name.substr(0, name.find('.')); }

// The integer right after `prefix` in `s` when s starts with prefix and the digits are followed by
// the end of s or '_'; -1 otherwise. E.g. index_after("gate3", "gate") = 3.
int index_after(const std::string& s, const std::string& prefix) {
  if (s.compare(0, prefix.size(), prefix) != 0) return -1;
  size_t i = prefix.size(), j = i;
  while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
  if (j == i || (j < s.size() && s[j] != '_')) return -1;
  return std::stoi(s.substr(i, j - i));
}

// Owner of a gate / task-expert component: "gate<k>" or "task<k>_..." -> k, else -1.
int gate_or_task_owner(const std::string& comp) {
  int k = index_after(comp, "gate");
  return k >= 0 ? k : index_after(comp, "task");
}

std::shared_ptr<UnaryModule> softmax_gate(int64_t in, int64_t out) {
  auto g = std::make_shared<nn::Sequential>();
  g->push_back(std::make_shared<nn::Linear>(in, out));
  g->push_back(std::make_shared<nn::Softmax>(-1));
  return g;
}

std::shared_ptr<UnaryModule> make_expert(const ModuleFactory& f, const char* who) {
  PH_CHECK(bool(f), who, "the expert factory is empty");
  auto e = f();
  PH_CHECK(e != nullptr, who, "the expert factory returned null");
  return e;
}

// x (B, ...) -> (B, numel / B), checking the per-example size.
Variable flat_input(const Variable& x, int64_t expected, const char* who) {
  PH_CHECK_HINT(x.dim() >= 2 && x.size(0) > 0 && x.numel() / x.size(0) == expected, who,
                "gate input " << x.str() << " does not hold " << expected << " values per example",
                "the input must be (B, ...) with prod(...) = the input_numel given at construction");
  return x.dim() == 2 ? x : ag::flatten(x, 1);
}

// sum_e w[:, e] * reps[e]: reps n tensors (B, ...), w (B, n).
Variable mix(const std::vector<Variable>& reps, const Variable& w, const char* who) {
  for (const auto& r : reps)
    PH_CHECK(r.dim() >= 1 && r.shape() == reps[0].shape() && r.size(0) == w.size(0), who,
             "expert outputs " << reps[0].str() << " and " << r.str() << " must share one shape (B, ...) with B = "
                               << w.size(0));
  Variable s = ag::stack(reps, 1);  // (B, n, ...)
  Shape ws = w.shape();
  for (int i = 2; i < s.dim(); ++i) ws.push_back(1);
  return ag::sum(ag::mul(s, ag::reshape(w, ws)), {1});
}

std::string idx(int i) { return std::to_string(i); }

}  // namespace

// ---------------------------------------------------------------------------------------------
// MMoE

MMoE::MMoE(const ModuleFactory& expert, int num_experts, int64_t input_numel, int K) : Architecture(K), in_(input_numel) {
  PH_CHECK(K >= 1 && num_experts >= 1 && input_numel >= 1, "MMoE",
           "need K >= 1, num_experts >= 1 and input_numel >= 1, got " << K << ", " << num_experts << ", " << input_numel);
  for (int e = 0; e < num_experts; ++e) experts_.push_back(register_module("expert" + idx(e), make_expert(expert, "MMoE")));
  for (int k = 0; k < K; ++k) gates_.push_back(register_module("gate" + idx(k), softmax_gate(input_numel, num_experts)));
}

std::vector<Variable> MMoE::gate_weights(const Variable& x) {
  Variable v = flat_input(x, in_, "MMoE");
  std::vector<Variable> w;
  for (auto& g : gates_) w.push_back(g->forward(v));
  return w;
}

std::vector<Variable> MMoE::forward(const Variable& x) {
  std::vector<Variable> outs;
  for (auto& e : experts_) outs.push_back(e->forward(x));
  std::vector<Variable> reps;
  for (auto& w : gate_weights(x)) reps.push_back(mix(outs, w, "MMoE"));
  return reps;
}

int MMoE::task_owner(const std::string& name) const { return index_after(first_component(name), "gate"); }

// ---------------------------------------------------------------------------------------------
// CGC

CGC::CGC(const ModuleFactory& expert, int shared_experts, int task_experts, int64_t input_numel, int K)
    : Architecture(K), in_(input_numel) {
  PH_CHECK(K >= 1 && shared_experts >= 0 && task_experts >= 0 && shared_experts + task_experts >= 1 && input_numel >= 1,
           "CGC",
           "need K >= 1, shared_experts, task_experts >= 0 (not both 0) and input_numel >= 1, got "
               << K << ", " << shared_experts << ", " << task_experts << ", " << input_numel);
  for (int e = 0; e < shared_experts; ++e)
    shared_.push_back(register_module("shared_expert" + idx(e), make_expert(expert, "CGC")));
  task_.resize(size_t(K));
  for (int k = 0; k < K; ++k)
    for (int j = 0; j < task_experts; ++j)
      task_[size_t(k)].push_back(register_module("task" + idx(k) + "_expert" + idx(j), make_expert(expert, "CGC")));
  for (int k = 0; k < K; ++k)
    gates_.push_back(register_module("gate" + idx(k), softmax_gate(input_numel, shared_experts + task_experts)));
}

std::vector<Variable> CGC::forward(const Variable& x) {
  Variable v = flat_input(x, in_, "CGC");
  std::vector<Variable> shared;
  for (auto& e : shared_) shared.push_back(e->forward(x));
  std::vector<Variable> reps;
  for (int k = 0; k < K_; ++k) {
    std::vector<Variable> outs = shared;
    for (auto& e : task_[size_t(k)]) outs.push_back(e->forward(x));
    reps.push_back(mix(outs, gates_[size_t(k)]->forward(v), "CGC"));
  }
  return reps;
}

int CGC::task_owner(const std::string& name) const { return gate_or_task_owner(first_component(name)); }

// ---------------------------------------------------------------------------------------------
// PLE

PLE::PLE(const std::function<std::shared_ptr<nn::UnaryModule>(int)>& level_expert, std::vector<int64_t> level_input_numel,
         int shared_experts, int task_experts, int K)
    : Architecture(K), levels_(int(level_input_numel.size())), in_(std::move(level_input_numel)) {
  PH_CHECK(K >= 1 && levels_ >= 1 && shared_experts >= 0 && task_experts >= 0 && shared_experts + task_experts >= 1,
           "PLE",
           "need K >= 1, at least one level, shared_experts, task_experts >= 0 (not both 0), got K = "
               << K << ", " << levels_ << " levels, " << shared_experts << ", " << task_experts);
  PH_CHECK(bool(level_expert), "PLE", "the expert factory is empty");
  for (int64_t n : in_) PH_CHECK(n >= 1, "PLE", "level input sizes must be >= 1, got " << n);
  auto make = [&](int l) {
    auto e = level_expert(l);
    PH_CHECK(e != nullptr, "PLE", "the expert factory returned null for level " << l);
    return e;
  };
  shared_.resize(size_t(levels_));
  task_.assign(size_t(levels_), std::vector<std::vector<std::shared_ptr<nn::UnaryModule>>>(size_t(K)));
  gates_.resize(size_t(levels_));
  for (int l = 0; l < levels_; ++l) {
    std::string lp = "level" + idx(l) + "_";
    for (int e = 0; e < shared_experts; ++e)
      shared_[size_t(l)].push_back(register_module(lp + "shared_expert" + idx(e), make(l)));
    for (int k = 0; k < K; ++k)
      for (int j = 0; j < task_experts; ++j)
        task_[size_t(l)][size_t(k)].push_back(register_module(lp + "task" + idx(k) + "_expert" + idx(j), make(l)));
    for (int k = 0; k < K; ++k)
      gates_[size_t(l)].push_back(
          register_module(lp + "gate" + idx(k), softmax_gate(in_[size_t(l)], shared_experts + task_experts)));
  }
}

std::vector<Variable> PLE::forward(const Variable& x) {
  std::vector<Variable> reps(size_t(K_), x);
  for (int l = 0; l < levels_; ++l) {
    for (int k = 0; k < K_; ++k) {
      const Variable& h = reps[size_t(k)];
      std::vector<Variable> outs;
      for (auto& e : shared_[size_t(l)]) outs.push_back(e->forward(h));
      for (auto& e : task_[size_t(l)][size_t(k)]) outs.push_back(e->forward(h));
      Variable w = gates_[size_t(l)][size_t(k)]->forward(flat_input(h, in_[size_t(l)], "PLE"));
      reps[size_t(k)] = mix(outs, w, "PLE");
    }
  }
  return reps;
}

int PLE::task_owner(const std::string& name) const {
  std::string comp = first_component(name);
  if (index_after(comp, "level") < 0) return -1;
  size_t u = comp.find('_');
  return u == std::string::npos ? -1 : gate_or_task_owner(comp.substr(u + 1));
}

// ---------------------------------------------------------------------------------------------
// DSelect-k

DSelectK::DSelectK(const ModuleFactory& expert, int num_experts, int64_t input_numel, int K, int num_nonzeros,
                   double gamma)
    : Architecture(K), in_(input_numel), E_(num_experts), k_(num_nonzeros), bits_(0), gamma_(gamma) {
  PH_CHECK(K >= 1 && num_experts >= 2 && num_nonzeros >= 1 && input_numel >= 1 && gamma > 0, "DSelect_k",
           "need K >= 1, num_experts >= 2, num_nonzeros >= 1, input_numel >= 1 and gamma > 0, got "
               << K << ", " << num_experts << ", " << num_nonzeros << ", " << input_numel << ", " << gamma);
  while ((int64_t(1) << bits_) < E_) ++bits_;  // ceil(log2 E)
  for (int e = 0; e < E_; ++e) experts_.push_back(register_module("expert" + idx(e), make_expert(expert, "DSelect_k")));
  for (int k = 0; k < K; ++k) {
    auto z = std::make_shared<nn::Linear>(input_numel, int64_t(k_) * bits_);
    for (auto& p : z->parameters()) nn::init::uniform_(p, -gamma_ / 100, gamma_ / 100);
    z_.push_back(register_module("z_logits" + idx(k), std::shared_ptr<nn::UnaryModule>(z)));
  }
  for (int k = 0; k < K; ++k) {
    auto w = std::make_shared<nn::Linear>(input_numel, int64_t(k_));
    for (auto& p : w->parameters()) nn::init::uniform_(p, -0.05, 0.05);
    w_.push_back(register_module("w_logits" + idx(k), std::shared_ptr<nn::UnaryModule>(w)));
  }
}

Variable DSelectK::smooth_step(const Variable& t) const {
  const Tensor& d = t.data();
  double h = gamma_ / 2;
  Tensor above_lo = ops::gt(d, Tensor::scalar(-h, d.dtype(), d.device()));  // t > -gamma/2
  Tensor below_hi = ops::gt(Tensor::scalar(h, d.dtype(), d.device()), d);   // t < gamma/2
  Tensor mid = ops::mul(above_lo, below_hi).to(DType::u8);
  Tensor hi = ops::add_scalar(ops::neg(below_hi), 1.0);  // t >= gamma/2 -> 1, else 0
  double g3 = gamma_ * gamma_ * gamma_;
  Variable cube = ag::mul(ag::mul(t, t), t);
  Variable p = ag::add_scalar(ag::add(ag::mul_scalar(cube, -2.0 / g3), ag::mul_scalar(t, 1.5 / gamma_)), 0.5);
  return ag::where(mid, p, Variable(hi));
}

std::vector<Variable> DSelectK::expert_weights(const Variable& x) {
  Variable v = flat_input(x, in_, "DSelect_k");
  int64_t B = v.size(0);
  // code[b][e] = bit b of e
  std::vector<Tensor> code, not_code;
  for (int b = 0; b < bits_; ++b) {
    std::vector<double> c(static_cast<size_t>(E_), 0.0);
    for (int e = 0; e < E_; ++e) c[size_t(e)] = double((e >> b) & 1);
    Tensor ct = Tensor::from_vector(c, {int64_t(E_)}).to(v.dtype()).to(v.device());
    code.push_back(ct);
    not_code.push_back(ops::add_scalar(ops::neg(ct), 1.0));
  }
  std::vector<Variable> out;
  for (int k = 0; k < K_; ++k) {
    Variable s = smooth_step(ag::reshape(z_[size_t(k)]->forward(v), {B, int64_t(k_), int64_t(bits_)}));
    // selector outputs (B, k, E) = prod_b (bit_b(e) ? S_b : 1 - S_b)
    Variable sel;
    for (int b = 0; b < bits_; ++b) {
      Variable sb = ag::unsqueeze(ag::select(s, 2, b), 2);  // (B, k, 1)
      Variable f = ag::add(ag::mul_constant(sb, code[size_t(b)]),
                           ag::mul_constant(ag::add_scalar(ag::neg(sb), 1.0), not_code[size_t(b)]));  // (B, k, E)
      sel = b == 0 ? f : ag::mul(sel, f);
    }
    Variable mixw = ag::softmax(w_[size_t(k)]->forward(v), 1);             // (B, k)
    out.push_back(ag::sum(ag::mul(sel, ag::unsqueeze(mixw, 2)), {1}));   // (B, E)
  }
  return out;
}

std::vector<Variable> DSelectK::forward(const Variable& x) {
  std::vector<Variable> outs;
  for (auto& e : experts_) outs.push_back(e->forward(x));
  std::vector<Variable> reps;
  for (auto& w : expert_weights(x)) reps.push_back(mix(outs, w, "DSelect_k"));
  return reps;
}

int DSelectK::task_owner(const std::string& name) const {
  std::string comp = first_component(name);
  int k = index_after(comp, "z_logits");
  return k >= 0 ? k : index_after(comp, "w_logits");
}

// ---------------------------------------------------------------------------------------------
// Cross-stitch

CrossStitch::CrossStitch(const StagesFactory& encoder, int K, bool identity_init) : Architecture(K) {
  PH_CHECK(K >= 1, "Cross_stitch", "need K >= 1, got " << K);
  PH_CHECK(bool(encoder), "Cross_stitch", "the encoder factory is empty");
  size_t S = 0;
  for (int k = 0; k < K; ++k) {
    auto stages = encoder();
    if (k == 0) S = stages.size();
    PH_CHECK_HINT(stages.size() >= 2 && stages.size() == S, "Cross_stitch",
                  "encoder column " << k << " has " << stages.size() << " stages (column 0: " << S << ")",
                  "the factory must return the same number (>= 2) of stages each call");
    for (size_t i = 0; i < S; ++i) {
      PH_CHECK(stages[i] != nullptr, "Cross_stitch", "stage " << i << " of column " << k << " is null");
      register_module("column" + idx(k) + "_stage" + idx(int(i)), stages[i]);
    }
    columns_.push_back(std::move(stages));
  }
  Tensor a = Tensor::ones({int64_t(S) - 1, K, K});
  if (identity_init) {
    std::vector<double> v(size_t(a.numel()), 0.0);
    for (size_t i = 0; i + 1 < S; ++i)
      for (int t = 0; t < K; ++t) v[(i * size_t(K) + size_t(t)) * size_t(K) + size_t(t)] = 1.0;
    a = Tensor::from_vector(v, a.shape());
  }
  alpha_ = register_parameter("alpha", a);
}

std::vector<Variable> CrossStitch::forward(const Variable& x) {
  int64_t K = K_;
  size_t S = columns_[0].size();
  std::vector<Variable> h;
  for (auto& col : columns_) h.push_back(col[0]->forward(x));
  for (size_t i = 1; i < S; ++i) {
    for (const auto& r : h)
      PH_CHECK(r.shape() == h[0].shape(), "Cross_stitch",
               "stage " << i - 1 << " outputs " << h[0].str() << " and " << r.str() << " differ across columns");
    Shape shape = h[0].shape();
    int64_t n = h[0].numel();
    // (K, K) @ (K, n): row t = sum_j alpha[i-1, t, j] h_j
    Variable mixed = ag::matmul(ag::select(alpha_, 0, int64_t(i) - 1), ag::reshape(ag::stack(h, 0), {K, n}));
    std::vector<Variable> next;
    for (int64_t t = 0; t < K; ++t)
      next.push_back(columns_[size_t(t)][i]->forward(ag::reshape(ag::select(mixed, 0, t), shape)));
    h = std::move(next);
  }
  return h;
}

// ---------------------------------------------------------------------------------------------
// MTAN

MTAN::MTAN(const StagesFactory& encoder, std::vector<int64_t> stage_dims, int K) : Architecture(K), dims_(std::move(stage_dims)) {
  PH_CHECK(K >= 1, "MTAN", "need K >= 1, got " << K);
  PH_CHECK(bool(encoder), "MTAN", "the encoder factory is empty");
  stages_ = encoder();
  PH_CHECK_HINT(!stages_.empty() && stages_.size() == dims_.size(), "MTAN",
                "the encoder has " << stages_.size() << " stages and " << dims_.size() << " stage widths were given",
                "give one output width per stage (at least one)");
  for (size_t i = 0; i < stages_.size(); ++i) {
    PH_CHECK(stages_[i] != nullptr && dims_[i] >= 1, "MTAN", "stage " << i << " is null or has width " << dims_[i]);
    register_module("stage" + idx(int(i)), stages_[i]);
  }
  for (size_t i = 1; i < stages_.size(); ++i) {
    auto p = std::make_shared<nn::Sequential>();
    p->push_back(std::make_shared<nn::Linear>(dims_[i - 1], dims_[i]));
    p->push_back(std::make_shared<nn::ReLU>());
    proj_.push_back(register_module("proj" + idx(int(i)), std::shared_ptr<nn::UnaryModule>(p)));
  }
  att_.resize(size_t(K));
  for (int k = 0; k < K; ++k)
    for (size_t i = 0; i < stages_.size(); ++i) {
      int64_t in = i == 0 ? dims_[0] : 2 * dims_[i];
      auto a = std::make_shared<nn::Sequential>();
      a->push_back(std::make_shared<nn::Linear>(in, dims_[i]));
      a->push_back(std::make_shared<nn::ReLU>());
      a->push_back(std::make_shared<nn::Linear>(dims_[i], dims_[i]));
      a->push_back(std::make_shared<nn::Sigmoid>());
      att_[size_t(k)].push_back(register_module("att" + idx(k) + "_" + idx(int(i)), std::shared_ptr<nn::UnaryModule>(a)));
    }
}

std::vector<Variable> MTAN::forward(const Variable& x) {
  std::vector<Variable> p;
  Variable h = x;
  for (size_t i = 0; i < stages_.size(); ++i) {
    h = stages_[i]->forward(h);
    PH_CHECK_HINT(h.dim() == 2 && h.size(1) == dims_[i], "MTAN",
                  "stage " << i << " output " << h.str() << " is not (B, " << dims_[i] << ")",
                  "MTAN's stages must produce vectors of the widths given at construction");
    p.push_back(h);
  }
  std::vector<Variable> reps;
  for (int k = 0; k < K_; ++k) {
    const auto& att = att_[size_t(k)];
    Variable f = ag::mul(att[0]->forward(p[0]), p[0]);
    for (size_t i = 1; i < p.size(); ++i) {
      Variable q = proj_[i - 1]->forward(f);
      f = ag::mul(att[i]->forward(ag::cat({p[i], q}, 1)), p[i]);
    }
    reps.push_back(f);
  }
  return reps;
}

int MTAN::task_owner(const std::string& name) const { return index_after(first_component(name), "att"); }

}  // namespace polyhead::mtl
