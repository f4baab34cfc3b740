// engine/tensor.cpp: Tensor metadata, views and copies. Computation dispatches to the Backend.
#include "engine/tensor.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "engine/backend.h"
#include "engine/rng.h"

namespace polyhead {

// ---------- Storage ----------
Storage::Storage(size_t n, Device d) : nbytes(n), device(d) { data = n ? backend_for(d).allocate(n) : nullptr; }
Storage::Storage(void* borrowed, size_t n, Device d) : data(borrowed), nbytes(n), device(d), owned(false) {}
Storage::~Storage() {
  if (!owned || !data) return;
  if (pinned) backend_for(pinned_by).host_free_pinned(data);
  else backend_for(device).deallocate(data, nbytes);
}
std::shared_ptr<Storage> Storage::pinned_host(size_t n, Device accel) {
  if (accel.is_cpu() || !backend_available(accel)) return nullptr;
  void* p = n ? backend_for(accel).host_alloc_pinned(n) : nullptr;
  if (n && !p) return nullptr;
  auto s = std::make_shared<Storage>(p, n, Device::cpu());
  s->owned = true;
  s->pinned = true;
  s->pinned_by = accel;
  return s;
}

// ---------- shape helpers ----------
int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (auto v : s) n *= v;
  return n;
}
Shape contiguous_strides(const Shape& s) {
  Shape st(s.size());
  int64_t acc = 1;
  for (int i = int(s.size()) - 1; i >= 0; --i) { st[i] = acc; acc *= std::max<int64_t>(s[i], 1); }
  return st;
}
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t x = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t y = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (x != y && x != 1 && y != 1)
      throw Error(op, "shapes " + shape_str(a) + " and " + shape_str(b) + " cannot be broadcast (dim " +
                          std::to_string(i) + ": " + std::to_string(x) + " vs " + std::to_string(y) + ")",
                  "sizes must match or be 1, aligned from the right");
    out[i] = x == 1 ? y : x;
  }
  return out;
}

// ---------- construction ----------
Tensor Tensor::empty(const Shape& shape, DType dt, Device dev) {
  for (auto v : shape) PH_CHECK(v >= 0, "Tensor::empty", "negative size in shape " << shape_str(shape));
  Tensor t;
  t.storage_ = std::make_shared<Storage>(size_t(shape_numel(shape)) * dtype_size(dt), dev);
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  t.dtype_ = dt;
  return t;
}
Tensor Tensor::from_blob(void* data, const Shape& shape, DType dt, Device dev) {
  Tensor t;
  t.storage_ = std::make_shared<Storage>(data, size_t(shape_numel(shape)) * dtype_size(dt), dev);
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  t.dtype_ = dt;
  return t;
}
Tensor Tensor::zeros(const Shape& s, DType dt, Device d) { return full(s, 0.0, dt, d); }
Tensor Tensor::ones(const Shape& s, DType dt, Device d) { return full(s, 1.0, dt, d); }
Tensor Tensor::full(const Shape& s, double v, DType dt, Device d) {
  Tensor t = empty(s, dt, d);
  if (t.numel()) backend_for(d).fill(t, v);
  return t;
}
Tensor Tensor::arange(double start, double end, double step, DType dt, Device d) {
  PH_CHECK(step != 0, "arange", "step must be non-zero");
  int64_t n = std::max<int64_t>(0, int64_t(std::ceil((end - start) / step)));
  Tensor t = empty({n}, dt, d);
  if (n) backend_for(d).arange(t, start, step);
  return t;
}
Tensor Tensor::rand(const Shape& s, DType dt, Device d) {
  PH_CHECK(is_floating(dt), "Tensor::rand", "dtype " << dtype_name(dt) << " is not floating");
  Tensor t = empty(s, dt, d);
  if (t.numel()) {
    auto& g = default_generator();
    backend_for(d).random_uniform(t, g.seed(), g.reserve(uint64_t(t.numel())), 0.0, 1.0);
  }
  return t;
}
Tensor Tensor::randn(const Shape& s, DType dt, Device d) {
  PH_CHECK(is_floating(dt), "Tensor::randn", "dtype " << dtype_name(dt) << " is not floating");
  Tensor t = empty(s, dt, d);
  if (t.numel()) {
    auto& g = default_generator();
    backend_for(d).random_normal(t, g.seed(), g.reserve(uint64_t(t.numel())), 0.0, 1.0);
  }
  return t;
}

