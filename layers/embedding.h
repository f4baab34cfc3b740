// layers/embedding.h: Embedding, a lookup table of V vectors of size D.
#pragma once
#include "layers/module.h"

namespace polyhead::nn {

// Parameter "weight" (V, D), N(0, 1) (PyTorch's default). forward(idx): i64 indices of any
// shape (...) -> (..., D); an index outside [0, V) is an error.
class Embedding : public UnaryModule {
public:
  Embedding(int64_t num_embeddings, int64_t embedding_dim);
  Variable forward(const Tensor& idx);
  // The Variable form takes the indices as its data (i64), so an Embedding can head a Sequential.
  Variable forward(const Variable& idx) override { return forward(idx.data()); }
  std::string type_name() const override { return "Embedding"; }
  void reset_parameters();
  int64_t num_embeddings() const { return V_; }
  int64_t embedding_dim() const { return D_; }
  Variable weight;

private:
  int64_t V_, D_;
};

}  // namespace polyhead::nn
