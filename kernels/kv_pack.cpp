// The torch-facing fused K‖V operations (include/spvit/kernels/kv_pack.h): shape checks, the LibTorch-op versions
// (CPU and reference) and, for CUDA tensors, the kernels of kv_pack.cu through torch_cuda.cpp.
#include "spvit/kernels/kv_pack.h"

#include "dispatch.h"
#include "spvit/core/error.h"
#if SPVIT_HAVE_CUDA
#include "torch_cuda.h"
#endif

namespace spvit::kernels {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::Variable;
using torch::autograd::variable_list;

struct Dims {
  int64_t B, T, H, D, E;  // T: tokens of the buffer at hand (L_s or L)
};

void check_floating(const torch::Tensor& t, const char* what) {
  SPVIT_CHECK(t.defined() && t.is_floating_point(), what, " must be a floating-point tensor");
}

Dims qkv_dims(const torch::Tensor& qkv, int64_t heads, const char* op) {
  check_floating(qkv, op);
  SPVIT_CHECK(qkv.dim() == 3 && qkv.size(2) % 3 == 0, op, ": qkv must be [B, L_s, 3E], got ", qkv.sizes());
  const int64_t E = qkv.size(2) / 3;
  SPVIT_CHECK(heads > 0 && E % heads == 0, op, ": E = ", E, " is not a multiple of ", heads, " heads");
  return {qkv.size(0), qkv.size(1), heads, E / heads, E};
}

Dims kv_dims(const torch::Tensor& kv, int64_t heads, const char* op) {
  check_floating(kv, op);
  SPVIT_CHECK(kv.dim() == 4 && kv.size(1) == 2, op, ": the K‖V buffer must be [L, 2, B, E], got ", kv.sizes());
  const int64_t E = kv.size(3);
  SPVIT_CHECK(heads > 0 && E % heads == 0, op, ": E = ", E, " is not a multiple of ", heads, " heads");
  return {kv.size(2), kv.size(0), heads, E / heads, E};
}

// [B, H, T, D] tensor checks (a gradient of q, k or v); undefined is allowed (zero gradient).
void check_heads(const torch::Tensor& t, const Dims& d, const char* what) {
  if (!t.defined()) return;
  SPVIT_CHECK(t.sizes() == c10::IntArrayRef({d.B, d.H, d.T, d.D}), what, " must be [", d.B, ", ", d.H, ", ", d.T, ", ",
              d.D, "], got ", t.sizes());
}

// [B, T, 3, H, D] view of qkv, and the [T, 2, B, H, D] view of a K‖V buffer permuted to [2, B, H, T, D]: the two
// index spaces every operation here maps between.
torch::Tensor qkv_heads(const torch::Tensor& qkv, const Dims& d) { return qkv.reshape({d.B, d.T, 3, d.H, d.D}); }
torch::Tensor kv_as_heads(const torch::Tensor& kv, const Dims& d) {
  return kv.reshape({d.T, 2, d.B, d.H, d.D}).permute({1, 2, 3, 0, 4});
}

// ---- autograd wrappers of the operations (the Fused path)

struct SplitQkvFunction : public torch::autograd::Function<SplitQkvFunction> {
  static variable_list forward(AutogradContext* ctx, const Variable& qkv, int64_t heads) {
    ctx->saved_data["heads"] = heads;
    ctx->saved_data["sizes"] = qkv.sizes().vec();
    auto split = split_qkv(qkv, heads);
    return {split.q, split.kv};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto sizes = ctx->saved_data["sizes"].toIntVector();
    const auto& like = grads[0].defined() ? grads[0] : grads[1];
    auto dqkv = torch::empty(sizes, like.options());
    merge_qkv_grad(grads[0], grads[1], dqkv, /*accumulate=*/false);
    return {dqkv, Variable()};
  }
};

struct UnpackKvFunction : public torch::autograd::Function<UnpackKvFunction> {
  static variable_list forward(AutogradContext* ctx, const Variable& gathered, int64_t heads) {
    auto [k, v] = unpack_kv(gathered, heads);
    return {k, v};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    return {pack_kv_grad(grads[0], grads[1]), Variable()};
  }
};

bool fused(KvPath path, const torch::Tensor& t) {
  return path == KvPath::Fused || (path == KvPath::Auto && t.is_cuda());
}

}  // namespace

QkvSplit split_qkv(const torch::Tensor& qkv, int64_t heads) {
  const Dims d = qkv_dims(qkv, heads, "split_qkv");
  QkvSplit out;
#if SPVIT_HAVE_CUDA
  if (detail::use_cuda_kernel(qkv)) {
    const auto input = qkv.contiguous();
    out.q = torch::empty({d.B, d.H, d.T, d.D}, qkv.options());
    out.kv = torch::empty({d.T, 2, d.B, d.E}, qkv.options());
    cuda::split_qkv(input, out.q, out.kv, heads);
    return out;
  }
#endif
  // clone, not contiguous(): the outputs are new tensors even where the view happens to be contiguous.
  out.q = qkv_heads(qkv, d).select(2, 0).transpose(1, 2).clone(at::MemoryFormat::Contiguous);
  out.kv = qkv.reshape({d.B, d.T, 3, d.E}).narrow(2, 1, 2).permute({1, 2, 0, 3}).clone(at::MemoryFormat::Contiguous);
  return out;
}

