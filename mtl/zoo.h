// mtl/zoo.h: the multi-task models the benchmarks, the CLI and the demos use.
//   lenet_hps   LeNet trunk for 36x36 MultiMNIST (Sener & Koltun 2018, as in the anchor B1):
//               conv 1->10 k9, maxpool 2, relu, conv 10->20 k5, maxpool 2, relu, fc 500->50, relu;
//               heads fc 50->50, relu, fc 50->classes.
//   mlp_hps     MLP trunk d_in -> h -> h (relu); heads Linear(h, classes) (anchor B2).
//   chargpt     byte-level GPT trunk (token + position embeddings, L blocks, final LayerNorm);
//               heads Linear(d, 256) per domain (anchor B3). Input (B, T) i64 tokens.
#pragma once
#include <memory>

#include "mtl/model.h"

namespace polyhead::mtl::zoo {

std::shared_ptr<MultiTaskModel> lenet_hps(int K, int classes = 10);
std::shared_ptr<MultiTaskModel> mlp_hps(int K, int64_t d_in = 784, int64_t hidden = 1024, int classes = 10);
struct GPTConfig {
  int64_t vocab = 256, block = 256, d = 384, layers = 6, heads = 6;
};
std::shared_ptr<MultiTaskModel> chargpt(int K, const GPTConfig& c = {});
// The char-GPT trunk alone (single task language modelling, PiKE-style pre-training).
std::shared_ptr<nn::UnaryModule> chargpt_trunk(const GPTConfig& c);

}  // namespace polyhead::mtl::zoo
