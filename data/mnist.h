// data/mnist.h: IDX files (LeCun's MNIST format) and the MNIST / Fashion-MNIST datasets.
//
// IDX layout (all integers big-endian): bytes 0-1 are zero, byte 2 is the element type
// (0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64), byte 3 the number of dimensions d;
// then d uint32 sizes; then the elements, row-major, and nothing after them. Files may be gzipped.
// MNIST images are 0x00000803 (u8, 3 dims: N x 28 x 28), labels 0x00000801 (u8, 1 dim: N).
//
// Every check names the file, the byte offset and what was expected there.
#pragma once
#include <memory>
#include <string>

#include "data/dataset.h"

namespace polyhead::data {

// The whole IDX file as a tensor: u8 for 0x08, i32 for 0x09 / 0x0B / 0x0C (widened), f32, f64.
Tensor read_idx(const std::string& path);
// The same, parsing bytes already in memory; `name` is used in messages.
Tensor parse_idx(const uint8_t* data, size_t size, const std::string& name);

struct MnistData {
  Tensor images;  // (N, H, W) u8 (28 x 28 for MNIST)
  Tensor labels;  // (N) u8, each < num_classes
};

// A pair of IDX files: images must be u8 with 3 dims, labels u8 with 1 dim, the same N, and every
// label < num_classes.
MnistData load_mnist_files(const std::string& images_path, const std::string& labels_path, int num_classes = 10);

// The split from a folder holding train-images-idx3-ubyte, train-labels-idx1-ubyte,
// t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each also accepted with '.' for the second '-'
// and with a .gz suffix). Works for MNIST (data/mnist) and Fashion-MNIST (data/fashion).
MnistData load_mnist(const std::string& dir, bool train);
// Whether load_mnist(dir, train) would find both files.
bool mnist_available(const std::string& dir, bool train);

// x: (N, 1, H, W) f32 in [0, 1]; y0: (N) i64.
std::shared_ptr<TensorDataset> mnist_dataset(const MnistData& d);

}  // namespace polyhead::data
