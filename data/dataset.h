// data/dataset.h: examples, the Dataset interface and in-memory datasets.
//
// An Example is a set of named CPU tensors. By convention "x" is the input and task k's target is
// "y<k>" (target_name(k)): "y0", "y1", ... A Batch has the same names, each tensor stacked along a
// new leading dimension (collate()).
//
// Dataset::get / get_batch must be safe to call from several threads at once (the DataLoader
// gathers batches on oneTBB tasks); set_epoch is only called while no batch is being gathered.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace polyhead::data {

// "y<k>": the name of task k's target.
std::string target_name(int k);

struct Example {
  std::map<std::string, Tensor> fields;  // sorted by name

  Example() = default;
  Example(std::map<std::string, Tensor> f) : fields(std::move(f)) {}
  Tensor& operator[](const std::string& name) { return fields[name]; }
  // Throws Error naming the missing field and the fields present.
  const Tensor& at(const std::string& name) const;
  bool has(const std::string& name) const { return fields.count(name) != 0; }
  bool empty() const { return fields.empty(); }
  std::vector<std::string> names() const;
};
using Batch = Example;

// Stacks examples into a batch: every example must have the same names and, per name, the same
// shape and dtype (else Error naming the field and the example's position). CPU tensors only.
Batch collate(const std::vector<Example>& examples);

class Dataset {
public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual Example get(int64_t i) const = 0;
  // The examples idx[0], idx[1], ... stacked (collate). The default gathers with get() on oneTBB
  // tasks; in-memory datasets override it with a direct row copy.
  virtual Batch get_batch(std::span<const int64_t> idx) const;
  // Datasets whose examples depend on the epoch (random text windows) override this; the
  // DataLoader calls it from epoch(e).
  virtual void set_epoch(uint64_t epoch) {}

protected:
  void check_index(int64_t i, const char* op) const;
};

// Tensors held in memory; the first dimension indexes examples. Tensors are made contiguous
// CPU tensors at construction and shared (not copied) by get(), which returns views.
class TensorDataset : public Dataset {
public:
  explicit TensorDataset(std::map<std::string, Tensor> tensors);
  int64_t size() const override { return n_; }
  Example get(int64_t i) const override;
  Batch get_batch(std::span<const int64_t> idx) const override;
  const Tensor& tensor(const std::string& name) const;
  const std::map<std::string, Tensor>& tensors() const { return tensors_; }

private:
  std::map<std::string, Tensor> tensors_;
  int64_t n_ = 0;
};

// The examples indices[0], indices[1], ... of another dataset (a train / validation split).
class SubsetDataset : public Dataset {
public:
  SubsetDataset(std::shared_ptr<Dataset> base, std::vector<int64_t> indices);
  int64_t size() const override { return int64_t(indices_.size()); }
  Example get(int64_t i) const override;
  Batch get_batch(std::span<const int64_t> idx) const override;
  void set_epoch(uint64_t epoch) override { base_->set_epoch(epoch); }

private:
  std::shared_ptr<Dataset> base_;
  std::vector<int64_t> indices_;
};

// Splits [0, n) into a shuffled first part of n_first indices and the rest (seeded Philox
// permutation, the same one RandomSampler(n, seed) gives for epoch 0).
std::pair<std::vector<int64_t>, std::vector<int64_t>> random_split(int64_t n, int64_t n_first, uint64_t seed);

// u8 pixels -> f32 in [0, 1] (value / 255), same shape.
Tensor u8_to_unit_float(const Tensor& u8);
// Any integer tensor -> i64, same shape.
Tensor to_i64(const Tensor& t);

}  // namespace polyhead::data
