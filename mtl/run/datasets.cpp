// mtl/run/datasets.cpp: see datasets.h.
#include "mtl/run/datasets.h"

#include <mutex>

#include "data/multimnist.h"
#include "data/sampler.h"

namespace polyhead::run {

std::string default_data_dir(const std::string& dataset) {
  return dataset == "multifashion" ? "data/fashion" : "data/mnist";
}

namespace {

struct Key {
  std::string dataset, dir;
  int64_t train_size, test_size;
  uint64_t seed;
  bool operator==(const Key&) const = default;
};

RunData build(const RunConfig& c, const std::string& dir) {
  RunData d;
  d.tasks = data::kMultiMnistTasks;
  const int64_t n_train_src = c.train_size > 0 ? c.train_size : 60000;
  const int64_t n_test_src = c.test_size > 0 ? c.test_size : 10000;
  data::MnistData train_src, test_src;
  std::string source;
  if (c.dataset == "synthetic") {
    train_src = data::synthetic_digits(n_train_src, data::derive_seed(c.data_seed, 11));
    test_src = data::synthetic_digits(n_test_src, data::derive_seed(c.data_seed, 12));
    d.synthetic = true;
    source = "MultiMNIST of synthetic seven-segment digits";
  } else {
    const char* name = c.dataset == "multifashion" ? "MultiFashion" : "MultiMNIST";
    if (!data::mnist_available(dir, true) || !data::mnist_available(dir, false)) {
      // Both splits come from the same kind of source.
      train_src = data::synthetic_digits(n_train_src, data::derive_seed(c.data_seed, 11));
      test_src = data::synthetic_digits(n_test_src, data::derive_seed(c.data_seed, 12));
      d.synthetic = true;
      d.warning = std::string(data::kSyntheticDigitsWarning) + " (no IDX files for " + name + " in '" + dir + "')";
      source = std::string(name) + " STAND-IN of synthetic seven-segment digits";
    } else {
      train_src = data::load_mnist(dir, true);
      test_src = data::load_mnist(dir, false);
      source = std::string(name) + " from " + dir;
    }
  }
  const int64_t n_train = c.train_size > 0 ? c.train_size : train_src.images.size(0);
  const int64_t n_test = c.test_size > 0 ? c.test_size : test_src.images.size(0);
  d.train = data::multimnist_dataset(data::make_multimnist(train_src, n_train, data::derive_seed(c.data_seed, 1)));
  d.test = data::multimnist_dataset(data::make_multimnist(test_src, n_test, data::derive_seed(c.data_seed, 2)));
  d.description = source + ": " + std::to_string(n_train) + " train / " + std::to_string(n_test) + " test";
  return d;
}

}  // namespace

RunData load_run_data(const RunConfig& c) {
  static std::mutex mu;
  static Key last_key;
  static RunData last;
  static bool have = false;
  std::string dir = c.data_dir.empty() ? default_data_dir(c.dataset) : c.data_dir;
  Key k{c.dataset, c.dataset == "synthetic" ? "" : dir, c.train_size, c.test_size, c.data_seed};
  std::lock_guard<std::mutex> g(mu);
  if (have && k == last_key) return last;
  last = build(c, dir);
  last_key = k;
  have = true;
  return last;
}

}  // namespace polyhead::run
