// data/loader.cpp: DataLoader (prefetch on oneTBB task groups) and MixtureLoader.
#include "data/loader.h"

#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/task_group.h>

#include <algorithm>

#include "engine/error.h"

namespace polyhead::data {

struct DataLoader::Slot {
  int64_t index = 0;
  tbb::task_group tg;
  Batch batch;
};

DataLoader::DataLoader(std::shared_ptr<Dataset> dataset, int64_t batch_size, bool shuffle, bool drop_last, uint64_t seed,
                       int prefetch)
    : DataLoader(dataset,
                 dataset ? (shuffle ? std::shared_ptr<Sampler>(std::make_shared<RandomSampler>(dataset->size(), seed))
                                    : std::shared_ptr<Sampler>(std::make_shared<SequentialSampler>(dataset->size())))
                         : nullptr,
                 batch_size, drop_last, prefetch) {}

DataLoader::DataLoader(std::shared_ptr<Dataset> dataset, std::shared_ptr<Sampler> sampler, int64_t batch_size,
                       bool drop_last, int prefetch)
    : dataset_(std::move(dataset)), sampler_(std::move(sampler)), batch_size_(batch_size), drop_last_(drop_last),
      prefetch_(prefetch), cancelled_(std::make_shared<std::atomic<bool>>(false)) {
  const char* op = "data::DataLoader";
  PH_CHECK(dataset_ != nullptr, op, "dataset is null");
  PH_CHECK(sampler_ != nullptr, op, "sampler is null");
  PH_CHECK(batch_size > 0, op, "batch size must be positive, got " << batch_size);
  PH_CHECK(prefetch >= 0, op, "prefetch must be >= 0, got " << prefetch);
}

DataLoader::~DataLoader() { cancel(); }

int64_t DataLoader::num_batches() const {
  int64_t n = sampler_->length();
  return drop_last_ ? n / batch_size_ : (n + batch_size_ - 1) / batch_size_;
}

void DataLoader::epoch(uint64_t e) {
  cancel();
  active_ = false;
  epoch_ = e;
  order_valid_ = false;
  dataset_->set_epoch(e);
}

void DataLoader::cancel() {
  if (inflight_.empty()) return;
  cancelled_->store(true);
  for (auto& s : inflight_) {
    try {
      s->tg.wait();
    } catch (...) {  // the pass is being abandoned: its errors no longer matter
    }
  }
  inflight_.clear();
  cancelled_ = std::make_shared<std::atomic<bool>>(false);
}

std::vector<int64_t> DataLoader::batch_indices(int64_t i) const {
  std::vector<int64_t> order = order_valid_ ? order_ : sampler_->indices(epoch_);
  int64_t nb = num_batches();
  PH_CHECK(i >= 0 && i < nb, "data::DataLoader::batch_indices", "batch " << i << " out of range [0, " << nb << ")");
  int64_t a = i * batch_size_, b = std::min<int64_t>(a + batch_size_, int64_t(order.size()));
  return std::vector<int64_t>(order.begin() + a, order.begin() + b);
}

Batch DataLoader::gather(int64_t i) const {
  int64_t a = i * batch_size_, b = std::min<int64_t>(a + batch_size_, int64_t(order_.size()));
  Batch batch = dataset_->get_batch(std::span<const int64_t>(order_.data() + a, size_t(b - a)));
  if (pin_) {
    for (auto& [name, t] : batch.fields) t = t.pin_memory(*pin_);
  }
  return batch;
}

void DataLoader::pin_memory(Device accel) {
  PH_CHECK(!accel.is_cpu(), "DataLoader::pin_memory", "pinned staging is for copies to an accelerator; got " << accel.str());
  cancel();
  pin_ = accel;
}

void DataLoader::start() {
  cancel();
  if (!order_valid_) {
    order_ = sampler_->indices(epoch_);
    const int64_t n = dataset_->size();
    for (size_t j = 0; j < order_.size(); ++j)
      PH_CHECK(order_[j] >= 0 && order_[j] < n, "data::DataLoader",
               "the sampler gave index " << order_[j] << " (position " << j << ") for a dataset of " << n << " examples");
    order_valid_ = true;
  }
  total_ = num_batches();
  active_ = true;
  next_batch_ = 0;
  scheduled_ = 0;
  for (int p = 0; p < prefetch_ && scheduled_ < total_; ++p) schedule(scheduled_);
}

void DataLoader::schedule(int64_t i) {
  auto slot = std::make_unique<Slot>();
  slot->index = i;
  Slot* s = slot.get();
  std::shared_ptr<std::atomic<bool>> cancelled = cancelled_;
  s->tg.run([this, s, i, cancelled] {
    if (cancelled->load()) return;
    s->batch = gather(i);
  });
  inflight_.push_back(std::move(slot));
  scheduled_ = i + 1;
}

std::optional<Batch> DataLoader::next() {
  if (!active_) start();
  if (next_batch_ >= total_) {  // the pass is over; the next call starts another
    active_ = false;
    return std::nullopt;
  }
  const int64_t i = next_batch_++;
  if (prefetch_ == 0) {
    try {
      return gather(i);
    } catch (...) {
      active_ = false;
      throw;
    }
  }
  if (inflight_.empty()) schedule(i);
  std::unique_ptr<Slot> slot = std::move(inflight_.front());
  inflight_.pop_front();
  // Keep `prefetch` batches in flight behind the one being returned.
  while (scheduled_ < total_ && scheduled_ <= i + prefetch_) schedule(scheduled_);
  try {
    slot->tg.wait();
  } catch (...) {
    active_ = false;
    cancel();
    throw;
  }
  PH_CHECK(slot->index == i, "data::DataLoader", "internal error: batch " << slot->index << " arrived for " << i);
  return std::move(slot->batch);
}

DataLoader::Iterator DataLoader::begin() {
  start();
  Iterator it;
  it.loader_ = this;
  it.cur_ = next();
  return it;
}

// ---------- MixtureLoader ----------
static std::vector<int64_t> source_sizes(const std::vector<std::shared_ptr<Dataset>>& sources) {
  std::vector<int64_t> n;
  for (size_t k = 0; k < sources.size(); ++k) {
    PH_CHECK(sources[k] != nullptr, "data::MixtureLoader", "source " << k << " is null");
    n.push_back(sources[k]->size());
  }
  return n;
}

MixtureLoader::MixtureLoader(std::vector<std::shared_ptr<Dataset>> sources, int64_t batch_size,
                             std::vector<double> weights, uint64_t seed)
    : sources_(std::move(sources)), sampler_(source_sizes(sources_), batch_size, std::move(weights), seed) {}

MixtureBatch MixtureLoader::next() {
  MixtureDraw d = sampler_.next();
  MixtureBatch out;
  out.counts = d.counts;
  out.parts.resize(sources_.size());
  tbb::parallel_for(size_t(0), sources_.size(), [&](size_t k) {
    if (!d.indices[k].empty()) out.parts[k] = sources_[k]->get_batch(d.indices[k]);
  });
  return out;
}

}  // namespace polyhead::data

