// Which device a rank computes on. With several GPUs per node each rank takes the GPU of its node-local rank
// (local rank from the MPI shared-memory split, so the mapping is right under mpirun, srun and jsrun alike).
#pragma once
#include <torch/torch.h>

#include <string>

namespace spvit {

// `request`: "cpu", "cuda" (ConfigError when no GPU is visible) or "auto" (cuda when a GPU is visible, else cpu).
// For CUDA the device is cuda:(local_rank % visible GPUs) and it becomes this process's current device.
torch::Device select_device(const std::string& request, int local_rank);

// "nccl" or "mpi" for dist.backend = auto on `device`; checks an explicit "nccl" against the build and device.
std::string resolve_backend(const std::string& request, const torch::Device& device, bool nccl_compiled_in);

}  // namespace spvit
