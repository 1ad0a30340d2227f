// Differentiable collectives (autograd functions) used by the sequence-parallel layers.
#pragma once
#include <torch/torch.h>

#include <vector>

#include "spvit/dist/communicator.h"

namespace spvit::dist {

// Concatenates every rank's `local` rows (dim 0) in rank order: ONE all-gather of one contiguous buffer.
// Its backward is ONE reduce-scatter (sum) of the gradient, giving each rank the total gradient of its own rows.
// `rows[r]` is the number of dim-0 rows rank r holds (uneven splits allowed).
//
// The fused K‖V gather of the LSS layer packs [k_s ‖ v_s] token-major into one [L_s, 2, B, E] buffer and calls
// this once per layer; the x-gather variant calls it on the normalised activations [L_s, B, E].
torch::Tensor gather_rows(const torch::Tensor& local, const CommPtr& comm, const std::vector<int64_t>& rows);

}  // namespace spvit::dist
