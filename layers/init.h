// layers/init.h: parameter initialisers (PyTorch's torch.nn.init), filling a Tensor or a
// Variable's data in place from the engine's Philox generator (the default one unless given).
// In place means into the existing storage, so views into a flat parameter buffer stay valid.
// No graph is recorded. Fans: fan_in = size(1) * receptive field, fan_out = size(0) * receptive
// field, receptive field = product of dims 2.. (tensors need >= 2 dims for fan-based inits).
#pragma once
#include <utility>

#include "autograd/variable.h"
#include "engine/rng.h"
#include "engine/tensor.h"

namespace polyhead::nn::init {

using ag::Variable;

enum class FanMode { FanIn, FanOut };
enum class Nonlinearity { Linear, Conv, Sigmoid, Tanh, ReLU, LeakyReLU };

// Recommended gain: linear/conv/sigmoid 1, tanh 5/3, relu sqrt(2), leaky_relu sqrt(2 / (1 + a^2)).
double calculate_gain(Nonlinearity nl, double param = 0.01);
// (fan_in, fan_out) of a weight of this shape.
std::pair<int64_t, int64_t> calculate_fan_in_and_fan_out(const Shape& shape);

// U[a, b).
const Tensor& uniform_(const Tensor& t, double a = 0.0, double b = 1.0, Generator& g = default_generator());
// N(mean, std^2).
const Tensor& normal_(const Tensor& t, double mean = 0.0, double std = 1.0, Generator& g = default_generator());
const Tensor& constant_(const Tensor& t, double value);
const Tensor& zeros_(const Tensor& t);
const Tensor& ones_(const Tensor& t);
// U(-b, b), b = gain * sqrt(3 / fan); gain from `nl` with negative slope a (PyTorch defaults).
const Tensor& kaiming_uniform_(const Tensor& t, double a = 0.0, FanMode mode = FanMode::FanIn,
                               Nonlinearity nl = Nonlinearity::LeakyReLU, Generator& g = default_generator());
// N(0, std^2), std = gain / sqrt(fan).
const Tensor& kaiming_normal_(const Tensor& t, double a = 0.0, FanMode mode = FanMode::FanIn,
                              Nonlinearity nl = Nonlinearity::LeakyReLU, Generator& g = default_generator());
// U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out)).
const Tensor& xavier_uniform_(const Tensor& t, double gain = 1.0, Generator& g = default_generator());
// N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out)).
const Tensor& xavier_normal_(const Tensor& t, double gain = 1.0, Generator& g = default_generator());

// The same on a Variable's data.
const Variable& uniform_(const Variable& v, double a = 0.0, double b = 1.0, Generator& g = default_generator());
const Variable& normal_(const Variable& v, double mean = 0.0, double std = 1.0, Generator& g = default_generator());
const Variable& constant_(const Variable& v, double value);
const Variable& zeros_(const Variable& v);
const Variable& ones_(const Variable& v);
const Variable& kaiming_uniform_(const Variable& v, double a = 0.0, FanMode mode = FanMode::FanIn,
                                 Nonlinearity nl = Nonlinearity::LeakyReLU, Generator& g = default_generator());
const Variable& kaiming_normal_(const Variable& v, double a = 0.0, FanMode mode = FanMode::FanIn,
                                Nonlinearity nl = Nonlinearity::LeakyReLU, Generator& g = default_generator());
const Variable& xavier_uniform_(const Variable& v, double gain = 1.0, Generator& g = default_generator());
const Variable& xavier_normal_(const Variable& v, double gain = 1.0, Generator& g = default_generator());

}  // namespace polyhead::nn::init
