// Launcher of the multi-tensor scaled copy (multi_tensor.cu) behind the gradient buckets: flattening gradients into a
// bucket is a copy from each gradient to its slot, unflattening the averaged bucket into .grad the reverse. Raw
// pointers and sizes only (compiles with nvcc and with the host compiler). T is float, __half or __nv_bfloat16.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace spvit::kernels {

// For every i < count: dst[i][0, numel[i]) = scale · src[i][...] (accumulate = false) or += (accumulate = true).
// The arrays are host memory; their contents travel in the kernel arguments (up to 96 copies per launch), so no
// host-to-device copy or synchronisation is needed. Each copy moves 16-byte packs when its source and destination
// have the same offset from a 16-byte boundary (scalar head and tail around them), elements otherwise. Arithmetic is
// in float; scale == 1 with accumulate == false is an exact copy.
template <typename T>
cudaError_t launch_multi_scaled_copy(const T* const* src, T* const* dst, const int64_t* numel, int count, float scale,
                                     bool accumulate, cudaStream_t stream);

}  // namespace spvit::kernels
