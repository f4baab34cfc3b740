// engine/cuda/cuda_api.h: the public face of the CUDA backend. Plain C++: no CUDA header or type
// appears here, so any part of the library (and the tests) may include it. The functions exist only
// in builds with the CUDA target (POLYHEAD_HAVE_CUDA=1); every one of them is safe to call on a
// machine without a GPU or driver (device_count() is then 0 and init() registers nothing).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace polyhead::cuda {

// Number of usable CUDA devices; 0 when there is no driver, no device, or the driver is too old.
int device_count();
// device_count() > 0.
bool available();
// One line: each device ("cuda:0 NVIDIA H200 (sm_90, 139.80 GiB, 132 SMs)"), then the driver,
// runtime, cuBLAS and cuDNN versions and the compiled architectures; or why no device is usable.
std::string device_summary();

// Registers the CUDA backend for Device::Type::CUDA when a device is present (otherwise does
// nothing). Checks that this build has kernels for the device's compute capability and throws a
// polyhead::Error naming the capability and the compiled architectures when not. Idempotent and
// thread-safe. Also reads POLYHEAD_TF32 (1 = allow TF32 for f32 GEMM and convolution).
void init();

// TF32 tensor-core math for f32 GEMM (cuBLAS) and convolution (cuDNN). Off by default, so f32
// results keep full f32 precision; on is faster on Ampere and later but rounds inputs to 10-bit
// mantissas. Also set by the environment variable POLYHEAD_TF32=1 at init().
void set_tf32(bool on);
bool tf32();

// The caching allocator's statistics for one device (bytes). allocated: blocks handed out to
// tensors and scratch (rounded sizes); cached: freed blocks kept for reuse; reserved: everything
// obtained from cudaMalloc (allocated + cached); peak_allocated: the high-water mark of allocated
// since start or reset_peak().
struct MemoryStats {
  size_t allocated = 0;
  size_t peak_allocated = 0;
  size_t cached = 0;
  size_t reserved = 0;
  size_t requested = 0;          // bytes asked for by the live allocations (before rounding)
  int64_t num_allocations = 0;   // allocate() calls served
  int64_t num_cache_hits = 0;    // ... of them from the cache
  int64_t num_device_mallocs = 0;// cudaMalloc calls made
  int64_t num_ooms = 0;          // cudaMalloc failures (each retried once after emptying the cache)
  size_t device_free = 0;        // cudaMemGetInfo at the time of the call
  size_t device_total = 0;
};
MemoryStats memory_stats(int device = 0);
// Returns every cached (free) block to the driver, on every device that has been used.
void empty_cache();
// peak_allocated = allocated, on every device that has been used.
void reset_peak();

// A CUDA graph: the device work of one call of a function, captured once and replayed with one
// launch. engine/graph.h is the device-independent face of this class (use that one).
// capture(work) runs work() with the device's stream in relaxed capture mode: kernels, cuBLAS and
// cuDNN calls are recorded, not run. Allocations during the capture come from the graph's private
// pool (see the allocator in cuda_context.cpp), which stays reserved until the Graph is destroyed,
// so tensors created inside work() keep their addresses and every replay rewrites them. A host
// copy, .item() or synchronize() inside work() throws a polyhead::Error (the capture is then
// abandoned and nothing is left half-done). Index checks of captured ops are not repeated at replay.
// Whether a Graph capture is in progress on the device's stream.
bool capturing(int device = 0);

class Graph {
public:
  explicit Graph(int device = 0);
  ~Graph();
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;
  void capture(const std::function<void()>& work);
  void replay();               // asynchronous, on the device's stream
  bool captured() const;
  size_t num_nodes() const;    // kernels, copies and memsets recorded

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace polyhead::cuda
