// autograd/gradcheck.cpp: see gradcheck.h.
#include "autograd/gradcheck.h"

#include <cmath>
#include <sstream>

#include "autograd/engine.h"
#include "engine/ops.h"
#include "engine/rng.h"

namespace polyhead::ag {

static std::vector<Variable> leaves(const std::vector<Tensor>& in) {
  std::vector<Variable> v;
  for (const auto& t : in) {
    PH_CHECK_HINT(t.dtype() == DType::f64, "gradcheck", "inputs must be f64, got " << t.str(), "use .to(DType::f64)");
    v.emplace_back(t.clone(), true);
  }
  return v;
}

static Tensor random_like(const Shape& s, uint64_t seed) {
  Generator g(seed);
  std::vector<double> v(size_t(shape_numel(s)));
  for (auto& x : v) x = g.normal();
  return Tensor::from_vector(v, s);
}

GradcheckResult gradcheck(const GradFn& f, const std::vector<Tensor>& inputs, const GradcheckOptions& o) {
  GradcheckResult res;
  auto xs = leaves(inputs);
  Variable y0 = f(xs);
  for (int p = 0; p < o.projections; ++p) {
    Tensor r = random_like(y0.shape(), o.seed + uint64_t(p));
    auto xs2 = leaves(inputs);
    Variable y = f(xs2);
    GradOptions go;
    go.allow_unused = true;
    auto g = grad({y}, xs2, {r}, go);
    for (size_t i = 0; i < inputs.size(); ++i) {
      Tensor base = inputs[i].contiguous().clone();
      double* bp = base.data<double>();
      std::vector<double> an = g[i].defined() ? g[i].to_vector<double>() : std::vector<double>(size_t(base.numel()), 0.0);
      for (int64_t e = 0; e < base.numel(); ++e) {
        double orig = bp[e];
        auto eval = [&](double v) {
          bp[e] = v;
          std::vector<Variable> in;
          for (size_t j = 0; j < inputs.size(); ++j) in.emplace_back(j == i ? base : inputs[j], false);
          Variable out;
          {
            NoGradGuard ng;
            out = f(in);
          }
          return ops::dot(out.data(), r);
        };
        double num = (eval(orig + o.eps) - eval(orig - o.eps)) / (2 * o.eps);
        bp[e] = orig;
        double err = std::abs(num - an[size_t(e)]);
        res.max_error = std::max(res.max_error, err);
        if (err > o.atol + o.rtol * std::abs(num)) {
          std::ostringstream m;
          m << "input " << i << " element " << e << ": analytic " << an[size_t(e)] << " vs numeric " << num;
          res.ok = false;
          res.message = m.str();
          return res;
        }
      }
    }
  }
  return res;
}

GradcheckResult batched_check(const GradFn& f, const std::vector<Tensor>& inputs, const GradcheckOptions& o) {
  GradcheckResult res;
  auto xs = leaves(inputs);
  Variable y = f(xs);
  Shape rs{o.K};
  rs.insert(rs.end(), y.shape().begin(), y.shape().end());
  Tensor R = random_like(rs, o.seed + 99);
  GradOptions gb;
  gb.batched = true;
  gb.retain_graph = true;
  gb.allow_unused = true;
  auto G = grad({y}, xs, {R}, gb);
  for (int64_t k = 0; k < o.K; ++k) {
    GradOptions g1;
    g1.retain_graph = true;
    g1.allow_unused = true;
    auto gk = grad({y}, xs, {R.select(0, k).contiguous()}, g1);
    for (size_t i = 0; i < xs.size(); ++i) {
      if (!gk[i].defined() && !G[i].defined()) continue;
      if (gk[i].defined() != G[i].defined()) {
        res.ok = false;
        res.message = "input " + std::to_string(i) + ": batched and single gradients differ in definedness";
        return res;
      }
      auto a = G[i].select(0, k).contiguous().to_vector<double>();
      auto b = gk[i].to_vector<double>();
      for (size_t e = 0; e < a.size(); ++e) {
        double err = std::abs(a[e] - b[e]);
        res.max_error = std::max(res.max_error, err);
        if (err > 1e-10 * (1 + std::abs(b[e]))) {
          std::ostringstream m;
          m << "input " << i << " row " << k << " element " << e << ": batched " << a[e] << " vs single " << b[e];
          res.ok = false;
          res.message = m.str();
          return res;
        }
      }
    }
  }
  return res;
}

}  // namespace polyhead::ag
