// engine/cuda/cuda_context.cpp: device contexts (one stream, a cuBLAS handle with its workspace and
// a cuDNN handle per device), error reporting, the caching allocator, registration (init) and the
// public functions of cuda_api.h.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <unordered_map>
#include <vector>

#include "engine/backend.h"
#include "engine/cuda/cuda_api.h"
#include "engine/cuda/cuda_common.h"

#ifndef POLYHEAD_CUDA_ARCHS
#define POLYHEAD_CUDA_ARCHS "unknown"
#endif

namespace polyhead::cuda {

// ---------------------------------------------------------------------------------------------
// errors
[[noreturn]] void throw_cuda_error(cudaError_t e, const char* call, const char* file, int line) {
  std::ostringstream o;
  o << call << " failed: " << cudaGetErrorName(e) << " (" << cudaGetErrorString(e) << ") at " << file << ":" << line;
  std::string hint;
  switch (e) {
    case cudaErrorMemoryAllocation: hint = "the device is out of memory: reduce the batch size or call polyhead::cuda::empty_cache()"; break;
    case cudaErrorNoKernelImageForDevice:
    case cudaErrorUnsupportedPtxVersion:
      hint = std::string("this build has kernels for CUDA architectures ") + POLYHEAD_CUDA_ARCHS +
             "; reconfigure with -DCMAKE_CUDA_ARCHITECTURES=<your GPU's, e.g. native>";
      break;
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
      hint = "a kernel faulted; the CUDA context is unusable now. Rerun with CUDA_LAUNCH_BLOCKING=1 (and compute-sanitizer) to find the op";
      break;
    case cudaErrorInsufficientDriver: hint = "the NVIDIA driver is older than the CUDA runtime this was built with; update the driver"; break;
    default: break;
  }
  throw Error("cuda", o.str(), hint);
}

static std::string cublas_status_text(cublasStatus_t s) {
  return std::string(cublasGetStatusName(s)) + " (" + cublasGetStatusString(s) + ")";
}
[[noreturn]] static void throw_cublas_error(cublasStatus_t s, const char* call, const char* file, int line) {
  std::ostringstream o;
  o << call << " failed: " << cublas_status_text(s) << " at " << file << ":" << line;
  throw Error("cublas", o.str());
}
[[noreturn]] static void throw_cudnn_error(cudnnStatus_t s, const char* call, const char* file, int line) {
  std::ostringstream o;
  o << call << " failed: " << cudnnGetErrorString(s) << " at " << file << ":" << line;
  throw Error("cudnn", o.str());
}
#define PH_CUBLAS_CHECK(call)                                                                                  \
  do {                                                                                                         \
    cublasStatus_t ph_s_ = (call);                                                                             \
    if (ph_s_ != CUBLAS_STATUS_SUCCESS) throw_cublas_error(ph_s_, #call, __FILE__, __LINE__);                  \
  } while (0)
#define PH_CUDNN_CHECK(call)                                                                                   \
  do {                                                                                                         \
    cudnnStatus_t ph_s_ = (call);                                                                              \
    if (ph_s_ != CUDNN_STATUS_SUCCESS) throw_cudnn_error(ph_s_, #call, __FILE__, __LINE__);                    \
  } while (0)

static std::string bytes_str(size_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = double(b);
  int u = 0;
  while (v >= 1024.0 && u < 6) { v /= 1024.0; ++u; }
  char buf[64];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", v, units[u]);
  return buf;
}

// ---------------------------------------------------------------------------------------------
// device discovery
static int g_device_count = -1;
static std::string g_no_device_reason;
static std::once_flag g_count_once;

int device_count() {
  std::call_once(g_count_once, [] {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
      g_no_device_reason = std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
      (void)cudaGetLastError();  // clear the sticky-free error state
      n = 0;
    } else if (n == 0) {
      g_no_device_reason = "the driver reports no CUDA device";
    }
    g_device_count = n;
  });
  return g_device_count;
}
bool available() { return device_count() > 0; }

// ---------------------------------------------------------------------------------------------
// contexts
static std::mutex g_ctx_mu;
static std::vector<std::unique_ptr<DeviceContext>>& contexts() {
  static auto* v = new std::vector<std::unique_ptr<DeviceContext>>();  // never destroyed
  return *v;
}

static void create_context(DeviceContext& c, int index) {
  c.index = index;
  PH_CUDA_CHECK(cudaSetDevice(index));
  PH_CUDA_CHECK(cudaGetDeviceProperties(&c.prop, index));
  PH_CUDA_CHECK(cudaStreamCreateWithFlags(&c.stream, cudaStreamNonBlocking));
  cublasHandle_t h = nullptr;
  PH_CUBLAS_CHECK(cublasCreate(&h));
  c.cublas = h;
  PH_CUBLAS_CHECK(cublasSetStream(h, c.stream));
  // A workspace owned by us (32 MiB, what cuBLAS recommends for Hopper) keeps cuBLAS from
  // allocating its own and, with the single stream, keeps its results reproducible.
  c.cublas_workspace_size = size_t(32) << 20;
  PH_CUDA_CHECK(cudaMalloc(&c.cublas_workspace, c.cublas_workspace_size));
  PH_CUBLAS_CHECK(cublasSetWorkspace(h, c.cublas_workspace, c.cublas_workspace_size));
  PH_CUBLAS_CHECK(cublasSetAtomicsMode(h, CUBLAS_ATOMICS_NOT_ALLOWED));
  PH_CUBLAS_CHECK(cublasSetPointerMode(h, CUBLAS_POINTER_MODE_HOST));
}

DeviceContext& context(int index) {
  const int n = device_count();
  if (index < 0 || index >= n)
    throw Error("cuda", "device cuda:" + std::to_string(index) + " does not exist (" + std::to_string(n) +
                            " CUDA device(s) present" + (n == 0 ? ", " + g_no_device_reason : std::string()) + ")",
                "use Device::cuda(i) with i < polyhead::cuda::device_count()");
  DeviceContext* c = nullptr;
  {
    std::lock_guard<std::mutex> g(g_ctx_mu);
    auto& v = contexts();
    if (v.size() < size_t(n)) v.resize(size_t(n));
    if (!v[size_t(index)]) {
      auto fresh = std::make_unique<DeviceContext>();
      create_context(*fresh, index);
      v[size_t(index)] = std::move(fresh);
    }
    c = v[size_t(index)].get();
  }
  int cur = -1;
  PH_CUDA_CHECK(cudaGetDevice(&cur));
  if (cur != index) PH_CUDA_CHECK(cudaSetDevice(index));
  return *c;
}

DeviceContext& context_of(const Tensor& t, const char* op) {
  PH_CHECK(t.defined(), op, "tensor is undefined");
  PH_CHECK(t.device().is_cuda(), op, "expected a cuda tensor, got " << t.str());
  return context(t.device().index);
}

cudnnContext* cudnn_handle(DeviceContext& ctx) {
  std::lock_guard<std::mutex> g(ctx.mu);
  if (!ctx.cudnn) {
    cudnnHandle_t h = nullptr;
    PH_CUDNN_CHECK(cudnnCreate(&h));
    PH_CUDNN_CHECK(cudnnSetStream(h, ctx.stream));
    ctx.cudnn = h;
  }
  return ctx.cudnn;
}

int64_t max_blocks(const DeviceContext& ctx) {
  // 32 blocks of 256 threads per multiprocessor: several waves, enough to hide latency.
  return std::max<int64_t>(1, int64_t(ctx.prop.multiProcessorCount) * 32);
}

static std::atomic<bool> g_tf32{false};
void set_tf32(bool on) { g_tf32.store(on); }
bool tf32() { return g_tf32.load(); }
bool tf32_enabled() { return g_tf32.load(); }

// ---------------------------------------------------------------------------------------------
// caching allocator
//   small pool: requests <= 1 MiB, rounded up to a power of two (>= 512 B), reused exactly;
//   large pool: requests rounded up to 2 MiB, reused best-fit when the cached block wastes at
//   most a quarter of it. Blocks are whole cudaMalloc allocations (never split), so freeing one is
//   a map update and reuse is safe in stream order (one stream per device).
//   Out of memory: every cached block of the device is released and cudaMalloc retried once.
//   Graph capture: while a capture runs on a device, its allocations come from a private pool of
//   the graph (cached blocks of that pool, else cudaMalloc, which relaxed capture allows); blocks of
//   the pool freed at any time go back to the pool, never to the general cache, because the
//   graph's kernels use those addresses at every replay. Blocks allocated before the capture and
//   freed during it may still be read by captured kernels: they are retained by the pool too.
//   Releasing the graph returns all of its cached and retained blocks to the general cache.
namespace {

constexpr size_t kSmallLimit = size_t(1) << 20;
constexpr size_t kLargeRound = size_t(2) << 20;
constexpr size_t kMaxRequest = size_t(1) << 60;

struct Block {
  int device;
  size_t size;       // rounded
  size_t requested;  // as asked
  int64_t pool;      // 0: general; else the graph pool that owns the block
};

struct FreeLists {
  std::multimap<size_t, void*> small, large;  // cached blocks by size
};

struct PrivatePool : FreeLists {
  std::vector<std::pair<size_t, void*>> retained;  // general blocks freed during the capture
};

struct DevicePools : FreeLists {
  size_t allocated = 0, peak = 0, cached = 0, requested = 0;
  int64_t num_allocations = 0, num_cache_hits = 0, num_mallocs = 0, num_ooms = 0;
  int64_t capture_pool = 0;  // the pool of the capture in progress, 0 = none
  std::map<int64_t, PrivatePool> priv;
};

class Allocator {
public:
  static size_t round_size(size_t n) {
    if (n <= kSmallLimit) {
      size_t r = 512;
      while (r < n) r <<= 1;
      return r;
    }
    return (n + kLargeRound - 1) / kLargeRound * kLargeRound;
  }

  void* allocate(int device, size_t n) {
    if (n == 0) n = 1;
    std::lock_guard<std::mutex> g(mu_);
    DevicePools& P = pools(device);
    ++P.num_allocations;
    if (n > kMaxRequest) oom(device, P, n, n, cudaErrorMemoryAllocation);
    const size_t r = round_size(n);
    const bool small = r <= kSmallLimit;
    const int64_t pool_id = P.capture_pool;
    FreeLists& lists = pool_id ? static_cast<FreeLists&>(P.priv[pool_id]) : static_cast<FreeLists&>(P);
    auto& pool = small ? lists.small : lists.large;
    auto it = pool.lower_bound(r);
    if (it != pool.end() && (small ? it->first == r : it->first - r <= it->first / 4)) {
      void* p = it->second;
      const size_t sz = it->first;
      pool.erase(it);
      P.cached -= sz;
      ++P.num_cache_hits;
      take(P, p, device, sz, n, pool_id);
      return p;
    }
    void* p = nullptr;
    cudaError_t e = malloc_on(device, &p, r, P);
    if (e == cudaErrorMemoryAllocation) {
      ++P.num_ooms;
      if (pool_id == 0) {  // cudaFree synchronises: not during a capture
        release_cached(device, P);
        e = malloc_on(device, &p, r, P);
        if (e == cudaErrorMemoryAllocation) ++P.num_ooms;
      }
      if (e == cudaErrorMemoryAllocation) oom(device, P, n, r, e);
    }
    if (e != cudaSuccess) throw_cuda_error(e, "cudaMalloc", __FILE__, __LINE__);
    take(P, p, device, r, n, pool_id);
    return p;
  }

  void free(void* p) {
    if (!p) return;
    std::lock_guard<std::mutex> g(mu_);
    auto it = active_.find(p);
    if (it == active_.end()) return;  // not ours (never happens for backend allocations)
    const Block b = it->second;
    active_.erase(it);
    DevicePools& P = pools(b.device);
    P.allocated -= b.size;
    P.requested -= b.requested;
    P.cached += b.size;
    auto owner = b.pool ? P.priv.find(b.pool) : P.priv.end();
    if (owner != P.priv.end()) {
      (b.size <= kSmallLimit ? owner->second.small : owner->second.large).emplace(b.size, p);
    } else if (P.capture_pool) {
      P.priv[P.capture_pool].retained.emplace_back(b.size, p);
    } else {
      (b.size <= kSmallLimit ? P.small : P.large).emplace(b.size, p);
    }
  }

  int64_t begin_capture(int device) {
    std::lock_guard<std::mutex> g(mu_);
    DevicePools& P = pools(device);
    PH_CHECK(P.capture_pool == 0, "graph capture", "a capture is already in progress on cuda:" << device);
    const int64_t id = ++next_pool_;
    P.priv[id];
    P.capture_pool = id;
    return id;
  }
  void end_capture(int device) {
    std::lock_guard<std::mutex> g(mu_);
    pools(device).capture_pool = 0;
  }
  // The graph is gone (the caller synchronised): its cached and retained blocks join the general cache.
  void release_pool(int device, int64_t id) {
    std::lock_guard<std::mutex> g(mu_);
    DevicePools& P = pools(device);
    auto it = P.priv.find(id);
    if (it == P.priv.end()) return;
    for (auto* l : {&it->second.small, &it->second.large})
      for (auto& [sz, p] : *l) (sz <= kSmallLimit ? P.small : P.large).emplace(sz, p);
    for (auto& [sz, p] : it->second.retained) (sz <= kSmallLimit ? P.small : P.large).emplace(sz, p);
    P.priv.erase(it);
  }

  void empty_cache() {
    std::lock_guard<std::mutex> g(mu_);
    for (auto& [dev, P] : pools_) release_cached(dev, P);
  }

  void reset_peak() {
    std::lock_guard<std::mutex> g(mu_);
    for (auto& [dev, P] : pools_) P.peak = P.allocated;
  }

  MemoryStats stats(int device) {
    std::lock_guard<std::mutex> g(mu_);
    MemoryStats s;
    auto it = pools_.find(device);
    if (it != pools_.end()) {
      const DevicePools& P = it->second;
      s.allocated = P.allocated;
      s.peak_allocated = P.peak;
      s.cached = P.cached;
      s.reserved = P.allocated + P.cached;
      s.requested = P.requested;
      s.num_allocations = P.num_allocations;
      s.num_cache_hits = P.num_cache_hits;
      s.num_device_mallocs = P.num_mallocs;
      s.num_ooms = P.num_ooms;
    }
    return s;
  }

private:
  DevicePools& pools(int device) { return pools_[device]; }

  void take(DevicePools& P, void* p, int device, size_t size, size_t requested, int64_t pool) {
    active_[p] = Block{device, size, requested, pool};
    P.allocated += size;
    P.requested += requested;
    P.peak = std::max(P.peak, P.allocated);
  }

  static cudaError_t malloc_on(int device, void** p, size_t n, DevicePools& P) {
    int cur = -1;
    cudaError_t e = cudaGetDevice(&cur);
    if (e != cudaSuccess) return e;
    if (cur != device && (e = cudaSetDevice(device)) != cudaSuccess) return e;
    e = cudaMalloc(p, n);
    if (e == cudaErrorMemoryAllocation) (void)cudaGetLastError();  // not sticky: clear it
    if (e == cudaSuccess) ++P.num_mallocs;
    if (cur != device) (void)cudaSetDevice(cur);
    return e;
  }

  static void release_cached(int device, DevicePools& P) {
    int cur = -1;
    if (cudaGetDevice(&cur) != cudaSuccess) return;
    if (cur != device) (void)cudaSetDevice(device);
    for (auto* pool : {&P.small, &P.large}) {  // the general cache only: graph pools stay
      for (auto& [sz, p] : *pool) { (void)cudaFree(p); P.cached -= sz; }  // cudaFree waits for the device
      pool->clear();
    }
    if (cur != device) (void)cudaSetDevice(cur);
  }

  [[noreturn]] static void oom(int device, const DevicePools& P, size_t n, size_t rounded, cudaError_t) {
    size_t free_b = 0, total_b = 0;
    (void)cudaMemGetInfo(&free_b, &total_b);
    (void)cudaGetLastError();
    std::ostringstream o;
    o << "cuda:" << device << " out of memory: tried to allocate " << bytes_str(n) << " (" << n << " bytes";
    if (rounded != n) o << ", rounded to " << rounded;
    o << "); in use by tensors " << bytes_str(P.allocated) << ", cached by the allocator " << bytes_str(P.cached)
      << ", device free " << bytes_str(free_b) << " of " << bytes_str(total_b)
      << " (the cache was emptied and the allocation retried)";
    throw Error("cuda allocate", o.str(),
                "reduce the batch size or model size, release tensors you no longer need, or use f32 instead of "
                "f64; polyhead::cuda::memory_stats() shows the allocator's usage");
  }

  std::mutex mu_;
  int64_t next_pool_ = 0;
  std::unordered_map<void*, Block> active_;
  std::map<int, DevicePools> pools_;
};

Allocator& allocator() {
  static auto* a = new Allocator();  // never destroyed: storages may be freed during exit
  return *a;
}

}  // namespace

void* device_alloc(int device, size_t nbytes) { return allocator().allocate(device, nbytes); }
void device_free(void* p) { allocator().free(p); }
int64_t alloc_begin_capture(int device) { return allocator().begin_capture(device); }
void alloc_end_capture(int device) { allocator().end_capture(device); }
void alloc_release_pool(int device, int64_t pool) { allocator().release_pool(device, pool); }

MemoryStats memory_stats(int device) {
  MemoryStats s = allocator().stats(device);
  if (device >= 0 && device < device_count()) {
    int cur = -1;
    if (cudaGetDevice(&cur) == cudaSuccess) {
      if (cur != device) (void)cudaSetDevice(device);
      if (cudaMemGetInfo(&s.device_free, &s.device_total) != cudaSuccess) (void)cudaGetLastError();
      if (cur != device) (void)cudaSetDevice(cur);
    }
  }
  return s;
}
void empty_cache() { allocator().empty_cache(); }
void reset_peak() { allocator().reset_peak(); }

// ---------------------------------------------------------------------------------------------
// small helpers of cuda_common.h
constexpr int kCheckSlots = 1024;  // flag words per device; a full arena is flushed (one sync)

ErrorFlag::ErrorFlag(DeviceContext& ctx) : ctx_(ctx) {
  if (ctx.capture_pool) {  // a word of the graph's pool, reset by the graph at every replay
    own_ = Scratch(ctx.index, sizeof(unsigned long long));
    ptr_ = own_.as<unsigned long long>();
    PH_CUDA_CHECK(cudaMemsetAsync(ptr_, 0xff, sizeof(unsigned long long), ctx.stream));
    return;
  }
  for (;;) {
    {
      std::lock_guard<std::mutex> g(ctx.check_mu);
      if (!ctx.check_arena) {
        PH_CUDA_CHECK(cudaMalloc(&ctx.check_arena, kCheckSlots * sizeof(unsigned long long)));
        PH_CUDA_CHECK(cudaMemsetAsync(ctx.check_arena, 0xff, kCheckSlots * sizeof(unsigned long long), ctx.stream));
      }
      if (ctx.check_used < kCheckSlots) {
        slot_ = ctx.check_used++;
        generation_ = ctx.check_generation;
        ptr_ = ctx.check_arena + slot_;
        ctx.check_reports.emplace_back();
        return;
      }
    }
    PH_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
    flush_checks(ctx);
  }
}

void ErrorFlag::check(std::function<void(int64_t)> report) {
  if (slot_ < 0) return;  // captured: not recorded
  std::lock_guard<std::mutex> g(ctx_.check_mu);
  // (a flush between the constructor and here, from another thread, has read and reset the word:
  // this check is dropped)
  if (generation_ == ctx_.check_generation && size_t(slot_) < ctx_.check_reports.size())
    ctx_.check_reports[size_t(slot_)] = std::move(report);
}

void flush_checks(DeviceContext& ctx) {
  std::vector<std::function<void(int64_t)>> reports;
  int used = 0;
  {
    std::lock_guard<std::mutex> g(ctx.check_mu);
    if (ctx.check_used == 0) return;
    used = ctx.check_used;
    reports.swap(ctx.check_reports);
    ctx.check_used = 0;
    ++ctx.check_generation;
  }
  std::vector<unsigned long long> h(size_t(used), ~0ull);
  PH_CUDA_CHECK(cudaMemcpyAsync(h.data(), ctx.check_arena, size_t(used) * sizeof(unsigned long long),
                                cudaMemcpyDeviceToHost, ctx.stream));
  PH_CUDA_CHECK(cudaMemsetAsync(ctx.check_arena, 0xff, size_t(used) * sizeof(unsigned long long), ctx.stream));
  PH_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
  for (size_t i = 0; i < h.size() && i < reports.size(); ++i)
    if (h[i] != ~0ull && reports[i]) reports[i](int64_t(h[i]));  // throws the op's error
}

void forbid_in_capture(DeviceContext& ctx, const char* what) {
  if (ctx.capture_pool)
    throw Error("graph capture", std::string(what) + " during a CUDA graph capture on cuda:" + std::to_string(ctx.index) +
                                     ": a captured step cannot wait for the device or exchange data with the host",
                "remove .item(), .to(Device::cpu()), tensors built on the host and synchronize() from the captured step "
                "(keep them outside it), or run the step without a graph");
}
int64_t read_i64(DeviceContext& ctx, const int64_t* dptr) {
  int64_t h = 0;
  PH_CUDA_CHECK(cudaMemcpyAsync(&h, dptr, sizeof h, cudaMemcpyDeviceToHost, ctx.stream));
  PH_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
  return h;
}

void check_same_device(const Tensor& t, const DeviceContext& ctx, const char* op, const char* name) {
  PH_CHECK(t.defined(), op, name << " is undefined");
  PH_CHECK_HINT(t.device().is_cuda() && t.device().index == ctx.index, op,
                name << " must be on cuda:" << ctx.index << ", got " << t.str(), "move operands to one device with .to(Device)");
}
void expect(const Tensor& t, const DeviceContext& ctx, DType dt, int64_t n, const char* op, const char* name) {
  check_same_device(t, ctx, op, name);
  PH_CHECK(t.dtype() == dt, op, name << " must be " << dtype_name(dt) << ", got " << t.str());
  PH_CHECK(t.is_contiguous(), op, name << " must be contiguous, got " << t.str());
  PH_CHECK(t.numel() == n, op, name << " must have " << n << " elements, got " << t.str());
}
void expect_float(DType dt, const char* op) {
  if (dt != DType::f32 && dt != DType::f64)
    throw Error(op, std::string("dtype ") + dtype_name(dt) + " not supported on cuda", "use f32 or f64");
}

// ---------------------------------------------------------------------------------------------
// the backend's memory functions
static int current_device() {
  int d = 0;
  PH_CUDA_CHECK(cudaGetDevice(&d));
  return d;
}
static int device_of_pointer(const void* p) {
  cudaPointerAttributes a{};
  PH_CUDA_CHECK(cudaPointerGetAttributes(&a, p));
  return a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged ? a.device : current_device();
}

void* CudaBackend::allocate(size_t nbytes) {
  const int d = current_device();
  (void)context(d);  // a context (stream) must exist before the memory is used
  return device_alloc(d, nbytes);
}
void CudaBackend::deallocate(void* p, size_t) { device_free(p); }
void CudaBackend::copy_from_host(void* dst, const void* src, size_t n) {
  if (!n) return;
  DeviceContext& ctx = context(device_of_pointer(dst));
  forbid_in_capture(ctx, "a copy from the host");
  PH_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, ctx.stream));
  // The source is pageable host memory the caller may free right away: wait for the copy.
  PH_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
  flush_checks(ctx);
}
// Pinned staging. cudaHostAlloc memory lets cudaMemcpyAsync return before the copy is done; the
// source's owner rides along with an event and is released by the first reap after the event
// has completed (or at synchronize()), so a batch's host buffer is never freed under a copy.
static void reap_pinned_copies(DeviceContext& ctx, bool wait_all) {
  std::vector<std::shared_ptr<void>> done;  // released outside the lock (may free host memory)
  {
    std::lock_guard<std::mutex> g(ctx.pin_mu);
    size_t kept = 0;
    for (auto& [ev, keep] : ctx.pin_pending) {
      cudaError_t st = wait_all ? cudaEventSynchronize(ev) : cudaEventQuery(ev);
      if (st == cudaErrorNotReady) { ctx.pin_pending[kept++] = {ev, std::move(keep)}; continue; }
      PH_CUDA_CHECK(st);
      done.push_back(std::move(keep));
      ctx.pin_events.push_back(ev);
    }
    ctx.pin_pending.resize(kept);
  }
}
void* CudaBackend::host_alloc_pinned(size_t n) {
  void* p = nullptr;
  (void)context(current_device());
  if (cudaHostAlloc(&p, n, cudaHostAllocDefault) != cudaSuccess) {
    (void)cudaGetLastError();  // no page-locked memory left: the caller falls back to pageable memory
    return nullptr;
  }
  return p;
}
void CudaBackend::host_free_pinned(void* p) {
  if (p) PH_CUDA_CHECK(cudaFreeHost(p));
}
void CudaBackend::copy_from_pinned_host(void* dst, const void* src, size_t n, std::shared_ptr<void> keep) {
  if (!n) return;
  DeviceContext& ctx = context(device_of_pointer(dst));
  forbid_in_capture(ctx, "a copy from the host");
  reap_pinned_copies(ctx, false);
  PH_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, ctx.stream));
  cudaEvent_t ev = nullptr;
  {
    std::lock_guard<std::mutex> g(ctx.pin_mu);
    if (!ctx.pin_events.empty()) { ev = ctx.pin_events.back(); ctx.pin_events.pop_back(); }
  }
  if (!ev) PH_CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
  PH_CUDA_CHECK(cudaEventRecord(ev, ctx.stream));
  std::lock_guard<std::mutex> g(ctx.pin_mu);
  ctx.pin_pending.emplace_back(ev, std::move(keep));
}
void CudaBackend::copy_to_host(void* dst, const void* src, size_t n) {
  if (!n) return;
  DeviceContext& ctx = context(device_of_pointer(src));
  forbid_in_capture(ctx, "a copy to the host");
  PH_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, ctx.stream));
  PH_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
  flush_checks(ctx);
}
void CudaBackend::synchronize() {
  std::vector<DeviceContext*> cs;
  {
    std::lock_guard<std::mutex> g(g_ctx_mu);
    for (auto& c : contexts()) if (c) cs.push_back(c.get());
  }
  for (auto* c : cs) forbid_in_capture(*c, "synchronize()");
  for (auto* c : cs) PH_CUDA_CHECK(cudaStreamSynchronize(c->stream));
  for (auto* c : cs) reap_pinned_copies(*c, true);
  for (auto* c : cs) flush_checks(*c);
}

