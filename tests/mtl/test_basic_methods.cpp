// tests/mtl/test_basic_methods.cpp: unit tests of the basic MTL family (mtl/methods/*): hand-
// computed values (spec mtl-methods.md section 9 and closed forms), state save/restore round
// trips, and error handling (bad K, non-finite inputs, missing inputs, unknown options/methods).
// The full reference comparison is tests/mtl/golden_test.cpp.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "mtl/method.h"

namespace {

using namespace polyhead::mtl;
using V = std::vector<double>;

Mat make_mat(int r, int c, std::initializer_list<double> v) {
  Mat m(r, c);
  std::copy(v.begin(), v.end(), m.a.begin());
  return m;
}

Mat gram(const Mat& G) {
  Mat M(G.rows, G.rows);
  for (int i = 0; i < G.rows; ++i)
    for (int j = 0; j < G.rows; ++j) {
      double s = 0;
      for (int p = 0; p < G.cols; ++p) s += G(i, p) * G(j, p);
      M(i, j) = s;
    }
  return M;
}

V combine(const Mat& G, const V& w) {
  V d(size_t(G.cols), 0.0);
  for (int k = 0; k < G.rows; ++k)
    for (int p = 0; p < G.cols; ++p) d[p] += w[k] * G(k, p);
  return d;
}

bool same_state(const StateDict& a, const StateDict& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [k, m] : a) {
    auto it = b.find(k);
    if (it == b.end() || it->second.rows != m.rows || it->second.cols != m.cols || it->second.a != m.a) return false;
  }
  return true;
}

// Absolute-tolerance comparison, printed entrywise.
void check_abs(const V& x, const V& r, double tol) {
  REQUIRE(x.size() == r.size());
  for (size_t i = 0; i < x.size(); ++i) {
    INFO("entry " << i << ": " << x[i] << " vs " << r[i]);
    CHECK(std::abs(x[i] - r[i]) <= tol);
  }
}

// Scripted draws: permutations in order (identity when none are left), normals and uniforms
// from lists.
struct ScriptRandom : Random {
  std::vector<std::vector<int>> perms;
  V normals, uniforms;
  size_t pi = 0, ni = 0, ui = 0;
  void shuffle(std::vector<int>& v) override {
    if (pi < perms.size()) v = perms[pi++];
  }
  void normal(std::span<double> out) override {
    for (double& x : out) x = normals.at(ni++);
  }
  void uniform(std::span<double> out) override {
    for (double& x : out) x = uniforms.at(ui++);
  }
};

// Deterministic pseudo-random source for round-trip tests (same seed, same stream).
struct LcgRandom : Random {
  uint64_t s;
  explicit LcgRandom(uint64_t seed) : s(seed) {}
  double next() {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    return double(s >> 11) * (1.0 / 9007199254740992.0);
  }
  void shuffle(std::vector<int>& v) override {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[size_t(next() * double(i)) % i]);
  }
  void normal(std::span<double> out) override {
    for (double& x : out) x = std::sqrt(-2 * std::log(1 - next())) * std::cos(6.283185307179586 * next());
  }
  void uniform(std::span<double> out) override {
    for (double& x : out) x = next();
  }
};

const Mat J_base = make_mat(2, 3, {-4, 1, 1, 6, 1, 1});
const Mat J3 = make_mat(3, 5,
                        {0.1257, -0.1321, 0.6404, 0.1049, -0.5357, 0.173, 1.5022, -0.0136, -0.8611, -0.4619, -0.6233,
                         0.0413, -2.325, -0.2188, -1.2459});

struct Inputs {
  Mat G, M, hist, rep;
  StepInput in;
  Inputs(const Mat& g, V L = {}) : G(g), M(gram(g)) {
    in.K = g.rows;
    in.G = &G;
    in.M = &M;
    in.L = std::move(L);
  }
};

