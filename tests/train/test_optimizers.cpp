// AdamW and LAMB against float64 reference implementations written here with plain per-element loops (the LAMB
// paper's Algorithm 2; AdamW's decoupled decay), plus parameter grouping and bit-exact save/load.
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>

#include "spvit/core/error.h"
#include "spvit/model/vit_encoder.h"
#include "spvit/train/optim/optimizer.h"

namespace spvit::train {
namespace {

// ---- float64 references, one parameter tensor at a time, element by element
struct RefParam {
  std::vector<double> w, m, v;
  double weight_decay = 0;
  int64_t step = 0;
};

void reference_lamb_step(RefParam& p, const std::vector<double>& g, double lr, const LambOptions& o) {
  p.step += 1;
  const double bc1 = o.bias_correction ? 1 - std::pow(o.beta1, static_cast<double>(p.step)) : 1.0;
  const double bc2 = o.bias_correction ? 1 - std::pow(o.beta2, static_cast<double>(p.step)) : 1.0;
  std::vector<double> r(p.w.size());
  double w_sq = 0, r_sq = 0;
  for (size_t i = 0; i < p.w.size(); ++i) {
    p.m[i] = o.beta1 * p.m[i] + (1 - o.beta1) * g[i];
    p.v[i] = o.beta2 * p.v[i] + (1 - o.beta2) * g[i] * g[i];
    const double m_hat = p.m[i] / bc1, v_hat = p.v[i] / bc2;
    r[i] = m_hat / (std::sqrt(v_hat) + o.eps) + p.weight_decay * p.w[i];
    w_sq += p.w[i] * p.w[i];
    r_sq += r[i] * r[i];
  }
  const double w_norm = std::sqrt(w_sq), r_norm = std::sqrt(r_sq);
  const double ratio = (w_norm > 0 && r_norm > 0) ? std::min(w_norm, o.max_trust_ratio) / r_norm : 1.0;
  for (size_t i = 0; i < p.w.size(); ++i) p.w[i] -= lr * ratio * r[i];
}

void reference_adamw_step(RefParam& p, const std::vector<double>& g, double lr, const AdamWOptions& o) {
  p.step += 1;
  const double bc1 = 1 - std::pow(o.beta1, static_cast<double>(p.step));
  const double bc2 = 1 - std::pow(o.beta2, static_cast<double>(p.step));
  for (size_t i = 0; i < p.w.size(); ++i) {
    p.w[i] -= lr * p.weight_decay * p.w[i];
    p.m[i] = o.beta1 * p.m[i] + (1 - o.beta1) * g[i];
    p.v[i] = o.beta2 * p.v[i] + (1 - o.beta2) * g[i] * g[i];
    p.w[i] -= lr * (p.m[i] / bc1) / (std::sqrt(p.v[i] / bc2) + o.eps);
  }
}

std::vector<double> to_vector(const torch::Tensor& t) {
  auto c = t.detach().to(torch::kFloat64).contiguous().flatten();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

// A small "model": a weight matrix with a norm above the trust-ratio clip (10), an ordinary matrix, a zero-initialised
// matrix, a no-decay bias, and a zero matrix whose gradient is always zero.
struct Fixture {
  std::vector<torch::Tensor> params;
  std::vector<double> decay;  // per parameter
  Fixture(torch::ScalarType dtype = torch::kFloat64) {
    torch::manual_seed(7);
    auto opts = torch::dtype(dtype);
    params = {torch::randn({4, 5}, opts) * 4.0, torch::randn({3, 4}, opts) * 0.1, torch::zeros({2, 3}, opts),
              torch::randn({5}, opts) * 0.1, torch::zeros({2, 2}, opts)};
    decay = {0.05, 0.05, 0.05, 0.0, 0.05};
    for (auto& p : params) p.requires_grad_(true);
  }
  std::vector<ParamGroup> groups() const {
    return {ParamGroup{{params[0], params[1], params[2], params[4]}, 0.05}, ParamGroup{{params[3]}, 0.0}};
  }
  // Deterministic gradients that vary by step and element (the last parameter always gets zeros).
  void set_grads(int step) {
    for (size_t k = 0; k < params.size(); ++k) {
      auto idx = torch::arange(params[k].numel(), torch::kFloat64).reshape(params[k].sizes());
      auto g = k == 4 ? torch::zeros_like(idx) : torch::sin(idx * 0.37 + step * 1.3 + static_cast<double>(k)) * static_cast<double>(k + 1);
      params[k].mutable_grad() = g.to(params[k].scalar_type());
    }
  }
  std::vector<RefParam> reference() const {
    std::vector<RefParam> ref;
    for (size_t k = 0; k < params.size(); ++k) {
      auto w = to_vector(params[k]);
      ref.push_back(RefParam{w, std::vector<double>(w.size(), 0.0), std::vector<double>(w.size(), 0.0), decay[k]});
    }
    return ref;
  }
};

double max_rel_error(const torch::Tensor& actual, const std::vector<double>& expected) {
  auto a = to_vector(actual);
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - expected[i]) / (1.0 + std::abs(expected[i])));
  return worst;
}

void check_lamb_against_reference(const LambOptions& options) {
  Fixture f;
  auto ref = f.reference();
  auto optimizer = make_lamb(f.groups(), options);
  const double lrs[] = {options.lr, options.lr * 0.5, options.lr * 2.0, options.lr, options.lr * 0.1};
  for (int step = 0; step < 5; ++step) {
    f.set_grads(step);
    optimizer->set_lr(lrs[step]);
    optimizer->step();
    for (size_t k = 0; k < ref.size(); ++k) reference_lamb_step(ref[k], to_vector(f.params[k].grad()), lrs[step], options);
  }
  for (size_t k = 0; k < ref.size(); ++k) {
    EXPECT_LT(max_rel_error(f.params[k], ref[k].w), 1e-13) << "parameter " << k;
  }
  // The zero-initialised matrix moved (ratio 1 on its first step); the always-zero-gradient one did not.
  EXPECT_GT(f.params[2].abs().max().item<double>(), 0.0);
  EXPECT_EQ(f.params[4].abs().max().item<double>(), 0.0);
}

TEST(Lamb, MatchesFloat64ReferenceOfThePaper) {
  LambOptions options;
  options.lr = 0.01;
  check_lamb_against_reference(options);
}

TEST(Lamb, MatchesReferenceWithoutBiasCorrectionOrClip) {
  LambOptions options;
  options.lr = 0.02;
  options.bias_correction = false;
  options.max_trust_ratio = INFINITY;
  options.beta1 = 0.8;
  options.eps = 1e-8;
  check_lamb_against_reference(options);
}

TEST(Lamb, TrustRatioClipIsActiveForLargeWeights) {
  // ‖w‖ of the first parameter is above 10, so clipping φ changes its update; the small ones are unaffected.
  Fixture clipped, unclipped;
  EXPECT_GT(clipped.params[0].norm().item<double>(), 10.0);
  LambOptions options;
  auto a = make_lamb(clipped.groups(), options);
  options.max_trust_ratio = INFINITY;
  auto b = make_lamb(unclipped.groups(), options);
  clipped.set_grads(0);
  unclipped.set_grads(0);
  a->step();
  b->step();
  EXPECT_FALSE(torch::equal(clipped.params[0], unclipped.params[0]));
  EXPECT_TRUE(torch::equal(clipped.params[1], unclipped.params[1]));
}

TEST(AdamW, MatchesFloat64Reference) {
  Fixture f;
  auto ref = f.reference();
  AdamWOptions options{0.01, 0.9, 0.99, 1e-8};
  auto optimizer = make_adamw(f.groups(), options);
  for (int step = 0; step < 5; ++step) {
    f.set_grads(step);
    const double lr = 0.01 / (1 + step);
    optimizer->set_lr(lr);
    optimizer->step();
    for (size_t k = 0; k < ref.size(); ++k) reference_adamw_step(ref[k], to_vector(f.params[k].grad()), lr, options);
  }
  for (size_t k = 0; k < ref.size(); ++k) EXPECT_LT(max_rel_error(f.params[k], ref[k].w), 1e-13) << "parameter " << k;
}

TEST(AdamW, MatchesTorchAdamW) {
  Fixture ours, theirs;
  std::vector<torch::optim::OptimizerParamGroup> torch_groups;
  for (const auto& group : theirs.groups()) {
    torch_groups.emplace_back(group.params, std::make_unique<torch::optim::AdamWOptions>(
                                                torch::optim::AdamWOptions(0.01).betas({0.9, 0.99}).eps(1e-8)
                                                    .weight_decay(group.weight_decay)));
  }
  torch::optim::AdamW reference(torch_groups, torch::optim::AdamWOptions(0.01));
  auto optimizer = make_adamw(ours.groups(), AdamWOptions{0.01, 0.9, 0.99, 1e-8});
  for (int step = 0; step < 4; ++step) {
    ours.set_grads(step);
    theirs.set_grads(step);
    optimizer->step();
    reference.step();
  }
  for (size_t k = 0; k < ours.params.size(); ++k) {
    EXPECT_LT((ours.params[k] - theirs.params[k]).abs().max().item<double>(), 1e-14) << "parameter " << k;
  }
}

TEST(Optimizer, SkipsParametersWithoutGradientAndZeroesGradients) {
  Fixture f;
  auto optimizer = make_optimizer("lamb", f.groups(), 0.01, 0.9, 0.999, 1e-6);
  f.set_grads(0);
  f.params[1].mutable_grad() = torch::Tensor();
  const auto before = f.params[1].clone();
  optimizer->step();
  EXPECT_TRUE(torch::equal(f.params[1], before));
  optimizer->zero_grad();
  EXPECT_EQ(f.params[0].grad().abs().max().item<double>(), 0.0);
  EXPECT_FALSE(f.params[1].grad().defined());
}

TEST(Optimizer, ReducedPrecisionParametersUseFloat32State) {
  auto half = torch::full({8}, 0.5, torch::kBFloat16).requires_grad_(true);
  auto full = torch::full({8}, 0.5, torch::kFloat32).requires_grad_(true);
  auto a = make_adamw({ParamGroup{{half}, 0.1}}, AdamWOptions{0.01});
  auto b = make_adamw({ParamGroup{{full}, 0.1}}, AdamWOptions{0.01});
  half.mutable_grad() = torch::full({8}, 0.25, torch::kBFloat16);
  full.mutable_grad() = torch::full({8}, 0.25, torch::kFloat32);
  a->step();
  b->step();
  EXPECT_EQ(half.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(half, full.to(torch::kBFloat16)));
}

template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no ConfigError)";
}

