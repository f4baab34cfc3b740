// mtl/zoo.cpp: see zoo.h.
#include "mtl/zoo.h"

#include "layers/activation.h"
#include "layers/attention.h"
#include "layers/conv.h"
#include "layers/embedding.h"
#include "layers/linear.h"
#include "layers/norm.h"
#include "layers/pool.h"
#include "layers/sequential.h"
#include "layers/loss.h"
#include "engine/ops.h"

namespace polyhead::mtl::zoo {

using namespace polyhead::nn;

std::shared_ptr<MultiTaskModel> lenet_hps(int K, int classes) {
  auto trunk = std::make_shared<Sequential>();
  trunk->push_back(std::make_shared<Conv2d>(1, 10, 9));
  trunk->push_back(std::make_shared<MaxPool2d>(2));
  trunk->push_back(std::make_shared<ReLU>());
  trunk->push_back(std::make_shared<Conv2d>(10, 20, 5));
  trunk->push_back(std::make_shared<MaxPool2d>(2));
  trunk->push_back(std::make_shared<ReLU>());
  trunk->push_back(std::make_shared<Flatten>());
  trunk->push_back(std::make_shared<Linear>(5 * 5 * 20, 50));
  trunk->push_back(std::make_shared<ReLU>());
  std::vector<Task> tasks;
  for (int k = 0; k < K; ++k) {
    auto head = std::make_shared<Sequential>();
    head->push_back(std::make_shared<Linear>(50, 50));
    head->push_back(std::make_shared<ReLU>());
    head->push_back(std::make_shared<Linear>(50, classes));
    tasks.emplace_back("task" + std::to_string(k), head);
  }
  return std::make_shared<MultiTaskModel>(std::make_shared<HPS>(trunk, K), std::move(tasks));
}

std::shared_ptr<MultiTaskModel> mlp_hps(int K, int64_t d_in, int64_t hidden, int classes) {
  auto trunk = std::make_shared<Sequential>();
  trunk->push_back(std::make_shared<Linear>(d_in, hidden));
  trunk->push_back(std::make_shared<ReLU>());
  trunk->push_back(std::make_shared<Linear>(hidden, hidden));
  trunk->push_back(std::make_shared<ReLU>());
  std::vector<Task> tasks;
  for (int k = 0; k < K; ++k) tasks.emplace_back("task" + std::to_string(k), std::make_shared<Linear>(hidden, classes));
  return std::make_shared<MultiTaskModel>(std::make_shared<HPS>(trunk, K), std::move(tasks));
}

namespace {
class CharGPTTrunk : public UnaryModule {
public:
  explicit CharGPTTrunk(const GPTConfig& c) : c_(c) {
    tok_ = register_module("tok", std::make_shared<Embedding>(c.vocab, c.d));
    pos_ = register_module("pos", std::make_shared<Embedding>(c.block, c.d));
    for (int64_t l = 0; l < c.layers; ++l)
      blocks_.push_back(register_module("block" + std::to_string(l), std::make_shared<TransformerBlock>(c.d, c.heads)));
    lnf_ = register_module("lnf", std::make_shared<LayerNorm>(c.d));
  }
  // x (B, T) token ids (any dtype holding integers) -> (B, T, d)
  Variable forward(const Variable& x) override {
    PH_CHECK(x.dim() == 2 && x.size(1) <= c_.block, "CharGPT", "input " << x.str() << " must be (B, T) with T <= " << c_.block);
    Tensor idx = x.data().to(DType::i64);
    Tensor pos = Tensor::arange(0, double(x.size(1)), 1, DType::i64, x.device());
    Variable h = ag::add(tok_->forward(idx), pos_->forward(pos));
    for (auto& b : blocks_) h = b->forward(h);
    return lnf_->forward(h);
  }
  std::string type_name() const override { return "CharGPT"; }

private:
  GPTConfig c_;
  std::shared_ptr<Embedding> tok_, pos_;
  std::vector<std::shared_ptr<TransformerBlock>> blocks_;
  std::shared_ptr<LayerNorm> lnf_;
};
}  // namespace

std::shared_ptr<nn::UnaryModule> chargpt_trunk(const GPTConfig& c) { return std::make_shared<CharGPTTrunk>(c); }

std::shared_ptr<MultiTaskModel> chargpt(int K, const GPTConfig& c) {
  std::vector<Task> tasks;
  for (int k = 0; k < K; ++k) {
    Task t("domain" + std::to_string(k), std::make_shared<Linear>(c.d, c.vocab));
    // next-byte cross-entropy over all (B*T) positions: logits (B, T, V), targets (B, T)
    t.loss = [](const Variable& out, const Tensor& y) {
      return nn::cross_entropy(ag::reshape(out, {-1, out.size(-1)}), y.to(DType::i64).reshape({-1}));
    };
    tasks.push_back(std::move(t));
  }
  return std::make_shared<MultiTaskModel>(std::make_shared<HPS>(chargpt_trunk(c), K), std::move(tasks));
}

}  // namespace polyhead::mtl::zoo