V d_of(const StepOutput& out, const Mat& G) { return out.d.empty() ? combine(G, out.w) : out.d; }

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const polyhead::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("basic methods: torchjd test values on J_base (spec section 9)") {
  Inputs x(J_base);
  ScriptRandom rng;
  x.in.rng = &rng;
  SUBCASE("mean / sum / constant") {
    check_abs(d_of(make_method("mean", 2)->step(x.in), J_base), {1, 1, 1}, 1e-12);
    check_abs(d_of(make_method("sum", 2)->step(x.in), J_base), {2, 2, 2}, 1e-12);
    check_abs(d_of(make_method("ew", 2)->step(x.in), J_base), {2, 2, 2}, 1e-12);
    auto c = make_method("constant", 2, {{"weights", "1, 2"}});
    check_abs(d_of(c->step(x.in), J_base), {8, 3, 3}, 1e-12);
  }
  SUBCASE("pcgrad (K = 2: order-independent), both variants") {
    for (const char* variant : {"torchjd", "libmtl"}) {
      auto m = make_method("pcgrad", 2, {{"variant", variant}});
      StepOutput out = m->step(x.in);
      check_abs(out.w, {2.2222, 1.5789}, 1e-4);
      check_abs(d_of(out, J_base), {0.5848, 3.8012, 3.8012}, 1e-4);
    }
  }
  SUBCASE("rlw: torch seed 0 draws z = [1.5410, -0.2934]") {
    rng.normals = {1.5410, -0.2934};
    StepOutput out = make_method("rlw", 2)->step(x.in);
    check_abs(out.w, {0.8623, 0.1377}, 1e-4);
    check_abs(d_of(out, J_base), {-2.6229, 1, 1}, 1e-4);
  }
  SUBCASE("graddrop torchjd: torch seed 0 draws U = [0.4963, 0.7682, 0.0885]") {
    rng.uniforms = {0.4963, 0.7682, 0.0885};
    StepOutput out = make_method("graddrop", 2, {{"variant", "torchjd"}})->step(x.in);
    check_abs(out.d, {6, 2, 2}, 1e-12);
  }
  SUBCASE("imtl at s = 0 equals IMTL-G") {
    x.in.L = {1, 1};
    StepOutput out = make_method("imtl", 2)->step(x.in);
    REQUIRE(out.reported);
    check_abs(*out.reported, {0.5923, 0.4077}, 1e-4);
    check_abs(d_of(out, J_base), {0.0767, 1, 1}, 1e-4);
  }
  SUBCASE("db_mtl step 1 (L = 1, so the rows are the log-loss gradients)") {
    x.in.L = {1, 1};
    StepOutput out = make_method("db_mtl", 2)->step(x.in);
    check_abs(out.d, {0.0188, 0.2453, 0.2453}, 1e-4);
    REQUIRE(out.reported);
    check_abs(*out.reported, {1, 1}, 0);
  }
  SUBCASE("moco step 1 with L = [1, 1]") {
    x.in.L = {1, 1};
    StepOutput out = make_method("moco", 2)->step(x.in);
    REQUIRE(out.reported);
    check_abs(*out.reported, {0.5, 0.5}, 1e-4);
    check_abs(out.d, {0.0076, 0.0995, 0.0995}, 1e-4);
  }
}

