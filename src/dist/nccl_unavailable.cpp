// The NCCL backend in builds without CUDA LibTorch or NCCL: asking for it is a configuration error.
#include "spvit/core/error.h"
#include "spvit/dist/nccl_communicator.h"

namespace spvit::dist {

bool nccl_compiled_in() { return false; }

CommPtr make_nccl_communicator(const CommPtr&, const std::string& name, double, int) {
  SPVIT_THROW(ConfigError, "dist.backend = nccl (communicator '", name,
              "') needs a build with CUDA LibTorch and NCCL; this build has neither (see `spvit info`). "
              "Use dist.backend = mpi, or rebuild with -DCMAKE_PREFIX_PATH=<torch>/share/cmake -DNCCL_ROOT=<nccl>");
}

}  // namespace spvit::dist
