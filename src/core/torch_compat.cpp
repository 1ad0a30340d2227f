#include "spvit/core/torch_compat.h"

#include <ATen/core/dispatch/Dispatcher.h>

#include <mutex>

#include "spvit/core/logging.h"

namespace spvit::compat {

namespace {
constexpr const char* kEfficientAttention = "aten::_scaled_dot_product_efficient_attention";

// The operator's handle, looked up once (absent on LibTorch 1.x).
const c10::optional<c10::OperatorHandle>& efficient_attention() {
  static const auto handle = c10::Dispatcher::singleton().findSchema({kEfficientAttention, ""});
  return handle;
}
}  // namespace

std::optional<std::pair<torch::Tensor, torch::Tensor>> fused_attention_with_lse(const torch::Tensor& q,
                                                                               const torch::Tensor& k,
                                                                               const torch::Tensor& v) {
  if (!q.is_cuda() || q.scalar_type() == torch::kFloat64 || !efficient_attention()) return std::nullopt;
  const auto& op = *efficient_attention();
  std::vector<c10::IValue> stack;
  for (const auto& arg : op.schema().arguments()) {
    const auto& name = arg.name();
    if (name == "query") stack.emplace_back(q);
    else if (name == "key") stack.emplace_back(k);
    else if (name == "value") stack.emplace_back(v);
    else if (name == "attn_bias") stack.emplace_back();  // none: masked keys are dropped by the caller
    else if (name == "compute_log_sumexp") stack.emplace_back(true);
    else if (arg.default_value()) stack.push_back(*arg.default_value());
    else return std::nullopt;  // an argument without a default that this code does not know
  }
  try {
    op.callBoxed(&stack);
  } catch (const c10::Error& e) {
    static std::once_flag warned;
    std::call_once(warned, [&] {
      log::warn("fused attention with log-sum-exp refused the input, using the math path: {}",
                e.what_without_backtrace());
    });
    return std::nullopt;
  }
  if (stack.size() < 2 || !stack[0].isTensor() || !stack[1].isTensor()) return std::nullopt;
  // The kernel pads the log-sum-exp's query axis to a multiple of 32.
  return std::make_pair(stack[0].toTensor(), stack[1].toTensor().narrow(-1, 0, q.size(2)));
}

}  // namespace spvit::compat
