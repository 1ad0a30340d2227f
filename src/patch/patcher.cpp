// The uniform grid and the fixed-length greedy quadtree/octree.
#include "spvit/patch/patcher.h"
#include "spvit/core/int_math.h"

#include <queue>

#include "spvit/core/error.h"

namespace spvit::patch {

namespace {

std::vector<int64_t> spatial_size(const torch::Tensor& image) {
  auto size = image.sizes().vec();
  size.pop_back();
  return size;
}

// A leaf waiting in the heap. Order: higher score first; equal scores -> larger side first (so that a flat image is
// refined breadth-first instead of drilling into one corner); then smaller Morton key. Keys of disjoint leaves
// differ, so the order is total and the tree is the same on every rank.
struct Candidate {
  double score;
  int64_t side;
  uint64_t key;
  int64_t corner[3];
};

struct CandidateLess {
  bool operator()(const Candidate& a, const Candidate& b) const {
    if (a.score != b.score) return a.score < b.score;
    if (a.side != b.side) return a.side < b.side;
    return a.key > b.key;
  }
};

}  // namespace

int64_t resolve_min_side(int64_t patch, int64_t min_side) {
  const int64_t m = min_side == 0 ? std::max<int64_t>(1, patch / 4) : min_side;
  if (!is_power_of_two(m) || m > patch) {
    SPVIT_THROW(ConfigError, "min side ", m, " must be a power of two between 1 and the patch side ", patch);
  }
  return m;
}

// ---- UniformPatcher

UniformPatcher::UniformPatcher(int spatial_dims, int64_t patch, int64_t length, TokenOrder order)
    : dims_(spatial_dims), patch_(patch), length_(length), order_(order) {
  if (dims_ != 2 && dims_ != 3) SPVIT_THROW(ConfigError, "uniform patcher: spatial_dims must be 2 or 3, got ", dims_);
  if (patch_ < 1) SPVIT_THROW(ConfigError, "uniform patcher: patch side must be >= 1, got ", patch_);
  if (length_ < 0) SPVIT_THROW(ConfigError, "uniform patcher: length must be >= 0 (0 = the grid's size), got ", length_);
}

PatchLayout UniformPatcher::plan(const torch::Tensor& image, uint64_t) const {
  check_image(image, dims_, "uniform patcher");
  return plan_for_size(spatial_size(image));
}

PatchLayout UniformPatcher::plan_for_size(const std::vector<int64_t>& image_size) const {
  if (static_cast<int>(image_size.size()) != dims_ ||
      std::any_of(image_size.begin(), image_size.end(), [](int64_t e) { return e < 1; })) {
    SPVIT_THROW(DataError, "uniform patcher: image size must have ", dims_, " positive extents, got ",
                c10::IntArrayRef(image_size));
  }
  PatchLayout layout;
  layout.spatial_dims = dims_;
  layout.patch = patch_;
  layout.root_side = root_side_for(patch_, image_size);
  layout.min_side = patch_;
  layout.image_size = image_size;
  layout.scorer = "uniform";
  layout.order = TokenOrder::Raster;
  const int64_t nz = dims_ == 3 ? (image_size[0] + patch_ - 1) / patch_ : 1;
  const int64_t ny = (image_size[dims_ - 2] + patch_ - 1) / patch_;
  const int64_t nx = (image_size[dims_ - 1] + patch_ - 1) / patch_;
  const int64_t count = nz * ny * nx;
  if (length_ != 0 && length_ < count) {
    SPVIT_THROW(ConfigError, "uniform grid of ", c10::IntArrayRef(image_size), " at patch ", patch_, " has ", count,
                " tokens, more than the sequence length ", length_);
  }
  // Raster order (slice, row, column), the order of the classic unfold and of the learned grid table.
  for (int64_t k = 0; k < nz; ++k)
    for (int64_t j = 0; j < ny; ++j)
      for (int64_t i = 0; i < nx; ++i) layout.append(i * patch_, j * patch_, k * patch_, patch_);
  if (order_ == TokenOrder::ZOrder) layout.sort_zorder();
  layout.append_empty(length_ == 0 ? 0 : length_ - count);
  return layout;
}

// ---- AdaptiveTreePatcher

AdaptiveTreePatcher::AdaptiveTreePatcher(int spatial_dims, const PatcherOptions& o)
    : dims_(spatial_dims), patch_(o.patch), length_(o.length) {
  const char* tree = spatial_dims == 2 ? "quadtree" : "octree";
  if (dims_ != 2 && dims_ != 3) SPVIT_THROW(ConfigError, "adaptive patcher: spatial_dims must be 2 or 3, got ", dims_);
  if (!is_power_of_two(patch_)) {
    SPVIT_THROW(ConfigError, tree, " patcher: patch side P = ", patch_,
                " must be a power of two (leaves have sides P·2^k / 2^j and must halve down to the minimum side)");
  }
  if (length_ < 1) SPVIT_THROW(ConfigError, tree, " patcher: sequence length L must be >= 1, got ", length_);
  min_side_ = resolve_min_side(patch_, o.min_side);
  scorer_ = make_scorer(o.scorer, o.scoring);
}

RegionScores AdaptiveTreePatcher::score(const torch::Tensor& image, uint64_t sample) const {
  check_image(image, dims_, dims_ == 2 ? "quadtree patcher" : "octree patcher");
  // Cells of the smallest leaf side: every leaf is a whole number of cells.
  return scorer_->index(image, dims_, min_side_, sample);
}

PatchLayout AdaptiveTreePatcher::plan(const torch::Tensor& image, uint64_t sample) const {
  return refine(score(image, sample));
}

PatchLayout AdaptiveTreePatcher::refine(const RegionScores& scores) const { return refine(scores, length_); }

PatchLayout AdaptiveTreePatcher::refine(const RegionScores& scores, int64_t length) const {
  if (length < 1) SPVIT_THROW(ConfigError, "adaptive patcher: sequence length L must be >= 1, got ", length);
  const auto& size = scores.image_size();
  SPVIT_CHECK(static_cast<int>(size.size()) == dims_, "adaptive patcher: scores for a ", size.size(),
              "-D image given to a ", dims_, "-D tree");
  PatchLayout layout;
  layout.spatial_dims = dims_;
  layout.patch = patch_;
  layout.root_side = root_side_for(patch_, size);
  layout.min_side = min_side_;
  layout.image_size = size;
  layout.scorer = scorer_->name();
  int64_t extent[3] = {0, 0, 0};
  for (int a = 0; a < dims_; ++a) extent[a] = size[static_cast<size_t>(dims_ - 1 - a)];

  std::priority_queue<Candidate, std::vector<Candidate>, CandidateLess> heap;
  std::vector<Candidate> done;  // leaves that can never be split
  auto add = [&](const int64_t* corner, int64_t side) {
    Candidate c{0.0, side, morton_key(dims_, corner[0], corner[1], dims_ == 3 ? corner[2] : 0), {0, 0, 0}};
    bool splittable = side > min_side_;
    for (int a = 0; a < dims_; ++a) {
      c.corner[a] = corner[a];
      splittable = splittable && corner[a] < extent[a];  // a leaf wholly in the padding is never refined
    }
    if (!splittable) {
      done.push_back(c);
      return;
    }
    c.score = scores.score(c.corner, side);
    heap.push(c);
  };

  const int64_t root[3] = {0, 0, 0};
  add(root, layout.root_side);
  int64_t leaves = 1;
  const int64_t fan = int64_t{1} << dims_;
  while (!heap.empty() && leaves + fan - 1 <= length) {
    const Candidate parent = heap.top();
    heap.pop();
    const int64_t half = parent.side / 2;
    for (int64_t child = 0; child < fan; ++child) {  // children in Z-order: x bit, then y, then z
      int64_t corner[3] = {0, 0, 0};
      for (int a = 0; a < dims_; ++a) corner[a] = parent.corner[a] + ((child >> a) & 1) * half;
      add(corner, half);
    }
    leaves += fan - 1;
  }
  for (; !heap.empty(); heap.pop()) done.push_back(heap.top());

  for (const auto& c : done) layout.append(c.corner[0], c.corner[1], c.corner[2], c.side);
  layout.sort_zorder();
  // Exhaustion (every leaf at the minimum side or in the padding) or L not of the form 1 + (fan-1)·n.
  layout.append_empty(length - leaves);
  return layout;
}

// ---- factory

const Registry<PatcherEntry>& patchers() {
  static const Registry<PatcherEntry> registry(
      "patcher kind", "data.patcher.kind",
      {{"uniform", "a grid of P-sided patches (every decoder)", false, 0,
        [](const PatcherOptions& o) -> std::unique_ptr<Patcher> {
          return std::make_unique<UniformPatcher>(static_cast<int>(o.spatial_dims), o.patch, o.length,
                                                  parse_token_order(o.order));
        }},
       {"adaptive", "fixed-length quadtree (2D) or octree (3D) refined where the scorer finds detail", true, 0,
        [](const PatcherOptions& o) -> std::unique_ptr<Patcher> {
          return std::make_unique<AdaptiveTreePatcher>(static_cast<int>(o.spatial_dims), o);
        }},
       {"quadtree", "adaptive, for 2-D images only", true, 2,
        [](const PatcherOptions& o) -> std::unique_ptr<Patcher> { return std::make_unique<QuadtreePatcher>(o); }},
       {"octree", "adaptive, for 3-D volumes only", true, 3,
        [](const PatcherOptions& o) -> std::unique_ptr<Patcher> { return std::make_unique<OctreePatcher>(o); }}});
  return registry;
}

PatcherOptions PatcherOptions::from_config(const PatcherConfig& p, const ModelConfig& m, uint64_t seed) {
  PatcherOptions o;
  o.kind = p.kind;
  o.spatial_dims = m.spatial_dims;
  o.patch = m.patch;
  o.length = p.length;
  o.min_side = p.min_side;
  o.scorer = p.scorer;
  o.order = "raster";
  o.scoring.blur_kernel = p.blur_kernel;
  o.scoring.canny_low = p.canny_low;
  o.scoring.canny_high = p.canny_high;
  o.scoring.texture_window = p.texture_window;
  o.scoring.seed = seed;
  return o;
}

std::unique_ptr<Patcher> make_patcher(const PatcherOptions& o) {
  if (o.spatial_dims != 2 && o.spatial_dims != 3) {
    SPVIT_THROW(ConfigError, "patcher: spatial_dims must be 2 or 3, got ", o.spatial_dims);
  }
  const auto& entry = patchers().at(o.kind);
  if (entry.spatial_dims != 0 && entry.spatial_dims != o.spatial_dims) {
    SPVIT_THROW(ConfigError, "patcher kind '", o.kind, "' is for ", entry.spatial_dims,
                "-D images, but spatial_dims is ", o.spatial_dims);
  }
  return entry.make(o);
}

}  // namespace spvit::patch
