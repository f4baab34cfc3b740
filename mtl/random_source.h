// mtl/random_source.h: the Philox-backed Random given to stochastic methods by the trainer.
// Its state (seed, offset) is part of the trainer's checkpoint, so a resumed run draws the same.
#pragma once
#include <numeric>

#include "engine/rng.h"
#include "mtl/method.h"

namespace polyhead::mtl {

class PhiloxRandom final : public Random {
public:
  explicit PhiloxRandom(uint64_t seed) : g_(seed) {}
  // Fisher-Yates with uniform draws.
  void shuffle(std::vector<int>& v) override {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[size_t(g_.randint(i))]);
  }
  void normal(std::span<double> out) override { for (auto& x : out) x = g_.normal(); }
  void uniform(std::span<double> out) override { for (auto& x : out) x = g_.uniform(); }
  Generator& generator() { return g_; }
  const Generator& generator() const { return g_; }

private:
  Generator g_;
};

}  // namespace polyhead::mtl
