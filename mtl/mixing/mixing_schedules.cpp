// mtl/mixing/mixing_schedules.cpp: see mixing_schedules.h.
#include "mtl/mixing/mixing_schedules.h"

#include <cmath>
#include <sstream>

#include "data/sampler.h"
#include "engine/error.h"

namespace polyhead::mtl::mixing {

namespace {

void check_sizes(const std::vector<double>& n, const char* op) {
  PH_CHECK(!n.empty(), op, "no task sizes given");
  for (size_t k = 0; k < n.size(); ++k)
    PH_CHECK(std::isfinite(n[k]) && n[k] > 0, op, "size of task " << k << " is " << n[k] << "; sizes must be > 0");
}

std::vector<double> normalised(std::vector<double> w, const char* op) {
  PH_CHECK(!w.empty(), op, "empty weight vector");
  double s = 0;
  for (size_t k = 0; k < w.size(); ++k) {
    PH_CHECK(std::isfinite(w[k]) && w[k] >= 0, op, "weight " << k << " is " << w[k] << "; weights must be finite and >= 0");
    s += w[k];
  }
  PH_CHECK(s > 0, op, "weights sum to 0");
  for (double& v : w) v /= s;
  return w;
}

class Static : public MixingStrategy {
public:
  Static(std::string name, std::vector<double> w) : name_(std::move(name)), w_(std::move(w)) {}
  std::string name() const override { return name_; }
  int num_tasks() const override { return int(w_.size()); }
  std::vector<double> weights(int64_t) override { return w_; }

private:
  std::string name_;
  std::vector<double> w_;
};

std::vector<double> one_hot(int K, int k) {
  std::vector<double> w(size_t(K), 0.0);
  w[size_t(k)] = 1.0;
  return w;
}

class RoundRobin : public MixingStrategy {
public:
  explicit RoundRobin(int K) : K_(K) {}
  std::string name() const override { return "round_robin"; }
  int num_tasks() const override { return K_; }
  std::vector<double> weights(int64_t t) override { return one_hot(K_, int(t % K_)); }

private:
  int K_;
};

class RandomTask : public MixingStrategy {
public:
  RandomTask(int K, uint64_t seed) : K_(K), key_(data::derive_seed(seed, 0x524e44)) {}
  std::string name() const override { return "random"; }
  int num_tasks() const override { return K_; }
  std::vector<double> weights(int64_t t) override {
    return one_hot(K_, int(data::uniform_index(key_, uint64_t(t), uint64_t(K_))));
  }

private:
  int K_;
  uint64_t key_;
};

class PikeStrategy : public MixingStrategy {
public:
  PikeStrategy(std::string name, int K, int64_t b, const PikeOptions& o, std::vector<double> w0)
      : name_(std::move(name)), pike_(K, b, o, std::move(w0)) {}
  std::string name() const override { return name_; }
  int num_tasks() const override { return int(pike_.weights().size()); }
  std::vector<double> weights(int64_t) override { return pike_.weights(); }
  bool wants_stats(int64_t t) const override { return pike_.wants_stats(t); }
  void observe(int64_t t, const std::vector<double>& losses, const std::vector<GradStats>* stats) override {
    pike_.observe_losses(losses);
    if (stats) pike_.update(*stats);
  }
  std::vector<double> loss_scale() const override { return pike_.loss_scale(); }
  const Pike* pike() const override { return &pike_; }

private:
  std::string name_;
  Pike pike_;
};

}  // namespace

std::vector<double> proportional_weights(const std::vector<double>& sizes) {
  check_sizes(sizes, "mixing::proportional_weights");
  return normalised(sizes, "mixing::proportional_weights");
}

std::vector<double> temperature_weights(const std::vector<double>& sizes, double T) {
  const char* op = "mixing::temperature_weights";
  check_sizes(sizes, op);
  PH_CHECK(std::isfinite(T) && T > 0, op, "temperature must be finite and > 0, got " << T);
  // n_k^(1/T) in log space relative to the largest size (no overflow for huge n or small T)
  double lmax = -INFINITY;
  for (double n : sizes) lmax = std::max(lmax, std::log(n));
  std::vector<double> w;
  for (double n : sizes) w.push_back(std::exp((std::log(n) - lmax) / T));
  return normalised(w, op);
}

const std::vector<std::string>& mixing_strategy_names() {
  static const std::vector<std::string> names{"mix",   "round_robin", "random", "proportional",
                                              "temperature", "fixed", "pike", "balanced_pike", "doremi"};
  return names;
}

std::unique_ptr<MixingStrategy> make_mixing_strategy(const std::string& name, const MixingOptions& o) {
  const char* op = "mixing::make_mixing_strategy";
  PH_CHECK(o.K >= 1, op, "K must be >= 1, got " << o.K);
  PH_CHECK(o.batch >= 1, op, "batch size must be >= 1, got " << o.batch);
  auto need_sizes = [&] {
    PH_CHECK(int(o.sizes.size()) == o.K, op,
             "strategy '" << name << "' needs the " << o.K << " task sizes, got " << o.sizes.size());
  };
  if (name == "mix") return std::make_unique<Static>(name, std::vector<double>(size_t(o.K), 1.0 / o.K));
  if (name == "round_robin") return std::make_unique<RoundRobin>(o.K);
  if (name == "random") return std::make_unique<RandomTask>(o.K, o.seed);
  if (name == "proportional") {
    need_sizes();
    return std::make_unique<Static>(name, proportional_weights(o.sizes));
  }
  if (name == "temperature") {
    need_sizes();
    return std::make_unique<Static>(name, temperature_weights(o.sizes, o.temperature));
  }
  if (name == "fixed") {
    PH_CHECK(int(o.fixed_weights.size()) == o.K, op,
             "strategy 'fixed' needs " << o.K << " weights (fixed_weights), got " << o.fixed_weights.size());
    return std::make_unique<Static>(name, normalised(o.fixed_weights, op));
  }
  if (name == "doremi") {
    PH_CHECK_HINT(int(o.fixed_weights.size()) == o.K, op,
                  "strategy 'doremi' needs its " << o.K << " domain weights (fixed_weights), got " << o.fixed_weights.size(),
                  "compute them with mixing::run_doremi (reference and proxy models), then pass them");
    return std::make_unique<Static>(name, normalised(o.fixed_weights, op));
  }
  if (name == "pike" || name == "balanced_pike") {
    PikeOptions p = o.pike;
    p.balanced = name == "balanced_pike";
    PH_CHECK(o.fixed_weights.empty() || int(o.fixed_weights.size()) == o.K, op,
             "initial weights for '" << name << "' must have " << o.K << " entries, got " << o.fixed_weights.size());
    return std::make_unique<PikeStrategy>(name, o.K, o.batch, p, o.fixed_weights);
  }
  std::ostringstream valid;
  for (size_t i = 0; i < mixing_strategy_names().size(); ++i) valid << (i ? ", " : "") << mixing_strategy_names()[i];
  throw Error(op, "unknown mixing strategy '" + name + "'", "valid names: " + valid.str());
}

}  // namespace polyhead::mtl::mixing
