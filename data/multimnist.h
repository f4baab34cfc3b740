// data/multimnist.h: MultiMNIST / MultiFashion: two images from a source set overlaid on one
// canvas; task "left" predicts the label of the first (up-left) image, task "right" the label of
// the second (down-right) one. The task comes from Sener & Koltun (NeurIPS 2018); the construction
// here is that of Lin et al. (Pareto MTL, NeurIPS 2019): a 36 x 36 canvas, digits shifted by 1-4
// pixels, no resizing (Sener & Koltun place them at a fixed 6-pixel offset and resize to 28 x 28,
// which overlaps them less). The second image may have the same class as the first.
//
// Exact rule (source images H x W, here 28 x 28; canvas (H + 8) x (W + 8) = 36 x 36):
//   M = number of source images (>= 2); example i of n, with keys from the seed:
//   first  = P_r[i mod M], P_r = random_permutation(M, derive_seed(derive_seed(seed, 1), r)),
//            r = i div M (every source image is a first image once per M examples);
//   second = (first + 1 + uniform_index(derive_seed(seed, 2), i, M - 1)) mod M (uniform over the
//            other images);
//   a, b, c, d = 1 + uniform_index(derive_seed(seed, 3), 4i + {0, 1, 2, 3}, 4), each in 1..4;
//   the first image's top-left pixel goes to canvas (row 4 - a, col 4 - b) (shifted up-left by
//   a, b pixels from the centred position (4, 4)), the second's to (4 + c, 4 + d) (down-right);
//   canvas = max(first placed, second placed) / 255, zero elsewhere.
// So the first image always covers canvas pixel (3, 3) and the second never does; the second
// always covers (H + 4, W + 4) = (32, 32) and the first never does.
// The result is a pure function of (source, n, seed); examples are generated in parallel.
//
// With Fashion-MNIST as the source this is MultiFashion. When real MNIST is absent,
// synthetic_digits() draws digit-like seven-segment glyphs as a stand-in; the caller must print
// kSyntheticDigitsWarning (results on them say nothing about MNIST).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "data/mnist.h"

namespace polyhead::data {

struct MultiMnistData {
  Tensor x;   // (n, 1, H + 8, W + 8) f32 in [0, 1]
  Tensor y0;  // (n) i64: label of the first (up-left) image, task "left"
  Tensor y1;  // (n) i64: label of the second (down-right) image, task "right"
};

inline const std::vector<std::string> kMultiMnistTasks = {"left", "right"};

MultiMnistData make_multimnist(const MnistData& source, int64_t n, uint64_t seed);
// x, y0, y1.
std::shared_ptr<TensorDataset> multimnist_dataset(const MultiMnistData& d);

// n procedurally drawn 28 x 28 digit glyphs (seven-segment shapes with random size, position,
// slant, stroke width, corner jitter and brightness) with labels uniform in 0..9; a pure
// function of (n, seed).
MnistData synthetic_digits(int64_t n, uint64_t seed);

inline const char* const kSyntheticDigitsWarning =
    "WARNING: real MNIST not found; using SYNTHETIC seven-segment digit glyphs instead. Results are NOT "
    "MNIST results. Run scripts/fetch_mnist.sh to get the real data.";

// load_mnist(dir, train) when the files are there; otherwise synthetic_digits(n_synthetic, seed)
// and *synthetic = true (the caller prints kSyntheticDigitsWarning).
MnistData load_mnist_or_synthetic(const std::string& dir, bool train, int64_t n_synthetic, uint64_t seed, bool* synthetic);

}  // namespace polyhead::data
