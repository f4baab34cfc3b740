// mtl/registry_table.h: the entry type of the method registry, and the per-family functions that
// append their methods (defined in mtl/methods/*_registry.cpp).
#pragma once
#include <functional>
#include <memory>
#include <vector>

#include "mtl/method.h"

namespace polyhead::mtl {

struct RegistryEntry {
  MethodInfo info;
  std::function<std::unique_ptr<Method>(int K, const Options&)> make;
};

// Loss-level, closed-form and stateful gradient methods (EW, UW, DWA, PCGrad, GradVac, ...).
void register_basic_methods(std::vector<RegistryEntry>& out);
// Methods with an inner solver (MGDA, CAGrad, Nash-MTL, FairGrad, Aligned-MTL, UPGrad, ...).
void register_solver_methods(std::vector<RegistryEntry>& out);

}  // namespace polyhead::mtl
