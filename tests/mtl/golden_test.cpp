// tests/mtl/golden_test.cpp: THE golden-vector driver for every MTL method. It reads each *.json
// (except manifest.json) of $POLYHEAD_GOLDEN_DIR (default POLYHEAD_TEST_DATA/golden/mtl, a copy of
// the LibMTL / torchjd reference vectors; see its README.md), maps (library, method) to a registry
// name and Options, replays the recorded random draws, feeds the recorded state and inputs, and
// compares d, weights, param_grad and state_after with the README's rule
//   max|x - r| <= rtol * max|r|   (rtol = the case's tolerance of that output group).
// Groups listed in a case's ill_conditioned are skipped; `error` cases must throw polyhead::Error
// (or give non-finite output); nonfinite_output cases must give non-finite output (or throw).
// libmtl_cagrad also gets the README's objective check and a 1e-9 check of the combination step.
// Every case is counted. Optional $POLYHEAD_GOLDEN_FILTER: comma-separated substrings of file
// names to run (all files when unset).
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include "golden_util.h"
#include "mtl/method.h"

namespace {

namespace fs = std::filesystem;
using namespace polyhead::mtl;
using namespace polyhead::mtl::golden;

struct Spec {
  std::string name;
  Options opts;
  bool cagrad_libmtl = false;
  double calpha = 0.5;
  int rescale = 1;
};

std::string opt_str(const json& v) {
  if (v.is_boolean()) return v.get<bool>() ? "1" : "0";
  if (v.is_number_integer()) return std::to_string(v.get<long long>());
  if (v.is_number()) return fmt(v.get<double>());
  if (v.is_string()) return v.get<std::string>();
  throw std::runtime_error("golden: hyperparameter is not a scalar: " + v.dump());
}

// (library, method, file hyperparameters) -> registry name + Options.
Spec map_method(const std::string& lib, const std::string& m, const json& hp) {
  Spec s;
  auto opt = [&](const char* name, const char* key) {
    if (hp.contains(key) && !hp[key].is_null()) s.opts.set(name, opt_str(hp[key]));
  };
  if (lib == "LibMTL") {
    if (m == "EW")
      s.name = "ew";
    else if (m == "UW")
      s.name = "uw";
    else if (m == "GLS")
      s.name = "gls";
    else if (m == "RLW")
      s.name = "rlw";
    else if (m == "IMTL")
      s.name = "imtl";
    else if (m == "GradNorm") {
      s.name = "gradnorm";
      opt("alpha", "alpha");
    } else if (m == "DWA") {
      s.name = "dwa";
      opt("T", "T");
    } else if (m == "STCH") {
      s.name = "stch";
      opt("mu", "STCH_mu");
      opt("warmup_epoch", "STCH_warmup_epoch");
    } else if (m == "FAMO") {
      s.name = "famo";
      opt("lr", "FAMO_w_lr");
      opt("weight_decay", "FAMO_w_gamma");
    } else if (m == "PCGrad") {
      s.name = "pcgrad";
      s.opts.set("variant", "libmtl");
    } else if (m == "GradVac") {
      if (hp.contains("GradVac_group_type") && hp["GradVac_group_type"].get<int>() != 0)
        throw std::runtime_error("GradVac group_type other than 0 has no engine mapping");
      s.name = "gradvac";
      opt("beta", "GradVac_beta");
    } else if (m == "GradDrop") {
      s.name = "graddrop";
      s.opts.set("variant", "libmtl");
      opt("leak", "leak");
    } else if (m == "MoCo") {
      s.name = "moco";
      opt("beta", "MoCo_beta");
      opt("beta_sigma", "MoCo_beta_sigma");
      opt("gamma", "MoCo_gamma");
      opt("gamma_sigma", "MoCo_gamma_sigma");
      opt("rho", "MoCo_rho");
    } else if (m == "DB_MTL") {
      s.name = "db_mtl";
      opt("beta", "DB_beta");
      opt("beta_sigma", "DB_beta_sigma");
    } else if (m == "ExcessMTL") {
      s.name = "excessmtl";
      opt("robust_step_size", "robust_step_size");
    } else if (m == "MoDo") {
      s.name = "modo";
      opt("gamma", "MoDo_gamma");
      opt("rho", "MoDo_rho");
    } else if (m == "SDMGrad") {
      s.name = "sdmgrad";
      opt("lamda", "SDMGrad_lamda");
      opt("niter", "SDMGrad_niter");
    } else if (m == "MGDA") {
      s.name = "mgda";
      s.opts.set("gn", hp.contains("mgda_gn") ? hp["mgda_gn"].get<std::string>() : "none");
      s.opts.set("solver", "libmtl");
    } else if (m == "CAGrad") {
      s.name = "cagrad";
      s.cagrad_libmtl = true;
      s.calpha = hp.value("calpha", 0.5);
      s.rescale = hp.value("rescale", 1);
      s.opts.set("calpha", fmt(s.calpha));
      s.opts.set("rescale", std::to_string(s.rescale));
    } else if (m == "FairGrad") {
      s.name = "fairgrad";
      s.opts.set("alpha", hp.contains("FairGrad_alpha") ? opt_str(hp["FairGrad_alpha"]) : "1");
    } else if (m == "Aligned_MTL") {
      s.name = "aligned_mtl";
      s.opts.set("scale", "libmtl");
    }
  } else if (lib == "torchjd") {
    if (m == "Mean")
      s.name = "mean";
    else if (m == "Sum")
      s.name = "sum";
    else if (m == "Random")
      s.name = "rlw";
    else if (m == "PCGrad") {
      s.name = "pcgrad";
      s.opts.set("variant", "torchjd");
    } else if (m == "GradDrop") {
      if (hp.contains("f") && hp["f"] != "identity") throw std::runtime_error("GradDrop f other than identity");
      s.name = "graddrop";
      s.opts.set("variant", "torchjd");
      if (hp.contains("leak") && !hp["leak"].is_null())
        throw std::runtime_error("GradDrop per-row leak has no mapping");
    } else if (m == "Krum")
      s.name = "krum";
    else if (m == "TrimmedMean")
      s.name = "trimmedmean";
    else if (m == "MGDA") {
      s.name = "mgda";
      s.opts.set("solver", "torchjd");
    } else if (m == "IMTLG")
      s.name = "imtl_g";
    else if (m == "AlignedMTL") {
      s.name = "aligned_mtl";
      s.opts.set("scale", "torchjd");
    } else if (m == "ConFIG")
      s.name = "config";
  }
  if (s.name.empty()) throw std::runtime_error("no engine method is mapped for " + lib + " " + m);
  return s;
}

double group_tol(const json& top, const json& c, const char* group) {
  if (c.contains("tolerance") && c["tolerance"].is_object() && c["tolerance"].contains(group))
    return num(c["tolerance"][group]);
  const json& t = top["tolerance"]["default_rtol"];
  if (t.is_object()) {
    if (t.contains(group)) return num(t[group]);
    double m = 0.0;
    for (const auto& [k, v] : t.items()) m = std::max(m, num(v));
    return m;
  }
  return num(t);
}

enum class Outcome { Passed, ExpectedError, ExpectedNonfinite, Failed };

struct CaseResult {
  Outcome outcome = Outcome::Passed;
  bool skipped_groups = false;
  std::string msg;
};

struct Failure {
  std::string msg;
};

// Everything one step of a case needs, kept alive while the method runs.
struct StepData {
  Mat G, M, rep, hist;
  bool three = false;
  StepInput in;
  ReplayRandom rng;
  std::vector<double> L_after;
  bool has_L_after = false;
  double zero_scale = 0.0;
};

void build_step(const json& st, int K, StepData& sd) {
  StepInput& in = sd.in;
  in.K = K;
  const json& g = st["G"];
  sd.three = g.is_array() && !g.empty() && g[0].is_array() && !g[0].empty() && g[0][0].is_array();
  if (sd.three) {
    for (const auto& gs : g) in.G3.push_back(mat(gs));
    if (st.contains("L") && !st["L"].is_null())
      for (const auto& ls : st["L"]) in.L3.push_back(flat(ls));
    for (const Mat& m : in.G3)
      for (double x : m.a) sd.zero_scale = std::max(sd.zero_scale, std::abs(x));
  } else {
    sd.G = mat(g);
    sd.M = gram(sd.G);
    in.G = &sd.G;
    in.M = &sd.M;
    for (double x : sd.G.a) sd.zero_scale = std::max(sd.zero_scale, std::abs(x));
    if (st.contains("L") && !st["L"].is_null()) in.L = flat(st["L"]);
  }
  if (st.contains("rep") && !st["rep"].is_null()) {
    sd.rep = mat(st["rep"]);
    in.rep = &sd.rep;
  }
  if (st.contains("epoch") && !st["epoch"].is_null()) in.epoch = st["epoch"].get<int>();
  if (st.contains("train_loss_buffer") && !st["train_loss_buffer"].is_null()) {
    const json& b = st["train_loss_buffer"];
    sd.hist = Mat(int(b.size()), b.empty() ? 0 : int(b[0].size()));
    for (size_t i = 0; i < b.size(); ++i)
      for (size_t j = 0; j < b[i].size(); ++j) sd.hist(int(i), int(j)) = num(b[i][j]);
    in.loss_history = &sd.hist;
  }
  if (st.contains("L_after") && !st["L_after"].is_null()) {
    sd.L_after = flat(st["L_after"]);
    sd.has_L_after = true;
  }
  if (st.contains("draws") && st["draws"].is_object()) {
    const json& d = st["draws"];
    for (const char* key : {"task_orders", "permutations"})
      if (d.contains(key))
        for (const auto& p : d[key]) sd.rng.perms.push_back(p.get<std::vector<int>>());
    if (d.contains("z")) sd.rng.normals.push_back(flat(d["z"]));
    if (d.contains("U")) sd.rng.uniforms.push_back(flat(d["U"]));
  }
  in.rng = &sd.rng;
}

bool output_nonfinite(const StepOutput& out, Method& m) {
  if (!all_finite(out.d) || !all_finite(out.w)) return true;
  if (out.reported && !all_finite(*out.reported)) return true;
  auto g = m.param_grads();
  if (!all_finite(std::vector<double>(g.begin(), g.end()))) return true;
  for (const auto& [k, v] : m.state())
    if (!all_finite(v.a)) return true;
  return false;
}

std::vector<double> engine_d(const StepOutput& out, const StepData& sd) {
  if (!out.d.empty()) return out.d;
  if (out.w.empty() || sd.three) return {};
  std::vector<double> d(size_t(sd.G.cols), 0.0);
  for (int k = 0; k < sd.G.rows; ++k)
    for (int p = 0; p < sd.G.cols; ++p) d[p] += out.w[k] * sd.G(k, p);
  return d;
}

// README special rule of libmtl_cagrad: the engine's weights must reach the reference objective,
// and d must be the CAGrad combination of the engine's own weights (1e-9); the driver's combination
// formula is itself checked on the recorded weights.
bool cagrad_checks(const Spec& spec, const json& st, const StepData& sd, const StepOutput& out,
                   const std::vector<double>& d, std::string& why) {
  const Mat& G = sd.G;
  const Mat& A = sd.M;
  const int K = G.rows;
  auto combination = [&](const std::vector<double>& w) {
    double meanA = 0.0;
    for (double x : A.a) meanA += x;
    meanA /= double(A.a.size());
    const double c = spec.calpha * std::sqrt(meanA + 1e-8) + 1e-8;
    std::vector<double> gw(size_t(G.cols), 0.0), g0(size_t(G.cols), 0.0), res(size_t(G.cols));
    for (int k = 0; k < K; ++k)
      for (int p = 0; p < G.cols; ++p) {
        gw[p] += w[k] * G(k, p);
        g0[p] += G(k, p) / K;
      }
    double n = 0.0;
    for (double x : gw) n += x * x;
    const double lam = c / (std::sqrt(n) + 1e-8);
    const double div = spec.rescale == 1 ? 1 + spec.calpha * spec.calpha : (spec.rescale == 2 ? 1 + spec.calpha : 1.0);
    for (int p = 0; p < G.cols; ++p) res[p] = (g0[p] + lam * gw[p]) / div;
    return std::pair{res, c};
  };
  const json& diag = st["diagnostics"];
  // 1. the driver's formula reproduces the reference's d from its weights
  auto [ref_comb, c_ref] = combination(flat(st["weights"]));
  if (!close(ref_comb, flat(st["d"]), 1e-9, sd.zero_scale, why)) {
    why = "driver self-check (combination of the recorded weights vs recorded d): " + why;
    return false;
  }
  if (std::abs(c_ref - num(diag["c"])) > 1e-9 * std::abs(num(diag["c"]))) {
    why = "driver self-check: c = " + fmt(c_ref) + " vs diagnostics.c " + fmt(num(diag["c"]));
    return false;
  }
  // 2. the engine's weights reach the reference objective
  const std::vector<double> w = out.reported ? *out.reported : out.w;
  if (int(w.size()) != K) {
    why = "cagrad returns no K weights (reported or w) to check the objective with";
    return false;
  }
  double wAb = 0.0, wAw = 0.0, amax = 0.0;
  for (int i = 0; i < K; ++i)
    for (int j = 0; j < K; ++j) {
      wAb += w[i] * A(i, j) / K;
      wAw += w[i] * A(i, j) * w[j];
      amax = std::max(amax, std::abs(A(i, j)));
    }
  const double f = wAb + c_ref * std::sqrt(wAw + 1e-8);
  const double bound = num(diag["objective"]) + 1e-6 * amax;
  if (!(f <= bound)) {
    why = "objective f(w_engine) = " + fmt(f) + " > reference objective + 1e-6 max|A| = " + fmt(bound);
    return false;
  }
  // 3. the engine's d is the combination step of its own weights
  auto [eng_comb, c_eng] = combination(w);
  if (!close(d, eng_comb, 1e-9, sd.zero_scale, why)) {
    why = "combination step of the engine's weights: " + why;
    return false;
  }
  return true;
}

CaseResult run_case(const std::string& file, const json& top, const Spec& spec, const json& c) {
  CaseResult res;
  const std::string name = c.value("name", std::string("?"));
  const int K = c["K"].get<int>();
  const bool expect_error = c.contains("error");
  const bool expect_nonfinite = c.value("nonfinite_output", false);
  std::set<std::string> ill;
  if (c.contains("ill_conditioned") && c["ill_conditioned"].is_array())
    for (const auto& g : c["ill_conditioned"]) ill.insert(g.get<std::string>());
  res.skipped_groups = !ill.empty();
  double lr = 0.0;
  const bool has_opt = c.contains("optimizer") && c["optimizer"].is_object();
  if (has_opt) lr = num(c["optimizer"]["lr"]);

  auto fail = [&](size_t step, const std::string& group, const std::string& why) {
    res.outcome = Outcome::Failed;
    res.msg = file + " case " + name + " step " + std::to_string(step) + " group " + group + ": " + why;
    return res;
  };

  Options opts = spec.opts;
  if (c.contains("hyperparameters") && c["hyperparameters"].is_object())
    for (const auto& [k, v] : c["hyperparameters"].items()) opts.set(k, opt_str(v));

  std::unique_ptr<Method> method;
  try {
    method = make_method(spec.name, K, opts);
    if (c.contains("init_state") && c["init_state"].is_object()) {
      StateDict sd;
      for (const auto& [k, v] : c["init_state"].items())
        if (!v.is_null()) sd[k] = mat(v);
      method->load_state(sd);
    }
  } catch (const std::exception& e) {
    return fail(0, "setup", std::string("make_method/load_state threw: ") + e.what());
  }

  const json& steps = c["steps"];
  if (expect_error || expect_nonfinite) {
    // The reference raised or produced NaN/Inf: the engine must throw polyhead::Error or give
    // non-finite output somewhere in the sequence.
    for (size_t s = 0; s < steps.size(); ++s) {
      StepData sd;
      try {
        build_step(steps[s], K, sd);
        StepOutput out = method->step(sd.in);
        if (has_opt) {
          auto p = method->params();
          auto g = method->param_grads();
          for (size_t i = 0; i < p.size() && i < g.size(); ++i) p[i] -= lr * g[i];
        }
        if (sd.has_L_after) method->after_update(sd.L_after);
        if (output_nonfinite(out, *method)) {
          res.outcome = expect_error ? Outcome::ExpectedError : Outcome::ExpectedNonfinite;
          return res;
        }
      } catch (const polyhead::Error&) {
        res.outcome = expect_error ? Outcome::ExpectedError : Outcome::ExpectedNonfinite;
        return res;
      } catch (const std::exception& e) {
        return fail(s, "error", std::string("threw a non-polyhead exception: ") + e.what());
      }
    }
    return fail(steps.size() - 1, expect_error ? "error" : "nonfinite",
                expect_error
                    ? "the reference raised (" + c["error"].get<std::string>() +
                          ") but the engine returned finite output without an error"
                    : "the reference output is non-finite but the engine returned finite output without an error");
  }

  for (size_t s = 0; s < steps.size(); ++s) {
    const json& st = steps[s];
    StepData sd;
    StepOutput out;
    std::string why;
    try {
      build_step(st, K, sd);
      out = method->step(sd.in);
    } catch (const std::exception& e) {
      return fail(s, "step", std::string("threw: ") + e.what());
    }
    if (!sd.rng.exhausted())
      return fail(s, "draws", "the method used fewer draws than the reference: left " + sd.rng.left());
    // d
    const std::vector<double> d = engine_d(out, sd);
    if (!ill.count("d")) {
      if (d.empty()) return fail(s, "d", "the method returned neither d nor w (or w for a three-sample method)");
      if (!close(d, flat(st["d"]), group_tol(top, c, "d"), sd.zero_scale, why)) return fail(s, "d", why);
    }
    // weights
    if (!ill.count("weights") && st.contains("weights") && !st["weights"].is_null()) {
      const std::vector<double> w = out.reported ? *out.reported : out.w;
      if (w.empty())
        return fail(s, "weights", "the reference returns weights but the method gives neither reported nor w");
      if (!close(w, flat(st["weights"]), group_tol(top, c, "weights"), sd.zero_scale, why))
        return fail(s, "weights", why);
    }
    if (spec.cagrad_libmtl && !cagrad_checks(spec, st, sd, out, d, why)) return fail(s, "cagrad", why);
    // param_grad (group state)
    if (!ill.count("state") && st.contains("param_grad") && st["param_grad"].is_object()) {
      auto g = method->param_grads();
      std::vector<double> eg(g.begin(), g.end());
      int arrays = 0;
      for (const auto& [k, v] : st["param_grad"].items()) {
        if (++arrays > 1) return fail(s, "state", "the reference has several parameter arrays; the engine one");
        if (v.is_null()) {
          for (double x : eg)
            if (x != 0.0)
              return fail(s, "state", "param_grad '" + k + "': the reference has no gradient, the engine " + fmt(x));
        } else if (!close(eg, flat(v), group_tol(top, c, "state"), sd.zero_scale, why)) {
          return fail(s, "state", "param_grad '" + k + "': " + why);
        }
      }
    }
    try {
      if (has_opt) {
        auto p = method->params();
        auto g = method->param_grads();
        if (p.size() != g.size()) return fail(s, "state", "params() and param_grads() differ in size");
        for (size_t i = 0; i < p.size(); ++i) p[i] -= lr * g[i];
      }
      if (sd.has_L_after) method->after_update(sd.L_after);
    } catch (const std::exception& e) {
      return fail(s, "state", std::string("after_update threw: ") + e.what());
    }
    // state_after
    if (!ill.count("state") && st.contains("state_after") && st["state_after"].is_object()) {
      const StateDict state = method->state();
      for (const auto& [k, v] : st["state_after"].items()) {
        auto it = state.find(k);
        if (v.is_null()) {
          if (it != state.end())
            return fail(s, "state", "state '" + k + "': the reference has none yet, the engine has one");
          continue;
        }
        if (it == state.end()) return fail(s, "state", "state '" + k + "' is missing from the engine's state()");
        if (!close(it->second.a, flat(v), group_tol(top, c, "state"), sd.zero_scale, why))
          return fail(s, "state", "state '" + k + "': " + why);
      }
    }
  }
  return res;
}

std::vector<std::string> split_filter(const char* env) {
  std::vector<std::string> out;
  if (!env) return out;
  std::string s(env);
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(',', start);
    if (end == std::string::npos) end = s.size();
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

}  // namespace

TEST_CASE("golden MTL vectors: every method against LibMTL / torchjd") {
  const char* env_dir = std::getenv("POLYHEAD_GOLDEN_DIR");
  const std::string dir = env_dir && *env_dir ? env_dir : POLYHEAD_TEST_DATA "/golden/mtl";
  const std::vector<std::string> filter = split_filter(std::getenv("POLYHEAD_GOLDEN_FILTER"));
  std::vector<fs::path> files;
  if (fs::is_directory(dir))
    for (const auto& e : fs::directory_iterator(dir)) {
      const fs::path& p = e.path();
      if (p.extension() != ".json" || p.filename() == "manifest.json") continue;
      const std::string fname = p.filename().string();
      if (!filter.empty() && std::none_of(filter.begin(), filter.end(),
                                          [&](const std::string& f) { return fname.find(f) != std::string::npos; }))
        continue;
      files.push_back(p);
    }
  std::sort(files.begin(), files.end());
  REQUIRE_MESSAGE(!files.empty(), "no golden *.json files in "
                                      << dir << std::string(filter.empty() ? "" : " matching POLYHEAD_GOLDEN_FILTER")
                                      << " (set POLYHEAD_GOLDEN_DIR)");

  // The manifest (when present and no filter is set) must list exactly the files found.
  if (filter.empty() && fs::exists(fs::path(dir) / "manifest.json")) {
    std::ifstream mf(fs::path(dir) / "manifest.json");
    const json man = json::parse(mf);
    if (man.contains("files"))
      for (const auto& [fname, info] : man["files"].items())
        CHECK_MESSAGE(fs::exists(fs::path(dir) / fname), "manifest.json lists " << fname << " but it is missing");
  }

  int total_cases = 0, total_failed = 0;
  for (const fs::path& path : files) {
    const std::string fname = path.filename().string();
    json top;
    try {
      std::ifstream f(path);
      top = json::parse(f);
    } catch (const std::exception& e) {
      FAIL_CHECK(fname << ": cannot parse: " << e.what());
      continue;
    }
    const json& cases = top["cases"];
    REQUIRE_MESSAGE(cases.is_array(), fname << " has no cases");
    Spec spec;
    std::string map_error;
    try {
      spec = map_method(top.value("library", std::string()), top.value("method", std::string()),
                        top.contains("hyperparameters") ? top["hyperparameters"] : json::object());
    } catch (const std::exception& e) {
      map_error = e.what();
    }
    int passed = 0, errors = 0, nonfinite = 0, skipped = 0;
    std::vector<std::string> failures;
    for (const auto& c : cases) {
      CaseResult r;
      if (!map_error.empty()) {
        r.outcome = Outcome::Failed;
        r.msg = fname + " case " + c.value("name", std::string("?")) + ": " + map_error;
      } else {
        try {
          r = run_case(fname, top, spec, c);
        } catch (const std::exception& e) {
          r.outcome = Outcome::Failed;
          r.msg = fname + " case " + c.value("name", std::string("?")) + ": driver error: " + e.what();
        }
      }
      switch (r.outcome) {
        case Outcome::Passed:
          ++passed;
          break;
        case Outcome::ExpectedError:
          ++errors;
          break;
        case Outcome::ExpectedNonfinite:
          ++nonfinite;
          break;
        case Outcome::Failed:
          failures.push_back(r.msg);
          break;
      }
      if (r.skipped_groups && r.outcome != Outcome::Failed) ++skipped;
    }
    const int n = int(cases.size());
    total_cases += n;
    total_failed += int(failures.size());
    std::printf(
        "golden %-28s -> %-12s %3d cases: %3d passed (%d expected errors, %d non-finite, %d with skipped "
        "ill-conditioned groups), %d FAILED\n",
        fname.c_str(), map_error.empty() ? spec.name.c_str() : "(unmapped)", n, passed + errors + nonfinite, errors,
        nonfinite, skipped, int(failures.size()));
    const size_t shown = std::min<size_t>(failures.size(), 3);
    for (size_t i = 0; i < shown; ++i) FAIL_CHECK(failures[i]);
    if (failures.size() > shown)
      FAIL_CHECK(fname << ": " << failures.size() - shown << " more failing cases (first shown above)");
  }
  std::printf("golden total: %d files, %d cases, %d failed\n", int(files.size()), total_cases, total_failed);
  CHECK(total_failed == 0);
}
