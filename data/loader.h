// data/loader.h: batches from a dataset, gathered ahead of time on oneTBB tasks.
//
// DataLoader: one pass (start() / next(), or a range-for) visits the sampler's order for the
// current epoch in consecutive groups of batch_size indices; the last, smaller group is dropped
// with drop_last. Each batch is Dataset::get_batch of its group, so the batches and their order
// depend only on (dataset, sampler, epoch, batch_size, drop_last), never on prefetch or threads.
// With prefetch = p > 0, while the caller works on batch i the batches i+1 .. i+p are gathered on
// oneTBB tasks (one tbb::task_group per batch; waiting on one also runs pending work, so this
// cannot deadlock even with a single thread). prefetch = 0 gathers on the calling thread.
// pin_memory(accel) gathers into page-locked memory for asynchronous copies to the accelerator.
// An exception thrown while gathering (a bad file, a bad example) is rethrown by the next() that
// would have returned that batch, and ends the pass. Batches stay on the CPU.
//
// The epoch is set explicitly: epoch(e) selects the sampler's order for e (and calls
// Dataset::set_epoch(e)); passes repeat the same epoch until it is changed.
//
// MixtureLoader: batches made of per-source parts in proportions set by a MixtureSampler, whose
// weights may change between batches (data mixing). It gathers on demand (no prefetch), so a
// new weight vector applies to the very next batch.
#pragma once
#include <atomic>
#include <cstdint>
#include <deque>
#include <iterator>
#include <memory>
#include <optional>
#include <vector>

#include "data/dataset.h"
#include "data/sampler.h"

namespace polyhead::data {

class DataLoader {
public:
  // shuffle: RandomSampler(dataset->size(), seed), else SequentialSampler.
  DataLoader(std::shared_ptr<Dataset> dataset, int64_t batch_size, bool shuffle = false, bool drop_last = false,
             uint64_t seed = 0, int prefetch = 2);
  DataLoader(std::shared_ptr<Dataset> dataset, std::shared_ptr<Sampler> sampler, int64_t batch_size,
             bool drop_last = false, int prefetch = 2);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  void epoch(uint64_t e);  // ends any pass in progress
  // Pinned staging: batches are gathered into page-locked host memory of `accel`'s backend (on
  // the prefetch tasks), so batch.to(accel) does not wait for the copy. Same values; where the
  // memory cannot be had (no GPU) batches stay in ordinary memory. Ends any pass in progress.
  void pin_memory(Device accel);
  bool pinned_staging() const { return pin_.has_value(); }
  uint64_t epoch() const { return epoch_; }
  int64_t num_batches() const;
  int64_t batch_size() const { return batch_size_; }
  const std::shared_ptr<Dataset>& dataset() const { return dataset_; }

  void start();                 // (re)starts a pass over the current epoch
  // The next batch of the pass; nullopt when it is over. Called with no pass in progress (first
  // use, after nullopt, after epoch()) it starts one.
  std::optional<Batch> next();
  // The indices of batch i of the current epoch.
  std::vector<int64_t> batch_indices(int64_t i) const;

  class Iterator {
  public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Batch;
    using difference_type = std::ptrdiff_t;
    using pointer = Batch*;
    using reference = Batch&;
    Iterator() = default;
    Batch& operator*() { return *cur_; }
    Batch* operator->() { return &*cur_; }
    Iterator& operator++() { cur_ = loader_->next(); return *this; }
    bool operator==(const Iterator& o) const { return cur_.has_value() == o.cur_.has_value(); }
    bool operator!=(const Iterator& o) const { return !(*this == o); }

  private:
    friend class DataLoader;
    DataLoader* loader_ = nullptr;
    std::optional<Batch> cur_;
  };
  Iterator begin();  // start() and the first batch
  Iterator end() { return Iterator(); }

private:
  struct Slot;
  void cancel();  // waits for in-flight batches and drops them
  void schedule(int64_t i);
  Batch gather(int64_t i) const;

  std::shared_ptr<Dataset> dataset_;
  std::shared_ptr<Sampler> sampler_;
  int64_t batch_size_;
  bool drop_last_;
  int prefetch_;
  uint64_t epoch_ = 0;
  std::optional<Device> pin_;
  // The pass in progress.
  std::vector<int64_t> order_;
  bool order_valid_ = false;
  bool active_ = false;
  int64_t next_batch_ = 0, scheduled_ = 0, total_ = 0;
  std::deque<std::unique_ptr<Slot>> inflight_;
  std::shared_ptr<std::atomic<bool>> cancelled_;
};

struct MixtureBatch {
  std::vector<int64_t> counts;  // examples from each source
  std::vector<Batch> parts;     // parts[k]: source k's examples stacked (empty when counts[k] == 0)
};

class MixtureLoader {
public:
  MixtureLoader(std::vector<std::shared_ptr<Dataset>> sources, int64_t batch_size, std::vector<double> weights,
                uint64_t seed);
  MixtureSampler& sampler() { return sampler_; }
  void set_weights(const std::vector<double>& w) { sampler_.set_weights(w); }
  MixtureBatch next();

private:
  std::vector<std::shared_ptr<Dataset>> sources_;
  MixtureSampler sampler_;
};

}  // namespace polyhead::data