// ---------- metadata ----------
int64_t Tensor::numel() const { return shape_numel(shape_); }
Device Tensor::device() const { return storage_ ? storage_->device : Device::cpu(); }
void* Tensor::raw() const {
  check_defined("Tensor::raw");
  return static_cast<char*>(storage_->data) + offset_ * int64_t(itemsize());
}
bool Tensor::is_contiguous() const {
  if (numel() == 0) return true;  // no element to be out of place (strides of size-0 dims vary)
  int64_t acc = 1;
  for (int i = dim() - 1; i >= 0; --i) {
    if (shape_[i] == 1) continue;
    if (strides_[i] != acc) return false;
    acc *= shape_[i];
  }
  return true;
}
int Tensor::wrap_dim(int d) const {
  int r = dim();
  int w = d < 0 ? d + r : d;
  PH_CHECK_HINT(w >= 0 && w < std::max(r, 1), "dim", "dimension " << d << " out of range for a tensor of rank " << r,
                "use a dimension in [-rank, rank)");
  return w;
}
std::string Tensor::str() const {
  if (!defined()) return "Tensor[undefined]";
  return std::string("Tensor[") + dtype_name(dtype_) + ", " + device().str() + ", " + shape_str(shape_) + "]";
}
void Tensor::check_dtype(DType want, const char* op) const {
  check_defined(op);
  PH_CHECK(dtype_ == want, op, "expected dtype " << dtype_name(want) << ", got " << str());
}
void Tensor::check_defined(const char* op) const {
  if (!storage_) throw Error(op, "tensor is undefined", "create it with a factory (zeros, empty, ...) first");
}

// ---------- views ----------
Tensor Tensor::as_strided(const Shape& shape, const Shape& strides, int64_t offset) const {
  check_defined("as_strided");
  Tensor t = *this;
  t.shape_ = shape;
  t.strides_ = strides;
  t.offset_ = offset;
  return t;
}

static Shape infer_shape(const Shape& want, int64_t numel, const char* op) {
  Shape s = want;
  int neg = -1;
  int64_t known = 1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      PH_CHECK(neg < 0, op, "only one -1 allowed in " << shape_str(want));
      neg = int(i);
    } else {
      PH_CHECK(s[i] >= 0, op, "negative size in " << shape_str(want));
      known *= s[i];
    }
  }
  if (neg >= 0) {
    PH_CHECK(known != 0 && numel % known == 0, op, "cannot infer -1 in " << shape_str(want) << " for " << numel << " elements");
    s[neg] = numel / known;
  }
  PH_CHECK(shape_numel(s) == numel, op, "shape " << shape_str(want) << " has " << shape_numel(s) << " elements, tensor has " << numel);
  return s;
}

