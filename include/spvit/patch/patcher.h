// Patchers: image -> PatchLayout. The uniform grid and the adaptive trees (quadtree in 2D, octree in 3D) share
// one interface so that training, inference and the CLI use the same layout code.
//
// Adaptive refinement (docs/adaptive-patching.md, "How it works"): the root is the smallest P·2^k square (cube)
// covering the image; a max-heap holds the splittable leaves keyed by (score, side, Morton key); the top leaf is split
// into 4 (8) children while leaves + 3 (7) ≤ L. Leaves with side ≤ min_side or entirely in the padding are never split.
// When no leaf can be split any more (exhaustion) or the next split would exceed L, the remaining slots are empty.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "spvit/core/config.h"
#include "spvit/core/registry.h"
#include "spvit/patch/layout.h"
#include "spvit/patch/scorer.h"

namespace spvit::patch {

struct PatcherOptions {
  std::string kind = "adaptive";  // adaptive (quadtree in 2D, octree in 3D), quadtree, octree, uniform
  int64_t spatial_dims = 2;
  int64_t patch = 16;             // P; a power of two for the adaptive trees
  int64_t length = 1024;          // L, the fixed sequence length (uniform: 0 = exactly the grid's token count)
  int64_t min_side = 0;           // m, a power of two ≤ P; 0 = max(1, P/4)
  std::string scorer = "edges";
  std::string order = "zorder";   // uniform grid only: zorder or raster
  ScorerOptions scoring;

  // The patcher a configuration asks for: its schema is core's `data.patcher` section (PatcherConfig) with
  // model.spatial_dims and model.patch, and the run's seed for the scorers' draws. Uniform grids use the raster
  // order (the classic unfold order, and the grid table's).
  static PatcherOptions from_config(const PatcherConfig& patcher, const ModelConfig& model, uint64_t seed);
};

class Patcher {
 public:
  virtual ~Patcher() = default;
  // The layout for one image ([H, W, C] or [D, H, W, C]); `sample` selects per-sample scorer augmentation.
  virtual PatchLayout plan(const torch::Tensor& image, uint64_t sample = 0) const = 0;
  virtual int spatial_dims() const = 0;
  virtual int64_t patch() const = 0;
};

// Every leaf has side P, on the grid that covers the image (the last row/column padded). Tokens per image =
// Π ceil(extent / P); `length` 0 gives exactly that, a larger length appends empty slots, a smaller one is an error.
class UniformPatcher : public Patcher {
 public:
  UniformPatcher(int spatial_dims, int64_t patch, int64_t length = 0, TokenOrder order = TokenOrder::Raster);
  PatchLayout plan(const torch::Tensor& image, uint64_t sample = 0) const override;
  PatchLayout plan_for_size(const std::vector<int64_t>& image_size) const;
  int spatial_dims() const override { return dims_; }
  int64_t patch() const override { return patch_; }

 private:
  int dims_;
  int64_t patch_, length_;
  TokenOrder order_;
};

// The fixed-length greedy tree in 2 or 3 dimensions. The two stages are public so that callers can time them or
// reuse one score index for several lengths.
class AdaptiveTreePatcher : public Patcher {
 public:
  AdaptiveTreePatcher(int spatial_dims, const PatcherOptions& options);
  PatchLayout plan(const torch::Tensor& image, uint64_t sample = 0) const override;
  RegionScores score(const torch::Tensor& image, uint64_t sample = 0) const;  // O(pixels)
  PatchLayout refine(const RegionScores& scores) const;                         // O(L log L)
  PatchLayout refine(const RegionScores& scores, int64_t length) const;
  int spatial_dims() const override { return dims_; }
  int64_t patch() const override { return patch_; }
  int64_t min_side() const { return min_side_; }
  const Scorer& scorer() const { return *scorer_; }

 private:
  int dims_;
  int64_t patch_, length_, min_side_;
  std::shared_ptr<const Scorer> scorer_;
};

class QuadtreePatcher : public AdaptiveTreePatcher {
 public:
  explicit QuadtreePatcher(const PatcherOptions& options) : AdaptiveTreePatcher(2, options) {}
};

class OctreePatcher : public AdaptiveTreePatcher {
 public:
  explicit OctreePatcher(const PatcherOptions& options) : AdaptiveTreePatcher(3, options) {}
};

// The patcher registry (core/registry.h): the one list of patcher kinds, selected by data.patcher.kind.
struct PatcherEntry {
  std::string name;
  std::string summary;
  bool adaptive = false;  // a scored tree with a fixed token count (tile decoder only), or the uniform grid
  int spatial_dims = 0;   // the only dimension it plans (quadtree 2, octree 3); 0 = either
  std::function<std::unique_ptr<Patcher>(const PatcherOptions&)> make;
};
const Registry<PatcherEntry>& patchers();

// Builds the patcher `options.kind` names; throws ConfigError for an unknown kind or inconsistent options.
std::unique_ptr<Patcher> make_patcher(const PatcherOptions& options);

// The smallest leaf side for patch P and a requested min_side (0 = max(1, P/4)); validated.
int64_t resolve_min_side(int64_t patch, int64_t min_side);

}  // namespace spvit::patch
