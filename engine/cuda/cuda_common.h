// engine/cuda/cuda_common.h: shared internals of the CUDA backend (device contexts, error checks,
// the caching allocator's entry points, scratch memory, argument checks). Included only by files
// under engine/cuda/; it pulls in cuda_runtime.h.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "engine/cuda/cuda_backend.h"
#include "engine/error.h"
#include "engine/tensor.h"

struct cublasContext;  // = cublasHandle_t's pointee (cublas_v2.h)
struct cudnnContext;   // = cudnnHandle_t's pointee (cudnn.h)

namespace polyhead::cuda {

// ---- errors: every failing CUDA call becomes a polyhead::Error with the call text and status ----
[[noreturn]] void throw_cuda_error(cudaError_t e, const char* call, const char* file, int line);

#define PH_CUDA_CHECK(call)                                                                     \
  do {                                                                                          \
    cudaError_t ph_e_ = (call);                                                                 \
    if (ph_e_ != cudaSuccess) ::polyhead::cuda::throw_cuda_error(ph_e_, #call, __FILE__, __LINE__); \
  } while (0)
// After a kernel launch: launch-configuration errors are reported here, faults at the next sync.
#define PH_CUDA_LAUNCH_CHECK(kernel_name)                                                       \
  do {                                                                                          \
    cudaError_t ph_e_ = cudaGetLastError();                                                     \
    if (ph_e_ != cudaSuccess)                                                                   \
      ::polyhead::cuda::throw_cuda_error(ph_e_, "launch of kernel " kernel_name, __FILE__, __LINE__); \
  } while (0)

// ---- devices ----
struct DeviceContext {
  int index = 0;
  cudaStream_t stream = nullptr;  // the one stream of this device; every op runs on it
  cudaDeviceProp prop{};
  cublasContext* cublas = nullptr;  // created with the context; workspace set, atomics off
  cudnnContext* cudnn = nullptr;    // created on first convolution
  void* cublas_workspace = nullptr;
  size_t cublas_workspace_size = 0;
  std::mutex mu;  // guards handle creation and per-handle settings (math mode)
  // Deferred index checks (see ErrorFlag): a device arena of flag words, the reports waiting for
  // the next host synchronisation, and the graph capture in progress on the stream (0 = none).
  std::mutex check_mu;
  unsigned long long* check_arena = nullptr;
  int check_used = 0;
  uint64_t check_generation = 0;  // incremented by each flush: a slot belongs to one generation
  std::vector<std::function<void(int64_t)>> check_reports;
  int64_t capture_pool = 0;
  // Copies from pinned host memory still in flight: an event recorded after each, and the owner
  // of its source, released once the event has completed (reap_pinned_copies).
  std::mutex pin_mu;
  std::vector<std::pair<cudaEvent_t, std::shared_ptr<void>>> pin_pending;
  std::vector<cudaEvent_t> pin_events;  // completed events, for reuse
};

// The context of device `index`, created on first use; makes `index` the current device.
DeviceContext& context(int index);
// The context of a tensor's device, checking that the tensor is defined and on a CUDA device.
DeviceContext& context_of(const Tensor& t, const char* op);
cudnnContext* cudnn_handle(DeviceContext& ctx);  // creates it on first call
bool tf32_enabled();
// Maximum grid size (blocks) used by grid-stride loops: a few waves of the device.
int64_t max_blocks(const DeviceContext& ctx);

// ---- caching allocator (cuda_context.cpp) ----
void* device_alloc(int device, size_t nbytes);
void device_free(void* p);
// Graph capture (cuda_graph.cpp): from begin to end, allocations on `device` come from a new
// private pool whose blocks stay reserved for the graph until alloc_release_pool.
int64_t alloc_begin_capture(int device);
void alloc_end_capture(int device);
void alloc_release_pool(int device, int64_t pool);

// Scratch memory from the caching allocator for the duration of one op. Freed blocks are reused
// by later allocations only through the same stream, so no synchronisation is needed.
class Scratch {
public:
  Scratch() = default;
  Scratch(int device, size_t nbytes) : p_(nbytes ? device_alloc(device, nbytes) : nullptr), n_(nbytes) {}
  ~Scratch() { if (p_) device_free(p_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  Scratch(Scratch&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr; o.n_ = 0; }
  Scratch& operator=(Scratch&& o) noexcept {
    if (this != &o) { if (p_) device_free(p_); p_ = o.p_; n_ = o.n_; o.p_ = nullptr; o.n_ = 0; }
    return *this;
  }
  void* get() const { return p_; }
  template <class T> T* as() const { return static_cast<T*>(p_); }
  size_t size() const { return n_; }

private:
  void* p_ = nullptr;
  size_t n_ = 0;
};

// A device word that kernels lower with atomicMin to report the first bad position (integer
// atomics only; the result does not depend on thread order). check(report) never waits for the
// device: the word is read at the next point where the host synchronises anyway (a copy to or
// from the host, synchronize()), and report(position) is then called for a flagged check; it
// throws the op's error message. Words come from a per-device arena, so a training step with
// index checks (embedding, cross-entropy, max-pool backward) makes no extra synchronisation.
// During a graph capture the check is not recorded (the captured kernels have not run; the eager
// steps before the capture checked the same indices).
class ErrorFlag {
public:
  explicit ErrorFlag(DeviceContext& ctx);
  unsigned long long* ptr() const { return ptr_; }
  void check(std::function<void(int64_t)> report);

private:
  DeviceContext& ctx_;
  Scratch own_;  // during a capture: a word of the graph's pool
  unsigned long long* ptr_ = nullptr;
  int slot_ = -1;
  uint64_t generation_ = 0;
};
// Reads the flags of the checks recorded on ctx and calls the first flagged report (which
// throws). The stream must have been synchronised. Cheap when no check is pending.
void flush_checks(DeviceContext& ctx);
// Copies one int64 from device memory (synchronises the stream).
int64_t read_i64(DeviceContext& ctx, const int64_t* dptr);
// Throws a polyhead::Error when a graph capture is in progress on ctx's stream: `what` cannot be
// captured (a host copy or synchronisation).
void forbid_in_capture(DeviceContext& ctx, const char* what);

// ---- argument checks ----
// t must be defined, on ctx's device, of dtype dt, contiguous, with n elements.
void expect(const Tensor& t, const DeviceContext& ctx, DType dt, int64_t n, const char* op, const char* name);
void expect_float(DType dt, const char* op);  // f32 or f64, else Error
void check_same_device(const Tensor& t, const DeviceContext& ctx, const char* op, const char* name);

template <class F>
void dispatch_float(DType t, const char* op, F&& f) {
  if (t == DType::f32) f(static_cast<float*>(nullptr));
  else if (t == DType::f64) f(static_cast<double*>(nullptr));
  else throw Error(op, std::string("dtype ") + dtype_name(t) + " not supported on cuda", "use f32 or f64");
}

// Typed device pointers of a tensor (nullptr for an undefined tensor).
template <class T> const T* cptr(const Tensor& t) { return t.defined() ? static_cast<const T*>(t.raw()) : nullptr; }
template <class T> T* mptr(Tensor& t) { return t.defined() ? static_cast<T*>(t.raw()) : nullptr; }

// ---- scatter-free index inversion (cuda_pool.cu) ----
// Groups positions 0..n-1 by key: keys[i] in [0, num_dest) (the caller has checked the range).
// order (n int64): positions sorted by key, increasing within a key (stable radix sort);
// start (num_dest + 1 int64): key k's positions are order[start[k] .. start[k+1]).
// Lets scatter-adds run as gathers, each destination summing its sources in increasing position
// order, exactly like the CPU's sequential loops, with no atomics.
struct InverseIndex {
  Scratch order;
  Scratch start;
};
InverseIndex invert_index(DeviceContext& ctx, const uint64_t* keys, int64_t n, int64_t num_dest);

// ---- launchers shared between translation units ----
// y (N, OC, L) += bias (OC) broadcast; T = float or double (dt).
void launch_add_bias(DeviceContext& ctx, DType dt, void* y, const void* bias, int64_t N, int64_t OC, int64_t L);
// Direct (im2col-free) convolutions, one output element per thread summed in a fixed order:
// used when cuDNN offers no deterministic algorithm for a configuration.
void launch_conv2d_direct(DeviceContext& ctx, DType dt, const void* x, const void* w, void* y, int64_t N, int64_t C,
                          int64_t H, int64_t W, int64_t OC, int64_t OH, int64_t OW, const ConvParams& p);
void launch_conv2d_bwd_data_direct(DeviceContext& ctx, DType dt, const void* gy, const void* w, void* gx, int64_t N,
                                   int64_t C, int64_t H, int64_t W, int64_t OC, int64_t OH, int64_t OW,
                                   const ConvParams& p);
void launch_conv2d_bwd_filter_direct(DeviceContext& ctx, DType dt, const void* x, const void* gy, void* gw,
                                     int64_t N, int64_t C, int64_t H, int64_t W, int64_t OC, int64_t OH, int64_t OW,
                                     const ConvParams& p);
// cudaSuccess when this binary has kernel code (SASS or PTX) the current device can run.
cudaError_t probe_kernel_image();
void launch_fill(DeviceContext& ctx, DType dt, void* p, int64_t n, double v);
// C_b (M x N, ldc, strideC) *= beta for every b (gemm with K = 0); beta = 0 writes zeros.
void launch_scale_matrix(DeviceContext& ctx, DType dt, void* C, int64_t M, int64_t N, int64_t ldc, int64_t strideC,
                         int64_t batch, double beta);

}  // namespace polyhead::cuda
