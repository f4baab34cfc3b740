// mtl/trainer.cpp: see trainer.h.
#include "mtl/trainer.h"

#include <chrono>
#include <cmath>

#include "autograd/engine.h"
#include "engine/ops.h"

namespace polyhead::mtl {

namespace {
using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }
constexpr unsigned kGradNeeds = kNeedGramian | kNeedJacobian | kNeedRepresentation | kNeedThreeSamples;
}  // namespace

Trainer::Trainer(MultiTaskModel& model, optim::Optimizer& opt, TrainerOptions o)
    : model_(model), opt_(opt), o_(std::move(o)), rng_(o_.seed) {
  int K = model_.num_tasks();
  method_ = make_method(o_.method, K, o_.method_options);
  unsigned needs = method_->needs();
  bool grad = needs & kGradNeeds;
  path_ = o_.grad_path;
  if (path_ == GradPath::Auto) path_ = (needs & kNeedRepresentation) ? GradPath::Representation : GradPath::Jacobian;
  PH_CHECK_HINT(!(needs & kNeedRepresentation) || path_ == GradPath::Representation, "Trainer",
                "method '" << o_.method << "' needs the representation gradients", "use grad_path = representation");
  if (grad && path_ == GradPath::Jacobian)
    PH_CHECK_HINT(model_.num_shared() > 0, "Trainer", "method '" << o_.method << "' needs shared parameters",
                  "the architecture has no shared parameters");
  head_ = o_.head_grad.value_or(method_->head_grad());
  PH_CHECK_HINT(o_.val_every >= 1, "Trainer", "val_every = " << o_.val_every << " must be at least 1",
                "give the number of steps between validation-loss evaluations");
  PH_CHECK_HINT(!(needs & kNeedValidationLosses) || o_.validation_losses, "Trainer",
                "method '" << o_.method << "' needs validation losses, but TrainerOptions::validation_losses is not set",
                "set validation_losses to a function returning the K per-task losses on a held-out batch");
  epoch_sum_.assign(size_t(K), 0.0);
  history_ = Mat(K, 0);
}

void Trainer::check_losses(const std::vector<double>& L) const {
  for (size_t k = 0; k < L.size(); ++k)
    if (!std::isfinite(L[k]))
      throw Error("Trainer::step", "loss of task '" + model_.task(int(k)).name + "' is " + std::to_string(L[k]),
                  "lower the learning rate, check the inputs for NaN, or set nan_policy = skip");
}

static bool finite(const std::vector<double>& L) {
  for (double v : L) if (!std::isfinite(v)) return false;
  return true;
}

void Trainer::end_epoch() {
  int K = model_.num_tasks();
  Mat h(K, history_.cols + 1);
  for (int k = 0; k < K; ++k) {
    for (int e = 0; e < history_.cols; ++e) h(k, e) = history_(k, e);
    h(k, history_.cols) = epoch_steps_ ? epoch_sum_[size_t(k)] / double(epoch_steps_) : 0.0;
  }
  history_ = std::move(h);
  epoch_sum_.assign(size_t(K), 0.0);
  epoch_steps_ = 0;
  ++epoch_;
}

// The method's own learnable parameters (UW, GradNorm, IMTL) take an Adam step at the model's
// learning rate, as they would inside LibMTL's main Adam.
void Trainer::step_method_params() {
  auto p = method_->params();
  auto g = method_->param_grads();
  if (p.empty() || g.size() != p.size()) return;
  if (mp_m_.size() != p.size()) { mp_m_.assign(p.size(), 0.0); mp_v_.assign(p.size(), 0.0); mp_step_ = 0; }
  const double lr = o_.method_lr > 0 ? o_.method_lr : opt_.lr(), b1 = 0.9, b2 = 0.999, eps = 1e-8;
  ++mp_step_;
  for (size_t i = 0; i < p.size(); ++i) {
    mp_m_[i] = b1 * mp_m_[i] + (1 - b1) * g[i];
    mp_v_[i] = b2 * mp_v_[i] + (1 - b2) * g[i] * g[i];
    double mh = mp_m_[i] / (1 - std::pow(b1, double(mp_step_))), vh = mp_v_[i] / (1 - std::pow(b2, double(mp_step_)));
    p[i] -= lr * mh / (std::sqrt(vh) + eps);
  }
}

