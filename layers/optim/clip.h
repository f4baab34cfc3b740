// layers/optim/clip.h: gradient-norm clipping, torch.nn.utils.clip_grad_norm_ semantics.
//
// total = (sum over every gradient element of |g|^p)^(1/p) (p = norm_type; INFINITY: max |g|),
// accumulated in f64 whatever the gradients' dtype. When max_norm / (total + 1e-6) < 1 every
// gradient is multiplied by that coefficient in place. Returns total (before clipping).
// A NaN or Inf total throws polyhead::Error (naming the total) unless error_if_nonfinite is false,
// in which case the gradients are scaled as PyTorch does (by NaN, or by 0 for an infinite total).
// Parameters whose grad() is undefined are skipped; with none, the total is 0.
// The Module overload uses the flat gradient buffer (one reduction, one scaling) when the module
// is flat, else the parameters' gradients.
#pragma once
#include <vector>

#include "autograd/variable.h"

namespace polyhead::nn {
class Module;
}

namespace polyhead::optim {

double clip_grad_norm_(const std::vector<ag::Variable>& params, double max_norm, double norm_type = 2.0,
                       bool error_if_nonfinite = true);
double clip_grad_norm_(nn::Module& module, double max_norm, double norm_type = 2.0, bool error_if_nonfinite = true);

// The total norm of the gradients (as above) without clipping.
double grad_norm(const std::vector<ag::Variable>& params, double norm_type = 2.0);

}  // namespace polyhead::optim
