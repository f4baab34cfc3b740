// mtl/methods/solver_registry.cpp: registry entries of the methods with an inner solver
// (MGDA, CAGrad, Nash-MTL, FairGrad, Aligned-MTL, UPGrad, DualProj, ConFIG, IMTL-G).
// Solvers live in mtl/solvers/, dense helpers in mtl/linalg.h; everything is float64 and ours.
#include <memory>

#include "mtl/methods/aligned_mtl.h"
#include "mtl/methods/cagrad.h"
#include "mtl/methods/config.h"
#include "mtl/methods/dual_cone.h"
#include "mtl/methods/fairgrad.h"
#include "mtl/methods/imtl_g.h"
#include "mtl/methods/mgda.h"
#include "mtl/methods/nash_mtl.h"
#include "mtl/registry_table.h"

namespace polyhead::mtl {

void register_solver_methods(std::vector<RegistryEntry>& out) {
  out.push_back({{"mgda",
                  "MGDA min-norm weights, Sener & Koltun, Multi-Task Learning as Multi-Objective Optimization (NeurIPS 2018); "
                  "options gn=none|l2|loss|loss+, solver=libmtl|torchjd|exact",
                  "gramian"},
                 [](int K, const Options& o) { return std::make_unique<MgdaMethod>(K, o); }});
  out.push_back({{"cagrad",
                  "CAGrad, Liu et al., Conflict-Averse Gradient Descent for Multi-task Learning (NeurIPS 2021); "
                  "options calpha=0.5, rescale=1, scale=libmtl|torchjd",
                  "gramian"},
                 [](int K, const Options& o) { return std::make_unique<CagradMethod>(K, o); }});
  out.push_back({{"nash_mtl",
                  "Nash-MTL bargaining weights, Navon et al., Multi-Task Learning as a Bargaining Game (ICML 2022); "
                  "options max_norm=1, update_weights_every=1, optim_niter=20",
                  "gramian"},
                 [](int K, const Options& o) { return std::make_unique<NashMtlMethod>(K, o); }});
  out.push_back({{"fairgrad",
                  "FairGrad alpha-fair weights, Ban & Ji, Fair Resource Allocation in Multi-Task Learning (ICML 2024); "
                  "option alpha=1",
                  "gramian"},
                 [](int K, const Options& o) { return std::make_unique<FairGradMethod>(K, o); }});
  out.push_back({{"aligned_mtl",
                  "Aligned-MTL, Senushkin et al., Independent Component Alignment for Multi-Task Learning (CVPR 2023); "
                  "options scale=libmtl|torchjd, scale_mode=min|median|rmse",
                  "gramian"},
                 [](int K, const Options& o) { return std::make_unique<AlignedMtlMethod>(K, o); }});
  out.push_back({{"upgrad",
                  "UPGrad dual-cone projections, Quinton & Rey, Jacobian Descent for Multi-Objective Optimization "
                  "(arXiv 2406.16232); options norm_eps=1e-4, reg_eps=1e-4",
                  "gramian"},
                 [](int K, const Options& o) {
                   return std::make_unique<DualConeMethod>(DualConeMethod::Kind::UPGrad, K, o);
                 }});
  out.push_back({{"dualproj",
                  "DualProj, mean gradient projected onto the dual cone (GEM, Lopez-Paz & Ranzato, NeurIPS 2017; "
                  "torchjd); options norm_eps=1e-4, reg_eps=1e-4",
                  "gramian"},
                 [](int K, const Options& o) {
                   return std::make_unique<DualConeMethod>(DualConeMethod::Kind::DualProj, K, o);
                 }});
  out.push_back({{"config",
                  "ConFIG conflict-free inverse gradients, Liu et al., ConFIG: Towards Conflict-free Training of "
                  "Physics Informed Neural Networks (ICLR 2025); torchjd form, needs G",
                  "full"},
                 [](int K, const Options& o) { return std::make_unique<ConfigMethod>(K, o); }});
  out.push_back({{"imtl_g",
                  "IMTL-G, Liu et al., Towards Impartial Multi-task Learning (ICLR 2021), torchjd pinv form",
                  "gramian"},
                 [](int K, const Options& o) { return std::make_unique<ImtlgMethod>(K, o); }});
}

}  // namespace polyhead::mtl
