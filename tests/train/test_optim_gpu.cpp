// The fused CUDA AdamW path against the per-tensor loop on the CPU (skips without a GPU).
#include <gtest/gtest.h>

#include "spvit/core/torch_compat.h"
#include "spvit/train/optim/optimizer.h"

namespace spvit::train {
namespace {

TEST(FusedAdamW, MatchesThePerTensorUpdateOnTheCpu) {
  if (!torch::cuda::is_available() || !compat::fused_adamw_available()) GTEST_SKIP() << "needs CUDA LibTorch >= 2";
  torch::manual_seed(3);
  std::vector<torch::Tensor> cpu_params{torch::randn({37, 5}), torch::randn({11}), torch::randn({4, 3, 3})};
  std::vector<torch::Tensor> gpu_params;
  std::vector<std::pair<std::string, torch::Tensor>> cpu_named, gpu_named;
  for (size_t i = 0; i < cpu_params.size(); ++i) {
    cpu_params[i].set_requires_grad(true);
    gpu_params.push_back(cpu_params[i].detach().to(torch::kCUDA).requires_grad_(true));
    cpu_named.emplace_back("p" + std::to_string(i) + ".weight", cpu_params[i]);
    gpu_named.emplace_back("p" + std::to_string(i) + ".weight", gpu_params[i]);
  }
  std::vector<torch::Tensor> initial;
  for (const auto& p : cpu_params) initial.push_back(p.detach().clone());
  auto cpu_opt = make_optimizer("adamw", decay_groups(cpu_named, 0.1), 1e-2, 0.9, 0.99, 1e-8);
  auto gpu_opt = make_optimizer("adamw", decay_groups(gpu_named, 0.1), 1e-2, 0.9, 0.99, 1e-8);
  for (int step = 0; step < 5; ++step) {
    for (size_t i = 0; i < cpu_params.size(); ++i) {
      auto g = torch::randn(cpu_params[i].sizes());
      cpu_params[i].mutable_grad() = g.clone();
      gpu_params[i].mutable_grad() = g.to(torch::kCUDA);
    }
    cpu_opt->step();
    gpu_opt->step();
  }
  for (size_t i = 0; i < cpu_params.size(); ++i) {
    const double diff = (gpu_params[i].detach().cpu() - cpu_params[i].detach()).abs().max().item<double>();
    EXPECT_LT(diff, 1e-5) << "parameter " << i;
    // and they moved: the comparison would pass trivially if neither optimiser did anything
    EXPECT_GT((gpu_params[i].detach().cpu() - initial[i]).abs().max().item<double>(), 1e-3);
  }
}

}  // namespace
}  // namespace spvit::train
