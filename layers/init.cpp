// layers/init.cpp: see init.h.
#include "layers/init.h"

#include <cmath>

#include "engine/backend.h"

namespace polyhead::nn::init {

double calculate_gain(Nonlinearity nl, double param) {
  switch (nl) {
    case Nonlinearity::Linear:
    case Nonlinearity::Conv:
    case Nonlinearity::Sigmoid: return 1.0;
    case Nonlinearity::Tanh: return 5.0 / 3.0;
    case Nonlinearity::ReLU: return std::sqrt(2.0);
    case Nonlinearity::LeakyReLU: return std::sqrt(2.0 / (1.0 + param * param));
  }
  return 1.0;
}

std::pair<int64_t, int64_t> calculate_fan_in_and_fan_out(const Shape& shape) {
  PH_CHECK_HINT(shape.size() >= 2, "init", "fan in and fan out need a tensor with >= 2 dims, got " << shape_str(shape),
                "use uniform_/normal_ for biases");
  int64_t receptive = 1;
  for (size_t i = 2; i < shape.size(); ++i) receptive *= shape[i];
  return {shape[1] * receptive, shape[0] * receptive};
}

static void check_float(const Tensor& t, const char* op) {
  t.check_defined(op);
  PH_CHECK(is_floating(t.dtype()), op, "needs a floating tensor, got " << t.str());
}

// Draw into t (contiguous: directly; else through a temporary).
template <class Draw>
static void draw_into(const Tensor& t, Generator& g, Draw&& draw) {
  if (!t.numel()) return;
  Tensor dst = t.is_contiguous() ? t : Tensor::empty(t.shape(), t.dtype(), t.device());
  uint64_t seed = g.seed(), off = g.reserve(uint64_t(dst.numel()));
  draw(backend_for(dst.device()), dst, seed, off);
  if (!t.is_contiguous()) {
    Tensor out = t;
    out.copy_(dst);
  }
}

const Tensor& uniform_(const Tensor& t, double a, double b, Generator& g) {
  check_float(t, "init::uniform_");
  PH_CHECK(a <= b, "init::uniform_", "bounds [" << a << ", " << b << ") are reversed");
  draw_into(t, g, [&](Backend& be, Tensor& d, uint64_t s, uint64_t o) { be.random_uniform(d, s, o, a, b); });
  return t;
}

const Tensor& normal_(const Tensor& t, double mean, double std, Generator& g) {
  check_float(t, "init::normal_");
  PH_CHECK(std >= 0, "init::normal_", "std " << std << " is negative");
  draw_into(t, g, [&](Backend& be, Tensor& d, uint64_t s, uint64_t o) { be.random_normal(d, s, o, mean, std); });
  return t;
}

const Tensor& constant_(const Tensor& t, double value) {
  t.check_defined("init::constant_");
  Tensor d = t;
  d.fill_(value);
  return t;
}
const Tensor& zeros_(const Tensor& t) { return constant_(t, 0.0); }
const Tensor& ones_(const Tensor& t) { return constant_(t, 1.0); }

static double fan(const Tensor& t, FanMode mode) {
  auto [fi, fo] = calculate_fan_in_and_fan_out(t.shape());
  return double(mode == FanMode::FanIn ? fi : fo);
}

const Tensor& kaiming_uniform_(const Tensor& t, double a, FanMode mode, Nonlinearity nl, Generator& g) {
  check_float(t, "init::kaiming_uniform_");
  double f = fan(t, mode);
  double bound = f > 0 ? calculate_gain(nl, a) * std::sqrt(3.0 / f) : 0.0;
  return uniform_(t, -bound, bound, g);
}

const Tensor& kaiming_normal_(const Tensor& t, double a, FanMode mode, Nonlinearity nl, Generator& g) {
  check_float(t, "init::kaiming_normal_");
  double f = fan(t, mode);
  double std = f > 0 ? calculate_gain(nl, a) / std::sqrt(f) : 0.0;
  return normal_(t, 0.0, std, g);
}

const Tensor& xavier_uniform_(const Tensor& t, double gain, Generator& g) {
  check_float(t, "init::xavier_uniform_");
  auto [fi, fo] = calculate_fan_in_and_fan_out(t.shape());
  double bound = fi + fo > 0 ? gain * std::sqrt(6.0 / double(fi + fo)) : 0.0;
  return uniform_(t, -bound, bound, g);
}

const Tensor& xavier_normal_(const Tensor& t, double gain, Generator& g) {
  check_float(t, "init::xavier_normal_");
  auto [fi, fo] = calculate_fan_in_and_fan_out(t.shape());
  double std = fi + fo > 0 ? gain * std::sqrt(2.0 / double(fi + fo)) : 0.0;
  return normal_(t, 0.0, std, g);
}

const Variable& uniform_(const Variable& v, double a, double b, Generator& g) { uniform_(v.data(), a, b, g); return v; }
const Variable& normal_(const Variable& v, double mean, double std, Generator& g) { normal_(v.data(), mean, std, g); return v; }
const Variable& constant_(const Variable& v, double value) { constant_(v.data(), value); return v; }
const Variable& zeros_(const Variable& v) { zeros_(v.data()); return v; }
const Variable& ones_(const Variable& v) { ones_(v.data()); return v; }
const Variable& kaiming_uniform_(const Variable& v, double a, FanMode mode, Nonlinearity nl, Generator& g) {
  kaiming_uniform_(v.data(), a, mode, nl, g);
  return v;
}
const Variable& kaiming_normal_(const Variable& v, double a, FanMode mode, Nonlinearity nl, Generator& g) {
  kaiming_normal_(v.data(), a, mode, nl, g);
  return v;
}
const Variable& xavier_uniform_(const Variable& v, double gain, Generator& g) { xavier_uniform_(v.data(), gain, g); return v; }
const Variable& xavier_normal_(const Variable& v, double gain, Generator& g) { xavier_normal_(v.data(), gain, g); return v; }

}  // namespace polyhead::nn::init