TEST(Optimizer, BadOptionsGiveClearErrors) {
  Fixture f;
  EXPECT_NE(error_of([&] { make_optimizer("sgd", f.groups(), 0.1, 0.9, 0.999, 1e-8); })
                .find("optimizer 'sgd' is unknown; expected one of: adamw, lamb"), std::string::npos);
  EXPECT_NE(error_of([&] { make_adamw(f.groups(), AdamWOptions{-1.0}); }).find("lr must be a finite number >= 0, got -1"),
            std::string::npos);
  EXPECT_NE(error_of([&] { make_adamw(f.groups(), AdamWOptions{0.1, 1.0}); }).find("beta1 must be in [0, 1), got 1"),
            std::string::npos);
  EXPECT_NE(error_of([&] { make_optimizer("lamb", f.groups(), 0.1, 0.9, -0.5, 1e-8); })
                .find("beta2 must be in [0, 1), got -0.5"), std::string::npos);
  LambOptions lamb;
  lamb.max_trust_ratio = 0;
  EXPECT_NE(error_of([&] { make_lamb(f.groups(), lamb); }).find("max_trust_ratio must be > 0"), std::string::npos);
  auto optimizer = make_adamw(f.groups(), AdamWOptions{});
  EXPECT_NE(error_of([&] { optimizer->set_lr(-0.5); }).find("got -0.5"), std::string::npos);
  EXPECT_NE(error_of([&] { decay_groups({}, -0.1); }).find("weight_decay must be a finite number >= 0, got -0.1"),
            std::string::npos);
}