// Every val_every-th step (and whenever no value is held yet): the K validation losses of the model
// as it is now, in eval mode and without gradients.
void Trainer::update_validation(StepResult& r) {
  if (!(method_->needs() & kNeedValidationLosses)) return;
  if (val_.empty() || steps_ % o_.val_every == 0) {
    auto t = Clock::now();
    std::vector<double> v;
    {
      const bool was_training = model_.is_training();
      model_.eval();
      ag::NoGradGuard ng;
      try {
        v = o_.validation_losses();
      } catch (...) {
        model_.train(was_training);
        throw;
      }
      model_.train(was_training);
    }
    PH_CHECK_HINT(int(v.size()) == model_.num_tasks(), "Trainer::step",
                  "validation_losses returned " << v.size() << " losses for " << model_.num_tasks() << " tasks",
                  "return one validation loss per task, in task order");
    for (size_t k = 0; k < v.size(); ++k)
      if (!std::isfinite(v[k]))
        throw Error("Trainer::step", "validation loss of task '" + model_.task(int(k)).name + "' is " + std::to_string(v[k]),
                    "check the validation batch, or lower the learning rate");
    val_ = std::move(v);
    r.ms_validation = ms_since(t);
  }
  r.val_losses = val_;
}

StepResult Trainer::step(const Batch& b) {
  auto t0 = Clock::now();
  PH_CHECK_HINT(int(b.y.size()) == model_.num_tasks(), "Trainer::step",
                "batch has " << b.y.size() << " targets for " << model_.num_tasks() << " tasks",
                "give one target tensor per task, in task order");
  b.x.check_defined("Trainer::step");
  unsigned needs = method_->needs();
  StepResult vr;
  update_validation(vr);
  StepResult r;
  if (needs & kNeedThreeSamples) r = three_sample_step(b);
  else if (needs & kGradNeeds) r = gradient_step(b);
  else r = loss_level_step(b);
  r.val_losses = std::move(vr.val_losses);
  r.ms_validation = vr.ms_validation;
  ++steps_;
  if (!r.skipped) {
    for (size_t k = 0; k < r.losses.size(); ++k)
      if (std::isfinite(r.losses[k])) epoch_sum_[k] += r.losses[k];  // NaN: head not computed
    ++epoch_steps_;
    if (needs & kNeedLossesAfter) {
      ag::NoGradGuard ng;
      auto outs = model_.forward(Variable(b.x));
      std::vector<double> after;
      for (int k = 0; k < model_.num_tasks(); ++k) after.push_back(model_.task(k).compute_loss(outs[size_t(k)], b.y[size_t(k)]).item());
      method_->after_update(after);
    }
  }
  r.ms_total = ms_since(t0);
  return r;
}

StepResult Trainer::loss_level_step(const Batch& b) {
  StepResult r;
  int K = model_.num_tasks();
  StepInput in;
  in.K = K;
  in.epoch = epoch_;
  in.loss_history = &history_;
  in.rng = &rng_;
  in.L_val = val_;
  // Weights that do not depend on the batch are known before the forward: heads of tasks with
  // weight exactly 0 are then not computed.
  const bool early = method_->needs() == 0;
  StepOutput out;
  std::vector<char> active(size_t(K), 1);
  auto check_w = [&] {
    PH_CHECK(int(out.w.size()) == K, "Trainer::step", "method '" << o_.method << "' returned " << out.w.size() << " weights for " << K << " tasks");
  };
  auto t = Clock::now();
  if (early) {
    out = method_->step(in);
    check_w();
    if (o_.skip_zero_weight_heads)
      for (int k = 0; k < K; ++k) active[size_t(k)] = out.w[size_t(k)] != 0.0;
    r.ms_method = ms_since(t);
  }
  t = Clock::now();
  opt_.zero_grad();
  std::vector<Variable> losses(static_cast<size_t>(K));
  int n_active = 0;
  for (char a : active) n_active += a;
  r.heads_skipped = K - n_active;
  if (n_active == K) {
    auto outs = model_.forward(Variable(b.x));
    for (int k = 0; k < K; ++k) losses[size_t(k)] = model_.task(k).compute_loss(outs[size_t(k)], b.y[size_t(k)]);
  } else if (n_active > 0) {
    auto reps = model_.representations(Variable(b.x));
    PH_CHECK(reps.size() == 1 || int(reps.size()) == K, "Trainer::step",
             "architecture returned " << reps.size() << " representations for " << K << " tasks");
    for (int k = 0; k < K; ++k)
      if (active[size_t(k)]) {
        Variable o = model_.head_forward(k, reps.size() == 1 ? reps[0] : reps[size_t(k)]);
        losses[size_t(k)] = model_.task(k).compute_loss(o, b.y[size_t(k)]);
      }
  }
  for (int k = 0; k < K; ++k) r.losses.push_back(active[size_t(k)] ? losses[size_t(k)].item() : std::nan(""));
  r.ms_forward = ms_since(t);
  bool ok = true;
  for (int k = 0; k < K; ++k) ok = ok && (!active[size_t(k)] || std::isfinite(r.losses[size_t(k)]));
  if (!ok) {
    if (o_.nan_policy == NanPolicy::Skip) { r.skipped = true; return r; }
    std::vector<double> computed;
    for (int k = 0; k < K; ++k) computed.push_back(active[size_t(k)] ? r.losses[size_t(k)] : 0.0);
    check_losses(computed);
  }
  if (!early) {
    t = Clock::now();
    in.L = r.losses;
    out = method_->step(in);
    check_w();
    r.ms_method = ms_since(t);
  }
  r.weights = out.reported.value_or(out.w);
  t = Clock::now();
  Variable total;
  bool any = false;
  for (int k = 0; k < K; ++k) {
    if (!active[size_t(k)]) continue;
    Variable term = ag::mul_scalar(losses[size_t(k)], out.w[size_t(k)]);
    total = any ? ag::add(total, term) : term;
    any = true;
  }
  if (any) total.backward();
  r.ms_backward = ms_since(t);
  t = Clock::now();
  step_method_params();
  opt_.step();
  r.ms_optimizer = ms_since(t);
  return r;
}