std::pair<torch::Tensor, torch::Tensor> unpack_kv(const torch::Tensor& gathered, int64_t heads) {
  const Dims d = kv_dims(gathered, heads, "unpack_kv");
#if SPVIT_HAVE_CUDA
  if (detail::use_cuda_kernel(gathered)) {
    auto k = torch::empty({d.B, d.H, d.T, d.D}, gathered.options());
    auto v = torch::empty_like(k);
    cuda::unpack_kv(gathered.contiguous(), k, v, heads);
    return {k, v};
  }
#endif
  const auto heads_view = kv_as_heads(gathered, d);
  return {heads_view.select(0, 0).clone(at::MemoryFormat::Contiguous),
          heads_view.select(0, 1).clone(at::MemoryFormat::Contiguous)};
}

torch::Tensor pack_kv_grad(const torch::Tensor& dk, const torch::Tensor& dv) {
  SPVIT_CHECK(dk.defined() || dv.defined(), "pack_kv_grad: both dk and dv are undefined");
  const auto& like = dk.defined() ? dk : dv;
  check_floating(like, "pack_kv_grad: dk/dv");
  SPVIT_CHECK(like.dim() == 4, "pack_kv_grad: dk and dv must be [B, H, L, D], got ", like.sizes());
  const Dims d{like.size(0), like.size(2), like.size(1), like.size(3), like.size(1) * like.size(3)};
  check_heads(dk, d, "pack_kv_grad: dk");
  check_heads(dv, d, "pack_kv_grad: dv");
  auto dkv = torch::empty({d.T, 2, d.B, d.E}, like.options());
#if SPVIT_HAVE_CUDA
  if (detail::use_cuda_kernel(like)) {
    cuda::pack_kv_grad(dk.defined() ? dk.contiguous() : dk, dv.defined() ? dv.contiguous() : dv, dkv, d.H);
    return dkv;
  }
#endif
  const auto heads_view = kv_as_heads(dkv, d);
  const torch::Tensor grads[2] = {dk, dv};
  for (int j = 0; j < 2; ++j) {
    if (grads[j].defined()) heads_view.select(0, j).copy_(grads[j]);
    else heads_view.select(0, j).zero_();
  }
  return dkv;
}

void merge_qkv_grad(const torch::Tensor& dq, const torch::Tensor& dkv, torch::Tensor& dqkv, bool accumulate) {
  check_floating(dqkv, "merge_qkv_grad: dqkv");
  SPVIT_CHECK(dqkv.dim() == 3 && dqkv.size(2) % 3 == 0 && dqkv.is_contiguous(),
              "merge_qkv_grad: dqkv must be a contiguous [B, L_s, 3E], got ", dqkv.sizes());
  SPVIT_CHECK(dq.defined() || dkv.defined(), "merge_qkv_grad: both dq and dkv are undefined");
  SPVIT_CHECK(!dq.defined() || dq.dim() == 4, "merge_qkv_grad: dq must be [B, H, L_s, D], got ", dq.sizes());
  const int64_t heads = dq.defined() ? dq.size(1) : 1;
  const Dims d = qkv_dims(dqkv, heads, "merge_qkv_grad");
  check_heads(dq, d, "merge_qkv_grad: dq");
  if (dkv.defined()) {
    SPVIT_CHECK(dkv.sizes() == c10::IntArrayRef({d.T, 2, d.B, d.E}), "merge_qkv_grad: dkv must be [", d.T, ", 2, ",
                d.B, ", ", d.E, "], got ", dkv.sizes());
  }
#if SPVIT_HAVE_CUDA
  if (detail::use_cuda_kernel(dqkv)) {
    cuda::merge_qkv_grad(dq.defined() ? dq.contiguous() : dq, dkv.defined() ? dkv.contiguous() : dkv, dqkv,
                         accumulate, d.H);
    return;
  }
#endif
  const auto view = dqkv.view({d.B, d.T, 3, d.E});
  const auto q_part = view.select(2, 0);
  const auto kv_part = view.narrow(2, 1, 2);
  const auto dq_rows = dq.defined() ? dq.transpose(1, 2).reshape({d.B, d.T, d.E}) : dq;  // [B, T, E]
  const auto dkv_rows = dkv.defined() ? dkv.permute({2, 0, 1, 3}) : dkv;                 // [B, T, 2, E]
  if (accumulate) {
    if (dq.defined()) q_part.add_(dq_rows);
    if (dkv.defined()) kv_part.add_(dkv_rows);
    return;
  }
  if (dq.defined()) q_part.copy_(dq_rows);
  else q_part.zero_();
  if (dkv.defined()) kv_part.copy_(dkv_rows);
  else kv_part.zero_();
}

QkvSplit split_qkv_for_gather(const torch::Tensor& qkv, int64_t heads, KvPath path) {
  const Dims d = qkv_dims(qkv, heads, "split_qkv_for_gather");
  if (fused(path, qkv)) {
    auto outputs = SplitQkvFunction::apply(qkv, heads);
    return {outputs[0], outputs[1]};
  }
  return {qkv_heads(qkv, d).select(2, 0).transpose(1, 2),
          qkv.reshape({d.B, d.T, 3, d.E}).narrow(2, 1, 2).permute({1, 2, 0, 3}).contiguous()};
}

std::pair<torch::Tensor, torch::Tensor> unpack_gathered_kv(const torch::Tensor& gathered, int64_t heads,
                                                           KvPath path) {
  const Dims d = kv_dims(gathered, heads, "unpack_gathered_kv");
  if (fused(path, gathered)) {
    auto outputs = UnpackKvFunction::apply(gathered, heads);
    return {outputs[0], outputs[1]};
  }
  const auto heads_view = kv_as_heads(gathered, d);
  return {heads_view.select(0, 0), heads_view.select(0, 1)};
}

}  // namespace spvit::kernels
