// AdamW and LAMB (include/spvit/train/optim/optimizer.h). Both share the Adam state (step, m, v) and its
// serialisation; they differ only in how one parameter tensor is updated.
#include <cmath>

#include "spvit/core/error.h"
#include "spvit/core/torch_compat.h"
#include "spvit/train/optim/optimizer.h"

namespace spvit::train {
namespace {

bool contains(const std::string& text, const char* part) { return text.find(part) != std::string::npos; }
bool starts_with(const std::string& text, const char* prefix) { return text.rfind(prefix, 0) == 0; }

void check_lr(double lr) {
  if (!std::isfinite(lr) || lr < 0) SPVIT_THROW(ConfigError, "optimizer lr must be a finite number >= 0, got ", lr);
}
void check_beta(const char* option, double beta) {
  if (!(beta >= 0 && beta < 1)) SPVIT_THROW(ConfigError, "optimizer ", option, " must be in [0, 1), got ", beta);
}
void check_eps(double eps) {
  if (!std::isfinite(eps) || eps < 0) SPVIT_THROW(ConfigError, "optimizer eps must be a finite number >= 0, got ", eps);
}
void check_weight_decay(double weight_decay) {
  if (!std::isfinite(weight_decay) || weight_decay < 0) {
    SPVIT_THROW(ConfigError, "weight_decay must be a finite number >= 0, got ", weight_decay);
  }
}

// fp16/bf16 parameters keep float32 state and are updated in float32.
bool is_reduced_precision(const torch::Tensor& t) {
  return t.scalar_type() == torch::kHalf || t.scalar_type() == torch::kBFloat16;
}
torch::ScalarType state_dtype(const torch::Tensor& param) {
  return is_reduced_precision(param) ? torch::kFloat : param.scalar_type();
}

std::string shape_text(const torch::Tensor& t) {
  std::ostringstream out;
  out << t.sizes();
  return out.str();
}

struct AdamState {
  int64_t step = 0;
  torch::Tensor exp_avg, exp_avg_sq;  // undefined until the first step
  torch::Tensor device_step;          // fused CUDA path: `step` as a float32 scalar on the parameter's device
  int64_t device_step_host = -1;      // the value of `step` that device_step holds
};

// The Adam-moment family: owns per-parameter state, runs the loop over parameters, saves and loads.
class AdamFamily : public Optimizer {
 public:
  AdamFamily(std::vector<ParamGroup> groups, double lr, double beta1, double beta2, double eps)
      : Optimizer(std::move(groups), lr), beta1_(beta1), beta2_(beta2), eps_(eps) {
    check_beta("beta1", beta1);
    check_beta("beta2", beta2);
    check_eps(eps);
    size_t count = 0;
    for (const auto& group : groups_) count += group.params.size();
    state_.resize(count);
  }

  void step() override {
    torch::NoGradGuard no_grad;
    size_t index = 0;
    for (const auto& group : groups_) {
      for (const auto& param : group.params) {
        AdamState& state = state_[index++];
        const torch::Tensor& grad = param.grad();
        if (!grad.defined()) continue;
        SPVIT_CHECK(!grad.is_sparse(), name(), ": sparse gradients are not supported (parameter ", index - 1, ")");
        const bool reduced = is_reduced_precision(param);
        torch::Tensor weight = reduced ? param.detach().to(torch::kFloat) : param.detach();
        torch::Tensor g = grad.detach();
        if (g.scalar_type() != weight.scalar_type()) g = g.to(weight.scalar_type());
        if (!state.exp_avg.defined()) {
          state.exp_avg = torch::zeros_like(weight, torch::MemoryFormat::Preserve);
          state.exp_avg_sq = torch::zeros_like(weight, torch::MemoryFormat::Preserve);
        }
        state.step += 1;
        update(weight, g, state, group.weight_decay);
        if (reduced) param.detach().copy_(weight);
      }
    }
  }