StepResult Trainer::gradient_step(const Batch& b) {
  StepResult r;
  int K = model_.num_tasks();
  unsigned needs = method_->needs();
  auto t = Clock::now();
  opt_.zero_grad();
  SplitForward f = split_forward(model_, b);
  r.losses = f.loss_values();
  r.ms_forward = ms_since(t);
  if (!finite(r.losses)) {
    if (o_.nan_policy == NanPolicy::Skip) { r.skipped = true; return r; }
    check_losses(r.losses);
  }
  t = Clock::now();
  RepGrads rg = representation_grads(model_, f);
  Tensor G;     // (K, P): Jacobian rows or representation gradients
  Mat rep_mat;  // GradDrop's representation
  if (path_ == GradPath::Jacobian) {
    G = shared_jacobian(model_, f, rg);
  } else {
    PH_CHECK_HINT(f.reps.size() == 1, "Trainer", "the representation path needs one shared representation",
                  "use grad_path = jacobian with per-task-representation architectures");
    const Tensor& dz = rg.dz[0];  // (K, B, ...)
    if (needs & kNeedRepresentation) {  // GradDrop (LibMTL): per-sample gradients and Z itself
      G = dz.reshape({K, -1});
      rep_mat = to_mat(f.reps[0].data().reshape({1, -1}));
    } else {  // LibMTL rep_grad: summed over the batch dimension
      G = dz.dim() > 2 ? ops::sum(dz, {1}).reshape({K, -1}) : ops::sum(dz, {1}, true).reshape({K, -1});
    }
  }
  Mat M, Gd;
  if (needs & kNeedGramian) M = gramian(G);
  if (needs & kNeedJacobian) Gd = to_mat(G);
  // Finite check: from the float64 Gramian's diagonal when it exists (a NaN or Inf entry of g_k
  // makes ||g_k||^2 non-finite; float32 values cannot overflow it), else one pass over G; the
  // per-task scan that names the task runs only when something is not finite.
  bool finite = true;
  if (needs & kNeedGramian) {
    for (int k = 0; k < K; ++k) finite = finite && std::isfinite(M(k, k));
  } else {
    finite = ops::all_finite(G);
  }
  for (int k = 0; k < K && !finite; ++k)
    if (!ops::all_finite(G.narrow(0, k, 1))) {
      if (o_.nan_policy == NanPolicy::Skip) { r.skipped = true; return r; }
      throw Error("Trainer::step", "gradient of task '" + model_.task(k).name + "' is not finite",
                  "lower the learning rate, clip gradients, or set nan_policy = skip");
    }
  r.ms_grads = ms_since(t);
  t = Clock::now();
  StepInput in;
  in.K = K;
  in.L = r.losses;
  in.G = (needs & kNeedJacobian) ? &Gd : nullptr;
  in.M = (needs & kNeedGramian) ? &M : nullptr;
  in.rep = (needs & kNeedRepresentation) ? &rep_mat : nullptr;
  in.epoch = epoch_;
  in.loss_history = &history_;
  in.rng = &rng_;
  in.L_val = val_;
  StepOutput out = method_->step(in);
  r.ms_method = ms_since(t);
  if (needs & kNeedGramian) r.gramian = M;
  t = Clock::now();
  std::vector<double> head_scale(size_t(K), 1.0);
  if (!out.w.empty()) {
    PH_CHECK(int(out.w.size()) == K, "Trainer::step", "method '" << o_.method << "' returned " << out.w.size() << " weights for " << K << " tasks");
    if (head_ == HeadGrad::Weighted) head_scale = out.w;
  }
  r.weights = out.reported.value_or(out.w);
  accumulate_head_grads(model_, rg, head_scale);
  if (path_ == GradPath::Jacobian) {
    Tensor d = out.w.empty() ? from_vector_as(out.d, G) : ops::matmul(from_vector_as(out.w, G).unsqueeze(0), G).reshape({-1});
    PH_CHECK(d.numel() == G.size(1), "Trainer::step", "method '" << o_.method << "' returned d of size " << d.numel() << ", expected " << G.size(1));
    add_shared_grad(model_, d);
  } else if (!out.w.empty()) {
    trunk_backward(f, rg, out.w);
  } else {
    Tensor d = from_vector_as(out.d, G);
    PH_CHECK(d.numel() == f.reps[0].numel() || d.numel() == f.reps[0].numel() / f.reps[0].size(0), "Trainer::step",
             "method '" << o_.method << "' returned d of size " << d.numel() << " for representation " << f.reps[0].str());
    Tensor cot = d.numel() == f.reps[0].numel() ? d.reshape(f.reps[0].shape())
                                               : d.reshape(Shape(f.reps[0].shape().begin() + 1, f.reps[0].shape().end()))
                                                     .unsqueeze(0)
                                                     .expand(f.reps[0].shape())
                                                     .contiguous();
    ag::backward({f.reps[0]}, {cot});
  }
  r.ms_backward = ms_since(t);
  t = Clock::now();
  step_method_params();
  opt_.step();
  r.ms_optimizer = ms_since(t);
  return r;
}

