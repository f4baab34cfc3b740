// mtl/mixing/mixing_trainer.cpp: see mixing_trainer.h.
#include "mtl/mixing/mixing_trainer.h"

#include <chrono>
#include <cmath>
#include <limits>

#include "data/sampler.h"
#include "data/text.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "engine/rng.h"
#include "layers/linear.h"
#include "layers/loss.h"
#include "layers/optim/adam.h"
#include "layers/optim/clip.h"
#include "layers/optim/scheduler.h"
#include "mtl/per_task_grads.h"

namespace polyhead::mtl::mixing {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The char-GPT trunk with one shared next-byte head: (B, T) tokens -> (B, T, vocab) logits.
class ByteLM : public nn::UnaryModule {
public:
  explicit ByteLM(const zoo::GPTConfig& c) {
    trunk_ = register_module("trunk", zoo::chargpt_trunk(c));
    head_ = register_module("head", std::make_shared<nn::Linear>(c.d, c.vocab));
  }
  Variable forward(const Variable& x) override { return head_->forward(trunk_->forward(x)); }
  std::string type_name() const override { return "ByteLM"; }

private:
  std::shared_ptr<nn::UnaryModule> trunk_;
  std::shared_ptr<nn::Linear> head_;
};

std::vector<double> evaluate(nn::UnaryModule& m, const std::vector<Windows>& val, int64_t batch) {
  ag::NoGradGuard ng;
  std::vector<double> out;
  for (const auto& w : val) {
    const int64_t n = w.x.size(0);
    double sum = 0;
    for (int64_t s = 0; s < n; s += batch) {
      const int64_t len = std::min(batch, n - s);
      Variable ce = lm_token_losses(m, w.x.narrow(0, s, len).contiguous(), w.y.narrow(0, s, len).contiguous());
      sum += ops::sum(ce.data().to(DType::f64)).item();
    }
    out.push_back(sum / double(n * w.x.size(1)));
  }
  return out;
}

}  // namespace

std::shared_ptr<nn::UnaryModule> make_byte_lm(const zoo::GPTConfig& c) { return std::make_shared<ByteLM>(c); }

Variable lm_token_losses(nn::UnaryModule& m, const Tensor& x, const Tensor& y) {
  Variable logits = m.forward(Variable(x));
  return nn::cross_entropy(ag::reshape(logits, {-1, logits.size(-1)}), y.reshape({-1}), ag::Reduction::None);
}

Variable mix_batch_loss(const Variable& token_losses, const std::vector<int64_t>& counts, const std::vector<double>& scale,
                        int64_t b, int64_t T) {
  const char* op = "mixing::mix_batch_loss";
  PH_CHECK(counts.size() == scale.size(), op, counts.size() << " counts but " << scale.size() << " loss scales");
  PH_CHECK(b >= 1 && T >= 1, op, "batch " << b << " and context " << T << " must be >= 1");
  std::vector<float> tw;
  for (size_t k = 0; k < counts.size(); ++k)
    tw.insert(tw.end(), size_t(counts[k] * T), float(scale[k] / double(b * T)));
  PH_CHECK(int64_t(tw.size()) == token_losses.data().numel(), op,
           "the counts cover " << tw.size() << " tokens, the losses have " << token_losses.data().numel());
  return ag::sum(ag::mul_constant(token_losses, Tensor::from_vector(tw)));
}

