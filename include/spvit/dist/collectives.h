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

// Exchanges row blocks between all ranks: ONE all-to-all. `local` [Σ send_rows, ...] holds comm.size() consecutive
// blocks, block q (send_rows[q] rows) for rank q; the result [Σ recv_rows, ...] holds block q from rank q.
// recv_rows[q] here must equal send_rows[this rank] on rank q. Its backward is ONE all-to-all of the gradient with
// the two row lists swapped (the transpose of a permutation). Used by the Ulysses strategy.
torch::Tensor all_to_all_rows(const torch::Tensor& local, const CommPtr& comm, const std::vector<int64_t>& send_rows,
                              const std::vector<int64_t>& recv_rows);

}  // namespace spvit::dist

namespace spvit::dist {

// Differentiable sum over the ranks of `comm`: every rank gets Σ_r x_r. Used for losses that need global sums
// (soft Dice). Convention: each rank adds its own share of the loss and rank gradients are summed afterwards, so the
// adjoint is again a sum over ranks of the incoming gradients.
torch::Tensor all_reduce_sum(const torch::Tensor& x, const CommPtr& comm);

// Differentiable halo exchange for a tensor split into contiguous bands along `dim` over the ranks of `comm`
// (rank order = band order). Returns x with `halo` rows of the previous rank's band prepended and `halo` rows of the
// next rank's band appended (zeros at the global borders), so a k×k convolution with k//2 = halo and no padding along
// `dim` equals the undivided convolution on this band. Backward returns the halo rows' gradients to their owners and
// adds them there. Every band must have at least `halo` rows.
torch::Tensor halo_exchange(const torch::Tensor& x, const CommPtr& comm, int64_t dim, int64_t halo);

}  // namespace spvit::dist