TEST(DecayGroups, BiasesNormsAndPositionalTablesAreNotDecayed) {
  auto t = [](std::vector<int64_t> shape) { return torch::zeros(shape).requires_grad_(true); };
  std::vector<std::pair<std::string, torch::Tensor>> named = {
      {"embed.weight", t({8, 12})},      {"embed.bias", t({8})},
      {"block0.norm1.weight", t({8})},   {"block0.attn.qkv.weight", t({24, 8})},
      {"pos.table", t({16, 8})},         {"pos.fc1.weight", t({8, 3})},
      {"pos_embed", t({1, 16, 8})},      {"cls_token", t({1, 1, 8})},
      {"decoder.bias_proj", t({4, 4})},  {"decoder.groupnorm.scale2d", t({4, 4})},
      {"frozen.weight", torch::zeros({4, 4})}};
  const auto groups = decay_groups(named, 0.05);
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].weight_decay, 0.05);
  EXPECT_EQ(groups[1].weight_decay, 0.0);
  auto names_in = [&](const ParamGroup& g) {
    std::vector<std::string> out;
    for (const auto& p : g.params)
      for (const auto& [name, q] : named)
        if (p.is_same(q)) out.push_back(name);
    return out;
  };
  EXPECT_EQ(names_in(groups[0]), (std::vector<std::string>{"embed.weight", "block0.attn.qkv.weight", "pos.fc1.weight"}));
  EXPECT_EQ(names_in(groups[1]),
            (std::vector<std::string>{"embed.bias", "block0.norm1.weight", "pos.table", "pos_embed", "cls_token",
                                      "decoder.bias_proj", "decoder.groupnorm.scale2d"}));
}