TEST_CASE("basic methods: J3 values (spec section 9)") {
  Inputs x(J3, {1, 2, 0.5});
  ScriptRandom rng;
  x.in.rng = &rng;
  SUBCASE("pcgrad natural vs reversed orders") {
    // torchjd: one permutation per row, row i skipped; libmtl: all K, i included (a no-op here).
    for (const char* variant : {"torchjd", "libmtl"}) {
      rng.perms = {{0, 1, 2}, {0, 1, 2}, {0, 1, 2}};
      rng.pi = 0;
      check_abs(make_method("pcgrad", 3, {{"variant", variant}})->step(x.in).w, {2.2903, 1.0087, 1.1246}, 1e-4);
      rng.perms = {{2, 1, 0}, {2, 1, 0}, {2, 1, 0}};
      rng.pi = 0;
      check_abs(make_method("pcgrad", 3, {{"variant", variant}})->step(x.in).w, {2.2903, 1.0000, 1.1255}, 1e-4);
    }
  }
  SUBCASE("imtl at s = 0 equals IMTL-G") {
    StepOutput out = make_method("imtl", 3)->step(x.in);
    REQUIRE(out.reported);
    check_abs(*out.reported, {0.6522, 0.1538, 0.1940}, 1e-4);
    // w = alpha e^s = alpha at s = 0; param_grads = e^s L - 1
    check_abs(out.w, *out.reported, 0);
    auto m = make_method("imtl", 3);
    m->step(x.in);
    auto g = m->param_grads();
    check_abs(V(g.begin(), g.end()), {0, 1, -0.5}, 1e-15);
  }
  SUBCASE("db_mtl step 1 (L = 1)") {
    x.in.L = {1, 1, 1};
    check_abs(make_method("db_mtl", 3)->step(x.in).d, {0.0035, 0.1893, -0.0323, -0.1188, -0.3636}, 1e-4);
  }
  SUBCASE("moco step 1 with L = [1, 2, 0.5]") {
    StepOutput out = make_method("moco", 3)->step(x.in);
    REQUIRE(out.reported);
    check_abs(*out.reported, {0.3359, 0.3266, 0.3375}, 1e-4);
    check_abs(out.d, {0.0366, 0.2480, 0.0503, -0.1426, -0.2269}, 1e-4);
  }
  SUBCASE("gradvac with rho_T = 0 equals pcgrad on its first step; one group of P = whole model") {
    rng.perms = {{1, 2}, {0, 2}, {0, 1}};
    V gv = make_method("gradvac", 3)->step(x.in).w;
    rng.pi = 0;
    StepOutput grouped = make_method("gradvac", 3, {{"groups", "5"}})->step(x.in);
    rng.perms = {{0, 1, 2}, {0, 1, 2}, {0, 1, 2}};
    rng.pi = 0;
    V pc = make_method("pcgrad", 3, {{"variant", "torchjd"}})->step(x.in).w;
    // GradVac's 1e-8 terms differ from torchjd PCGrad's exact projection only at ~1e-8.
    check_abs(gv, pc, 1e-7);
    check_abs(grouped.d, combine(J3, gv), 1e-12);
  }
}

