// LR schedules, gradient clipping and the fp16 loss scaler (single process), and the scaler's / clipping's agreement
// across ranks (OptimMpi.*, also run under 2 ranks as the `optim_np2` test).
#include <gtest/gtest.h>

#include <spdlog/sinks/ostream_sink.h>

#include <cmath>
#include <memory>
#include <sstream>

#include "dist/mpi_test_grid.h"
#include "spvit/core/error.h"
#include "spvit/train/optim/grad_clip.h"
#include "spvit/train/optim/loss_scaler.h"
#include "spvit/train/optim/lr_schedule.h"

namespace spvit::train {
namespace {

template <typename Fn>
std::string config_error_of(Fn&& fn) {
  try {
    fn();
  } catch (const ConfigError& e) {
    return e.what();
  } catch (const Error& e) {
    return std::string("(spvit::Error) ") + e.what();
  }
  return "(no error)";
}
#define EXPECT_ERROR_MENTIONS(statement, text) \
  EXPECT_NE(config_error_of([&] { statement; }).find(text), std::string::npos) << config_error_of([&] { statement; })

ScheduleOptions schedule(const std::string& kind, int64_t warmup = 10, int64_t total = 110, double power = 1.0) {
  ScheduleOptions o;
  o.kind = kind;
  o.base_lr = 1e-3;
  o.min_lr = 1e-5;
  o.warmup_steps = warmup;
  o.total_steps = total;
  o.power = power;
  return o;
}

// ---- schedules
TEST(LrSchedule, WarmupIsLinearFromZero) {
  LrSchedule s(schedule("cosine"));
  EXPECT_EQ(s.lr_at(0), 0.0);
  for (int64_t step = 1; step <= 10; ++step) EXPECT_NEAR(s.lr_at(step) - s.lr_at(step - 1), 1e-4, 1e-18) << step;
  EXPECT_DOUBLE_EQ(s.lr_at(5), 5e-4);
}

TEST(LrSchedule, EndpointsAreExact) {
  for (const char* kind : {"cosine", "linear", "polynomial"}) {
    LrSchedule s(schedule(kind, 10, 110, 2.0));
    EXPECT_EQ(s.lr_at(10), 1e-3) << kind;
    EXPECT_EQ(s.lr_at(110), 1e-5) << kind;
    EXPECT_EQ(s.lr_at(5000), 1e-5) << kind;
  }
  LrSchedule constant(schedule("constant"));
  EXPECT_EQ(constant.lr_at(10), 1e-3);
  EXPECT_EQ(constant.lr_at(60), 1e-3);
  EXPECT_EQ(constant.lr_at(5000), 1e-3);
  LrSchedule no_warmup(schedule("cosine", 0, 100));
  EXPECT_EQ(no_warmup.lr_at(0), 1e-3);
}

TEST(LrSchedule, ShapesAtKnownPoints) {
  const double base = 1e-3, min = 1e-5;
  EXPECT_NEAR(LrSchedule(schedule("cosine")).lr_at(60), (base + min) / 2, 1e-18);
  EXPECT_NEAR(LrSchedule(schedule("cosine")).lr_at(35), min + (base - min) * 0.5 * (1 + std::cos(M_PI / 4)), 1e-18);
  EXPECT_NEAR(LrSchedule(schedule("linear")).lr_at(35), min + 0.75 * (base - min), 1e-18);
  EXPECT_NEAR(LrSchedule(schedule("polynomial", 10, 110, 2.0)).lr_at(60), min + 0.25 * (base - min), 1e-18);
  EXPECT_NEAR(LrSchedule(schedule("polynomial", 10, 110, 0.5)).lr_at(85), min + 0.5 * (base - min), 1e-18);
  for (int64_t step = 0; step <= 120; ++step) {
    EXPECT_DOUBLE_EQ(LrSchedule(schedule("polynomial", 10, 110, 1.0)).lr_at(step),
                     LrSchedule(schedule("linear")).lr_at(step));
  }
}

TEST(LrSchedule, MonotoneUpThenDown) {
  for (const char* kind : {"cosine", "linear", "polynomial", "constant"}) {
    LrSchedule s(schedule(kind, 10, 110, 3.0));
    for (int64_t step = 1; step <= 120; ++step) {
      if (step <= 10) {
        EXPECT_GT(s.lr_at(step), s.lr_at(step - 1)) << kind << " " << step;
      } else {
        EXPECT_LE(s.lr_at(step), s.lr_at(step - 1)) << kind << " " << step;
      }
    }
  }
}

TEST(LrSchedule, BadOptionsGiveClearErrors) {
  EXPECT_ERROR_MENTIONS(LrSchedule(schedule("cosin")),
                        "schedule kind 'cosin' is unknown; expected one of: cosine, linear, polynomial, constant");
  auto o = schedule("cosine");
  o.base_lr = -1;
  EXPECT_ERROR_MENTIONS(LrSchedule{o}, "schedule base_lr must be a finite number >= 0, got -1");
  o = schedule("cosine");
  o.min_lr = 0.5;
  EXPECT_ERROR_MENTIONS(LrSchedule{o}, "schedule min_lr must be in [0, base_lr = 0.001], got 0.5");
  EXPECT_ERROR_MENTIONS(LrSchedule(schedule("linear", -1, 100)), "schedule warmup_steps must be >= 0, got -1");
  EXPECT_ERROR_MENTIONS(LrSchedule(schedule("linear", 0, 0)), "schedule total_steps must be >= 1, got 0");
  EXPECT_ERROR_MENTIONS(LrSchedule(schedule("polynomial", 0, 10, 0.0)), "schedule power must be a finite number > 0, got 0");
  EXPECT_ERROR_MENTIONS(LrSchedule(schedule("linear")).lr_at(-1), "lr_at: step must be >= 0, got -1");
}

// The warning lines logged while `fn` runs.
template <typename Fn>
std::string warnings_of(Fn&& fn) {
  std::ostringstream text;
  auto previous = spdlog::default_logger();
  auto capture = std::make_shared<spdlog::logger>("capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(text));
  capture->set_level(spdlog::level::warn);
  spdlog::set_default_logger(capture);
  try {
    fn();
  } catch (...) {
    spdlog::set_default_logger(previous);
    throw;
  }
  spdlog::set_default_logger(previous);
  return text.str();
}

// A warmup longer than the run (train.steps = 4 with train.warmup_steps = 10) runs: the warmup is shortened to the
// run, with a warning naming both keys: the lr rises linearly over the whole run, lr_at(total_steps) is the end point.
TEST(LrSchedule, WarmupLongerThanTheRunIsClampedWithAWarning) {
  for (const char* kind : {"cosine", "linear", "polynomial", "constant"}) {
    std::unique_ptr<LrSchedule> clamped;
    const auto warning = warnings_of([&] { clamped = std::make_unique<LrSchedule>(schedule(kind, 10, 4)); });
    EXPECT_NE(warning.find("train.warmup_steps = 10 is longer than the run (train.steps = 4): warming up over 4 "
                           "steps instead"),
              std::string::npos)
        << warning;
    EXPECT_EQ(clamped->options().warmup_steps, 4);
    const LrSchedule reference(schedule(kind, 4, 4));
    for (int64_t step = 0; step <= 6; ++step) EXPECT_EQ(clamped->lr_at(step), reference.lr_at(step)) << kind << step;
    EXPECT_EQ(clamped->lr_at(0), 0.0);
    EXPECT_DOUBLE_EQ(clamped->lr_at(1), 2.5e-4);
    EXPECT_DOUBLE_EQ(clamped->lr_at(3), 7.5e-4);
    EXPECT_EQ(clamped->lr_at(4), std::string(kind) == "constant" ? 1e-3 : 1e-5);  // the end point, as always
  }
  // No warning when the warmup fits.
  EXPECT_EQ(warnings_of([] { const LrSchedule fits(schedule("cosine", 4, 4)); }), "");
  EXPECT_EQ(warnings_of([] { const LrSchedule fits(schedule("cosine", 3, 4)); }), "");
}

// ---- gradient clipping
std::vector<torch::Tensor> params_with_grads() {
  torch::manual_seed(3);
  std::vector<torch::Tensor> params;
  const std::vector<std::vector<int64_t>> shapes = {{4, 5}, {7}, {2, 3, 2}};
  for (const auto& shape : shapes) {
    auto p = torch::zeros(shape, torch::kFloat64).requires_grad_(true);
    p.mutable_grad() = torch::randn(shape, torch::kFloat64);
    params.push_back(p);
  }
  params.push_back(torch::zeros({3}, torch::kFloat64).requires_grad_(true));  // no gradient: ignored
  return params;
}

double reference_norm(const std::vector<torch::Tensor>& params) {
  double sum = 0;
  for (const auto& p : params) {
    if (!p.grad().defined()) continue;
    auto g = p.grad().contiguous();
    for (int64_t i = 0; i < g.numel(); ++i) sum += g.data_ptr<double>()[i] * g.data_ptr<double>()[i];
  }
  return std::sqrt(sum);
}

TEST(ClipGradNorm, ClipsToMaxNormAndReturnsTheNormBefore) {
  auto params = params_with_grads();
  const double norm = reference_norm(params);
  const double returned = clip_grad_norm(params, norm / 3);
  EXPECT_NEAR(returned, norm, 1e-12 * norm);
  EXPECT_NEAR(reference_norm(params), norm / 3, 1e-12 * norm);
}

TEST(ClipGradNorm, NoOpBelowMaxNorm) {
  auto params = params_with_grads();
  std::vector<torch::Tensor> before;
  for (const auto& p : params) before.push_back(p.grad().defined() ? p.grad().clone() : torch::Tensor());
  const double norm = clip_grad_norm(params, 1e6);
  EXPECT_NEAR(norm, reference_norm(params), 1e-12 * norm);
  for (size_t i = 0; i < params.size(); ++i) {
    if (before[i].defined()) {
      EXPECT_TRUE(torch::equal(params[i].grad(), before[i]));
    }
  }
}

TEST(ClipGradNorm, NonFiniteNormLeavesGradientsAlone) {
  auto params = params_with_grads();
  params[0].grad()[1][2] = INFINITY;
  const auto before = params[1].grad().clone();
  EXPECT_TRUE(std::isinf(clip_grad_norm(params, 1.0)));
  EXPECT_TRUE(torch::equal(params[1].grad(), before));
  EXPECT_ERROR_MENTIONS(clip_grad_norm(params, 0.0), "max_norm must be a finite number > 0, got 0");
}

// ---- loss scaler
LossScaler::Options scaler_options(int64_t growth_interval = 3) {
  LossScaler::Options o;
  o.growth_interval = growth_interval;
  return o;
}

torch::Tensor param_with_grad(double value) {
  auto p = torch::zeros({4}).requires_grad_(true);
  p.mutable_grad() = torch::full({4}, value);
  return p;
}

TEST(LossScaler, ScalesAndUnscales) {
  LossScaler scaler(scaler_options(), nullptr);
  EXPECT_EQ(scaler.scale(torch::tensor(2.0f)).item<float>(), 131072.0f);
  auto p = param_with_grad(65536.0 * 3);
  EXPECT_TRUE(scaler.unscale_and_check({p}));
  EXPECT_TRUE(torch::equal(p.grad(), torch::full({4}, 3.0f)));
}

TEST(LossScaler, OverflowHalvesTheScaleAndGrowthDoublesIt) {
  LossScaler scaler(scaler_options(3), nullptr);
  auto bad = param_with_grad(1.0);
  bad.grad()[2] = INFINITY;
  EXPECT_FALSE(scaler.unscale_and_check({param_with_grad(1.0), bad}));
  scaler.update(false);
  EXPECT_EQ(scaler.scale_value(), 32768.0);
  auto nan = param_with_grad(NAN);
  EXPECT_FALSE(scaler.unscale_and_check({nan}));
  scaler.update(false);
  EXPECT_EQ(scaler.scale_value(), 16384.0);
  scaler.update(true);
  scaler.update(true);
  EXPECT_EQ(scaler.scale_value(), 16384.0);
  EXPECT_EQ(scaler.good_steps(), 2);
  scaler.update(false);  // an overflow restarts the run of good steps
  EXPECT_EQ(scaler.good_steps(), 0);
  for (int i = 0; i < 2; ++i) scaler.update(true);
  EXPECT_EQ(scaler.scale_value(), 8192.0);
  scaler.update(true);
  EXPECT_EQ(scaler.scale_value(), 16384.0);
  EXPECT_EQ(scaler.good_steps(), 0);
}

TEST(LossScaler, FindsAWorkingScaleForFp16Gradients) {
  // d(1000·Σw)/dw = 1000 per element; times 65536 it overflows fp16 (max 65504) until the scale drops to 64.
  LossScaler scaler(scaler_options(2000), nullptr);
  auto w = torch::ones({8}, torch::kHalf).requires_grad_(true);
  bool finite = false;
  int attempts = 0;
  while (!finite && attempts < 20) {
    w.mutable_grad() = torch::Tensor();
    scaler.scale((w * 1000).sum()).backward();
    finite = scaler.unscale_and_check({w});
    scaler.update(finite);
    ++attempts;
  }
  EXPECT_TRUE(finite);
  EXPECT_EQ(attempts, 11);
  EXPECT_EQ(scaler.scale_value(), 64.0);
  EXPECT_TRUE(torch::equal(w.grad(), torch::full({8}, 1000, torch::kHalf)));
}

TEST(LossScaler, DisabledIsTransparent) {
  auto o = scaler_options();
  o.enabled = false;
  LossScaler scaler(o, nullptr);
  auto loss = torch::tensor(2.5);
  EXPECT_TRUE(scaler.scale(loss).is_same(loss));
  auto p = param_with_grad(INFINITY);
  EXPECT_TRUE(scaler.unscale_and_check({p}));
  scaler.update(false);
  EXPECT_EQ(scaler.scale_value(), 1.0);
  EXPECT_TRUE(std::isinf(p.grad()[0].item<float>()));
}

TEST(LossScaler, StateRoundTrip) {
  LossScaler a(scaler_options(5), nullptr);
  a.update(false);
  a.update(true);
  a.update(true);
  std::stringstream buffer;
  torch::serialize::OutputArchive out;
  a.save(out);
  out.save_to(buffer);
  LossScaler b(scaler_options(5), nullptr);
  torch::serialize::InputArchive in;
  in.load_from(buffer);
  b.load(in);
  EXPECT_EQ(b.scale_value(), 32768.0);
  EXPECT_EQ(b.good_steps(), 2);
  for (int i = 0; i < 3; ++i) {
    a.update(true);
    b.update(true);
  }
  EXPECT_EQ(a.scale_value(), b.scale_value());
  EXPECT_EQ(b.scale_value(), 65536.0);
}

TEST(LossScaler, BadOptionsGiveClearErrors) {
  auto o = scaler_options();
  o.init_scale = 0;
  EXPECT_ERROR_MENTIONS(LossScaler(o, nullptr), "init_scale must be a finite number > 0, got 0");
  o = scaler_options();
  o.growth_factor = 1;
  EXPECT_ERROR_MENTIONS(LossScaler(o, nullptr), "growth_factor must be a finite number > 1, got 1");
  o = scaler_options();
  o.backoff_factor = 1.5;
  EXPECT_ERROR_MENTIONS(LossScaler(o, nullptr), "backoff_factor must be in (0, 1), got 1.5");
  o = scaler_options();
  o.growth_interval = 0;
  EXPECT_ERROR_MENTIONS(LossScaler(o, nullptr), "growth_interval must be >= 1, got 0");
}

// ---- across ranks (world communicator; run with 1 rank in `optim` and with 2 in `optim_np2`)
TEST(OptimMpi, LossScalerAgreesWhenOnlyOneRankOverflows) {
  const auto& world = spvit::testing::test_grid().world();
  LossScaler scaler(scaler_options(), world);
  auto p = param_with_grad(65536.0);
  if (world->rank() == world->size() - 1) p.grad()[3] = INFINITY;
  EXPECT_FALSE(scaler.unscale_and_check({p})) << "rank " << world->rank();
  scaler.update(false);
  EXPECT_EQ(scaler.scale_value(), 32768.0);
  EXPECT_EQ(p.grad()[0].item<float>(), 1.0f);  // every rank unscaled its gradients

  auto q = param_with_grad(32768.0);
  EXPECT_TRUE(scaler.unscale_and_check({q})) << "rank " << world->rank();
  scaler.update(true);
  EXPECT_EQ(scaler.scale_value(), 32768.0);
}

TEST(OptimMpi, ClippingDecisionIsTheSameOnEveryRank) {
  const auto& world = spvit::testing::test_grid().world();
  auto params = params_with_grads();
  const double local = reference_norm(params);
  // Identical gradients (the normal case after averaging): the result is the local norm.
  EXPECT_NEAR(clip_grad_norm(params, local / 2, world), local, 1e-12 * local);
  EXPECT_NEAR(reference_norm(params), local / 2, 1e-12 * local);
  // Diverged replicas: every rank uses the largest norm, so all clip identically.
  auto other = params_with_grads();
  other[1].grad().mul_(1.0 + world->rank());
  const double norm = clip_grad_norm(other, 1.0, world);
  auto agreed = torch::tensor({norm, -norm}, torch::kFloat64);
  world->all_reduce(agreed, dist::ReduceOp::Max)->wait();
  EXPECT_EQ(agreed[0].item<double>(), norm);
  EXPECT_EQ(-agreed[1].item<double>(), norm);
}

}  // namespace
}  // namespace spvit::train
