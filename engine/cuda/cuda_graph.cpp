// engine/cuda/cuda_graph.cpp: cuda::Graph (cuda_api.h): stream capture of a function's device
// work into a CUDA graph, its instantiation and replay, with the allocator's private pool.
#include <cuda_runtime.h>

#include "engine/cuda/cuda_api.h"
#include "engine/cuda/cuda_common.h"

namespace polyhead::cuda {

struct Graph::Impl {
  int device = 0;
  int64_t pool = 0;
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  size_t nodes = 0;

  void release() {
    if (!graph && !exec && !pool) return;
    DeviceContext& ctx = context(device);
    (void)cudaStreamSynchronize(ctx.stream);  // a replay may still be running
    if (exec) (void)cudaGraphExecDestroy(exec);
    if (graph) (void)cudaGraphDestroy(graph);
    exec = nullptr;
    graph = nullptr;
    nodes = 0;
    if (pool) alloc_release_pool(device, pool);
    pool = 0;
  }
};

Graph::Graph(int device) : impl_(std::make_unique<Impl>()) {
  PH_CHECK_HINT(device >= 0 && device < device_count(), "cuda::Graph", "no CUDA device " << device,
                "capture graphs only on a present device");
  impl_->device = device;
}

Graph::~Graph() {
  try {
    impl_->release();
  } catch (...) {  // destructors do not throw; the device is unusable anyway if this fails
  }
}

void Graph::capture(const std::function<void()>& work) {
  Impl& g = *impl_;
  g.release();
  DeviceContext& ctx = context(g.device);
  PH_CHECK(ctx.capture_pool == 0, "cuda::Graph::capture", "a capture is already in progress on cuda:" << g.device);
  // Work queued before the capture runs first, and its deferred index checks are read now.
  PH_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
  flush_checks(ctx);
  g.pool = alloc_begin_capture(g.device);
  ctx.capture_pool = g.pool;
  cudaError_t e = cudaStreamBeginCapture(ctx.stream, cudaStreamCaptureModeRelaxed);
  if (e != cudaSuccess) {
    ctx.capture_pool = 0;
    alloc_end_capture(g.device);
    alloc_release_pool(g.device, g.pool);
    g.pool = 0;
    throw_cuda_error(e, "cudaStreamBeginCapture", __FILE__, __LINE__);
  }
  auto abandon = [&] {
    cudaGraph_t broken = nullptr;
    (void)cudaStreamEndCapture(ctx.stream, &broken);
    if (broken) (void)cudaGraphDestroy(broken);
    (void)cudaGetLastError();
    ctx.capture_pool = 0;
    alloc_end_capture(g.device);
    alloc_release_pool(g.device, g.pool);
    g.pool = 0;
  };
  try {
    work();
  } catch (...) {
    abandon();
    throw;
  }
  ctx.capture_pool = 0;
  alloc_end_capture(g.device);
  e = cudaStreamEndCapture(ctx.stream, &g.graph);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    alloc_release_pool(g.device, g.pool);
    g.pool = 0;
    g.graph = nullptr;
    throw Error("cuda::Graph::capture",
                std::string("the capture failed: ") + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")",
                "the captured function must only queue device work on the default polyhead stream (no host "
                "synchronisation, no other streams)");
  }
  PH_CUDA_CHECK(cudaGraphGetNodes(g.graph, nullptr, &g.nodes));
  PH_CUDA_CHECK(cudaGraphInstantiate(&g.exec, g.graph, 0));
  PH_CUDA_CHECK(cudaGraphUpload(g.exec, ctx.stream));
}

void Graph::replay() {
  Impl& g = *impl_;
  PH_CHECK_HINT(g.exec, "cuda::Graph::replay", "nothing was captured", "call capture(work) first");
  DeviceContext& ctx = context(g.device);
  PH_CUDA_CHECK(cudaGraphLaunch(g.exec, ctx.stream));
}

bool capturing(int device) {
  if (device < 0 || device >= device_count()) return false;
  return context(device).capture_pool != 0;
}

bool Graph::captured() const { return impl_->exec != nullptr; }
size_t Graph::num_nodes() const { return impl_->nodes; }

}  // namespace polyhead::cuda
