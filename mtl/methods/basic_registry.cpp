// mtl/methods/basic_registry.cpp: the registry entries of the "basic" family: loss-level methods
// (kind "loss": the trainer only needs L and does one weighted backward), closed-form Gram-only
// gradient methods (kind "gramian": need M = G G^T) and methods that need the full Jacobian or
// extra samples (kind "full"). Each method's math, paper and invariants are in its own .cpp.
#include "mtl/methods/basic_methods.h"
#include "mtl/methods/coba.h"
#include "mtl/registry_table.h"

namespace polyhead::mtl {

void register_basic_methods(std::vector<RegistryEntry>& out) {
  using namespace basic;
  auto add = [&](const char* name, const char* summary, const char* kind,
                 std::unique_ptr<Method> (*make)(int, const Options&)) {
    out.push_back(RegistryEntry{MethodInfo{name, summary, kind}, make});
  };
  // loss level
  add("ew", "EW: equal weights 1, the sum of the losses (linear scalarization; LibMTL EW)", "loss", make_ew);
  add("sum", "Sum: weights 1 (torchjd Sum; linear scalarization)", "loss", make_sum);
  add("mean", "Mean: weights 1/K (torchjd Mean; linear scalarization)", "loss", make_mean);
  add("constant", "Constant: fixed user weights, option weights=w1,...,wK (torchjd Constant)", "loss", make_constant);
  add("si", "SI: scale-invariant sum of log-losses, w = 1/L (Navon et al., Nash-MTL repo, ICML 2022)", "loss", make_si);
  add("mt2st", "MT2ST: auxiliary weights diminish or switch off, multi-task to single-task (Liu & Yu, ACL 2025 MAGMaR)", "loss", make_mt2st);
  add("coba", "CoBa: convergence-balanced weights from validation-loss slopes (Gong et al., EMNLP 2024)", "loss", coba::make_coba);
  add("uw", "UW: uncertainty weighting with learnable log-variances (Kendall et al., CVPR 2018)", "loss", make_uw);
  add("dwa", "DWA: dynamic weight average of epoch loss ratios (Liu et al., CVPR 2019)", "loss", make_dwa);
  add("gls", "GLS: geometric mean of the losses (Chennupati et al., MultiNet++, CVPR Workshops 2019)", "loss",
      make_gls);
  add("rlw", "RLW: random loss weights softmax(N(0, I)) (Lin et al., TMLR 2022)", "loss", make_rlw);
  add("stch", "STCH: smooth Tchebycheff scalarization of log-losses (Lin et al., ICML 2024)", "loss", make_stch);
  add("famo", "FAMO: fast adaptive multitask optimization with loss-decrease logits (Liu et al., NeurIPS 2023)", "loss",
      make_famo);
  // Gram-only gradient methods
  add("gradnorm", "GradNorm: learnable weights balancing gradient norms (Chen et al., ICML 2018)", "gramian",
      make_gradnorm);
  add("imtl", "IMTL: impartial MTL, IMTL-L loss scales + IMTL-G closed form (Liu et al., ICLR 2021)", "gramian",
      make_imtl);
  add("pcgrad", "PCGrad: project conflicting gradients (Yu et al., NeurIPS 2020)", "gramian", make_pcgrad);
  add("gradvac", "GradVac: gradient vaccine, EMA cosine targets (Wang et al., ICLR 2021)", "gramian", make_gradvac);
  add("krum", "Krum: Byzantine-robust selection of central gradients (Blanchard et al., NeurIPS 2017)", "gramian",
      make_krum);
  // full Jacobian / extra samples
  add("graddrop", "GradDrop: gradient sign dropout (Chen et al., NeurIPS 2020)", "full", make_graddrop);
  add("moco", "MoCo: tracked gradients + softmax-regularised MGDA weights (Fernando et al., ICLR 2023)", "full",
      make_moco);
  add("db_mtl", "DB-MTL: dual balancing of log-loss gradients to the largest norm (Lin et al., arXiv 2308.12029)",
      "full", make_db_mtl);
  add("excessmtl", "ExcessMTL: robust weights from excess-risk estimates (He et al., ICML 2024)", "full",
      make_excessmtl);
  add("modo", "MoDo: MGDA with double sampling (Chen et al., NeurIPS 2023)", "full", make_modo);
  add("sdmgrad", "SDMGrad: stochastic direction-oriented MGDA (Xiao et al., NeurIPS 2023)", "full", make_sdmgrad);
  add("trimmedmean", "TrimmedMean: coordinate-wise trimmed mean (Yin et al., ICML 2018)", "full", make_trimmedmean);
}

}  // namespace polyhead::mtl
