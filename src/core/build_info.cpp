#include "spvit/core/build_info.h"

#include <torch/torch.h>

#include "spvit/build_info.h"
#include "spvit/core/torch_compat.h"

namespace spvit {

std::vector<std::pair<std::string, std::string>> build_features() {
  auto yes_no = [](bool on, const std::string& detail) {
    return on ? "yes" + (detail.empty() ? "" : " (" + detail + ")") : std::string("no");
  };
  const bool cuda_runtime = torch::cuda::is_available();
  return {
      {"spvit", SPVIT_VERSION " (" SPVIT_BUILD_TYPE ")"},
      {"LibTorch", compat::torch_version() + (SPVIT_TORCH_HAS_SDPA ? ", fused SDPA" : ", math attention")},
      {"CUDA", yes_no(SPVIT_HAVE_CUDA, cuda_runtime ? std::to_string(torch::cuda::device_count()) + " device(s)"
                                                      : "no device visible")},
      {"NCCL", yes_no(SPVIT_HAVE_NCCL, SPVIT_NCCL_VERSION_STRING)},
      {"OpenCV", yes_no(SPVIT_HAVE_OPENCV, SPVIT_OPENCV_VERSION_STRING)},
      {"OpenSlide", yes_no(SPVIT_HAVE_OPENSLIDE, SPVIT_OPENSLIDE_VERSION_STRING)},
      {"HDF5", SPVIT_HDF5_VERSION_STRING},
      {"CPU threads", std::to_string(torch::get_num_threads())},
  };
}

}  // namespace spvit
