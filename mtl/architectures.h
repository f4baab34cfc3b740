// mtl/architectures.h: LibMTL's multi-task architectures beyond hard parameter sharing, built
// from user-supplied expert / stage factories so that they work with any trunk.
//
//   MMoE (Ma et al., KDD 2018)       E shared experts; per task a softmax gate Linear(vec x -> E).
//   CGC (Tang et al., RecSys 2020)   shared + task-specific experts; per task a gate over both.
//   PLE (Tang et al., RecSys 2020)   CGC stacked over levels: at each level the shared and the
//                                    task's experts are applied to that task's current
//                                    representation and mixed by a gate on it (LibMTL's form).
//   DSelect-k (Hazimeh et al., NeurIPS 2021)  E shared experts; per task k smooth-step selectors
//                                    over the binary code of the expert index, mixed by softmax.
//   Cross-stitch (Misra et al., CVPR 2016)    K copies of a staged encoder; between stages task t
//                                    gets sum_j alpha[i, t, j] h_j (alpha initialised to ones as
//                                    LibMTL; 'identity' init as the paper is an option).
//   MTAN (Liu et al., CVPR 2019)     a shared staged encoder; per task and stage a soft attention
//                                    mask sigmoid(W2 relu(W1 [p_i, P_i(f_{i-1})])) on the stage
//                                    output p_i; P_i shared (LibMTL's shared block-att layers).
//                                    Stages produce vectors (B, D_i) here.
// Shared parameters (the Jacobian's columns) follow LibMTL: experts (MMoE, DSelect-k), shared
// experts (CGC, PLE), every encoder parameter and alpha (Cross-stitch), the encoder and the
// block-att projections (MTAN). Gates, task experts and attention modules belong to their task.
// Parameter names (relative to the architecture; task_owner() reads the first component):
//   MMoE       expert<e> (shared), gate<k>
//   CGC        shared_expert<e> (shared), task<k>_expert<j>, gate<k>
//   PLE        level<l>_shared_expert<e> (shared), level<l>_task<k>_expert<j>, level<l>_gate<k>
//   DSelect-k  expert<e> (shared), z_logits<k>, w_logits<k>
//   Cross-stitch  column<k>_stage<i>, alpha (all shared)
//   MTAN       stage<i>, proj<i> (shared), att<k>_<i>
// Gates are Linear(input numel -> n) followed by a softmax, on the input flattened from dim 1;
// expert outputs (B, ...) of one shape are mixed as sum_e pi[:, e] * f_e.
// Deviations from LibMTL:
//   - DSelect-k: the entropy regulariser (LibMTL backpropagates 1e-6 * entropy inside forward in
//     training) is not applied, nor the extra penalty sum 1 / sum_e p that LibMTL adds when E is
//     not a power of two; so for such E the expert weights of a task sum to at most 1 (the
//     selectors' mass on codes >= E is dropped, as in LibMTL's forward). Needs E >= 2.
//   - Cross-stitch: alpha mixes after every stage but the last (LibMTL's ResNet version has no
//     unit after the stem); needs at least 2 stages.
//   - MTAN: vector stages, so the attention input is the stage output p_i itself (LibMTL uses the
//     output u_i of the stage's blocks but the last), the 1x1 convolutions are Linear layers
//     without batch norm, P_i = Linear(D_{i-1} -> D_i) + ReLU (LibMTL: conv3x3 + BN + ReLU) and
//     there is no max-pool. The P_i serve every task, so they are shared columns of G here
//     (LibMTL leaves them out of get_share_params()).
//   - CGC / PLE: the same number of task experts for every task.
#pragma once
#include <functional>
#include <memory>
#include <vector>

#include "mtl/architecture.h"

