// engine/graph.h: StepGraph, a whole step of device work captured once and replayed with one
// launch (a CUDA graph), for fixed shapes. On the CPU it simply calls the step each time, so
// programs use one code path for both devices.
//
// Use: run the step eagerly at least once first (lazily created handles, optimizer state and
// cuDNN algorithm choices must exist), then
//     StepGraph g(dev, [&] { opt.zero_grad(); loss = f(model, x); loss.backward(); opt.step(); });
//     for (...) { copy the next batch into x (same shape); g.replay(); }
// The constructor captures the step on CUDA: its kernels are recorded, not run (the first replay
// runs them). Contract of a captured step:
//   - fixed shapes, and every tensor the step reads from outside (inputs, parameters, optimizer
//     state) stays alive at the same address; update inputs in place with copy_();
//   - tensors the step creates keep their addresses: each replay rewrites them (read a loss after
//     replay() + a synchronisation, e.g. .item());
//   - no host synchronisation inside the step (.item(), .to(Device::cpu()), tensors built from
//     host data): it throws a polyhead::Error naming what, and nothing is captured;
//   - host-side values are frozen at capture: learning rate, Adam's step count, dropout seeds.
//     Plain SGD with a constant learning rate replays exactly.
// Index checks of captured ops (embedding, cross-entropy) ran in the eager steps and are not
// repeated at replay.
#pragma once
#include <functional>
#include <memory>

#include "engine/device.h"

namespace polyhead {

class StepGraph {
public:
  StepGraph(Device dev, std::function<void()> step);
  ~StepGraph();
  StepGraph(const StepGraph&) = delete;
  StepGraph& operator=(const StepGraph&) = delete;
  // Runs the step: launches the graph (asynchronously) on CUDA, calls the function on the CPU.
  void replay();
  // Whether the step is a captured device graph (false on the CPU).
  bool captured() const;
  // Device operations in the graph (0 on the CPU).
  size_t num_nodes() const;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Whether StepGraph captures on this device (CUDA in a build with the CUDA backend).
bool graph_capture_supported(Device dev);
// Whether a StepGraph is being captured on this device right now (its kernels are recorded, not
// run: results must not be cached for later eager use).
bool graph_capturing(Device dev);

}  // namespace polyhead