// MoDo / SDMGrad: three independent samples. The batch is split into three equal parts (the
// remainder rows are dropped), each giving a Jacobian G_i and losses L_i; heads get the
// unweighted gradient of the first part.
StepResult Trainer::three_sample_step(const Batch& b) {
  StepResult r;
  int K = model_.num_tasks();
  int64_t n = b.x.size(0) / 3;
  PH_CHECK_HINT(n >= 1, "Trainer::step", "method '" << o_.method << "' splits the batch into 3 samples; batch size " << b.x.size(0) << " is too small",
                "use a batch size of at least 3");
  PH_CHECK_HINT(path_ == GradPath::Jacobian, "Trainer", "method '" << o_.method << "' needs the Jacobian path", "use grad_path = jacobian");
  auto t = Clock::now();
  opt_.zero_grad();
  StepInput in;
  in.K = K;
  std::vector<RepGrads> rgs;
  Tensor G0;
  for (int s = 0; s < 3; ++s) {
    Batch part;
    part.x = b.x.narrow(0, s * n, n);
    for (auto& y : b.y) part.y.push_back(y.narrow(0, s * n, n));
    SplitForward f = split_forward(model_, part);
    auto L = f.loss_values();
    if (!finite(L)) {
      if (o_.nan_policy == NanPolicy::Skip) { r.skipped = true; return r; }
      check_losses(L);
    }
    RepGrads rg = representation_grads(model_, f);
    Tensor G = shared_jacobian(model_, f, rg);
    in.G3.push_back(to_mat(G));
    in.L3.push_back(L);
    if (s == 0) { rgs.push_back(std::move(rg)); G0 = G; r.losses = L; }
  }
  r.ms_grads = ms_since(t);
  t = Clock::now();
  in.L = r.losses;
  in.epoch = epoch_;
  in.rng = &rng_;
  in.L_val = val_;
  StepOutput out = method_->step(in);
  r.ms_method = ms_since(t);
  r.weights = out.reported.value_or(out.w);
  t = Clock::now();
  accumulate_head_grads(model_, rgs[0], std::vector<double>(size_t(K), 1.0));
  Tensor d = out.w.empty() ? from_vector_as(out.d, G0) : ops::matmul(from_vector_as(out.w, G0).unsqueeze(0), G0).reshape({-1});
  add_shared_grad(model_, d);
  r.ms_backward = ms_since(t);
  t = Clock::now();
  opt_.step();
  r.ms_optimizer = ms_since(t);
  return r;
}

