// data/sampler.h: the order in which a DataLoader visits examples, and the per-source batch mixer.
//
// Randomness: every draw is a pure function of (seed, purpose, counter) through Philox4x32-10
// (engine/rng.h), so orders are reproducible and independent of threads and of prefetching.
//   derive_seed(seed, a)   a Philox key for a sub-stream (epoch, source, ...), via SplitMix64;
//   uniform_index(key, c, n) the c-th integer of stream `key`, uniform in [0, n) (64-bit Lemire);
//   random_permutation(n, key) Fisher-Yates: for j = n-1 .. 1 swap p[j], p[uniform_index(key, j, j+1)].
// RandomSampler's epoch e is random_permutation(n, derive_seed(seed, e)).
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

namespace polyhead::data {

uint64_t derive_seed(uint64_t seed, uint64_t a);
uint64_t philox_u64(uint64_t key, uint64_t counter);
uint64_t uniform_index(uint64_t key, uint64_t counter, uint64_t n);
double uniform01(uint64_t key, uint64_t counter);  // [0, 1) with 53 bits
std::vector<int64_t> random_permutation(int64_t n, uint64_t key);

// An index sampler: the order of one epoch as a pure function of its settings and the epoch.
class Sampler {
public:
  virtual ~Sampler() = default;
  virtual std::vector<int64_t> indices(uint64_t epoch) const = 0;
  virtual int64_t length() const = 0;  // indices per epoch
};

// 0, 1, ..., n-1 every epoch.
class SequentialSampler : public Sampler {
public:
  explicit SequentialSampler(int64_t n);
  std::vector<int64_t> indices(uint64_t epoch) const override;
  int64_t length() const override { return n_; }

private:
  int64_t n_;
};

// A new permutation of [0, n) every epoch: random_permutation(n, derive_seed(seed, epoch)).
class RandomSampler : public Sampler {
public:
  RandomSampler(int64_t n, uint64_t seed);
  std::vector<int64_t> indices(uint64_t epoch) const override;
  int64_t length() const override { return n_; }

private:
  int64_t n_;
  uint64_t seed_;
};

// num_samples draws with replacement, P(i) = w_i / sum(w); draw j of epoch e inverts the CDF at
// uniform01(derive_seed(seed, e), j). Weights must be finite, >= 0, with a positive sum.
class WeightedSampler : public Sampler {
public:
  WeightedSampler(std::vector<double> weights, int64_t num_samples, uint64_t seed);
  std::vector<int64_t> indices(uint64_t epoch) const override;
  int64_t length() const override { return num_samples_; }

private:
  std::vector<double> cdf_;
  int64_t num_samples_;
  uint64_t seed_;
};

// Builds batches from several sources (tasks, datasets) in proportions that may change between
// batches. With weights w (normalised to sum 1) and batch size b, source k contributes
//   b_k = floor(b w_k) + (1 if k is among the b - sum_j floor(b w_j) sources with the largest
//         fractional parts b w_k - floor(b w_k); ties go to the lower index)
// examples (Hamilton's largest-remainder rounding of b w_k; sum_k b_k = b exactly; w_k = 0 gives
// b_k = 0). Source k's examples come, without replacement, from its own random order: the
// permutations random_permutation(n_k, derive_seed(derive_seed(seed, k + 1), e_k)) for its
// epochs e_k = 0, 1, ..., consumed in sequence across batches (a source's epoch advances when its
// permutation is used up). The draws are thus a pure function of (seed, the weight sequence).
struct MixtureDraw {
  std::vector<int64_t> counts;                // b_k
  std::vector<std::vector<int64_t>> indices;  // per source: b_k indices into source k
};

class MixtureSampler {
public:
  MixtureSampler(std::vector<int64_t> source_sizes, int64_t batch_size, std::vector<double> weights, uint64_t seed);
  // Largest-remainder counts for batch size b and weights w (normalised here).
  static std::vector<int64_t> allocate(int64_t b, const std::vector<double>& w);

  void set_weights(const std::vector<double>& w);  // takes effect from the next batch
  const std::vector<double>& weights() const { return w_; }  // normalised
  std::vector<int64_t> counts() const { return allocate(b_, w_); }
  int64_t batch_size() const { return b_; }
  int num_sources() const { return int(sizes_.size()); }
  const std::vector<int64_t>& source_sizes() const { return sizes_; }

  MixtureDraw next();
  int64_t step() const { return step_; }               // batches drawn so far
  const std::vector<uint64_t>& source_epochs() const { return epochs_; }
  void reset();  // back to the state right after construction (weights kept)

private:
  std::vector<int64_t> sizes_;
  int64_t b_;
  std::vector<double> w_;
  uint64_t seed_;
  int64_t step_ = 0;
  std::vector<uint64_t> epochs_;
  std::vector<int64_t> cursor_;
  std::vector<std::vector<int64_t>> perm_;
};

}  // namespace polyhead::data
