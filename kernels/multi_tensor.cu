// Multi-tensor scaled copy (see multi_tensor.cuh): one launch covers up to kMaxCopies tensors. Block row y copies
// tensor y with a grid-stride loop over blockIdx.x, so a bucket of many small biases and a few large weights costs one
// launch instead of one per tensor, and small tensors' blocks simply finish early.
#include "cuda_common.cuh"
#include "multi_tensor.cuh"

namespace spvit::kernels {
namespace {

using namespace cuda_detail;

constexpr int kMaxCopies = 96;  // 96 · 24 bytes of pointers and sizes: well inside the 4 KB kernel-argument limit
// Grid x is sized so that the largest tensor needs one pack per thread, but a launch stays below kMaxLaunchBlocks
// blocks in all (rows of blocks for small tensors exit at once, yet each still costs a scheduling slot).
constexpr int64_t kMaxLaunchBlocks = int64_t{1} << 18;

template <typename T>
struct CopyList {
  const T* src[kMaxCopies];
  T* dst[kMaxCopies];
  int64_t numel[kMaxCopies];
};

template <typename T>
__device__ __forceinline__ T scaled(T in, const T* out, float scale, bool accumulate) {
  const float value = to_float(in) * scale;
  return from_float<T>(accumulate ? to_float(*out) + value : value);
}

template <typename T>
__global__ void multi_scaled_copy_kernel(CopyList<T> list, float scale, bool accumulate) {
  constexpr int V = vec16<T>();
  using P = Pack<T, V>;
  const T* __restrict__ src = list.src[blockIdx.y];
  T* __restrict__ dst = list.dst[blockIdx.y];
  const int64_t n = list.numel[blockIdx.y];
  const auto src_addr = reinterpret_cast<uintptr_t>(src), dst_addr = reinterpret_cast<uintptr_t>(dst);
  // Packs need src and dst equally misaligned: then `head` scalar elements bring both to a 16-byte boundary.
  int64_t head = n;
  if (src_addr % 16 == dst_addr % 16 && src_addr % sizeof(T) == 0) {
    head = static_cast<int64_t>((16 - src_addr % 16) % 16 / sizeof(T));
    if (head > n) head = n;
  }
  const int64_t packs = (n - head) / V, tail = head + packs * V;
  for (int64_t i = global_thread(); i < head; i += grid_threads()) dst[i] = scaled(src[i], dst + i, scale, accumulate);
  const P* __restrict__ src_packs = reinterpret_cast<const P*>(src + head);
  P* __restrict__ dst_packs = reinterpret_cast<P*>(dst + head);
  for (int64_t i = global_thread(); i < packs; i += grid_threads()) {
    const P in = src_packs[i];
    P out;
    if (accumulate) out = dst_packs[i];
#pragma unroll
    for (int k = 0; k < V; ++k) out.x[k] = scaled(in.x[k], &out.x[k], scale, accumulate);
    dst_packs[i] = out;
  }
  for (int64_t i = tail + global_thread(); i < n; i += grid_threads()) {
    dst[i] = scaled(src[i], dst + i, scale, accumulate);
  }
}

}  // namespace

template <typename T>
cudaError_t launch_multi_scaled_copy(const T* const* src, T* const* dst, const int64_t* numel, int count, float scale,
                                     bool accumulate, cudaStream_t stream) {
  for (int first = 0; first < count; first += kMaxCopies) {
    CopyList<T> list{};
    const int n = count - first < kMaxCopies ? count - first : kMaxCopies;
    int64_t largest = 0;
    for (int i = 0; i < n; ++i) {
      list.src[i] = src[first + i];
      list.dst[i] = dst[first + i];
      list.numel[i] = numel[first + i];
      largest = numel[first + i] > largest ? numel[first + i] : largest;
    }
    if (largest == 0) continue;
    const int64_t cap = kMaxLaunchBlocks / n > 1024 ? kMaxLaunchBlocks / n : 1024;
    const int64_t blocks = blocks_for((largest + vec16<T>() - 1) / vec16<T>());
    const dim3 grid(static_cast<unsigned>(blocks < cap ? blocks : cap), static_cast<unsigned>(n));
    multi_scaled_copy_kernel<T><<<grid, kThreads, 0, stream>>>(list, scale, accumulate);
    const cudaError_t status = cudaGetLastError();
    if (status != cudaSuccess) return status;
  }
  return cudaSuccess;
}

#define SPVIT_INSTANTIATE_MULTI_TENSOR(T)                                                                      \
  template cudaError_t launch_multi_scaled_copy<T>(const T* const*, T* const*, const int64_t*, int, float, bool, \
                                                   cudaStream_t);
SPVIT_INSTANTIATE_MULTI_TENSOR(float)
SPVIT_INSTANTIATE_MULTI_TENSOR(__half)
SPVIT_INSTANTIATE_MULTI_TENSOR(__nv_bfloat16)
#undef SPVIT_INSTANTIATE_MULTI_TENSOR

}  // namespace spvit::kernels
