// mtl/methods/basic_methods.h: factories of the "basic" family of MTL methods (loss-level,
// closed-form and stateful gradient methods) and the small base class they share.
// Each factory validates its options (unknown option -> polyhead::Error listing the valid ones)
// and is registered by name in basic_registry.cpp. The formulas, papers and invariants are in the
// comment at the top of each method's .cpp file.
#pragma once
#include <memory>
#include <string>

#include "mtl/method.h"
#include "mtl/methods/basic_util.h"

namespace polyhead::mtl::basic {

// Name, K and input validation shared by every basic method.
class BasicMethod : public Method {
public:
  BasicMethod(std::string name, int K) : name_(std::move(name)), K_(K) {}
  std::string name() const override { return name_; }

protected:
  // Validates `in` against needs() (K, shapes, finiteness). Throws polyhead::Error.
  void check(const StepInput& in) const { check_input(name_, K_, in, needs()); }
  std::string name_;
  int K_;
};

// fixed_weights.cpp
std::unique_ptr<Method> make_ew(int K, const Options& o);
std::unique_ptr<Method> make_sum(int K, const Options& o);
std::unique_ptr<Method> make_mean(int K, const Options& o);
std::unique_ptr<Method> make_constant(int K, const Options& o);
// scale_invariant.cpp, gls.cpp, rlw.cpp, uw.cpp, dwa.cpp, stch.cpp, famo.cpp
std::unique_ptr<Method> make_si(int K, const Options& o);
std::unique_ptr<Method> make_gls(int K, const Options& o);
std::unique_ptr<Method> make_rlw(int K, const Options& o);
std::unique_ptr<Method> make_uw(int K, const Options& o);
std::unique_ptr<Method> make_dwa(int K, const Options& o);
std::unique_ptr<Method> make_stch(int K, const Options& o);
std::unique_ptr<Method> make_famo(int K, const Options& o);
// gradnorm.cpp, imtl.cpp, pcgrad.cpp, gradvac.cpp, graddrop.cpp
std::unique_ptr<Method> make_gradnorm(int K, const Options& o);
std::unique_ptr<Method> make_imtl(int K, const Options& o);
std::unique_ptr<Method> make_pcgrad(int K, const Options& o);
std::unique_ptr<Method> make_gradvac(int K, const Options& o);
std::unique_ptr<Method> make_graddrop(int K, const Options& o);
// moco.cpp, db_mtl.cpp, excessmtl.cpp, modo.cpp, sdmgrad.cpp
std::unique_ptr<Method> make_moco(int K, const Options& o);
std::unique_ptr<Method> make_db_mtl(int K, const Options& o);
std::unique_ptr<Method> make_excessmtl(int K, const Options& o);
std::unique_ptr<Method> make_modo(int K, const Options& o);
std::unique_ptr<Method> make_sdmgrad(int K, const Options& o);
// mt2st.cpp (seed method: multi-task to single-task schedules)
std::unique_ptr<Method> make_mt2st(int K, const Options& o);
// robust.cpp
std::unique_ptr<Method> make_krum(int K, const Options& o);
std::unique_ptr<Method> make_trimmedmean(int K, const Options& o);

}  // namespace polyhead::mtl::basic