Tensor Tensor::view(const Shape& want) const {
  check_defined("view");
  Shape s = infer_shape(want, numel(), "view");
  PH_CHECK_HINT(is_contiguous(), "view", "cannot view non-contiguous " << str() << " as " << shape_str(s),
                "call .contiguous() first, or use reshape()");
  Tensor t = *this;
  t.shape_ = s;
  t.strides_ = contiguous_strides(s);
  return t;
}
Tensor Tensor::reshape(const Shape& want) const {
  check_defined("reshape");
  return is_contiguous() ? view(want) : contiguous().view(want);
}
Tensor Tensor::flatten(int start, int end) const {
  if (dim() == 0) return reshape({1});
  int s = wrap_dim(start), e = wrap_dim(end);
  Shape ns(shape_.begin(), shape_.begin() + s);
  int64_t m = 1;
  for (int i = s; i <= e; ++i) m *= shape_[i];
  ns.push_back(m);
  ns.insert(ns.end(), shape_.begin() + e + 1, shape_.end());
  return reshape(ns);
}
Tensor Tensor::transpose(int a, int b) const {
  a = wrap_dim(a); b = wrap_dim(b);
  Tensor t = *this;
  std::swap(t.shape_[a], t.shape_[b]);
  std::swap(t.strides_[a], t.strides_[b]);
  return t;
}
Tensor Tensor::permute(const std::vector<int>& dims) const {
  PH_CHECK(int(dims.size()) == dim(), "permute", "got " << dims.size() << " dims for " << str());
  Tensor t = *this;
  std::vector<bool> seen(dims.size(), false);
  for (size_t i = 0; i < dims.size(); ++i) {
    int d = wrap_dim(dims[i]);
    PH_CHECK(!seen[d], "permute", "dimension " << d << " repeated");
    seen[d] = true;
    t.shape_[i] = shape_[d];
    t.strides_[i] = strides_[d];
  }
  return t;
}
Tensor Tensor::narrow(int d, int64_t start, int64_t length) const {
  d = wrap_dim(d);
  PH_CHECK(start >= 0 && length >= 0 && start + length <= shape_[d], "narrow",
           "range [" << start << ", " << start + length << ") out of bounds for dim " << d << " of " << str());
  Tensor t = *this;
  t.shape_[d] = length;
  t.offset_ += start * strides_[d];
  return t;
}
Tensor Tensor::slice(int d, int64_t start, int64_t end, int64_t step) const {
  d = wrap_dim(d);
  PH_CHECK(step > 0, "slice", "step must be positive");
  int64_t n = shape_[d];
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Tensor t = *this;
  t.shape_[d] = (end - start + step - 1) / step;
  t.offset_ += start * strides_[d];
  t.strides_[d] *= step;
  return t;
}
Tensor Tensor::select(int d, int64_t index) const {
  d = wrap_dim(d);
  if (index < 0) index += shape_[d];
  PH_CHECK(index >= 0 && index < shape_[d], "select", "index " << index << " out of range for dim " << d << " of " << str());
  Tensor t = narrow(d, index, 1);
  return t.squeeze(d);
}
Tensor Tensor::expand(const Shape& want) const {
  check_defined("expand");
  PH_CHECK(want.size() >= shape_.size(), "expand", "cannot expand " << str() << " to fewer dims " << shape_str(want));
  size_t lead = want.size() - shape_.size();
  Tensor t = *this;
  t.shape_.assign(want.size(), 0);
  t.strides_.assign(want.size(), 0);
  for (size_t i = 0; i < want.size(); ++i) {
    if (i < lead) {
      PH_CHECK(want[i] >= 0, "expand", "size -1 not allowed in new leading dims");
      t.shape_[i] = want[i];
      t.strides_[i] = 0;
    } else {
      int64_t have = shape_[i - lead], w = want[i] == -1 ? have : want[i];
      PH_CHECK_HINT(have == w || have == 1, "expand", "cannot expand " << str() << " to " << shape_str(want),
                    "only size-1 dims can be expanded");
      t.shape_[i] = w;
      t.strides_[i] = have == w ? strides_[i - lead] : 0;
    }
  }
  return t;
}
Tensor Tensor::squeeze(int d) const {
  d = wrap_dim(d);
  if (shape_[d] != 1) return *this;
  Tensor t = *this;
  t.shape_.erase(t.shape_.begin() + d);
  t.strides_.erase(t.strides_.begin() + d);
  return t;
}
Tensor Tensor::squeeze() const {
  Tensor t = *this;
  for (int i = dim() - 1; i >= 0; --i) t = t.squeeze(i);
  return t;
}
Tensor Tensor::unsqueeze(int d) const {
  int r = dim();
  if (d < 0) d += r + 1;
  PH_CHECK(d >= 0 && d <= r, "unsqueeze", "dimension " << d << " out of range for rank " << r);
  Tensor t = *this;
  int64_t st = d < r ? shape_[d] * strides_[d] : 1;
  t.shape_.insert(t.shape_.begin() + d, 1);
  t.strides_.insert(t.strides_.begin() + d, st);
  return t;
}