namespace polyhead::mtl {

using ModuleFactory = std::function<std::shared_ptr<nn::UnaryModule>()>;
// A staged encoder: its stages in order (each maps the previous stage's output).
using StagesFactory = std::function<std::vector<std::shared_ptr<nn::UnaryModule>>()>;

class MMoE : public Architecture {
public:
  MMoE(const ModuleFactory& expert, int num_experts, int64_t input_numel, int K);
  std::vector<Variable> forward(const Variable& x) override;
  int task_owner(const std::string& name) const override;
  std::string type_name() const override { return "MMoE"; }
  // Gate weights of each task for x (B, E), for inspection and tests.
  std::vector<Variable> gate_weights(const Variable& x);

private:
  int64_t in_;
  std::vector<std::shared_ptr<nn::UnaryModule>> experts_;
  std::vector<std::shared_ptr<nn::UnaryModule>> gates_;
};

class CGC : public Architecture {
public:
  CGC(const ModuleFactory& expert, int shared_experts, int task_experts, int64_t input_numel, int K);
  std::vector<Variable> forward(const Variable& x) override;
  int task_owner(const std::string& name) const override;
  std::string type_name() const override { return "CGC"; }

private:
  int64_t in_;
  std::vector<std::shared_ptr<nn::UnaryModule>> shared_;
  std::vector<std::vector<std::shared_ptr<nn::UnaryModule>>> task_;
  std::vector<std::shared_ptr<nn::UnaryModule>> gates_;
};

class PLE : public Architecture {
public:
  // level_expert(l) builds one expert of level l; level_input_numel[l] = size of a task's
  // representation entering level l (vec x for l = 0).
  PLE(const std::function<std::shared_ptr<nn::UnaryModule>(int)>& level_expert, std::vector<int64_t> level_input_numel,
      int shared_experts, int task_experts, int K);
  std::vector<Variable> forward(const Variable& x) override;
  int task_owner(const std::string& name) const override;
  std::string type_name() const override { return "PLE"; }

private:
  int levels_;
  std::vector<int64_t> in_;
  std::vector<std::vector<std::shared_ptr<nn::UnaryModule>>> shared_;                // [level][e]
  std::vector<std::vector<std::vector<std::shared_ptr<nn::UnaryModule>>>> task_;     // [level][k][e]
  std::vector<std::vector<std::shared_ptr<nn::UnaryModule>>> gates_;                 // [level][k]
};

class DSelectK : public Architecture {
public:
  DSelectK(const ModuleFactory& expert, int num_experts, int64_t input_numel, int K, int num_nonzeros = 2,
           double gamma = 1.0);
  std::vector<Variable> forward(const Variable& x) override;
  int task_owner(const std::string& name) const override;
  std::string type_name() const override { return "DSelect_k"; }
  // Expert weights of each task for x (B, E), for inspection and tests.
  std::vector<Variable> expert_weights(const Variable& x);
  // The smooth step S(t) elementwise with this model's gamma.
  Variable smooth_step(const Variable& t) const;

private:
  int64_t in_;
  int E_, k_, bits_;
  double gamma_;
  std::vector<std::shared_ptr<nn::UnaryModule>> experts_;
  std::vector<std::shared_ptr<nn::UnaryModule>> z_, w_;
};

class CrossStitch : public Architecture {
public:
  CrossStitch(const StagesFactory& encoder, int K, bool identity_init = false);
  std::vector<Variable> forward(const Variable& x) override;
  std::string type_name() const override { return "Cross_stitch"; }
  const Variable& alpha() const { return alpha_; }

private:
  std::vector<std::vector<std::shared_ptr<nn::UnaryModule>>> columns_;  // [task][stage]
  Variable alpha_;                                                      // (stages - 1, K, K)
};

class MTAN : public Architecture {
public:
  // stage_dims[i] = width D_i of stage i's output (B, D_i).
  MTAN(const StagesFactory& encoder, std::vector<int64_t> stage_dims, int K);
  std::vector<Variable> forward(const Variable& x) override;
  int task_owner(const std::string& name) const override;
  std::string type_name() const override { return "MTAN"; }

private:
  std::vector<std::shared_ptr<nn::UnaryModule>> stages_;
  std::vector<std::shared_ptr<nn::UnaryModule>> proj_;              // shared P_i, i >= 1
  std::vector<std::vector<std::shared_ptr<nn::UnaryModule>>> att_;  // [task][stage]
  std::vector<int64_t> dims_;
};

}  // namespace polyhead::mtl
