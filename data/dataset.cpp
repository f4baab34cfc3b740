// data/dataset.cpp: Example, collate, TensorDataset, SubsetDataset.
#include "data/dataset.h"

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>

#include <cstring>
#include <sstream>

#include "data/sampler.h"

namespace polyhead::data {

std::string target_name(int k) { return "y" + std::to_string(k); }

static std::string names_str(const std::map<std::string, Tensor>& f) {
  std::string s = "[";
  bool first = true;
  for (auto& [k, v] : f) { s += (first ? "" : ", ") + k; first = false; }
  return s + "]";
}

const Tensor& Example::at(const std::string& name) const {
  auto it = fields.find(name);
  PH_CHECK(it != fields.end(), "data::Example::at", "no field '" << name << "'; the example has " << names_str(fields));
  return it->second;
}

std::vector<std::string> Example::names() const {
  std::vector<std::string> v;
  for (auto& [k, t] : fields) v.push_back(k);
  return v;
}

Batch collate(const std::vector<Example>& ex) {
  const char* op = "data::collate";
  PH_CHECK(!ex.empty(), op, "no examples to stack");
  const int64_t B = int64_t(ex.size());
  const auto& first = ex[0].fields;
  PH_CHECK(!first.empty(), op, "example 0 has no fields");
  // Validate everything before copying, in order, so the error names the first bad example.
  for (int64_t i = 0; i < B; ++i) {
    const auto& f = ex[size_t(i)].fields;
    bool same = f.size() == first.size();
    for (auto it = f.begin(), jt = first.begin(); same && it != f.end(); ++it, ++jt) same = it->first == jt->first;
    PH_CHECK(same, op, "example " << i << " has fields " << names_str(f) << " but example 0 has " << names_str(first));
    for (auto& [name, t] : f) {
      PH_CHECK(t.defined(), op, "field '" << name << "' of example " << i << " is undefined");
      PH_CHECK(t.device().is_cpu(), op, "field '" << name << "' of example " << i << " is on " << t.device().str()
                                                 << "; datasets hold CPU tensors");
      const Tensor& t0 = first.at(name);
      PH_CHECK(t.shape() == t0.shape() && t.dtype() == t0.dtype(), op,
               "field '" << name << "': example " << i << " is " << dtype_name(t.dtype()) << " " << shape_str(t.shape())
                         << " but example 0 is " << dtype_name(t0.dtype()) << " " << shape_str(t0.shape())
                         << " (all examples of a batch must have the same shapes)");
    }
  }
  Batch out;
  for (auto& field : first) {
    const std::string& name = field.first;  // (not a structured binding: lambdas capture it)
    const Tensor& t0 = field.second;
    Shape s{B};
    s.insert(s.end(), t0.shape().begin(), t0.shape().end());
    Tensor b = Tensor::empty(s, t0.dtype());
    const size_t row = size_t(t0.numel()) * t0.itemsize();
    char* dst = static_cast<char*>(b.raw());
    if (row > 0) {
      tbb::parallel_for(tbb::blocked_range<int64_t>(0, B, std::max<int64_t>(1, int64_t((1 << 16) / row))),
                        [&](const tbb::blocked_range<int64_t>& r) {
                          for (int64_t i = r.begin(); i < r.end(); ++i) {
                            const Tensor& t = ex[size_t(i)].fields.at(name);
                            Tensor c = t.is_contiguous() ? t : t.contiguous();
                            std::memcpy(dst + size_t(i) * row, c.raw(), row);
                          }
                        });
    }
    out.fields.emplace(name, std::move(b));
  }
  return out;
}

void Dataset::check_index(int64_t i, const char* op) const {
  PH_CHECK(i >= 0 && i < size(), op, "index " << i << " out of range for a dataset of " << size() << " examples");
}

Batch Dataset::get_batch(std::span<const int64_t> idx) const {
  std::vector<Example> ex(idx.size());
  tbb::parallel_for(tbb::blocked_range<size_t>(0, idx.size()), [&](const tbb::blocked_range<size_t>& r) {
    for (size_t j = r.begin(); j < r.end(); ++j) ex[j] = get(idx[j]);
  });
  return collate(ex);
}

// ---------- TensorDataset ----------
TensorDataset::TensorDataset(std::map<std::string, Tensor> tensors) {
  const char* op = "data::TensorDataset";
  PH_CHECK(!tensors.empty(), op, "no tensors given");
  bool first = true;
  std::string first_name;
  for (auto& [name, t] : tensors) {
    PH_CHECK(t.defined(), op, "tensor '" << name << "' is undefined");
    PH_CHECK(t.dim() >= 1, op, "tensor '" << name << "' is a scalar; the first dimension must index examples");
    PH_CHECK(t.device().is_cpu(), op, "tensor '" << name << "' is on " << t.device().str() << "; datasets hold CPU tensors");
    if (first) { n_ = t.size(0); first_name = name; first = false; }
    PH_CHECK(t.size(0) == n_, op,
             "tensor '" << name << "' has " << t.size(0) << " examples (shape " << shape_str(t.shape()) << ") but '"
                        << first_name << "' has " << n_);
    tensors_.emplace(name, t.is_contiguous() ? t : t.contiguous());
  }
}

Example TensorDataset::get(int64_t i) const {
  check_index(i, "data::TensorDataset::get");
  Example e;
  for (auto& [name, t] : tensors_) e.fields.emplace(name, t.select(0, i));
  return e;
}

Batch TensorDataset::get_batch(std::span<const int64_t> idx) const {
  const int64_t B = int64_t(idx.size());
  PH_CHECK(B > 0, "data::TensorDataset::get_batch", "empty index list");
  for (int64_t i : idx) check_index(i, "data::TensorDataset::get_batch");
  Batch out;
  for (auto& [name, t] : tensors_) {
    Shape s = t.shape();
    s[0] = B;
    Tensor b = Tensor::empty(s, t.dtype());
    const size_t row = size_t(t.numel() / std::max<int64_t>(n_, 1)) * t.itemsize();
    const char* src = static_cast<const char*>(t.raw());
    char* dst = static_cast<char*>(b.raw());
    if (row > 0) {
      tbb::parallel_for(tbb::blocked_range<int64_t>(0, B, std::max<int64_t>(1, int64_t((1 << 16) / row))),
                        [&](const tbb::blocked_range<int64_t>& r) {
                          for (int64_t j = r.begin(); j < r.end(); ++j)
                            std::memcpy(dst + size_t(j) * row, src + size_t(idx[size_t(j)]) * row, row);
                        });
    }
    out.fields.emplace(name, std::move(b));
  }
  return out;
}

const Tensor& TensorDataset::tensor(const std::string& name) const {
  auto it = tensors_.find(name);
  PH_CHECK(it != tensors_.end(), "data::TensorDataset::tensor", "no tensor '" << name << "'; the dataset has " << names_str(tensors_));
  return it->second;
}

// ---------- SubsetDataset ----------
SubsetDataset::SubsetDataset(std::shared_ptr<Dataset> base, std::vector<int64_t> indices)
    : base_(std::move(base)), indices_(std::move(indices)) {
  PH_CHECK(base_ != nullptr, "data::SubsetDataset", "base dataset is null");
  const int64_t n = base_->size();
  for (size_t j = 0; j < indices_.size(); ++j)
    PH_CHECK(indices_[j] >= 0 && indices_[j] < n, "data::SubsetDataset",
             "index " << indices_[j] << " (position " << j << ") out of range for a dataset of " << n << " examples");
}

Example SubsetDataset::get(int64_t i) const {
  check_index(i, "data::SubsetDataset::get");
  return base_->get(indices_[size_t(i)]);
}

Batch SubsetDataset::get_batch(std::span<const int64_t> idx) const {
  std::vector<int64_t> mapped(idx.size());
  for (size_t j = 0; j < idx.size(); ++j) {
    check_index(idx[j], "data::SubsetDataset::get_batch");
    mapped[j] = indices_[size_t(idx[j])];
  }
  return base_->get_batch(mapped);
}

std::pair<std::vector<int64_t>, std::vector<int64_t>> random_split(int64_t n, int64_t n_first, uint64_t seed) {
  PH_CHECK(n >= 0 && n_first >= 0 && n_first <= n, "data::random_split",
           "cannot take " << n_first << " of " << n << " examples");
  std::vector<int64_t> p = random_permutation(n, derive_seed(seed, 0));
  std::vector<int64_t> a(p.begin(), p.begin() + n_first), b(p.begin() + n_first, p.end());
  return {std::move(a), std::move(b)};
}

// ---------- conversions ----------
Tensor u8_to_unit_float(const Tensor& u8) {
  PH_CHECK(u8.defined() && u8.dtype() == DType::u8 && u8.device().is_cpu(), "data::u8_to_unit_float",
           "expected a CPU u8 tensor, got " << (u8.defined() ? u8.str() : std::string("an undefined tensor")));
  Tensor c = u8.is_contiguous() ? u8 : u8.contiguous();
  Tensor out = Tensor::empty(c.shape(), DType::f32);
  const uint8_t* s = static_cast<const uint8_t*>(c.raw());
  float* d = static_cast<float*>(out.raw());
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, c.numel(), 1 << 16), [&](const tbb::blocked_range<int64_t>& r) {
    for (int64_t i = r.begin(); i < r.end(); ++i) d[i] = float(s[i]) * (1.0f / 255.0f);
  });
  return out;
}

Tensor to_i64(const Tensor& t) {
  PH_CHECK(t.defined() && !is_floating(t.dtype()), "data::to_i64",
           "expected an integer tensor, got " << (t.defined() ? t.str() : std::string("an undefined tensor")));
  return t.dtype() == DType::i64 ? t : t.to(DType::i64);
}

}  // namespace polyhead::data
