// layers/attention.cpp: see attention.h.
#include "layers/attention.h"

namespace polyhead::nn {

CausalSelfAttention::CausalSelfAttention(int64_t d_model, int64_t n_head) : d_(d_model), h_(n_head) {
  PH_CHECK_HINT(d_model > 0 && n_head > 0 && d_model % n_head == 0, "CausalSelfAttention",
                "d_model " << d_model << " must be a positive multiple of n_head " << n_head,
                "each head gets d_model / n_head features");
  qkv = register_module("qkv", std::make_shared<Linear>(d_model, 3 * d_model));
  proj = register_module("proj", std::make_shared<Linear>(d_model, d_model));
}

Variable CausalSelfAttention::forward(const Variable& x) {
  PH_CHECK_HINT(x.dim() == 3 && x.size(2) == d_, "CausalSelfAttention", "input " << x.str() << " is not (B, T, " << d_ << ")",
                "add a batch dim with unsqueeze(0)");
  const int64_t B = x.size(0), T = x.size(1), Dh = d_ / h_;
  Variable y = qkv->forward(x);  // (B, T, 3d)
  auto head = [&](int64_t i) {   // (B, T, d) slice i -> (B, H, T, Dh)
    Variable s = ag::reshape(ag::narrow(y, 2, i * d_, d_), {B, T, h_, Dh});
    return ag::transpose(s, 1, 2);
  };
  Variable o = ag::causal_attention(head(0), head(1), head(2));  // (B, H, T, Dh)
  o = ag::reshape(ag::transpose(o, 1, 2), {B, T, d_});
  return proj->forward(o);
}

TransformerBlock::TransformerBlock(int64_t d_model, int64_t n_head) {
  ln1 = register_module("ln1", std::make_shared<LayerNorm>(d_model));
  attn = register_module("attn", std::make_shared<CausalSelfAttention>(d_model, n_head));
  ln2 = register_module("ln2", std::make_shared<LayerNorm>(d_model));
  fc1 = register_module("fc1", std::make_shared<Linear>(d_model, 4 * d_model));
  fc2 = register_module("fc2", std::make_shared<Linear>(4 * d_model, d_model));
}

Variable TransformerBlock::forward(const Variable& x) {
  Variable h = ag::add(x, attn->forward(ln1->forward(x)));
  return ag::add(h, fc2->forward(ag::gelu(fc1->forward(ln2->forward(h)))));
}

}  // namespace polyhead::nn
