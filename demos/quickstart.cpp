// demos/quickstart.cpp: the README's short example. A two-task MLP with hard parameter sharing,
// trained with PCGrad on a small synthetic problem (task k's class is the argmax of three fixed
// random linear scores of x); prints both tasks' mean losses going down.
#include <cstdio>

#include "engine/ops.h"
#include "layers/optim/adam.h"
#include "mtl/trainer.h"
#include "mtl/zoo.h"

using namespace polyhead;

int main() {
  manual_seed(0);
  auto model = mtl::zoo::mlp_hps(/*K=*/2, /*d_in=*/16, /*hidden=*/64, /*classes=*/3);
  model->flatten();                                    // one flat parameter buffer
  optim::Adam opt(*model, optim::AdamOptions(3e-3));
  mtl::TrainerOptions to;
  to.method = "pcgrad";                                // any name of `polyhead methods`
  mtl::Trainer trainer(*model, opt, to);
  Tensor W0 = Tensor::randn({16, 3}), W1 = Tensor::randn({16, 3});  // the two tasks' teachers
  double sum[2] = {0, 0};
  for (int step = 1; step <= 400; ++step) {
    Tensor x = Tensor::randn({32, 16});
    mtl::Batch b{x, {ops::argmax(ops::matmul(x, W0), -1), ops::argmax(ops::matmul(x, W1), -1)}};
    mtl::StepResult r = trainer.step(b);               // forward, per-task grads, PCGrad, update
    sum[0] += r.losses[0];
    sum[1] += r.losses[1];
    if (step % 50 == 0) {
      std::printf("steps %3d-%3d  mean loss  task0 %.3f  task1 %.3f  (%.2f ms/step)\n", step - 49, step, sum[0] / 50,
                  sum[1] / 50, r.ms_total);
      sum[0] = sum[1] = 0;
    }
  }
  return 0;
}
