// engine/graph.cpp: see graph.h. The CUDA part lives in engine/cuda (cuda::Graph); this file
// includes no CUDA header.
#include "engine/graph.h"

#include "engine/error.h"
#ifndef POLYHEAD_HAVE_CUDA
#define POLYHEAD_HAVE_CUDA 0
#endif
#if POLYHEAD_HAVE_CUDA
#include "engine/cuda/cuda_api.h"
#endif

namespace polyhead {

struct StepGraph::Impl {
  Device dev;
  std::function<void()> step;
#if POLYHEAD_HAVE_CUDA
  std::unique_ptr<cuda::Graph> graph;
#endif
};

bool graph_capture_supported(Device dev) { return POLYHEAD_HAVE_CUDA != 0 && dev.is_cuda(); }

bool graph_capturing(Device dev) {
#if POLYHEAD_HAVE_CUDA
  return dev.is_cuda() && cuda::capturing(dev.index);
#else
  (void)dev;
  return false;
#endif
}

StepGraph::StepGraph(Device dev, std::function<void()> step) : impl_(std::make_unique<Impl>()) {
  PH_CHECK(step != nullptr, "StepGraph", "the step function is empty");
  impl_->dev = dev;
  impl_->step = std::move(step);
  if (dev.is_cpu()) return;
#if POLYHEAD_HAVE_CUDA
  impl_->graph = std::make_unique<cuda::Graph>(dev.index);
  impl_->graph->capture(impl_->step);
#else
  throw Error("StepGraph", "this build has no CUDA backend", "use Device::cpu() or rebuild with -DPOLYHEAD_CUDA=ON");
#endif
}

StepGraph::~StepGraph() = default;

void StepGraph::replay() {
#if POLYHEAD_HAVE_CUDA
  if (impl_->graph) {
    impl_->graph->replay();
    return;
  }
#endif
  impl_->step();
}

bool StepGraph::captured() const {
#if POLYHEAD_HAVE_CUDA
  return impl_->graph && impl_->graph->captured();
#else
  return false;
#endif
}

size_t StepGraph::num_nodes() const {
#if POLYHEAD_HAVE_CUDA
  return impl_->graph ? impl_->graph->num_nodes() : 0;
#else
  return 0;
#endif
}

}  // namespace polyhead
