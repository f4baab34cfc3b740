// data/cifar10.h: the CIFAR-10 binary version (cifar-10-batches-bin).
//
// A batch file is a sequence of 3073-byte records: 1 label byte (0..9), then a 32 x 32 image as
// 1024 red, 1024 green, 1024 blue bytes (row-major). Files may be gzipped. A file whose size is
// not a positive multiple of 3073, or a label byte > 9, is an Error naming the file, the record
// and its byte offset.
#pragma once
#include <memory>
#include <string>

#include "data/dataset.h"

namespace polyhead::data {

struct Cifar10Data {
  Tensor images;  // (N, 3, 32, 32) u8
  Tensor labels;  // (N) u8 in 0..9
};

Cifar10Data read_cifar10_batch(const std::string& path);
Cifar10Data parse_cifar10_batch(const uint8_t* data, size_t size, const std::string& name);

// train: data_batch_1.bin .. data_batch_5.bin concatenated; else test_batch.bin. dir may be the
// cifar-10-batches-bin folder itself or its parent.
Cifar10Data load_cifar10(const std::string& dir, bool train);

// x: (N, 3, 32, 32) f32 in [0, 1]; y0: (N) i64.
std::shared_ptr<TensorDataset> cifar10_dataset(const Cifar10Data& d);

inline const char* const kCifar10Classes[10] = {"airplane", "automobile", "bird", "cat", "deer",
                                                "dog", "frog", "horse", "ship", "truck"};

}  // namespace polyhead::data