std::map<std::string, Tensor> Trainer::state_dict() const {
  std::map<std::string, Tensor> s;
  for (const auto& [k, m] : method_->state()) s["method." + k] = Tensor::from_vector(m.a, {int64_t(m.rows), int64_t(m.cols)});
  s["trainer.history"] = Tensor::from_vector(history_.a, {int64_t(history_.rows), int64_t(history_.cols)});
  s["trainer.epoch_sum"] = Tensor::from_vector(epoch_sum_);
  std::vector<int64_t> counters{epoch_, epoch_steps_, mp_step_, int64_t(rng_.generator().seed()), int64_t(rng_.generator().offset())};
  s["trainer.counters"] = Tensor::from_vector(counters);
  s["trainer.steps"] = Tensor::from_vector(std::vector<int64_t>{steps_});
  if (!val_.empty()) s["trainer.val_losses"] = Tensor::from_vector(val_);
  if (!mp_m_.empty()) {
    s["trainer.method_param_m"] = Tensor::from_vector(mp_m_);
    s["trainer.method_param_v"] = Tensor::from_vector(mp_v_);
  }
  return s;
}

void Trainer::load_state_dict(const std::map<std::string, Tensor>& s) {
  auto get = [&](const std::string& k) -> const Tensor& {
    auto it = s.find(k);
    if (it == s.end()) throw Error("Trainer::load_state_dict", "missing '" + k + "'", "the checkpoint was not written by this trainer");
    return it->second;
  };
  int K = model_.num_tasks();
  // validate everything before changing anything
  Tensor hist = get("trainer.history").to(DType::f64).contiguous();
  Tensor esum = get("trainer.epoch_sum").to(DType::f64).contiguous();
  Tensor cnt = get("trainer.counters").to(DType::i64).contiguous();
  PH_CHECK(hist.dim() == 2 && hist.size(0) == K, "Trainer::load_state_dict", "history " << hist.str() << " is not for " << K << " tasks");
  PH_CHECK(esum.numel() == K && cnt.numel() == 5, "Trainer::load_state_dict", "bad epoch_sum or counters");
  std::vector<double> val;
  if (auto iv = s.find("trainer.val_losses"); iv != s.end()) {
    val = iv->second.to(DType::f64).contiguous().to_vector<double>();
    PH_CHECK(int(val.size()) == K, "Trainer::load_state_dict", "val_losses has " << val.size() << " entries for " << K << " tasks");
  }
  int64_t steps = 0;
  if (auto is = s.find("trainer.steps"); is != s.end()) {
    Tensor st = is->second.to(DType::i64).contiguous();
    PH_CHECK(st.numel() == 1, "Trainer::load_state_dict", "bad steps counter " << st.str());
    steps = st.data<int64_t>()[0];
  }
  StateDict ms;
  for (const auto& [k, t] : s) {
    if (k.rfind("method.", 0) != 0) continue;
    Tensor d = t.to(DType::f64).contiguous();
    PH_CHECK(d.dim() == 2, "Trainer::load_state_dict", "method state '" << k << "' must be 2-D, got " << t.str());
    Mat m(int(d.size(0)), int(d.size(1)));
    std::copy(d.data<double>(), d.data<double>() + d.numel(), m.a.begin());
    ms[k.substr(7)] = std::move(m);
  }
  method_->load_state(ms);
  history_ = Mat(K, int(hist.size(1)));
  std::copy(hist.data<double>(), hist.data<double>() + hist.numel(), history_.a.begin());
  epoch_sum_.assign(esum.data<double>(), esum.data<double>() + K);
  const int64_t* c = cnt.data<int64_t>();
  epoch_ = int(c[0]);
  epoch_steps_ = c[1];
  mp_step_ = c[2];
  rng_.generator().set_state(uint64_t(c[3]), uint64_t(c[4]));
  steps_ = steps;
  val_ = std::move(val);
  auto im = s.find("trainer.method_param_m"), iv = s.find("trainer.method_param_v");
  if (im != s.end() && iv != s.end()) {
    mp_m_ = im->second.to_vector<double>();
    mp_v_ = iv->second.to_vector<double>();
  } else {
    mp_m_.clear();
    mp_v_.clear();
  }
}

}  // namespace polyhead::mtl