  void save(torch::serialize::OutputArchive& archive) const override {
    archive.write("kind", c10::IValue(name()));
    archive.write("lr", torch::tensor(lr_, torch::dtype(torch::kFloat64)));
    archive.write("num_params", torch::tensor(static_cast<int64_t>(state_.size()), torch::dtype(torch::kInt64)));
    for (size_t i = 0; i < state_.size(); ++i) {
      const auto suffix = std::to_string(i);
      archive.write("step_" + suffix, torch::tensor(state_[i].step, torch::dtype(torch::kInt64)));
      if (state_[i].exp_avg.defined()) {
        archive.write("exp_avg_" + suffix, state_[i].exp_avg.cpu());  // loadable without a GPU
        archive.write("exp_avg_sq_" + suffix, state_[i].exp_avg_sq.cpu());
      }
    }
  }

  void load(torch::serialize::InputArchive& archive) override {
    c10::IValue kind;
    archive.read("kind", kind);
    SPVIT_CHECK(kind.isString() && kind.toStringRef() == name(), "cannot load optimizer state: the checkpoint holds '",
                kind.isString() ? kind.toStringRef() : std::string("?"), "' state but this optimizer is '", name(),
                "'");
    torch::Tensor lr, num_params;
    archive.read("lr", lr);
    archive.read("num_params", num_params);
    const auto saved_count = num_params.item<int64_t>();
    SPVIT_CHECK(saved_count == static_cast<int64_t>(state_.size()), "cannot load ", name(),
                " state: the checkpoint has ", saved_count, " parameter tensors but this optimizer has ",
                state_.size());
    std::vector<AdamState> loaded(state_.size());
    size_t index = 0;
    for (const auto& group : groups_) {
      for (const auto& param : group.params) {
        const auto suffix = std::to_string(index);
        AdamState& state = loaded[index];
        torch::Tensor step;
        archive.read("step_" + suffix, step);
        state.step = step.item<int64_t>();
        torch::Tensor m, v;
        if (archive.try_read("exp_avg_" + suffix, m)) {
          archive.read("exp_avg_sq_" + suffix, v);
          for (const torch::Tensor* t : {&m, &v}) {
            SPVIT_CHECK(t->sizes() == param.sizes(), "cannot load ", name(), " state of parameter ", index,
                        ": saved shape ", shape_text(*t), " but the parameter has shape ", shape_text(param));
            SPVIT_CHECK(t->scalar_type() == state_dtype(param), "cannot load ", name(), " state of parameter ",
                        index, ": saved dtype ", t->scalar_type(), ", expected ", state_dtype(param));
          }
          state.exp_avg = m.detach().to(param.device());
          state.exp_avg_sq = v.detach().to(param.device());
        }
        ++index;
      }
    }
    set_lr(lr.item<double>());
    state_ = std::move(loaded);
  }

 protected:
  virtual void update(torch::Tensor& weight, const torch::Tensor& grad, AdamState& state, double weight_decay) = 0;

  double beta1_, beta2_, eps_;
  std::vector<AdamState> state_;  // one per parameter, in group order
};

class AdamW final : public AdamFamily {
 public:
  AdamW(std::vector<ParamGroup> groups, const AdamWOptions& o)
      : AdamFamily(std::move(groups), o.lr, o.beta1, o.beta2, o.eps) {}
  std::string name() const override { return "adamw"; }

