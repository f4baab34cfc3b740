// mtl/run/datasets.h: the train and test splits a run config names.
//
//   multimnist    MultiMNIST (data/multimnist.h) from the MNIST IDX files in data_dir (default
//                 data/mnist): train_size examples from the 60k training digits, test_size from the
//                 10k test digits (0 = one per source image).
//   multifashion  the same from Fashion-MNIST (default data/fashion).
//   synthetic     MultiMNIST built from procedurally drawn seven-segment digits (no files needed).
// When the IDX files of multimnist / multifashion are missing, the synthetic glyphs stand in and
// RunData::warning holds the loud warning the caller must print.
// Examples have fields "x" (1, 36, 36) f32 and "y0", "y1" (i64 labels of tasks "left", "right").
// Generation is a pure function of (data set, data_dir contents, sizes, data_seed); the last result
// is cached so the runs of a comparison share it.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "mtl/run/config.h"

namespace polyhead::run {

struct RunData {
  std::shared_ptr<data::Dataset> train, test;
  std::vector<std::string> tasks;  // all tasks of the data set, in target order (y0, y1, ...)
  int classes = 10;
  bool synthetic = false;          // the synthetic stand-in replaced missing real data
  std::string warning;             // non-empty when synthetic replaced real data
  std::string description;         // one line, e.g. "MultiMNIST from data/mnist: 10000 train / 10000 test"
};

RunData load_run_data(const RunConfig& c);
std::string default_data_dir(const std::string& dataset);

}  // namespace polyhead::run