// ---------- copies ----------
Tensor Tensor::contiguous() const {
  check_defined("contiguous");
  return is_contiguous() ? *this : clone();
}
Tensor Tensor::clone() const {
  check_defined("clone");
  Tensor out = empty(shape_, dtype_, device());
  if (numel()) backend_for(device()).copy(*this, out);
  return out;
}
Tensor Tensor::to(DType dt) const {
  check_defined("to");
  if (dt == dtype_) return *this;
  Tensor out = empty(shape_, dt, device());
  if (numel()) backend_for(device()).copy(*this, out);
  return out;
}
Tensor Tensor::to(Device dev) const {
  check_defined("to");
  if (dev == device()) return *this;
  Tensor src = contiguous();
  Tensor out = empty(shape_, dtype_, dev);
  size_t n = size_t(numel()) * itemsize();
  if (!n) return out;
  if (src.device().is_cpu() && src.is_pinned()) {
    // No wait for the copy: the source storage is kept alive until it has completed.
    backend_for(dev).copy_from_pinned_host(out.raw(), src.raw(), n, src.storage());
  } else if (src.device().is_cpu()) {
    backend_for(dev).copy_from_host(out.raw(), src.raw(), n);
  } else if (dev.is_cpu()) {
    backend_for(src.device()).copy_to_host(out.raw(), src.raw(), n);
  } else {
    Tensor host = src.to(Device::cpu());
    backend_for(dev).copy_from_host(out.raw(), host.raw(), n);
  }
  return out;
}
void Tensor::copy_(const Tensor& src) {
  check_defined("copy_");
  src.check_defined("copy_");
  Tensor s = src.device() == device() ? src : src.to(device());
  Tensor e = s.expand(shape_);
  if (numel()) backend_for(device()).copy(e, *this);
}
void Tensor::fill_(double v) {
  check_defined("fill_");
  if (!numel()) return;
  if (is_contiguous()) {
    backend_for(device()).fill(*this, v);
  } else {
    Tensor tmp = full(shape_, v, dtype_, device());
    backend_for(device()).copy(tmp, *this);
  }
}
double Tensor::item() const {
  check_defined("item");
  PH_CHECK(numel() == 1, "item", "item() needs exactly one element, " << str() << " has " << numel());
  Tensor c = to(Device::cpu()).contiguous();
  return dispatch_dtype(dtype_, [&](auto* tag) { return double(*static_cast<decltype(tag)>(c.raw())); });
}

// ---------- backend registry ----------
static Backend* g_backends[2] = {nullptr, nullptr};
Backend* make_cpu_backend();  // engine/cpu/cpu_backend.cpp
void register_backend(Device::Type t, Backend* b) { g_backends[int(t)] = b; }
bool backend_available(Device::Type t) { return t == Device::Type::CPU || g_backends[int(t)] != nullptr; }
bool backend_available(Device d) { return d.is_cpu() || g_backends[int(d.type)] != nullptr; }

Tensor Tensor::pin_memory(Device accel) const {
  check_defined("pin_memory");
  PH_CHECK(device().is_cpu(), "pin_memory", "the tensor is on " << device().str() << "; only CPU tensors can be pinned");
  if (is_pinned() && is_contiguous()) return *this;
  auto st = Storage::pinned_host(size_t(numel()) * itemsize(), accel);
  if (!st) return contiguous();  // no page-locked memory here: ordinary memory, same values
  Tensor out;
  out.storage_ = std::move(st);
  out.shape_ = shape_;
  out.strides_ = contiguous_strides(shape_);
  out.dtype_ = dtype_;
  if (numel()) backend_for(Device::cpu()).copy(*this, out);
  return out;
}
bool Tensor::is_pinned() const { return storage_ && storage_->pinned; }

Backend& backend_for(Device d) {
  if (d.is_cpu()) {
    static Backend* cpu = make_cpu_backend();
    return *cpu;
  }
  Backend* b = g_backends[int(d.type)];
  if (!b) throw Error("backend_for", "no backend for device " + d.str(),
                      "this build or machine has no CUDA device; use Device::cpu()");
  return *b;
}

Generator& default_generator() {
  static Generator g(0);
  return g;
}

}  // namespace polyhead
