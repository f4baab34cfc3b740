// data/multimnist.cpp: MultiMNIST generation and synthetic digit glyphs.
#include "data/multimnist.h"

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "data/sampler.h"

namespace polyhead::data {

MultiMnistData make_multimnist(const MnistData& src, int64_t n, uint64_t seed) {
  const char* op = "data::make_multimnist";
  PH_CHECK(src.images.defined() && src.images.dtype() == DType::u8 && src.images.dim() == 3 && src.images.device().is_cpu(), op,
           "source images must be a CPU (M, H, W) u8 tensor");
  PH_CHECK(src.labels.defined() && src.labels.dim() == 1 && src.labels.size(0) == src.images.size(0), op,
           "source labels must be (M) with M = " << src.images.size(0));
  const int64_t M = src.images.size(0), H = src.images.size(1), W = src.images.size(2);
  PH_CHECK(M >= 2, op, "need at least 2 source images, got " << M);
  PH_CHECK(n >= 0, op, "negative example count " << n);
  const int64_t CH = H + 8, CW = W + 8;
  Tensor images = src.images.is_contiguous() ? src.images : src.images.contiguous();
  Tensor labels = to_i64(src.labels).contiguous();
  const uint8_t* im = static_cast<const uint8_t*>(images.raw());
  const int64_t* lb = labels.data<int64_t>();

  MultiMnistData d;
  d.x = Tensor::empty({n, 1, CH, CW}, DType::f32);
  d.y0 = Tensor::empty({n}, DType::i64);
  d.y1 = Tensor::empty({n}, DType::i64);
  float* x = d.x.data<float>();
  int64_t* y0 = d.y0.data<int64_t>();
  int64_t* y1 = d.y1.data<int64_t>();

  // The permutations of the first images, one per round of M examples.
  const int64_t rounds = (n + M - 1) / M;
  std::vector<std::vector<int64_t>> perms(static_cast<size_t>(rounds));
  const uint64_t k1 = derive_seed(seed, 1), k2 = derive_seed(seed, 2), k3 = derive_seed(seed, 3);
  tbb::parallel_for(int64_t(0), rounds, [&](int64_t r) { perms[size_t(r)] = random_permutation(M, derive_seed(k1, uint64_t(r))); });

  tbb::parallel_for(tbb::blocked_range<int64_t>(0, n, 64), [&](const tbb::blocked_range<int64_t>& rg) {
    std::vector<uint8_t> canvas(size_t(CH * CW));
    for (int64_t i = rg.begin(); i < rg.end(); ++i) {
      const int64_t first = perms[size_t(i / M)][size_t(i % M)];
      const int64_t second = (first + 1 + int64_t(uniform_index(k2, uint64_t(i), uint64_t(M - 1)))) % M;
      const int64_t a = 1 + int64_t(uniform_index(k3, 4 * uint64_t(i) + 0, 4));
      const int64_t b = 1 + int64_t(uniform_index(k3, 4 * uint64_t(i) + 1, 4));
      const int64_t c = 1 + int64_t(uniform_index(k3, 4 * uint64_t(i) + 2, 4));
      const int64_t e = 1 + int64_t(uniform_index(k3, 4 * uint64_t(i) + 3, 4));
      std::fill(canvas.begin(), canvas.end(), uint8_t(0));
      auto place = [&](int64_t img, int64_t r0, int64_t c0) {
        const uint8_t* p = im + img * H * W;
        for (int64_t r = 0; r < H; ++r)
          for (int64_t q = 0; q < W; ++q) {
            uint8_t& dst = canvas[size_t((r0 + r) * CW + c0 + q)];
            dst = std::max(dst, p[r * W + q]);
          }
      };
      place(first, 4 - a, 4 - b);
      place(second, 4 + c, 4 + e);
      float* out = x + i * CH * CW;
      for (int64_t p = 0; p < CH * CW; ++p) out[p] = float(canvas[size_t(p)]) * (1.0f / 255.0f);
      y0[i] = lb[first];
      y1[i] = lb[second];
    }
  });
  return d;
}

std::shared_ptr<TensorDataset> multimnist_dataset(const MultiMnistData& d) {
  return std::make_shared<TensorDataset>(std::map<std::string, Tensor>{{"x", d.x}, {"y0", d.y0}, {"y1", d.y1}});
}

// ---------- synthetic digits ----------
namespace {

// Seven segments a..g over the nodes 0 TL, 1 TR, 2 ML, 3 MR, 4 BL, 5 BR.
const int kSeg[7][2] = {{0, 1}, {1, 3}, {3, 5}, {4, 5}, {2, 4}, {0, 2}, {2, 3}};
const char* const kDigitSegs[10] = {"abcdef", "bc", "abged", "abgcd", "fgbc", "afgcd", "afgedc", "abc", "abcdefg", "abcdfg"};

double seg_dist(double px, double py, double ax, double ay, double bx, double by) {
  double vx = bx - ax, vy = by - ay, wx = px - ax, wy = py - ay;
  double l2 = vx * vx + vy * vy;
  double t = l2 > 0 ? std::clamp((wx * vx + wy * vy) / l2, 0.0, 1.0) : 0.0;
  double dx = wx - t * vx, dy = wy - t * vy;
  return std::sqrt(dx * dx + dy * dy);
}

}  // namespace

MnistData synthetic_digits(int64_t n, uint64_t seed) {
  PH_CHECK(n >= 0, "data::synthetic_digits", "negative count " << n);
  MnistData d;
  d.images = Tensor::empty({n, 28, 28}, DType::u8);
  d.labels = Tensor::empty({n}, DType::u8);
  uint8_t* im = static_cast<uint8_t*>(d.images.raw());
  uint8_t* lb = static_cast<uint8_t*>(d.labels.raw());
  const uint64_t kl = derive_seed(seed, 11), kg = derive_seed(seed, 12);
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, n, 64), [&](const tbb::blocked_range<int64_t>& rg) {
    for (int64_t i = rg.begin(); i < rg.end(); ++i) {
      const int label = int(uniform_index(kl, uint64_t(i), 10));
      uint64_t ctr = 32 * uint64_t(i);
      auto U = [&](double lo, double hi) { return lo + (hi - lo) * uniform01(kg, ctr++); };
      const double w = U(8, 13), h = U(15, 20), cx = U(12, 16), cy = U(12, 16), slant = U(-0.25, 0.25);
      const double half = U(1.0, 1.9), bright = U(0.75, 1.0);
      double nx[6], ny[6];
      for (int k = 0; k < 6; ++k) {
        double ux = (k % 2) ? 0.5 : -0.5, uy = (k / 2) * 0.5 - 0.5;
        double yy = cy + uy * h + U(-0.8, 0.8);
        double xx = cx + ux * (label == 1 ? 0.0 : w) + U(-0.8, 0.8);  // a one: one stroke through the centre
        nx[k] = xx - slant * (yy - cy);
        ny[k] = yy;
      }
      uint8_t* out = im + i * 28 * 28;
      for (int r = 0; r < 28; ++r)
        for (int c = 0; c < 28; ++c) {
          double px = c + 0.5, py = r + 0.5, dist = 1e9;
          for (const char* s = kDigitSegs[label]; *s; ++s) {
            const int* sg = kSeg[*s - 'a'];
            dist = std::min(dist, seg_dist(px, py, nx[sg[0]], ny[sg[0]], nx[sg[1]], ny[sg[1]]));
          }
          double v = std::clamp(half + 0.5 - dist, 0.0, 1.0) * bright;
          out[r * 28 + c] = uint8_t(std::lround(v * 255.0));
        }
      lb[i] = uint8_t(label);
    }
  });
  return d;
}

MnistData load_mnist_or_synthetic(const std::string& dir, bool train, int64_t n_synthetic, uint64_t seed, bool* synthetic) {
  bool real = mnist_available(dir, train);
  if (synthetic) *synthetic = !real;
  return real ? load_mnist(dir, train) : synthetic_digits(n_synthetic, seed);
}

}  // namespace polyhead::data