void MixedLMConfig::validate() const {
  const char* op = "mixing::MixedLMConfig";
  PH_CHECK(gpt.block >= 2 && gpt.d >= 1 && gpt.layers >= 1 && gpt.heads >= 1 && gpt.d % gpt.heads == 0, op,
           "model: context " << gpt.block << ", d " << gpt.d << ", layers " << gpt.layers << ", heads " << gpt.heads
                             << " (need context >= 2 and d divisible by heads)");
  PH_CHECK(gpt.vocab == 256, op, "byte-level model: vocab must be 256, got " << gpt.vocab);
  PH_CHECK(batch >= 1 && steps >= 1, op, "batch " << batch << " and steps " << steps << " must be >= 1");
  PH_CHECK(lr > 0 && std::isfinite(lr), op, "lr must be > 0, got " << lr);
  PH_CHECK(weight_decay >= 0 && clip >= 0, op, "weight_decay and clip must be >= 0");
  PH_CHECK(final_lr_fraction >= 0 && final_lr_fraction <= 1, op, "final_lr_fraction must be in [0, 1]");
  PH_CHECK(warmup >= 0 && warmup < steps, op, "warmup " << warmup << " must be in [0, steps = " << steps << ")");
  PH_CHECK(eval_every >= 1 && eval_windows >= 1, op, "eval_every and eval_windows must be >= 1");
}

