// mtl/methods/solver_common.h: input validation and option parsing shared by the solver-family
// methods (MGDA, CAGrad, Nash-MTL, FairGrad, Aligned-MTL, UPGrad, DualProj, ConFIG, IMTL-G).
// Every failure is a polyhead::Error naming the method, what is wrong, and a hint.
#pragma once
#include <initializer_list>
#include <string>
#include <vector>

#include "mtl/method.h"

namespace polyhead::mtl::solver_common {

// in.K must equal the K the method was built for.
void check_K(const std::string& method, int K, const StepInput& in);
// in.M present, K x K, finite, non-negative diagonal, symmetric up to rounding.
const Mat& require_gramian(const std::string& method, int K, const StepInput& in);
// in.G present, K x P (P >= 1), finite.
const Mat& require_jacobian(const std::string& method, int K, const StepInput& in);
// in.L has K finite entries.
const std::vector<double>& require_losses(const std::string& method, int K, const StepInput& in);

// Option with a fixed set of string values; throws listing them.
std::string choice(const Options& o, const std::string& method, const std::string& key, const std::string& def,
                   std::initializer_list<const char*> allowed);
// Numeric options with range checks (throw with the valid range).
double positive(const Options& o, const std::string& method, const std::string& key, double def, bool allow_zero);
int positive_int(const Options& o, const std::string& method, const std::string& key, int def);

// StepOutput with w set (d = G^T w) and reported weights.
StepOutput weights_output(std::vector<double> w, std::vector<double> reported);

}  // namespace polyhead::mtl::solver_common
