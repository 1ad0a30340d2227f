// Samples as the token sequence of a patch layout, for the tile decoder (adaptive quadtree/octree or uniform layouts):
// the data layer reads and tokenises, the trainer consumes (the loader delivers these with LoaderOptions::tokens).
//
// Every rank of a sequence group plans the same layout of the same (augmented) sample — the patcher is
// deterministic and the augmentation draw is a function of (seed, epoch, index) — and then reads only the pixel box
// of its own token range (patch::sequence_segments) to extract its tokens and their targets.
//
// Targets: each cell of a token's P×P (P×P×P) tile stands for a block of s/P pixels per axis of its leaf (side s).
// It takes the label at the centre of the block's in-image part (nearest resampling, labels are never averaged) and
// a weight equal to the block's in-image pixel count ((s/P)^d inside the image, less at the border, 0 in the padding
// and for empty slots). The weights of a sample sum to its pixel count, so the weighted tile loss normalised by that
// count estimates the pixel loss of the pasted prediction, exactly when both are constant on every block.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <optional>
#include <vector>

#include "spvit/core/config.h"
#include "spvit/data/augment.h"
#include "spvit/data/dataset.h"
#include "spvit/patch/layout.h"
#include "spvit/patch/patcher.h"

namespace spvit::data {

// How samples are turned into layouts and which token range this rank keeps.
struct LayoutSampling {
  patch::PatcherOptions patcher;  // for the full-resolution sample
  int64_t score_downsample = 1;   // plan on the sample shrunk by this factor (see config.h)
  int seq_size = 1, seq_rank = 0;

  static LayoutSampling from_config(const Config& config, int seq_size, int seq_rank);
};

// This rank's part of one sample; carried by Sample::tokens from the loader to the trainer.
struct TokenSample {
  std::shared_ptr<const patch::PatchLayout> layout;  // the whole sample's layout, the same on the sequence group
  int64_t begin = 0, end = 0;     // this rank's tokens [begin, end)
  std::vector<int64_t> lo, hi;    // the pixel box they cover, coordinate order (x, y[, z]); lo == hi if none
  torch::Tensor tokens;           // [end - begin, C·P^d] float32
  torch::Tensor target;           // [end - begin, P, P(, P)] int64 labels
  torch::Tensor weight;           // [end - begin, P, P(, P)] float64 pixels per tile cell
  double pixels = 0;              // pixels of the whole sample (the loss normaliser)
};

// Plans the layout of sample `index` augmented by `draw`, reads this rank's pixel box and extracts its tokens and
// targets. The returned sample holds the TokenSample in `tokens`, its box in `region` and, when `keep_box` (for
// evaluation), the box's image and mask; otherwise image and mask are undefined.
Sample read_token_sample(const Dataset& dataset, int64_t index, const AugmentDraw& draw, const LayoutSampling& sampling,
                         bool keep_box = false);

// The same for a layout already planned: this rank's tokens of `layout`. A dataset with scaled reads (slides;
// Dataset::read_scaled) gives them leaf by leaf, each leaf of side s >= P read at scale s/P from its pyramid, so the
// rank never holds its pixel box at full resolution (`keep_box` reads it besides, the tokens stay the leaf reads');
// other datasets read the box. `planned`: the
// whole sample when planning read it (plan_layout's `whole`), reused instead of read again.
Sample read_layout_tokens(const Dataset& dataset, int64_t index, const AugmentDraw& draw,
                          std::shared_ptr<const patch::PatchLayout> layout, const LayoutSampling& sampling,
                          bool keep_box = false, Sample* planned = nullptr);

// Leaf `t` of `layout` (sample `index` augmented by `draw`) on its own at full resolution: image [s, s, C] and mask
// [s, s] of a leaf of side s, from Dataset::read_scaled; nullopt where the dataset has no scaled reads or the leaf
// is an empty slot or reaches into the layout's padding. For evaluating huge samples a leaf at a time.
std::optional<Sample> read_leaf(const Dataset& dataset, int64_t index, const AugmentDraw& draw,
                                const patch::PatchLayout& layout, int64_t t);

// The TokenSample a sample carries; throws Error when it has none (a loader without LoaderOptions::tokens).
const TokenSample& token_sample(const Sample& sample);

// The layout of the whole sample `index` augmented by `draw`, as every rank of the group plans it. With
// score_downsample 1 the sample is read whole (and returned in `whole` when given); otherwise the sample shrunk by
// the factor — from a pyramid level where the dataset has scaled reads (slides), else read band by band at full
// resolution and shrunk — is planned on and the layout scaled back (no leaf below the factor).
patch::PatchLayout plan_layout(const Dataset& dataset, int64_t index, const AugmentDraw& draw,
                               const LayoutSampling& sampling, Sample* whole = nullptr);

// Labels [n, P, P(, P)] (nearest) and pixel weights (float64) of the tile cells of tokens [begin, end) from
// `mask_crop`, the part of the mask whose first pixel is at `origin` (coordinate order); the crop must cover the
// in-image pixels of those leaves.
std::pair<torch::Tensor, torch::Tensor> tile_targets(const torch::Tensor& mask_crop, const std::vector<int64_t>& origin,
                                                     const patch::PatchLayout& layout, int64_t begin, int64_t end);

}  // namespace spvit::data