MixedLMResult train_mixed_lm(const std::vector<TextDomain>& domains, MixingStrategy& strategy, const MixedLMConfig& c,
                             const MixedLMProgress& progress) {
  const char* op = "mixing::train_mixed_lm";
  c.validate();
  const int K = int(domains.size());
  PH_CHECK(K >= 2, op, "need at least two domains, got " << K);
  PH_CHECK(strategy.num_tasks() == K, op, "strategy '" << strategy.name() << "' is for " << strategy.num_tasks()
                                                       << " tasks, the mixture has " << K << " domains");
  const int64_t T = c.gpt.block, b = c.batch;

  // data: one TextWindows per domain (windows_per_epoch = train bytes / T), one mixture sampler
  std::vector<std::shared_ptr<data::TextWindows>> train;
  std::vector<Windows> val;
  std::vector<int64_t> sizes;
  MixedLMResult res;
  res.strategy = strategy.name();
  for (int k = 0; k < K; ++k) {
    const auto& d = domains[size_t(k)];
    PH_CHECK(d.train.numel() > T + 1, op, "domain '" << d.name << "' has too little training text for context " << T);
    const int64_t n = std::max<int64_t>(1, d.train.numel() / T);
    train.push_back(std::make_shared<data::TextWindows>(d.train, T, n, data::derive_seed(c.seed, 100 + uint64_t(k))));
    sizes.push_back(n);
    val.push_back(fixed_windows(d.val, T, c.eval_windows));
    res.domains.push_back(d.name);
  }
  data::MixtureSampler sampler(sizes, b, strategy.weights(0), data::derive_seed(c.seed, 7));

  manual_seed(c.seed);
  auto model_ptr = std::make_shared<ByteLM>(c.gpt);
  ByteLM& model = *model_ptr;
  model.flatten();
  optim::AdamW opt(model, optim::AdamWOptions(c.lr).betas(0.9, 0.95).weight_decay(c.weight_decay));
  auto cosine = std::make_shared<optim::CosineAnnealingLR>(opt, c.steps - c.warmup, c.lr * c.final_lr_fraction);
  std::unique_ptr<optim::LinearWarmup> warm;
  if (c.warmup > 0) warm = std::make_unique<optim::LinearWarmup>(opt, c.warmup, cosine, 0.01);
  optim::LRScheduler& sched = warm ? static_cast<optim::LRScheduler&>(*warm) : *cosine;
  Tensor flat_grad = model.flat_gradients();  // shares storage with the model's gradient buffer
  const int64_t P = flat_grad.numel();

  res.tokens.assign(size_t(K), 0);
  res.eval_steps.push_back(0);
  res.val_loss.push_back(evaluate(model, val, b));
  const auto t0 = std::chrono::steady_clock::now();
  double eval_seconds = 0;

  for (int64_t t = 0; t < c.steps; ++t) {
    const std::vector<double> w = strategy.weights(t);
    sampler.set_weights(w);
    res.weights.push_back(sampler.weights());
    const data::MixtureDraw draw = sampler.next();
    std::vector<double> scale = strategy.loss_scale();
    const bool want = strategy.wants_stats(t);
    std::vector<double> task_loss(size_t(K), kNaN);
    std::vector<GradStats> stats;
    opt.zero_grad();
    for (int k = 0; k < K; ++k) res.tokens[size_t(k)] += draw.counts[size_t(k)] * T;

    if (!want) {
      // one forward / backward over the whole Mix batch, tokens weighted by scale_k / (b T)
      std::vector<Tensor> xs, ys;
      for (int k = 0; k < K; ++k) {
        const auto& idx = draw.indices[size_t(k)];
        if (idx.empty()) continue;
        data::Batch bt = train[size_t(k)]->get_batch(idx);
        xs.push_back(bt.at("x"));
        ys.push_back(bt.at("y0"));
      }
      const Tensor bx = ops::cat(xs, 0), by = ops::cat(ys, 0);
      Variable ce = lm_token_losses(model, bx, by);
      const std::vector<float> v = ce.data().to_vector<float>();
      if (strategy.wants_batch_losses()) {
        strategy.observe_batch(t, bx, by, draw.counts, v);
        scale = strategy.loss_scale();
      }
      Variable loss = mix_batch_loss(ce, draw.counts, scale, b, T);
      loss.backward();
      size_t pos = 0;
      for (int k = 0; k < K; ++k) {
        const int64_t n = draw.counts[size_t(k)] * T;
        if (n == 0) continue;
        double s = 0;
        for (int64_t i = 0; i < n; ++i) s += v[pos++];
        task_loss[size_t(k)] = s / double(n);
      }
    } else {
      // per-domain halves: 2K micro-batch gradients, then the batch gradient from them
      Tensor G = Tensor::empty({2 * K, P}, flat_grad.dtype());
      std::vector<int> task_of_row;
      std::vector<double> sz, coef;
      for (int k = 0; k < K; ++k) {
        const auto& idx = draw.indices[size_t(k)];
        const int64_t bk = int64_t(idx.size());
        PH_CHECK_HINT(bk >= 2, op,
                      "domain '" << domains[size_t(k)].name << "' has " << bk << " window(s) in a statistics step; two are needed",
                      "keep PiKE's min_count >= 2");
        const int64_t half[2] = {bk / 2, bk - bk / 2};
        double lsum = 0;
        for (int h = 0; h < 2; ++h) {
          std::span<const int64_t> part(idx.data() + (h ? half[0] : 0), size_t(half[h]));
          data::Batch bt = train[size_t(k)]->get_batch(part);
          Variable ce = lm_token_losses(model, bt.at("x"), bt.at("y0"));
          Variable loss = ag::mean(ce);
          opt.zero_grad();
          loss.backward();
          G.select(0, int64_t(task_of_row.size())).copy_(flat_grad);
          lsum += loss.item() * double(half[h]);
          task_of_row.push_back(k);
          sz.push_back(double(half[h]));
          coef.push_back(scale[size_t(k)] * double(half[h]) / double(b));
        }
        task_loss[size_t(k)] = lsum / double(bk);
      }
      stats = grad_stats_per_task(gramian(G), task_of_row, sz, K);
      Tensor cf = Tensor::from_vector(coef, {1, int64_t(coef.size())}).to(G.dtype());
      flat_grad.copy_(ops::matmul(cf, G).reshape({P}));
      res.stats_steps.push_back(t);
      res.stats.push_back(stats);
    }
    if (c.clip > 0) optim::clip_grad_norm_(model, c.clip);
    opt.step();
    sched.step();
    strategy.observe(t, task_loss, want ? &stats : nullptr);
    if (progress) progress(t, task_loss);

    if ((t + 1) % c.eval_every == 0 || t + 1 == c.steps) {
      const auto e0 = std::chrono::steady_clock::now();
      res.eval_steps.push_back(t + 1);
      res.val_loss.push_back(evaluate(model, val, b));
      eval_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - e0).count();
    }
  }
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  res.ms_per_step = 1000.0 * (res.seconds - eval_seconds) / double(c.steps);
  if (const Pike* p = strategy.pike()) {
    res.zeta1 = p->zeta1();
    res.zeta2 = p->zeta2();
  }
  res.model = model_ptr;
  return res;
}

}  // namespace polyhead::mtl::mixing
