// mtl/diagnostics/fisher.cpp: see fisher.h.
#include "mtl/diagnostics/fisher.h"

#include <algorithm>
#include <cmath>

#include "autograd/engine.h"
#include "engine/error.h"

namespace polyhead::mtl::diag {

FisherKind parse_fisher_kind(const std::string& s) {
  if (s == "true") return FisherKind::True;
  if (s == "empirical") return FisherKind::Empirical;
  throw Error("diag::fisher", "unknown Fisher kind '" + s + "'; valid choices: true, empirical");
}

std::string to_string(FisherKind k) { return k == FisherKind::True ? "true" : "empirical"; }

double hash_uniform(uint64_t seed, uint64_t a, uint64_t b) {
  uint64_t z = seed * 0x9E3779B97F4A7C15ull ^ (a + 0x632BE59BD9B4E019ull) * 0xBF58476D1CE4E5B9ull ^
               (b + 0x85157AF5ull) * 0x94D049BB133111EBull;
  for (int r = 0; r < 2; ++r) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
  }
  return double(z >> 11) * 0x1.0p-53;
}

int sample_categorical(const std::vector<double>& logits, double u) {
  PH_CHECK(!logits.empty(), "diag::sample_categorical", "no logits");
  PH_CHECK(u >= 0 && u < 1, "diag::sample_categorical", "u must be in [0, 1) (got " << u << ")");
  double mx = *std::max_element(logits.begin(), logits.end());
  PH_CHECK(std::isfinite(mx), "diag::sample_categorical", "non-finite logits");
  std::vector<double> p(logits.size());
  double z = 0;
  for (size_t i = 0; i < p.size(); ++i) z += p[i] = std::exp(logits[i] - mx);
  double c = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    c += p[i] / z;
    if (u < c) return int(i);
  }
  return int(p.size()) - 1;  // u within rounding of 1
}

std::vector<double> fisher_trace(MultiTaskModel& m, const Batch& b, const std::vector<Variable>& params, const FisherOptions& o) {
  const int K = m.num_tasks();
  PH_CHECK(o.n >= 1, "diag::fisher_trace", "n must be >= 1 (got " << o.n << ")");
  PH_CHECK_HINT(int(b.y.size()) == K, "diag::fisher_trace", "batch has " << b.y.size() << " targets for " << K << " tasks",
                "give one target tensor per task");
  for (int k = 0; k < K; ++k)
    PH_CHECK_HINT(m.task(k).kind == TaskKind::Classification && !m.task(k).loss, "diag::fisher_trace",
                  "task '" << m.task(k).name << "' is not a classification task with the default cross-entropy loss",
                  "the Fisher trace needs log p(y|x); leave it off (fisher_n = 0) for such tasks");
  PH_CHECK(!params.empty(), "diag::fisher_trace", "no parameters");
  const int64_t n = std::min<int64_t>(o.n, b.x.size(0));
  std::vector<double> tr(size_t(K), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    Tensor xi = b.x.narrow(0, i, 1).contiguous();
    auto outs = m.forward(Variable(xi));
    for (int k = 0; k < K; ++k) {
      const Variable& out = outs[size_t(k)];
      Tensor yi = b.y[size_t(k)].narrow(0, i, 1).contiguous();
      if (o.kind == FisherKind::True) {
        Tensor lg = out.data().to(Device::cpu()).to(DType::f64).contiguous();
        std::vector<double> logits(lg.data<double>(), lg.data<double>() + lg.numel());
        int c = sample_categorical(logits, hash_uniform(o.seed, uint64_t(i), uint64_t(k)));
        yi = Tensor::from_vector(std::vector<int64_t>{c}, {1}).to(yi.device());
      }
      Variable l = m.task(k).compute_loss(out, yi);  // -log p(yhat | x_i)
      ag::GradOptions go;
      go.allow_unused = true;
      go.retain_graph = k + 1 < K;
      auto gr = ag::grad({l}, params, {}, go);
      double s = 0;
      for (auto& g : gr) {
        if (!g.defined()) continue;
        Tensor d = g.to(Device::cpu()).to(DType::f64).contiguous();
        const double* p = d.data<double>();
        for (int64_t j = 0; j < d.numel(); ++j) s += p[j] * p[j];
      }
      tr[size_t(k)] += s;
    }
  }
  for (auto& v : tr) v /= double(n);
  return tr;
}

}  // namespace polyhead::mtl::diag