TEST_CASE("basic methods: loss-level closed forms") {
  Inputs x(J_base, {2.0, 0.5});
  SUBCASE("uw at init: w = 1/(2 e^-0.5) = 0.824, grad = 1/2 - L w") {
    auto m = make_method("uw", 2);
    StepOutput out = m->step(x.in);
    const double w0 = 1.0 / (2.0 * std::exp(-0.5));
    CHECK(w0 == doctest::Approx(0.8243606353500641));
    check_abs(out.w, {w0, w0}, 1e-15);
    auto g = m->param_grads();
    check_abs(V(g.begin(), g.end()), {0.5 - 2.0 * w0, 0.5 - 0.5 * w0}, 1e-15);
    CHECK(m->params().size() == 2);
    CHECK(m->head_grad() == HeadGrad::Weighted);
  }
  SUBCASE("si: w = 1/L") { check_abs(make_method("si", 2)->step(x.in).w, {0.5, 2.0}, 1e-15); }
  SUBCASE("gls: w = sqrt(L1 L2)/(2 L_k); reported L_k/(K prod L)") {
    StepOutput out = make_method("gls", 2)->step(x.in);
    check_abs(out.w, {1.0 / 4.0, 1.0 / 1.0}, 1e-15);  // geometric mean 1
    REQUIRE(out.reported);
    check_abs(*out.reported, {2.0 / 2.0, 0.5 / 2.0}, 1e-15);
  }
  SUBCASE("dwa: ones at epochs 0 and 1, then K softmax(ratio / T)") {
    Mat hist = make_mat(2, 3, {4.0, 2.0, 1.0, 3.0, 3.0, 3.0});
    x.in.loss_history = &hist;
    auto m = make_method("dwa", 2);
    x.in.epoch = 1;
    check_abs(m->step(x.in).w, {1, 1}, 0);
    x.in.epoch = 3;  // uses columns 2 and 1: ratios 0.5 and 1
    const double a = std::exp(0.25), b = std::exp(0.5);
    check_abs(m->step(x.in).w, {2 * a / (a + b), 2 * b / (a + b)}, 1e-15);
    x.in.epoch = 4;  // needs column 3: missing
    CHECK_THROWS_AS(m->step(x.in), polyhead::Error);
  }
  SUBCASE("stch: log-loss weights before, nadir after the warm-up epoch") {
    auto m = make_method("stch", 2, {{"warmup_epoch", "1"}});
    x.in.epoch = 0;
    StepOutput out = m->step(x.in);
    check_abs(out.w, {0.5, 2.0}, 1e-15);
    REQUIRE(out.reported);
    check_abs(*out.reported, {1, 1}, 0);
    x.in.epoch = 1;
    m->step(x.in);
    x.in.L = {4.0, 0.5};
    m->step(x.in);  // nadir = mean = [3, 0.5]
    x.in.epoch = 2;
    x.in.L = {3.0, 1.0};  // l = log([1, 2]), softmax = [1/3, 2/3]
    out = m->step(x.in);
    check_abs(out.w, {2 * (1.0 / 3) / 1.0 / 3.0, 2 * (2.0 / 3) / 2.0 / 0.5}, 1e-12);
    const StateDict s = m->state();
    REQUIRE(s.count("nadir_vector"));
    check_abs(s.at("nadir_vector").a, {3.0, 0.5}, 1e-15);
    // past the warm-up without any warm-up step: the nadir is undefined
    auto fresh = make_method("stch", 2);
    x.in.epoch = 5;
    CHECK(error_of([&] { fresh->step(x.in); }).find("warm") != std::string::npos);
  }
  SUBCASE("famo (spec section 9): weights, then the Adam update of the logits") {
    auto m = make_method("famo", 2);
    x.in.L = {2.0, 0.5};
    check_abs(m->step(x.in).w, {0.2, 0.8}, 1e-8);  // D = L + 1e-8
    const V after1 = {1.8, 0.45};
    m->after_update(after1);
    x.in.L = {1.8, 0.45};
    check_abs(m->step(x.in).w, {0.1997, 0.8003}, 1e-4);
    const V after2 = {1.5, 0.44};
    m->after_update(after2);
    check_abs(m->state().at("w").a, {-0.0196, 0.0196}, 1e-4);
    auto fresh = make_method("famo", 2);
    CHECK_THROWS_AS(fresh->after_update(after1), polyhead::Error);
  }
}

