// mtl/methods/basic_util.h: helpers shared by the "basic" family of MTL methods (loss-level,
// closed-form and stateful gradient methods, see basic_registry.cpp): input validation with clear
// errors, small float64 vector/matrix arithmetic, softmax, simplex projections, and the
// conversions between a method's members and its StateDict.
//
// Invariants: every helper is deterministic and allocation-light; validation throws polyhead::Error
// naming the method, what was wrong, and how to fix it. Nothing here draws random numbers.
#pragma once
#include <cmath>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "mtl/method.h"

namespace polyhead::mtl::basic {

using Vec = std::vector<double>;

// ---- validation ----

// Checks the parts of `in` that the need bits name (plus L whenever it is given): K matches, sizes
// match, values are finite. Throws polyhead::Error with op = method name.
void check_input(const std::string& method, int K, const StepInput& in, unsigned need);
// Throws unless every L_k > 0 (methods that take log L or divide by L).
void check_positive_losses(const std::string& method, std::span<const double> L);
// Throws unless in.rng is set.
Random& need_rng(const std::string& method, const StepInput& in);
// Throws unless v (given to the method after the step, e.g. FAMO's L_after) has K finite entries.
void check_vector(const std::string& method, const std::string& what, std::span<const double> v, int K);

// The Gramian: *in.M when given, else G G^T from in.G (validated already by check_input).
Mat gramian_of(const StepInput& in);
// G G^T of any K x P matrix.
Mat gram(const Mat& G);

// ---- arithmetic ----
double dot(std::span<const double> a, std::span<const double> b);
double norm2(std::span<const double> a);  // Euclidean norm
Vec softmax(std::span<const double> z);
// d = G^T w (P entries), accumulated row by row in task order.
Vec combine(const Mat& G, std::span<const double> w);
bool all_finite(std::span<const double> v);

// LibMTL's MGDA/MoDo sort-based projection onto the simplex (MinNormSolver._projection2simplex).
Vec project_simplex_libmtl(std::span<const double> y);
// numpy euclidean_proj_simplex (radius 1) as in LibMTL's SDMGrad: returns v unchanged when it is
// already on the simplex (sum exactly 1 and v >= 0).
Vec project_simplex_sdmgrad(std::span<const double> v);

// ---- options ----
// "1, 2,3.5" -> {1, 2, 3.5}. Throws naming the option when an entry is not a number.
Vec parse_list(const std::string& method, const std::string& option, const std::string& text);

// ---- state ----
Mat row_mat(std::span<const double> v);  // 1 x n
Mat scalar_mat(double x);                // 1 x 1
// Throws if s has a key not in `known`.
void check_state_keys(const std::string& method, const StateDict& s, std::initializer_list<const char*> known);
// Reads a 1 x n (or n x 1) array of exactly n entries; nullopt when the key is absent.
std::optional<Vec> read_vec(const std::string& method, const StateDict& s, const std::string& key, int n);
// Reads a rows x cols matrix (cols < 0: any column count >= 1); nullopt when absent.
std::optional<Mat> read_mat(const std::string& method, const StateDict& s, const std::string& key, int rows, int cols);
// Reads a 1 x 1 scalar; nullopt when absent.
std::optional<double> read_scalar(const std::string& method, const StateDict& s, const std::string& key);

}  // namespace polyhead::mtl::basic
