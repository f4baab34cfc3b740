// engine/rng.h: counter-based random numbers (Philox4x32-10, Salmon et al., SC 2011).
// A value is a pure function of (seed, counter), so every backend produces the same stream and a
// run is reproducible from its seed regardless of threads. A Generator hands out disjoint counter
// ranges: each draw of n values advances its offset by n.
//   uniform element e: lane e%4 of block e/4, as (u >> 8) * 2^-24 in [0, 1)
//   normal element e:  Box-Muller on lanes 0, 1 of block e (one block per value)
#pragma once
#include <array>
#include <cmath>
#include <cstdint>
#include <mutex>

namespace polyhead {

#if defined(__CUDACC__)
#define PH_HD __host__ __device__ __forceinline__
#else
#define PH_HD inline
#endif

PH_HD void philox4x32_10(uint32_t ctr[4], uint32_t k0, uint32_t k1) {
  const uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  for (int r = 0; r < 10; ++r) {
    uint64_t p0 = uint64_t(M0) * ctr[0], p1 = uint64_t(M1) * ctr[2];
    uint32_t n0 = uint32_t(p1 >> 32) ^ ctr[1] ^ k0, n2 = uint32_t(p0 >> 32) ^ ctr[3] ^ k1;
    ctr[0] = n0; ctr[1] = uint32_t(p1); ctr[2] = n2; ctr[3] = uint32_t(p0);
    k0 += W0; k1 += W1;
  }
}

// 32 random bits for element e of stream seed.
PH_HD uint32_t philox_bits(uint64_t seed, uint64_t e) {
  uint64_t block = e >> 2;
  uint32_t c[4] = {uint32_t(block), uint32_t(block >> 32), 0u, 0u};
  philox4x32_10(c, uint32_t(seed), uint32_t(seed >> 32));
  return c[e & 3];
}
PH_HD double philox_uniform(uint64_t seed, uint64_t e) { return double(philox_bits(seed, e) >> 8) * (1.0 / 16777216.0); }
PH_HD double philox_normal(uint64_t seed, uint64_t e) {
  uint32_t c[4] = {uint32_t(e), uint32_t(e >> 32), 0x6e6f726du, 0u};  // distinct counter space from uniform
  philox4x32_10(c, uint32_t(seed), uint32_t(seed >> 32));
  double u1 = (double(c[0] >> 8) + 1.0) * (1.0 / 16777216.0);  // (0, 1]
  double u2 = double(c[1] >> 8) * (1.0 / 16777216.0);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

class Generator {
public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  void manual_seed(uint64_t s) { std::lock_guard<std::mutex> g(mu_); seed_ = s; offset_ = 0; }
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_state(uint64_t seed, uint64_t offset) { std::lock_guard<std::mutex> g(mu_); seed_ = seed; offset_ = offset; }
  // Reserve n counters; returns the first.
  uint64_t reserve(uint64_t n) { std::lock_guard<std::mutex> g(mu_); uint64_t o = offset_; offset_ += (n + 3) & ~uint64_t(3); return o; }
  double uniform() { return philox_uniform(seed_, reserve(1)); }
  double normal() { return philox_normal(seed_, reserve(1)); }
  // Uniform integer in [0, n).
  uint64_t randint(uint64_t n) { return uint64_t(uniform() * double(n)) % n; }

private:
  std::mutex mu_;
  uint64_t seed_ = 0, offset_ = 0;
};

// The process-wide default generator (Tensor::rand/randn, init, dropout unless given another).
Generator& default_generator();
inline void manual_seed(uint64_t s) { default_generator().manual_seed(s); }

}  // namespace polyhead