TEST_CASE("basic methods: gradient methods, hand-computed") {
  SUBCASE("gradnorm: EW at epoch 0, then K softmax(s) with the GradNorm gradient") {
    Inputs x(J_base, {1.0, 1.0});
    Mat hist = make_mat(2, 1, {1.0, 2.0});
    x.in.loss_history = &hist;
    auto m = make_method("gradnorm", 2, {{"alpha", "1"}});
    x.in.epoch = 0;
    check_abs(m->step(x.in).w, {1, 1}, 0);
    auto g = m->param_grads();
    check_abs(V(g.begin(), g.end()), {0, 0}, 0);
    x.in.epoch = 1;
    StepOutput out = m->step(x.in);
    check_abs(out.w, {1, 1}, 1e-15);  // s = 1 for both tasks
    // n = [sqrt 18, sqrt 38]; Gbar = mean(n); r = (L/L0)/mean = [4/3, 2/3]
    const double n0 = std::sqrt(18.0), n1 = std::sqrt(38.0), gbar = (n0 + n1) / 2;
    const double s0 = (n0 - gbar * 4.0 / 3.0) > 0 ? 1 : -1, s1 = (n1 - gbar * 2.0 / 3.0) > 0 ? 1 : -1;
    const double a0 = 2 * s0 * n0, a1 = 2 * s1 * n1, za = 0.5 * (a0 + a1);
    g = m->param_grads();
    check_abs(V(g.begin(), g.end()), {0.5 * (a0 - za), 0.5 * (a1 - za)}, 1e-12);
  }
  SUBCASE("graddrop libmtl: signs of the representation flip the purity") {
    Inputs x(make_mat(2, 2, {1.0, -2.0, 3.0, 1.0}));
    x.rep = make_mat(1, 2, {-1.0, 1.0});
    x.in.rep = &x.rep;
    ScriptRandom rng;
    rng.uniforms = {0.5, 0.5};
    x.in.rng = &rng;
    // column 0: s = [-1, -3], purity ~ 0 < U: keep negative s -> both rows: d = 4
    // column 1: s = [-2, 1], purity = 0.5 (1 - 1/3) = 1/3 < U: keep s < 0 -> row 0: d = -2
    check_abs(make_method("graddrop", 2)->step(x.in).d, {4.0, -2.0}, 1e-12);
  }
  SUBCASE("krum selects the central rows, trimmedmean trims each column") {
    Inputs x(make_mat(4, 2, {1.0, 0.0, 1.1, 0.1, 0.95, -0.05, 10.0, 10.0}));
    check_abs(make_method("krum", 4)->step(x.in).w, {1, 0, 0, 0}, 0);
    check_abs(make_method("krum", 4, {{"n_selected", "2"}})->step(x.in).w, {0.5, 0, 0.5, 0}, 0);
    Inputs t(make_mat(5, 2, {1, 10, 2, 2, 3, -5, 100, 3, -50, 2}));
    check_abs(make_method("trimmedmean", 5, {{"trim_number", "1"}})->step(t.in).d, {2.0, 7.0 / 3.0}, 1e-15);
  }
  SUBCASE("excessmtl: weights 1 on the first step, then multiplicative updates summing to K") {
    Inputs x(J_base, {1.0, 1.0});
    auto m = make_method("excessmtl", 2);
    check_abs(m->step(x.in).w, {1, 1}, 0);
    StepOutput out = m->step(x.in);
    CHECK(out.w[0] + out.w[1] == doctest::Approx(2.0));
    CHECK(m->head_grad() == HeadGrad::Weighted);
  }
  SUBCASE("modo and sdmgrad keep their weights on the simplex") {
    Inputs x(J3);
    x.in.G3 = {J3, J3, J3};
    for (const char* name : {"modo", "sdmgrad"}) {
      auto m = make_method(name, 3);
      for (int s = 0; s < 3; ++s) m->step(x.in);
      const Mat w = m->state().begin()->second;
      double sum = 0;
      for (double v : w.a) {
        CHECK(v >= 0);
        sum += v;
      }
      CHECK(sum == doctest::Approx(1.0));
    }
  }
}

TEST_CASE("basic methods: state() / load_state() round trip restores exactly") {
  struct Case {
    const char* name;
    Options opts;
  };
  const std::vector<Case> cases = {{"uw", {}},
                                   {"gradnorm", {}},
                                   {"imtl", {}},
                                   {"stch", {{"warmup_epoch", "1"}}},
                                   {"famo", {}},
                                   {"gradvac", {}},
                                   {"gradvac", {{"groups", "2,3"}}},
                                   {"moco", {}},
                                   {"db_mtl", {}},
                                   {"excessmtl", {}},
                                   {"modo", {}},
                                   {"sdmgrad", {}},
                                   {"pcgrad", {}},
                                   {"rlw", {}},
                                   {"dwa", {}}};
  const int K = 3, P = 5;
  LcgRandom data(42);
  auto make_input = [&](int step, Inputs& x) {
    V g(size_t(K * P));
    data.normal(g);
    std::copy(g.begin(), g.end(), x.G.a.begin());
    x.M = gram(x.G);
    x.in.L = {1.0 + 0.1 * step, 2.0 - 0.2 * step, 0.5 + 0.05 * step};
    x.in.epoch = step / 2;
    x.in.G3 = {x.G, x.G, x.G};
  };
  for (const auto& c : cases) {
    INFO("method " << c.name);
    Inputs x(Mat(K, P));
    Mat hist = make_mat(3, 3, {1.0, 0.9, 0.8, 2.0, 1.5, 1.2, 0.5, 0.5, 0.4});
    x.in.loss_history = &hist;
    auto a = make_method(c.name, K, c.opts);
    LcgRandom ra(7);
    x.in.rng = &ra;
    for (int s = 0; s < 4; ++s) {
      make_input(s, x);
      a->step(x.in);
      const V after = {0.9 * x.in.L[0], 0.95 * x.in.L[1], 0.8 * x.in.L[2]};
      a->after_update(after);
      auto p = a->params();
      auto g = a->param_grads();
      for (size_t i = 0; i < p.size(); ++i) p[i] -= 0.1 * g[i];
    }
    const StateDict saved = a->state();
    auto b = make_method(c.name, K, c.opts);
    b->load_state(saved);
    CHECK(same_state(b->state(), saved));
    a->load_state(a->state());
    CHECK(same_state(a->state(), saved));
    // the next step is bitwise identical
    make_input(5, x);
    LcgRandom r1(99), r2(99);
    x.in.rng = &r1;
    StepOutput oa = a->step(x.in);
    x.in.rng = &r2;
    StepOutput ob = b->step(x.in);
    CHECK(oa.w == ob.w);
    CHECK(oa.d == ob.d);
    CHECK(oa.reported == ob.reported);
    CHECK(same_state(a->state(), b->state()));
  }
}