  // On CUDA, float32 parameters take one fused multi-tensor kernel per group (PyTorch's AdamW(fused=True)) instead
  // of ~7 kernels per parameter tensor; everything else takes the per-tensor loop below.
  void step() override {
    if (!fused_applicable()) return AdamFamily::step();
    torch::NoGradGuard no_grad;
    size_t index = 0;
    for (const auto& group : groups_) {
      std::vector<torch::Tensor> w, g, m, v, steps;
      for (const auto& param : group.params) {
        AdamState& state = state_[index++];
        if (!param.grad().defined()) continue;
        if (!state.exp_avg.defined()) {
          state.exp_avg = torch::zeros_like(param, torch::MemoryFormat::Preserve);
          state.exp_avg_sq = torch::zeros_like(param, torch::MemoryFormat::Preserve);
        }
        if (!state.device_step.defined() || state.device_step_host != state.step) {  // first step, or after load()
          state.device_step = torch::full({}, static_cast<double>(state.step), param.options());
        }
        state.step += 1;
        state.device_step_host = state.step;
        w.push_back(param.detach());
        g.push_back(param.grad().detach());
        m.push_back(state.exp_avg);
        v.push_back(state.exp_avg_sq);
        steps.push_back(state.device_step);
      }
      if (!w.empty()) compat::fused_adamw(w, g, m, v, steps, lr_, beta1_, beta2_, group.weight_decay, eps_);
    }
  }

 private:
  bool fused_applicable() const {
    if (!compat::fused_adamw_available()) return false;
    for (const auto& group : groups_) {
      for (const auto& p : group.params) {
        if (!p.is_cuda() || p.scalar_type() != torch::kFloat) return false;
        if (p.grad().defined() && (p.grad().is_sparse() || p.grad().scalar_type() != torch::kFloat)) return false;
      }
    }
    return true;
  }

  // The operation order of torch::optim::AdamW.
  void update(torch::Tensor& w, const torch::Tensor& g, AdamState& s, double weight_decay) override {
    const double step = static_cast<double>(s.step);
    const double bias_correction1 = 1 - std::pow(beta1_, step);
    const double bias_correction2 = 1 - std::pow(beta2_, step);
    if (weight_decay != 0) w.mul_(1 - lr_ * weight_decay);
    s.exp_avg.mul_(beta1_).add_(g, 1 - beta1_);
    s.exp_avg_sq.mul_(beta2_).addcmul_(g, g, 1 - beta2_);
    const auto denom = (s.exp_avg_sq.sqrt() / std::sqrt(bias_correction2)).add_(eps_);
    w.addcdiv_(s.exp_avg, denom, -lr_ / bias_correction1);
  }
};

class Lamb final : public AdamFamily {
 public:
  Lamb(std::vector<ParamGroup> groups, const LambOptions& o)
      : AdamFamily(std::move(groups), o.lr, o.beta1, o.beta2, o.eps),
        bias_correction_(o.bias_correction),
        max_trust_ratio_(o.max_trust_ratio) {
    if (!(max_trust_ratio_ > 0)) {
      SPVIT_THROW(ConfigError, "LAMB max_trust_ratio must be > 0 (or infinity), got ", max_trust_ratio_);
    }
  }
  std::string name() const override { return "lamb"; }

 private:
  void update(torch::Tensor& w, const torch::Tensor& g, AdamState& s, double weight_decay) override {
    s.exp_avg.mul_(beta1_).add_(g, 1 - beta1_);
    s.exp_avg_sq.mul_(beta2_).addcmul_(g, g, 1 - beta2_);
    torch::Tensor r;
    if (bias_correction_) {
      const double step = static_cast<double>(s.step);
      const double bias_correction1 = 1 - std::pow(beta1_, step);
      const double bias_correction2 = 1 - std::pow(beta2_, step);
      r = (s.exp_avg / bias_correction1).div_((s.exp_avg_sq / bias_correction2).sqrt_().add_(eps_));
    } else {
      r = s.exp_avg / s.exp_avg_sq.sqrt().add_(eps_);
    }
    if (weight_decay != 0) r.add_(w, weight_decay);
    // Per-tensor trust ratio, kept on the device (no host synchronisation).
    const auto w_norm = w.norm();
    const auto r_norm = r.norm();
    const auto usable = w_norm.gt(0).logical_and(r_norm.gt(0));
    const auto ratio = torch::where(usable, w_norm.clamp_max(max_trust_ratio_) / r_norm, torch::ones_like(w_norm));
    w.add_(r.mul_(ratio), -lr_);
  }

