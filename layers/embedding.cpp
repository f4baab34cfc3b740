// layers/embedding.cpp: see embedding.h.
#include "layers/embedding.h"

#include "layers/init.h"

namespace polyhead::nn {

Embedding::Embedding(int64_t num_embeddings, int64_t embedding_dim) : V_(num_embeddings), D_(embedding_dim) {
  PH_CHECK(V_ > 0 && D_ > 0, "Embedding", "sizes must be positive, got " << V_ << " x " << D_);
  weight = register_parameter("weight", Tensor::empty({V_, D_}));
  reset_parameters();
}

void Embedding::reset_parameters() { init::normal_(weight, 0.0, 1.0); }

Variable Embedding::forward(const Tensor& idx) {
  idx.check_defined("Embedding");
  PH_CHECK_HINT(idx.dtype() == DType::i64, "Embedding", "indices must be i64, got " << idx.str(),
                "convert with .to(DType::i64)");
  return ag::embedding(weight, idx.device() == weight.device() ? idx : idx.to(weight.device()));
}

}  // namespace polyhead::nn