CudaBackend& backend_instance() {
  static auto* b = new CudaBackend();  // never destroyed
  return *b;
}

// ---------------------------------------------------------------------------------------------
// init and summary
static std::mutex g_init_mu;
static bool g_registered = false;

void init() {
  std::lock_guard<std::mutex> g(g_init_mu);
  if (g_registered) return;
  if (const char* env = std::getenv("POLYHEAD_TF32")) set_tf32(std::strcmp(env, "1") == 0 || std::strcmp(env, "on") == 0);
  const int n = device_count();
  if (n == 0) return;
  for (int d = 0; d < n; ++d) {
    PH_CUDA_CHECK(cudaSetDevice(d));
    cudaDeviceProp prop{};
    PH_CUDA_CHECK(cudaGetDeviceProperties(&prop, d));
    cudaError_t e = probe_kernel_image();
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      std::ostringstream o;
      o << "cuda:" << d << " " << prop.name << " has compute capability " << prop.major << "." << prop.minor
        << ", but this build has kernels only for CUDA architectures " << POLYHEAD_CUDA_ARCHS << " ("
        << cudaGetErrorName(e) << ")";
      throw Error("cuda init", o.str(),
                  "reconfigure with -DCMAKE_CUDA_ARCHITECTURES=" + std::to_string(prop.major * 10 + prop.minor) +
                      " (or 'native') and rebuild");
    }
  }
  PH_CUDA_CHECK(cudaSetDevice(0));
  (void)context(0);
  register_backend(Device::Type::CUDA, &backend_instance());
  g_registered = true;
}

std::string device_summary() {
  const int n = device_count();
  std::ostringstream o;
  if (n == 0) {
    o << "no CUDA device (" << g_no_device_reason << ")";
    return o.str();
  }
  int drv = 0, rt = 0;
  (void)cudaDriverGetVersion(&drv);
  (void)cudaRuntimeGetVersion(&rt);
  for (int d = 0; d < n; ++d) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, d) != cudaSuccess) { (void)cudaGetLastError(); continue; }
    o << "cuda:" << d << " " << p.name << " (sm_" << p.major << p.minor << ", " << bytes_str(p.totalGlobalMem) << ", "
      << p.multiProcessorCount << " SMs); ";
  }
  const size_t cudnn_v = cudnnGetVersion();
  o << "driver " << drv / 1000 << "." << (drv % 1000) / 10 << ", runtime " << rt / 1000 << "." << (rt % 1000) / 10
    << ", cuBLAS " << CUBLAS_VER_MAJOR << "." << CUBLAS_VER_MINOR << ", cuDNN " << cudnn_v / 10000 << "."
    << (cudnn_v % 10000) / 100 << "." << cudnn_v % 100 << ", built for sm " << POLYHEAD_CUDA_ARCHS;
  return o.str();
}

}  // namespace polyhead::cuda
