#include "spvit/core/build_info.h"

#include <torch/torch.h>

#include "spvit/build_info.h"
#include "spvit/core/torch_compat.h"

namespace spvit {

std::vector<std::pair<std::string, std::string>> build_features() {
  // ON/OFF as in the CMake options (SPVIT_WITH_<X>), so `spvit info` reads like the configure report.
  auto on_off = [](bool on, const std::string& detail) {
    return on ? "ON" + (detail.empty() ? "" : " (" + detail + ")") : std::string("OFF");
  };
  const bool cuda_runtime = torch::cuda::is_available();
  return {
      {"spvit", SPVIT_VERSION " (" SPVIT_BUILD_TYPE ")"},
      {"LibTorch", compat::torch_version() + (SPVIT_TORCH_HAS_SDPA ? ", fused SDPA" : ", math attention")},
      {"CUDA", on_off(SPVIT_HAVE_CUDA, cuda_runtime ? std::to_string(torch::cuda::device_count()) + " device(s)"
                                                      : "no device visible")},
      {"NCCL", on_off(SPVIT_HAVE_NCCL, SPVIT_NCCL_VERSION_STRING)},
      {"OpenCV", on_off(SPVIT_HAVE_OPENCV, SPVIT_OPENCV_VERSION_STRING)},
      {"OpenSlide", on_off(SPVIT_HAVE_OPENSLIDE, SPVIT_OPENSLIDE_VERSION_STRING)},
      {"HDF5", on_off(true, SPVIT_HDF5_VERSION_STRING)},  // required
      {"libtiff", on_off(SPVIT_HAVE_TIFF, SPVIT_TIFF_VERSION_STRING)},
      {"infer", on_off(SPVIT_HAVE_INFER, "spvit infer: whole-slide inference")},
      {"CPU threads", std::to_string(torch::get_num_threads())},
  };
}

}  // namespace spvit
