// Tensor-level wrappers of the CUDA launchers (see torch_cuda.h). Compiled only in CUDA builds (SPVIT_HAVE_CUDA):
// it needs LibTorch's CUDA headers for the current stream. Each wrapper: pick the element type, make the tensor's
// device current, launch on the current stream, turn a launch error into spvit::Error.
#include "torch_cuda.h"

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "kv_pack.cuh"
#include "multi_tensor.cuh"
#include "patch_resample.cuh"
#include "spvit/core/cuda_check.h"
#include "spvit/core/error.h"

namespace spvit::kernels::cuda {
namespace {

template <typename T>
struct Type {
  using type = T;
};

// Calls f(Type<T>{}) with T the CUDA element type of `dtype`.
template <typename F>
void dispatch_float(at::ScalarType dtype, const char* op, F&& f) {
  switch (dtype) {
    case at::kFloat: f(Type<float>{}); break;
    case at::kHalf: f(Type<__half>{}); break;
    case at::kBFloat16: f(Type<__nv_bfloat16>{}); break;
    default: SPVIT_THROW(Error, op, ": no CUDA kernel for dtype ", dtype, " (float32, float16, bfloat16 only)");
  }
}

template <typename T>
T* ptr(const torch::Tensor& t) {
  return t.defined() ? reinterpret_cast<T*>(t.data_ptr()) : nullptr;
}

KvShape kv_shape(int64_t batch, int64_t tokens, int64_t heads, int64_t dim) {
  return {batch, tokens, heads, dim / heads};
}

PatchGeometry patch_geometry(const LeafGeometry& g) {
  PatchGeometry out;
  out.dims = g.dims;
  out.patch = g.patch;
  out.channels = g.channels;
  for (int a = 0; a < 3; ++a) {
    out.origin[a] = g.origin[a];
    out.extent[a] = g.extent[a];
    out.limit[a] = g.limit[a];
  }
  return out;
}

}  // namespace

void split_qkv(const torch::Tensor& qkv, const torch::Tensor& q, const torch::Tensor& kv, int64_t heads) {
  const c10::cuda::CUDAGuard guard(qkv.device());
  const auto shape = kv_shape(qkv.size(0), qkv.size(1), heads, qkv.size(2) / 3);
  dispatch_float(qkv.scalar_type(), "split_qkv", [&](auto tag) {
    using T = typename decltype(tag)::type;
    SPVIT_CHECK_CUDA(launch_split_qkv<T>(ptr<T>(qkv), ptr<T>(q), ptr<T>(kv), shape,
                                         c10::cuda::getCurrentCUDAStream()));
  });
}

void unpack_kv(const torch::Tensor& gathered, const torch::Tensor& k, const torch::Tensor& v, int64_t heads) {
  const c10::cuda::CUDAGuard guard(gathered.device());
  const auto shape = kv_shape(gathered.size(2), gathered.size(0), heads, gathered.size(3));
  dispatch_float(gathered.scalar_type(), "unpack_kv", [&](auto tag) {
    using T = typename decltype(tag)::type;
    SPVIT_CHECK_CUDA(launch_unpack_kv<T>(ptr<T>(gathered), ptr<T>(k), ptr<T>(v), shape,
                                         c10::cuda::getCurrentCUDAStream()));
  });
}

void pack_kv_grad(const torch::Tensor& dk, const torch::Tensor& dv, const torch::Tensor& dkv, int64_t heads) {
  const c10::cuda::CUDAGuard guard(dkv.device());
  const auto shape = kv_shape(dkv.size(2), dkv.size(0), heads, dkv.size(3));
  dispatch_float(dkv.scalar_type(), "pack_kv_grad", [&](auto tag) {
    using T = typename decltype(tag)::type;
    SPVIT_CHECK_CUDA(launch_pack_kv_grad<T>(ptr<T>(dk), ptr<T>(dv), ptr<T>(dkv), shape,
                                            c10::cuda::getCurrentCUDAStream()));
  });
}

void merge_qkv_grad(const torch::Tensor& dq, const torch::Tensor& dkv, const torch::Tensor& dqkv, bool accumulate,
                    int64_t heads) {
  const c10::cuda::CUDAGuard guard(dqkv.device());
  const auto shape = kv_shape(dqkv.size(0), dqkv.size(1), heads, dqkv.size(2) / 3);
  dispatch_float(dqkv.scalar_type(), "merge_qkv_grad", [&](auto tag) {
    using T = typename decltype(tag)::type;
    SPVIT_CHECK_CUDA(launch_merge_qkv_grad<T>(ptr<T>(dq), ptr<T>(dkv), ptr<T>(dqkv), accumulate, shape,
                                              c10::cuda::getCurrentCUDAStream()));
  });
}

void multi_scaled_copy(const std::vector<torch::Tensor>& src, const std::vector<torch::Tensor>& dst, double scale,
                       bool accumulate) {
  if (dst.empty()) return;
  const c10::cuda::CUDAGuard guard(dst[0].device());
  dispatch_float(dst[0].scalar_type(), "multi_scaled_copy", [&](auto tag) {
    using T = typename decltype(tag)::type;
    std::vector<const T*> from;
    std::vector<T*> to;
    std::vector<int64_t> numel;
    for (size_t i = 0; i < dst.size(); ++i) {
      from.push_back(ptr<T>(src[i]));
      to.push_back(ptr<T>(dst[i]));
      numel.push_back(dst[i].numel());
    }
    SPVIT_CHECK_CUDA(launch_multi_scaled_copy<T>(from.data(), to.data(), numel.data(), static_cast<int>(dst.size()),
                                                 static_cast<float>(scale), accumulate,
                                                 c10::cuda::getCurrentCUDAStream()));
  });
}

void extract_leaves(const torch::Tensor& pixels, const torch::Tensor& leaves, const torch::Tensor& group_tokens,
                    const std::vector<std::pair<int64_t, int64_t>>& groups, const torch::Tensor& tokens,
                    const LeafGeometry& geometry, bool nearest) {
  const c10::cuda::CUDAGuard guard(pixels.device());
  const auto g = patch_geometry(geometry);
  dispatch_float(tokens.scalar_type(), "extract_leaves", [&](auto out_tag) {
    using TOut = typename decltype(out_tag)::type;
    auto launch = [&](auto in_tag) {
      using TIn = typename decltype(in_tag)::type;
      int64_t first = 0;
      for (const auto& [side, count] : groups) {
        SPVIT_CHECK_CUDA(launch_extract_leaves<TIn, TOut>(ptr<TIn>(pixels), ptr<int64_t>(leaves),
                                                          ptr<int64_t>(group_tokens) + first, count, side,
                                                          ptr<TOut>(tokens), g, nearest,
                                                          c10::cuda::getCurrentCUDAStream()));
        first += count;
      }
    };
    if (pixels.scalar_type() == at::kByte) launch(Type<uint8_t>{});
    else dispatch_float(pixels.scalar_type(), "extract_leaves", launch);
  });
}

void paste_leaves(const torch::Tensor& tokens, const torch::Tensor& leaves, const torch::Tensor& row_groups,
                  const torch::Tensor& pixels, const LeafGeometry& geometry) {
  const c10::cuda::CUDAGuard guard(tokens.device());
  const auto g = patch_geometry(geometry);
  dispatch_float(tokens.scalar_type(), "paste_leaves", [&](auto tag) {
    using T = typename decltype(tag)::type;
    SPVIT_CHECK_CUDA(launch_paste_leaves<T>(ptr<T>(tokens), ptr<int64_t>(leaves), ptr<int32_t>(row_groups),
                                            row_groups.size(0), ptr<T>(pixels), g, c10::cuda::getCurrentCUDAStream()));
  });
}

}  // namespace spvit::kernels::cuda
