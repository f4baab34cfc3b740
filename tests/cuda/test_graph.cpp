// tests/cuda/test_graph.cpp: StepGraph (engine/graph.h) and what graph capture relies on: a
// training step replayed from a CUDA graph gives bit-identical parameters and losses to the same
// step run eagerly (MLP and a small char-GPT: GEMM, embedding, layer norm, attention,
// cross-entropy, SGD); replays see inputs updated in place; eager allocations made after a capture
// never alias the graph's temporaries; a host synchronisation inside a capture is an Error and
// leaves the device usable; index errors of eager ops surface at the next synchronisation.
// The CPU case runs everywhere; the CUDA cases are skipped without a device.
#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "autograd/functions.h"
#include "engine/backend.h"
#include "engine/cuda/cuda_api.h"
#include "engine/graph.h"
#include "engine/ops.h"
#include "engine/rng.h"
#include "layers/optim/sgd.h"
#include "mtl/model.h"
#include "mtl/per_task_grads.h"
#include "mtl/zoo.h"

using namespace polyhead;
using ag::Variable;

namespace {

const bool kNoGpuForGraphs = !polyhead::cuda::available();

bool same_bits(const Tensor& a, const Tensor& b) {
  Tensor x = a.to(Device::cpu()).contiguous(), y = b.to(Device::cpu()).contiguous();
  return x.shape() == y.shape() && x.dtype() == y.dtype() && std::memcmp(x.raw(), y.raw(), size_t(x.numel()) * x.itemsize()) == 0;
}

// ew step of a multi-task model: zero_grad, forward, summed loss, backward, SGD; the loss tensor
// is written to *loss.
std::function<void()> ew_step(mtl::MultiTaskModel& m, optim::Optimizer& opt, const mtl::Batch& b, Tensor* loss) {
  return [&m, &opt, &b, loss] {
    opt.zero_grad();
    auto outs = m.forward(Variable(b.x));
    Variable total;
    for (int k = 0; k < m.num_tasks(); ++k) {
      Variable l = m.task(k).compute_loss(outs[size_t(k)], b.y[size_t(k)]);
      total = k == 0 ? l : ag::add(total, l);
    }
    total.backward();
    opt.step();
    *loss = total.data();
  };
}

// Runs `steps` steps of two identically initialised models, one eagerly and one with a graph
// (one eager step, the capture, then replays), and compares losses and parameters bit for bit.
void check_replay_matches_eager(std::function<std::shared_ptr<mtl::MultiTaskModel>()> make, const mtl::Batch& b, bool flat) {
  const Device d = Device::cuda(0);
  manual_seed(7);
  auto A = make();
  manual_seed(7);
  auto B = make();
  for (auto* m : {&A, &B}) {
    (*m)->to(d);
    if (flat) (*m)->flatten();
  }
  optim::SGD oa(*A, optim::SGDOptions(0.05).momentum(0.9)), ob(*B, optim::SGDOptions(0.05).momentum(0.9));
  Tensor la, lb;
  auto sa = ew_step(*A, oa, b, &la), sb = ew_step(*B, ob, b, &lb);
  const int steps = 4;
  std::vector<double> eager_losses, graph_losses;
  for (int i = 0; i < steps; ++i) {
    sa();
    eager_losses.push_back(la.item());
  }
  sb();
  graph_losses.push_back(lb.item());
  StepGraph g(d, sb);
  CHECK(g.captured());
  CHECK(g.num_nodes() > 10);
  for (int i = 1; i < steps; ++i) {
    g.replay();
    graph_losses.push_back(lb.item());
  }
  for (int i = 0; i < steps; ++i) CHECK(graph_losses[size_t(i)] == eager_losses[size_t(i)]);
  CHECK(eager_losses.back() < eager_losses.front());  // the steps did train
  auto pa = A->named_parameters(), pb = B->named_parameters();
  REQUIRE(pa.size() == pb.size());
  int differing = 0;
  for (size_t i = 0; i < pa.size(); ++i)
    if (!same_bits(pa[i].second.data(), pb[i].second.data())) {
      ++differing;
      MESSAGE("parameter " << pa[i].first << " differs");
    }
  CHECK(differing == 0);
}

mtl::Batch class_batch(const Shape& xs, int K, int64_t n, int classes, Device d) {
  mtl::Batch b;
  b.x = Tensor::randn(xs).to(d);
  for (int k = 0; k < K; ++k) b.y.push_back(ops::mul_scalar(Tensor::rand({n}), double(classes)).to(DType::i64).to(d));
  return b;
}

}  // namespace

TEST_CASE("graph: on the cpu a StepGraph calls the step at each replay") {
  int calls = 0;
  Tensor x = Tensor::zeros({3});
  StepGraph g(Device::cpu(), [&] { ++calls; x.copy_(ops::add_scalar(x, 1.0)); });
  CHECK(!g.captured());
  CHECK(g.num_nodes() == 0);
  CHECK(calls == 0);
  g.replay();
  g.replay();
  CHECK(calls == 2);
  CHECK(x.to_vector<float>() == std::vector<float>{2, 2, 2});
  CHECK_THROWS_AS(StepGraph(Device::cpu(), nullptr), Error);
  CHECK(!graph_capturing(Device::cpu()));
}