TEST_CASE("basic methods: invalid inputs throw polyhead::Error with a message") {
  Inputs x(J_base, {1.0, 1.0});
  ScriptRandom rng;
  x.in.rng = &rng;
  SUBCASE("K mismatch") {
    auto m = make_method("ew", 3);
    CHECK(error_of([&] { m->step(x.in); }).find("K = 3") != std::string::npos);
    auto p = make_method("pcgrad", 3);
    CHECK_THROWS_AS(p->step(x.in), polyhead::Error);
  }
  SUBCASE("wrong number of losses") {
    x.in.L = {1.0, 2.0, 3.0};
    CHECK(error_of([&] { make_method("uw", 2)->step(x.in); }).find("3 values") != std::string::npos);
  }
  SUBCASE("NaN / Inf in L or G") {
    x.in.L = {1.0, std::nan("")};
    for (const char* name : {"ew", "uw", "famo", "stch", "gls", "si", "imtl", "moco"})
      CHECK_MESSAGE(error_of([&] { make_method(name, 2)->step(x.in); }).find("not finite") != std::string::npos,
                    std::string(name));
    x.in.L = {1.0, 1.0};
    x.G(1, 2) = INFINITY;
    x.M = gram(x.G);
    for (const char* name : {"pcgrad", "moco", "db_mtl", "excessmtl", "trimmedmean"}) {
      Inputs y(x.G, {1.0, 1.0});
      y.in.rng = &rng;
      if (std::string(name) == "pcgrad") y.in.M = nullptr;  // the Gramian is then built from G
      CHECK_MESSAGE(error_of([&] { make_method(name, 2)->step(y.in); }).find("not finite") != std::string::npos,
                    std::string(name));
    }
  }
  SUBCASE("non-positive losses for log-based methods") {
    x.in.L = {1.0, 0.0};
    for (const char* name : {"si", "gls", "stch"})
      CHECK_MESSAGE(error_of([&] { make_method(name, 2)->step(x.in); }).find("> 0") != std::string::npos,
                    std::string(name));
  }
  SUBCASE("missing inputs") {
    StepInput bare;
    bare.K = 2;
    bare.L = {1, 1};
    CHECK(error_of([&] { make_method("pcgrad", 2)->step(bare); }).find("Gramian") != std::string::npos);
    CHECK(error_of([&] { make_method("moco", 2)->step(bare); }).find("StepInput.G") != std::string::npos);
    CHECK(error_of([&] { make_method("dwa", 2)->step(bare); }).find("loss_history") != std::string::npos);
    CHECK(error_of([&] { make_method("modo", 2)->step(bare); }).find("three") != std::string::npos);
    x.in.rng = nullptr;
    CHECK(error_of([&] { make_method("rlw", 2)->step(x.in); }).find("rng") != std::string::npos);
    CHECK(error_of([&] {
            make_method("graddrop", 2, {{"variant", "torchjd"}})->step(x.in);
          }).find("rng") != std::string::npos);
    x.in.rng = &rng;
    CHECK(error_of([&] { make_method("graddrop", 2)->step(x.in); }).find("rep") != std::string::npos);
  }
  SUBCASE("a zero gradient row: imtl throws, excessmtl throws on its second step") {
    Inputs z(make_mat(2, 3, {0, 0, 0, 1, 2, 3}), {1.0, 1.0});
    CHECK(error_of([&] { make_method("imtl", 2)->step(z.in); }).find("zero") != std::string::npos);
    auto e = make_method("excessmtl", 2);
    e->step(z.in);
    CHECK(error_of([&] { e->step(z.in); }).find("zero gradient") != std::string::npos);
  }
  SUBCASE("bad state") {
    auto m = make_method("uw", 2);
    CHECK(error_of([&] { m->load_state({{"bogus", Mat(1, 2)}}); }).find("loss_scale") != std::string::npos);
    CHECK_THROWS_AS(m->load_state({{"loss_scale", Mat(1, 3)}}), polyhead::Error);
  }
}

