// data/sampler.cpp: Philox-driven index orders and the largest-remainder batch mixer.
#include "data/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "engine/error.h"
#include "engine/rng.h"

namespace polyhead::data {

static uint64_t mix64(uint64_t z) {  // SplitMix64 finaliser
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t derive_seed(uint64_t seed, uint64_t a) { return mix64(mix64(seed) + 0x9E3779B97F4A7C15ull * (a + 1)); }

uint64_t philox_u64(uint64_t key, uint64_t counter) {
  uint64_t block = counter >> 1;
  uint32_t c[4] = {uint32_t(block), uint32_t(block >> 32), 0x64617461u /* "data" */, 0u};
  philox4x32_10(c, uint32_t(key), uint32_t(key >> 32));
  int lane = int(counter & 1) * 2;
  return uint64_t(c[lane]) | (uint64_t(c[lane + 1]) << 32);
}

uint64_t uniform_index(uint64_t key, uint64_t counter, uint64_t n) {
  if (n <= 1) return 0;
  return uint64_t((static_cast<unsigned __int128>(philox_u64(key, counter)) * n) >> 64);
}

double uniform01(uint64_t key, uint64_t counter) { return double(philox_u64(key, counter) >> 11) * 0x1.0p-53; }

std::vector<int64_t> random_permutation(int64_t n, uint64_t key) {
  PH_CHECK(n >= 0, "data::random_permutation", "negative size " << n);
  std::vector<int64_t> p(static_cast<size_t>(n));
  std::iota(p.begin(), p.end(), int64_t(0));
  for (int64_t j = n - 1; j >= 1; --j) std::swap(p[size_t(j)], p[size_t(uniform_index(key, uint64_t(j), uint64_t(j) + 1))]);
  return p;
}

SequentialSampler::SequentialSampler(int64_t n) : n_(n) {
  PH_CHECK(n >= 0, "data::SequentialSampler", "negative size " << n);
}
std::vector<int64_t> SequentialSampler::indices(uint64_t) const {
  std::vector<int64_t> p(static_cast<size_t>(n_));
  std::iota(p.begin(), p.end(), int64_t(0));
  return p;
}

RandomSampler::RandomSampler(int64_t n, uint64_t seed) : n_(n), seed_(seed) {
  PH_CHECK(n >= 0, "data::RandomSampler", "negative size " << n);
}
std::vector<int64_t> RandomSampler::indices(uint64_t epoch) const { return random_permutation(n_, derive_seed(seed_, epoch)); }

static void check_weights(const std::vector<double>& w, const char* op) {
  PH_CHECK(!w.empty(), op, "no weights");
  double sum = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    PH_CHECK(std::isfinite(w[i]) && w[i] >= 0, op, "weight " << i << " is " << w[i] << "; weights must be finite and >= 0");
    sum += w[i];
  }
  PH_CHECK(sum > 0 && std::isfinite(sum), op, "the weights sum to " << sum << "; it must be positive");
}

WeightedSampler::WeightedSampler(std::vector<double> weights, int64_t num_samples, uint64_t seed)
    : num_samples_(num_samples), seed_(seed) {
  check_weights(weights, "data::WeightedSampler");
  PH_CHECK(num_samples >= 0, "data::WeightedSampler", "negative num_samples " << num_samples);
  cdf_.resize(weights.size());
  double acc = 0;
  for (size_t i = 0; i < weights.size(); ++i) cdf_[i] = acc += weights[i];
}

std::vector<int64_t> WeightedSampler::indices(uint64_t epoch) const {
  const uint64_t key = derive_seed(seed_, epoch);
  const double total = cdf_.back();
  std::vector<int64_t> out(static_cast<size_t>(num_samples_));
  for (int64_t j = 0; j < num_samples_; ++j) {
    double u = uniform01(key, uint64_t(j)) * total;
    // First i with cdf[i] > u; never an index of weight 0.
    size_t i = size_t(std::upper_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin());
    if (i >= cdf_.size()) {  // u rounded up to total: take the last positive weight
      i = cdf_.size() - 1;
      while (i > 0 && cdf_[i] == cdf_[i - 1]) --i;
    }
    out[size_t(j)] = int64_t(i);
  }
  return out;
}

// ---------- MixtureSampler ----------
std::vector<int64_t> MixtureSampler::allocate(int64_t b, const std::vector<double>& w) {
  const char* op = "data::MixtureSampler::allocate";
  PH_CHECK(b >= 0, op, "negative batch size " << b);
  check_weights(w, op);
  const double sum = std::accumulate(w.begin(), w.end(), 0.0);
  const size_t K = w.size();
  std::vector<int64_t> c(K, 0);
  std::vector<double> frac(K, 0.0);
  std::vector<size_t> positive;  // sources with w_k > 0, by fractional part (desc), then index
  int64_t used = 0;
  for (size_t k = 0; k < K; ++k) {
    if (w[k] == 0) continue;
    double q = double(b) * (w[k] / sum);
    double f = std::floor(q);
    c[k] = std::clamp<int64_t>(int64_t(f), 0, b);
    frac[k] = q - f;
    used += c[k];
    positive.push_back(k);
  }
  std::stable_sort(positive.begin(), positive.end(), [&](size_t a, size_t z) { return frac[a] > frac[z]; });
  // Exactly, 0 <= b - sum floor(q_k) < #positive; the loops also absorb floating-point rounding.
  for (size_t j = 0; used < b; j = (j + 1) % positive.size()) { ++c[positive[j]]; ++used; }
  for (size_t j = positive.size(); used > b;) {
    j = (j == 0 ? positive.size() : j) - 1;
    if (c[positive[j]] > 0) { --c[positive[j]]; --used; }
  }
  return c;
}

MixtureSampler::MixtureSampler(std::vector<int64_t> source_sizes, int64_t batch_size, std::vector<double> weights, uint64_t seed)
    : sizes_(std::move(source_sizes)), b_(batch_size), seed_(seed) {
  const char* op = "data::MixtureSampler";
  PH_CHECK(!sizes_.empty(), op, "no sources");
  PH_CHECK(batch_size > 0, op, "batch size must be positive, got " << batch_size);
  for (size_t k = 0; k < sizes_.size(); ++k) PH_CHECK(sizes_[k] >= 0, op, "source " << k << " has negative size " << sizes_[k]);
  set_weights(weights);
  reset();
}

void MixtureSampler::set_weights(const std::vector<double>& w) {
  const char* op = "data::MixtureSampler::set_weights";
  PH_CHECK(w.size() == sizes_.size(), op, "got " << w.size() << " weights for " << sizes_.size() << " sources");
  check_weights(w, op);
  for (size_t k = 0; k < w.size(); ++k)
    PH_CHECK(w[k] == 0 || sizes_[k] > 0, op, "source " << k << " is empty but has weight " << w[k]);
  const double sum = std::accumulate(w.begin(), w.end(), 0.0);
  w_.resize(w.size());
  for (size_t k = 0; k < w.size(); ++k) w_[k] = w[k] / sum;
}

void MixtureSampler::reset() {
  step_ = 0;
  epochs_.assign(sizes_.size(), 0);
  cursor_.assign(sizes_.size(), 0);
  perm_.assign(sizes_.size(), {});
  for (size_t k = 0; k < sizes_.size(); ++k) perm_[k] = random_permutation(sizes_[k], derive_seed(derive_seed(seed_, k + 1), 0));
}

MixtureDraw MixtureSampler::next() {
  MixtureDraw d;
  d.counts = allocate(b_, w_);
  d.indices.resize(sizes_.size());
  for (size_t k = 0; k < sizes_.size(); ++k) {
    auto& out = d.indices[k];
    out.reserve(size_t(d.counts[k]));
    for (int64_t j = 0; j < d.counts[k]; ++j) {
      if (cursor_[k] == sizes_[k]) {  // this source's epoch is used up: next permutation
        ++epochs_[k];
        cursor_[k] = 0;
        perm_[k] = random_permutation(sizes_[k], derive_seed(derive_seed(seed_, k + 1), epochs_[k]));
      }
      out.push_back(perm_[k][size_t(cursor_[k]++)]);
    }
  }
  ++step_;
  return d;
}

}  // namespace polyhead::data
