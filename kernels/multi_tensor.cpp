// The torch-facing multi-tensor scaled copy (include/spvit/kernels/multi_tensor.h).
#include "spvit/kernels/multi_tensor.h"

#include "dispatch.h"
#include "spvit/core/error.h"
#if SPVIT_HAVE_CUDA
#include "torch_cuda.h"
#endif

namespace spvit::kernels {
namespace {

// dst (+)= scale · src with LibTorch ops: the same ops (copy_, mul, add_) the gradient averager used before the
// kernels, so CPU results are unchanged bit for bit.
void scaled_copy_ops(const torch::Tensor& src, const torch::Tensor& dst, double scale, bool accumulate) {
  const auto in = src.sizes() == dst.sizes() ? src : src.reshape(dst.sizes());
  if (accumulate) {
    if (scale == 1.0) dst.add_(in);
    else dst.add_(in, scale);
  } else if (scale == 1.0) {
    dst.copy_(in);
  } else {
    dst.copy_(in.mul(scale));
  }
}

std::vector<torch::Tensor> bucket_slots(const torch::Tensor& flat, const std::vector<int64_t>& offsets,
                                        const std::vector<torch::Tensor>& tensors, const char* op) {
  SPVIT_CHECK(flat.defined() && flat.dim() == 1 && flat.is_contiguous(), op, ": the bucket must be a contiguous 1-D "
              "tensor");
  SPVIT_CHECK(offsets.size() == tensors.size(), op, ": ", tensors.size(), " tensors but ", offsets.size(), " offsets");
  std::vector<torch::Tensor> slots;
  slots.reserve(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const int64_t n = tensors[i].numel();
    SPVIT_CHECK(offsets[i] >= 0 && offsets[i] + n <= flat.numel(), op, ": tensor #", i, " (", n,
                " elements at offset ", offsets[i], ") does not fit in the bucket of ", flat.numel(), " elements");
    slots.push_back(flat.narrow(0, offsets[i], n));
  }
  return slots;
}

}  // namespace

void multi_scaled_copy(const std::vector<torch::Tensor>& src, const std::vector<torch::Tensor>& dst, double scale,
                       bool accumulate) {
  SPVIT_CHECK(src.size() == dst.size(), "multi_scaled_copy: ", src.size(), " sources but ", dst.size(),
              " destinations");
  if (src.empty()) return;
  const auto dtype = dst[0].scalar_type();
  const auto device = dst[0].device();
  for (size_t i = 0; i < src.size(); ++i) {
    SPVIT_CHECK(src[i].defined() && dst[i].defined(), "multi_scaled_copy: tensor pair #", i, " is undefined");
    SPVIT_CHECK(src[i].numel() == dst[i].numel(), "multi_scaled_copy: pair #", i, " has ", src[i].numel(),
                " source but ", dst[i].numel(), " destination elements");
    SPVIT_CHECK(src[i].scalar_type() == dtype && dst[i].scalar_type() == dtype && src[i].device() == device &&
                    dst[i].device() == device,
                "multi_scaled_copy: pair #", i, " differs in dtype or device from the first destination (", dtype,
                " on ", device, ")");
  }
#if SPVIT_HAVE_CUDA
  if (detail::use_cuda_kernel(dst[0])) {
    // Contiguous pairs in one batched launch; the rare strided tensor takes the op path.
    std::vector<torch::Tensor> batch_src, batch_dst;
    for (size_t i = 0; i < src.size(); ++i) {
      if (src[i].is_contiguous() && dst[i].is_contiguous()) {
        batch_src.push_back(src[i]);
        batch_dst.push_back(dst[i]);
      } else {
        scaled_copy_ops(src[i], dst[i], scale, accumulate);
      }
    }
    cuda::multi_scaled_copy(batch_src, batch_dst, scale, accumulate);
    return;
  }
#endif
  for (size_t i = 0; i < src.size(); ++i) scaled_copy_ops(src[i], dst[i], scale, accumulate);
}

void flatten_into(const std::vector<torch::Tensor>& tensors, const torch::Tensor& flat,
                  const std::vector<int64_t>& offsets, double scale, bool accumulate) {
  multi_scaled_copy(tensors, bucket_slots(flat, offsets, tensors, "flatten_into"), scale, accumulate);
}

void unflatten_from(const torch::Tensor& flat, const std::vector<int64_t>& offsets,
                    const std::vector<torch::Tensor>& tensors, double scale, bool accumulate) {
  multi_scaled_copy(bucket_slots(flat, offsets, tensors, "unflatten_from"), tensors, scale, accumulate);
}

}  // namespace spvit::kernels
