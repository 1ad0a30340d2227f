// The trainer on a GPU (float32, bf16 autocast, fp16 with loss scaling) against the same run on the CPU, and the
// precision checks that run everywhere. The GPU cases skip without CUDA.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "spvit/core/torch_compat.h"
#include "spvit/model/segmenter.h"
#include "spvit/train/checkpoint.h"
#include "spvit/train/precision.h"
#include "spvit/train/trainer.h"

namespace spvit::train {
namespace {

Config tiny_config(const std::string& out_dir, const std::string& device, const std::string& precision) {
  return parse_config("", {"seed=5", "device=" + device, "train.precision=" + precision, "model.patch=4",
                           "model.dim=32", "model.depth=2", "model.heads=2", "model.mlp_ratio=2",
                           "model.max_tokens=64", "model.decoder_width=8", "data.size=32", "data.train_samples=8",
                           "data.val_samples=2", "data.workers=1", "train.steps=4", "train.batch_size=2",
                           "train.warmup_steps=1", "train.eval_every=4", "train.checkpoint_every=0",
                           "train.progress=off", "train.out_dir=" + out_dir});
}

std::vector<double> logged_losses(const std::string& out_dir) {
  std::ifstream in(out_dir + "/metrics.jsonl");
  std::vector<double> losses;
  std::string line;
  while (std::getline(in, line)) losses.push_back(nlohmann::json::parse(line)["loss"].get<double>());
  return losses;
}

std::string run_dir(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("spvit_gpu_trainer_" + name + "_" + std::to_string(::getpid())))
      .string();
}

TEST(RunPrecision, ReducedPrecisionNeedsACudaDevice) {
  Config c;
  c.train.precision = "bf16";
  try {
    RunPrecision::from_config(c, torch::Device(torch::kCPU));
    FAIL() << "bf16 on the CPU was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("'train.precision' = bf16 needs a CUDA device"), std::string::npos)
        << e.what();
  }
  c.train.precision = "fp16";
  c.dtype = "float64";
  EXPECT_THROW(RunPrecision::from_config(c, torch::Device(torch::kCUDA, 0)), ConfigError);  // needs float32
  c.train.precision = "fp32";
  const auto p = RunPrecision::from_config(c, torch::Device(torch::kCPU));
  EXPECT_FALSE(p.autocast);
  EXPECT_FALSE(p.loss_scaling);
  EXPECT_EQ(p.param_dtype, torch::kFloat64);
}

// float32 on the GPU follows the CPU run step for step; the checkpoint it writes loads on the CPU.
TEST(TrainerGpu, Float32RunMatchesTheCpuRun) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "needs a CUDA device";
  auto grid = dist::ProcessGrid::create_self(60);
  const auto cpu_dir = run_dir("cpu"), gpu_dir = run_dir("gpu");
  run_training(tiny_config(cpu_dir, "cpu", "fp32"), grid, {});
  run_training(tiny_config(gpu_dir, "cuda", "fp32"), grid, {});
  const auto cpu = logged_losses(cpu_dir), gpu = logged_losses(gpu_dir);
  ASSERT_EQ(cpu.size(), 4u);
  ASSERT_EQ(gpu.size(), cpu.size());
  for (size_t i = 0; i < cpu.size(); ++i) EXPECT_NEAR(gpu[i], cpu[i], 1e-4 * std::abs(cpu[i])) << "step " << i + 1;
  EXPECT_NE(cpu.front(), cpu.back());  // training moved
  // Loads into a CPU model (tensors are stored on the CPU) and equals the CPU-trained parameters closely.
  const Config c = parse_config(read_checkpoint_config(gpu_dir + "/checkpoint.pt"));
  auto options = model::SegmenterOptions::from_config(c.model, 4);
  options.decoder_width = c.model.decoder_width;
  model::Segmenter from_gpu(options), from_cpu(options);
  load_checkpoint(gpu_dir + "/checkpoint.pt", *from_gpu, nullptr);
  load_checkpoint(cpu_dir + "/checkpoint.pt", *from_cpu, nullptr);
  auto a = from_gpu->named_parameters(), b = from_cpu->named_parameters();
  for (const auto& p : a) {
    EXPECT_LT((p.value() - b[p.key()]).abs().max().item<double>(), 1e-3) << p.key();
  }
  std::filesystem::remove_all(cpu_dir);
  std::filesystem::remove_all(gpu_dir);
}

// bf16 autocast and fp16 with loss scaling: finite losses close to float32's (the first one is computed before any
// update, so only the forward's rounding differs), and the run resumes from its checkpoint.
TEST(TrainerGpu, ReducedPrecisionRunsTrackFloat32) {
  if (!torch::cuda::is_available() || !compat::AutocastGuard::supported()) {
    GTEST_SKIP() << "needs a CUDA device and LibTorch >= 2.4";
  }
  auto grid = dist::ProcessGrid::create_self(60);
  const auto ref_dir = run_dir("fp32");
  run_training(tiny_config(ref_dir, "cuda", "fp32"), grid, {});
  const auto ref = logged_losses(ref_dir);
  for (const std::string precision : {"bf16", "fp16"}) {
    const auto dir = run_dir(precision);
    run_training(tiny_config(dir, "cuda", precision), grid, {});
    const auto losses = logged_losses(dir);
    ASSERT_EQ(losses.size(), ref.size()) << precision;
    for (double l : losses) EXPECT_TRUE(std::isfinite(l)) << precision;
    EXPECT_NEAR(losses[0], ref[0], 3e-2 * std::abs(ref[0])) << precision;
    // Resume from the final checkpoint with 2 more steps: continues without error.
    auto more = tiny_config(dir, "cuda", precision);
    more.train.steps = 6;
    TrainOptions resume;
    resume.resume = true;
    EXPECT_EQ(run_training(more, grid, resume).steps, 6) << precision;
    std::filesystem::remove_all(dir);
  }
  std::filesystem::remove_all(ref_dir);
}

}  // namespace
}  // namespace spvit::train