TEST(DecayGroups, RealEncoderDecaysOnlyItsLayerWeights) {
  model::EncoderOptions options;
  options.in_features = 12;
  options.dim = 8;
  options.depth = 1;
  options.heads = 2;
  options.max_tokens = 16;
  model::ViTEncoder encoder(options);
  const auto named = encoder->named_parameters().pairs();
  const auto groups = decay_groups({named.begin(), named.end()}, 0.1);
  for (const auto& [name, p] : named) {
    const bool decayed = std::any_of(groups[0].params.begin(), groups[0].params.end(),
                                     [&](const torch::Tensor& q) { return q.is_same(p); });
    const bool expect = p.dim() == 2 && name.find("norm") == std::string::npos && name != "pos.table";
    EXPECT_EQ(decayed, expect) << name;
  }
}

// ---- save/load: k steps, save, load into a fresh optimiser over fresh parameters, continue == uninterrupted
void check_resume_bit_exact(const std::string& kind) {
  const int k = 3, total = 7;
  Fixture uninterrupted(torch::kFloat32);
  auto opt_a = make_optimizer(kind, uninterrupted.groups(), 0.01, 0.9, 0.999, 1e-6);
  for (int step = 0; step < total; ++step) {
    uninterrupted.set_grads(step);
    opt_a->set_lr(0.01 * (step + 1));
    opt_a->step();
  }

  Fixture first(torch::kFloat32);
  auto opt_b = make_optimizer(kind, first.groups(), 0.01, 0.9, 0.999, 1e-6);
  for (int step = 0; step < k; ++step) {
    first.set_grads(step);
    opt_b->set_lr(0.01 * (step + 1));
    opt_b->step();
  }
  std::stringstream buffer;
  {
    torch::serialize::OutputArchive archive;
    opt_b->save(archive);
    archive.save_to(buffer);
  }
  Fixture resumed(torch::kFloat32);
  {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < resumed.params.size(); ++i) resumed.params[i].copy_(first.params[i]);
  }
  auto opt_c = make_optimizer(kind, resumed.groups(), 0.5, 0.9, 0.999, 1e-6);
  torch::serialize::InputArchive archive;
  archive.load_from(buffer);
  opt_c->load(archive);
  EXPECT_EQ(opt_c->lr(), 0.01 * k);
  for (int step = k; step < total; ++step) {
    resumed.set_grads(step);
    opt_c->set_lr(0.01 * (step + 1));
    opt_c->step();
  }
  for (size_t i = 0; i < resumed.params.size(); ++i) {
    EXPECT_TRUE(torch::equal(resumed.params[i], uninterrupted.params[i])) << kind << " parameter " << i;
  }
}

TEST(OptimizerState, ResumeIsBitExactAdamW) { check_resume_bit_exact("adamw"); }
TEST(OptimizerState, ResumeIsBitExactLamb) { check_resume_bit_exact("lamb"); }

TEST(OptimizerState, MismatchedStateIsRejected) {
  Fixture f;
  auto lamb = make_lamb(f.groups(), LambOptions{});
  f.set_grads(0);
  lamb->step();
  std::stringstream buffer;
  torch::serialize::OutputArchive out;
  lamb->save(out);
  out.save_to(buffer);
  auto load_into = [&](Optimizer& o) {
    buffer.clear();
    buffer.seekg(0);
    torch::serialize::InputArchive in;
    in.load_from(buffer);
    try {
      o.load(in);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  auto adamw = make_adamw(f.groups(), AdamWOptions{});
  EXPECT_NE(load_into(*adamw).find("holds 'lamb' state but this optimizer is 'adamw'"), std::string::npos);
  auto fewer = make_lamb({ParamGroup{{f.params[0]}, 0.1}}, LambOptions{});
  EXPECT_NE(load_into(*fewer).find("has 5 parameter tensors but this optimizer has 1"), std::string::npos);
  auto other_shapes = f.groups();
  std::swap(other_shapes[0].params[0], other_shapes[0].params[1]);
  auto shuffled = make_lamb(other_shapes, LambOptions{});
  EXPECT_NE(load_into(*shuffled).find("saved shape [4, 5] but the parameter has shape [3, 4]"), std::string::npos);
}

}  // namespace
}  // namespace spvit::train