TEST_CASE("graph: a replayed MLP training step is bit-identical to the eager step" * doctest::skip(kNoGpuForGraphs)) {
  polyhead::cuda::init();
  manual_seed(1);
  mtl::Batch b = class_batch({64, 32}, 3, 64, 10, Device::cuda(0));
  for (bool flat : {false, true}) {
    CAPTURE(flat);
    check_replay_matches_eager([] { return mtl::zoo::mlp_hps(3, 32, 48, 10); }, b, flat);
  }
}

TEST_CASE("graph: a replayed char-GPT training step is bit-identical to the eager step" * doctest::skip(kNoGpuForGraphs)) {
  polyhead::cuda::init();
  manual_seed(2);
  const Device d = Device::cuda(0);
  mtl::zoo::GPTConfig c;
  c.vocab = 32;
  c.block = 16;
  c.d = 32;
  c.layers = 2;
  c.heads = 4;
  mtl::Batch b;
  b.x = ops::mul_scalar(Tensor::rand({4, 16}), 32.0).to(DType::i64).to(d);
  for (int k = 0; k < 2; ++k) b.y.push_back(ops::mul_scalar(Tensor::rand({4, 16}), 32.0).to(DType::i64).to(d));
  check_replay_matches_eager([c] { return mtl::zoo::chargpt(2, c); }, b, true);
}

TEST_CASE("graph: replays read inputs updated in place; eager tensors never alias graph memory" * doctest::skip(kNoGpuForGraphs)) {
  polyhead::cuda::init();
  const Device d = Device::cuda(0);
  Tensor x = Tensor::full({1000}, 1.0, DType::f32, d);
  Tensor y;
  StepGraph g(d, [&] {
    Tensor t = ops::add_scalar(x, 1.0);  // a temporary of the graph, freed inside the capture
    y = ops::mul_scalar(t, 2.0);
  });
  REQUIRE(g.captured());
  CHECK(graph_capturing(d) == false);
  // an eager tensor of the temporary's size, allocated after the capture, is not the temporary's block
  Tensor e = Tensor::full({1000}, 7.0, DType::f32, d);
  g.replay();
  CHECK(ops::sum(y).item() == doctest::Approx(4000.0));
  x.copy_(Tensor::full({1000}, 3.0, DType::f32, d));
  g.replay();
  CHECK(ops::sum(y).item() == doctest::Approx(8000.0));
  CHECK(ops::sum(e).item() == doctest::Approx(7000.0));
  CHECK(ops::amin(e).item() == 7.0);
}

TEST_CASE("graph: a host synchronisation inside a capture is an Error; the device stays usable" * doctest::skip(kNoGpuForGraphs)) {
  polyhead::cuda::init();
  const Device d = Device::cuda(0);
  Tensor x = Tensor::ones({16}, DType::f32, d);
  std::string msg;
  try {
    StepGraph g(d, [&] { (void)ops::sum(x).item(); });
  } catch (const Error& e) {
    msg = e.what();
  }
  CHECK(msg.find("during a CUDA graph capture") != std::string::npos);
  CHECK(!graph_capturing(d));
  msg.clear();
  try {
    StepGraph g(d, [&] { Tensor h = Tensor::ones({4}).to(d); });
  } catch (const Error& e) {
    msg = e.what();
  }
  CHECK(msg.find("a copy from the host") != std::string::npos);
  CHECK(ops::sum(ops::mul_scalar(x, 3.0)).item() == doctest::Approx(48.0));
  // and a later capture works
  Tensor y;
  StepGraph ok(d, [&] { y = ops::mul_scalar(x, 5.0); });
  ok.replay();
  CHECK(ops::sum(y).item() == doctest::Approx(80.0));
}

TEST_CASE("graph: index errors of eager ops surface at the next synchronisation" * doctest::skip(kNoGpuForGraphs)) {
  polyhead::cuda::init();
  const Device d = Device::cuda(0);
  Tensor w = Tensor::ones({10, 4}, DType::f32, d), o = Tensor::empty({3, 4}, DType::f32, d);
  Tensor idx = Tensor::from_vector(std::vector<int64_t>{1, 12, 3}, {3}, d);
  backend_for(d).embedding(w, idx, o);  // queued; no wait for the device
  std::string msg;
  try { backend_for(d).synchronize(); } catch (const Error& e) { msg = e.what(); }
  CHECK(msg.find("index 12 at position 1 is out of range for an embedding of 10 rows") != std::string::npos);
  // reported once; the next synchronisation is clean
  CHECK_NOTHROW(backend_for(d).synchronize());
  // a reading copy also reports it
  backend_for(d).embedding(w, idx, o);
  msg.clear();
  try { (void)ops::sum(o).item(); } catch (const Error& e) { msg = e.what(); }
  CHECK(msg.find("index 12") != std::string::npos);
  // more checks than the arena holds: flushed on the way, the good ones stay silent
  Tensor good = Tensor::from_vector(std::vector<int64_t>{1, 2, 3}, {3}, d);
  for (int i = 0; i < 3000; ++i) backend_for(d).embedding(w, good, o);
  CHECK_NOTHROW(backend_for(d).synchronize());
}
