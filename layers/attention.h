// layers/attention.h: causal multi-head self-attention and a pre-norm transformer block.
#pragma once
#include "layers/linear.h"
#include "layers/module.h"
#include "layers/norm.h"

namespace polyhead::nn {

// Children "qkv" = Linear(d, 3d) and "proj" = Linear(d, d). forward: x (B, T, d) -> (B, T, d);
// position t attends to positions <= t only.
class CausalSelfAttention : public UnaryModule {
public:
  CausalSelfAttention(int64_t d_model, int64_t n_head);
  Variable forward(const Variable& x) override;
  std::string type_name() const override { return "CausalSelfAttention"; }
  int64_t d_model() const { return d_; }
  int64_t n_head() const { return h_; }
  std::shared_ptr<Linear> qkv, proj;

private:
  int64_t d_, h_;
};

// Pre-norm block. Children in order "ln1", "attn", "ln2", "fc1" (d -> 4d), "fc2" (4d -> d).
// forward: x = x + attn(ln1(x)); x = x + fc2(gelu(fc1(ln2(x)))).
class TransformerBlock : public UnaryModule {
public:
  TransformerBlock(int64_t d_model, int64_t n_head);
  Variable forward(const Variable& x) override;
  std::string type_name() const override { return "TransformerBlock"; }
  std::shared_ptr<LayerNorm> ln1, ln2;
  std::shared_ptr<CausalSelfAttention> attn;
  std::shared_ptr<Linear> fc1, fc2;
};

}  // namespace polyhead::nn
