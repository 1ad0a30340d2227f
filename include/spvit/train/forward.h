// The model's forward pass as training, evaluation and inference all run it: the inputs moved to the model's
// device and parameter dtype, the run's autocast (bf16/fp16 on a GPU), the sequence group's context. The outputs
// come back in the parameters' dtype (the losses, metrics and probabilities are computed in it).
#pragma once
#include <torch/torch.h>

#include "spvit/dist/communicator.h"
#include "spvit/model/segmenter.h"
#include "spvit/train/precision.h"
#include "spvit/data/token_sampling.h"

namespace spvit::train {

// Band decoders on a uniform grid: this rank's rows of a batch, images [B, C, rows, ...] on any device ->
// logits [B, classes, rows, ...]. `seq`: the sequence communicator (null: one rank). `non_blocking`: the images are
// in pinned host memory and may be copied to the GPU asynchronously.
torch::Tensor forward_band(model::Segmenter& model, const torch::Tensor& images, const model::UniformBands& bands,
                           const dist::CommPtr& seq, const RunPrecision& precision, bool non_blocking = false);

// Token decoders: this rank's tokens of one sample -> logit tiles [1, L_s, classes, P, P(, P)]. The sample's layout
// gives the positional metadata and the empty slots; `seq` (seq_size ranks, this one seq_index) the context.
torch::Tensor forward_tokens(model::Segmenter& model, const data::TokenSample& sample, const dist::CommPtr& seq,
                             int seq_size, int seq_index, const RunPrecision& precision);

}  // namespace spvit::train