TEST_CASE("basic methods: registry, options and metadata") {
  SUBCASE("unknown option lists the valid ones") {
    const std::string e = error_of([] { make_method("gradvac", 2, {{"bta", "0.5"}}); });
    CHECK(e.find("bta") != std::string::npos);
    CHECK(e.find("beta") != std::string::npos);
    CHECK(e.find("groups") != std::string::npos);
    CHECK(error_of([] { make_method("ew", 2, {{"alpha", "1"}}); }).find("takes no options") != std::string::npos);
  }
  SUBCASE("unknown method lists the valid names") {
    const std::string e = error_of([] { make_method("pcgard", 2); });
    CHECK(e.find("pcgard") != std::string::npos);
    CHECK(e.find("pcgrad") != std::string::npos);
    CHECK(e.find("famo") != std::string::npos);
  }
  SUBCASE("bad option values") {
    CHECK_THROWS_AS(make_method("constant", 2), polyhead::Error);
    CHECK_THROWS_AS(make_method("constant", 2, {{"weights", "1,2,3"}}), polyhead::Error);
    CHECK_THROWS_AS(make_method("constant", 2, {{"weights", "1,x"}}), polyhead::Error);
    CHECK_THROWS_AS(make_method("pcgrad", 2, {{"variant", "cagrad"}}), polyhead::Error);
    CHECK_THROWS_AS(make_method("gradvac", 2, {{"groups", "2,0"}}), polyhead::Error);
    CHECK_THROWS_AS(make_method("krum", 2), polyhead::Error);  // needs K >= n_byzantine + 3
    CHECK_THROWS_AS(make_method("trimmedmean", 2, {{"trim_number", "1"}}), polyhead::Error);
    CHECK_THROWS_AS(make_method("dwa", 2, {{"T", "0"}}), polyhead::Error);
    Inputs x(J3, {1, 1, 1});
    CHECK_THROWS_AS(make_method("gradvac", 3, {{"groups", "2,2"}})->step(x.in), polyhead::Error);  // sums to 4 != P
  }
  SUBCASE("every basic method is listed with a kind and a summary naming its source") {
    const std::vector<std::string> names = {"ew",        "sum",    "mean",    "constant", "si",         "uw",
                                            "dwa",       "gls",    "rlw",     "stch",     "famo",       "gradnorm",
                                            "imtl",      "pcgrad", "gradvac", "graddrop", "moco",       "db_mtl",
                                            "excessmtl", "modo",   "sdmgrad", "krum",     "trimmedmean"};
    const auto all = list_methods();
    for (const auto& n : names) {
      auto it = std::find_if(all.begin(), all.end(), [&](const MethodInfo& i) { return i.name == n; });
      REQUIRE_MESSAGE(it != all.end(), n);
      CHECK((it->kind == "loss" || it->kind == "gramian" || it->kind == "full"));
      CHECK(it->summary.find('(') != std::string::npos);
      auto m = make_method(n, 3, n == "constant" ? Options{{"weights", "1,1,1"}} : Options{});
      CHECK(m->name() == n);
      if (it->kind == "loss") CHECK((m->needs() & (kNeedJacobian | kNeedGramian)) == 0u);
      if (it->kind == "gramian") CHECK((m->needs() & kNeedJacobian) == 0u);
    }
    CHECK(make_method("pcgrad", 2)->head_grad() == HeadGrad::Unweighted);
    CHECK(make_method("ew", 2)->head_grad() == HeadGrad::Weighted);
  }
}