  bool bias_correction_;
  double max_trust_ratio_;
};

}  // namespace

bool is_no_decay_parameter(const std::string& name, const torch::Tensor& param) {
  if (param.dim() <= 1 || contains(name, "norm") || contains(name, "bias")) return true;
  const auto last_dot = name.rfind('.');
  const std::string leaf = last_dot == std::string::npos ? name : name.substr(last_dot + 1);
  std::string parent;
  if (last_dot != std::string::npos) {
    const auto before = name.rfind('.', last_dot - 1);
    parent = name.substr(before == std::string::npos ? 0 : before + 1,
                         last_dot - (before == std::string::npos ? 0 : before + 1));
  }
  if (parent == "pos" || leaf == "pos" || starts_with(leaf, "pos_")) return true;
  const std::string token = "_token";
  return leaf == "token" ||
         (leaf.size() > token.size() && leaf.compare(leaf.size() - token.size(), token.size(), token) == 0);
}

std::vector<ParamGroup> decay_groups(const std::vector<std::pair<std::string, torch::Tensor>>& named,
                                     double weight_decay) {
  check_weight_decay(weight_decay);
  std::vector<ParamGroup> groups(2);
  groups[0].weight_decay = weight_decay;
  groups[1].weight_decay = 0.0;
  for (const auto& [name, param] : named) {
    SPVIT_CHECK(param.defined(), "decay_groups: parameter '", name, "' is undefined");
    if (!param.requires_grad()) continue;
    groups[is_no_decay_parameter(name, param) ? 1 : 0].params.push_back(param);
  }
  return groups;
}

Optimizer::Optimizer(std::vector<ParamGroup> groups, double lr) : groups_(std::move(groups)), lr_(lr) {
  check_lr(lr);
  for (size_t g = 0; g < groups_.size(); ++g) {
    check_weight_decay(groups_[g].weight_decay);
    for (size_t i = 0; i < groups_[g].params.size(); ++i) {
      const auto& p = groups_[g].params[i];
      SPVIT_CHECK(p.defined() && p.is_floating_point(), "optimizer: parameter ", i, " of group ", g,
                  " is undefined or not floating point");
    }
  }
}

void Optimizer::zero_grad() {
  torch::NoGradGuard no_grad;
  for (auto& group : groups_) {
    for (auto& param : group.params) {
      auto& grad = param.mutable_grad();
      if (!grad.defined()) continue;
      // In place, so gradient views handed out by the averager stay valid; a grad with history is detached first.
      if (grad.requires_grad()) grad = grad.detach();
      grad.zero_();
    }
  }
}

void Optimizer::set_lr(double lr) {
  check_lr(lr);
  lr_ = lr;
}

std::unique_ptr<Optimizer> make_adamw(std::vector<ParamGroup> groups, AdamWOptions options) {
  return std::make_unique<AdamW>(std::move(groups), options);
}

std::unique_ptr<Optimizer> make_lamb(std::vector<ParamGroup> groups, LambOptions options) {
  return std::make_unique<Lamb>(std::move(groups), options);
}

std::unique_ptr<Optimizer> make_optimizer(const std::string& name, std::vector<ParamGroup> groups, double lr,
                                          double beta1, double beta2, double eps) {
  if (name == "adamw") return make_adamw(std::move(groups), AdamWOptions{lr, beta1, beta2, eps});
  if (name == "lamb") {
    LambOptions options;
    options.lr = lr;
    options.beta1 = beta1;
    options.beta2 = beta2;
    options.eps = eps;
    return make_lamb(std::move(groups), options);
  }
  SPVIT_THROW(ConfigError, "optimizer '", name, "' is unknown; expected one of: adamw, lamb");
}

}  // namespace spvit::train
