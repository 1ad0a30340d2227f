#include "spvit/core/device.h"

#include <c10/core/impl/DeviceGuardImplInterface.h>

#include "spvit/build_info.h"
#include "spvit/core/error.h"

namespace spvit {

torch::Device select_device(const std::string& request, int local_rank) {
  if (request == "cpu") return torch::kCPU;
  const int64_t visible = static_cast<int64_t>(torch::cuda::device_count());
  if (visible == 0) {
    if (request == "auto") return torch::kCPU;
    SPVIT_THROW(ConfigError, "device = cuda but no CUDA device is visible to this rank (",
                SPVIT_HAVE_CUDA ? "this build has CUDA; check CUDA_VISIBLE_DEVICES and the driver"
                                : "this build's LibTorch has no CUDA: rebuild against a CUDA LibTorch",
                ")");
  }
  SPVIT_CHECK(request == "cuda" || request == "auto", "unknown device '", request, "' (auto, cpu, cuda)");
  const torch::Device device(torch::kCUDA, static_cast<c10::DeviceIndex>(local_rank % visible));
  // Make it current, so kernels, streams and NCCL of this process all default to it.
  c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA)->setDevice(device);
  return device;
}

std::string resolve_backend(const std::string& request, const torch::Device& device, bool nccl_compiled_in) {
  if (request == "mpi") return "mpi";
  if (request == "auto") return device.is_cuda() && nccl_compiled_in ? "nccl" : "mpi";
  SPVIT_CHECK(request == "nccl", "unknown dist.backend '", request, "' (auto, mpi, nccl)");
  if (!nccl_compiled_in) {
    SPVIT_THROW(ConfigError, "dist.backend = nccl needs a build with CUDA LibTorch and NCCL; this build has ",
                SPVIT_HAVE_CUDA ? "CUDA but no NCCL" : "no CUDA", ". Use dist.backend = mpi or auto");
  }
  if (!device.is_cuda()) {
    SPVIT_THROW(ConfigError, "dist.backend = nccl needs device = cuda (or auto on a GPU machine); this rank runs on ",
                device.str());
  }
  return "nccl";
}

}  // namespace spvit
