// The data layer's common vocabulary: a sample (image + mask), the part of it that was read (a Region), and the
// Dataset interface every format implements (synthetic generators, image folders, HDF5).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace spvit::data {

// Half-open box in pixel/voxel coordinates; spatial order (y, x) in 2D, (z, y, x) in 3D.
struct Region {
  std::vector<int64_t> begin, end;
  int64_t numel() const;
  int dims() const { return static_cast<int>(begin.size()); }
  int64_t extent(int d) const { return end[d] - begin[d]; }
  std::vector<int64_t> extents() const;
  bool operator==(const Region& other) const { return begin == other.begin && end == other.end; }
  bool operator!=(const Region& other) const { return !(*this == other); }
};

// The whole of a sample with the given spatial shape.
Region full_region(const std::vector<int64_t>& shape);
// True when `inner` lies inside `outer` (same number of dimensions).
bool contains(const Region& outer, const Region& inner);
// "[0:128, 64:256]".
std::string to_string(const Region& region);
std::string shape_string(const std::vector<int64_t>& shape);
// Throws DataError (naming `what`) unless `region` is a non-empty box inside a sample of `shape`.
void check_region(const Region& region, const std::vector<int64_t>& shape, const std::string& what);
// Rows [begin, end) of `dim`, the rest whole: the band a sequence rank of a uniform layout needs.
Region band_region(const std::vector<int64_t>& shape, int dim, int64_t begin, int64_t end);

struct TokenSample;  // token_sampling.h

struct Sample {
  // float32 [H, W, C] (2D) or [D, H, W, C] (3D), roughly in [0, 1]; or uint8 in [0, 255] from 8-bit sources (slides),
  // kept so — a quarter of the memory — until the model needs it (model_image; augmentation keeps it when it only
  // moves pixels).
  torch::Tensor image;
  // int64 [H, W] or [D, H, W], class ids in [0, num_classes), negative = ignored; or int16 (slides), an eighth of it.
  torch::Tensor mask;
  Region region;         // which part of the full sample this holds (the whole sample if no region was asked)
  std::vector<int64_t> full_shape;  // spatial shape of the full sample
  std::string id;
  // This rank's layout tokens and their targets, for token decoders (a loader with LoaderOptions::tokens; see
  // token_sampling.h); null otherwise.
  std::shared_ptr<const TokenSample> tokens;
};

// What the model and the patcher take: a sample's image as float32 in [0, 1] (a uint8 image divided by 255; a float
// one as it is) and its mask as int64.
torch::Tensor model_image(const torch::Tensor& image);
torch::Tensor model_mask(const torch::Tensor& mask);

// The part `region` (absolute coordinates, inside sample.region) of a sample; shares memory with it.
Sample crop(const Sample& sample, const Region& region);

// A part of a sample at a coarser scale (2D): output pixel (i, j) stands for the `scale` × `scale` block of sample
// pixels whose corner is (x + j·scale, y + i·scale) — its image is the block's area average and its label the label
// of the block's pixel (x + j·scale + ⌊scale/2⌋, y + i·scale + ⌊scale/2⌋), as tile targets take it
// (token_sampling.h). `x` and `y` are multiples of `scale`.
struct ScaledRegion {
  int64_t x = 0, y = 0, width = 0, height = 0;  // in output pixels: width × height of them
  int64_t scale = 1;
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual int spatial_dims() const = 0;       // 2 or 3
  virtual int64_t channels() const = 0;
  virtual int64_t num_classes() const = 0;
  virtual std::vector<int64_t> spatial_shape(int64_t index) const = 0;
  // Whole sample, or only `region` (HDF5 hyperslab / synthetic generation of just that box; formats that cannot
  // read a part read all and crop). Must be thread-safe (loader workers call it concurrently).
  virtual Sample read(int64_t index, const std::optional<Region>& region = std::nullopt) const = 0;
  // Sample `index` as epoch `epoch` sees it: datasets that draw their samples anew each epoch (slide regions) place
  // it by (epoch, index); the others ignore the epoch. The loader reads through this.
  virtual Sample read_epoch(int64_t index, int64_t epoch, const std::optional<Region>& region) const {
    return read(index, region);
  }
  // Multi-resolution sources (slides) read a ScaledRegion from a pyramid level, so that adaptive layouts are planned
  // and their large leaves read without the full-resolution sample. nullopt where the dataset cannot (the caller
  // reads full resolution and reduces it itself).
  virtual std::optional<Sample> read_scaled(int64_t index, const ScaledRegion& region) const { return std::nullopt; }
  // Whether read_scaled reads (true: never nullopt).
  virtual bool has_scaled_reads() const { return false; }
  virtual std::optional<Sample> read_scaled_epoch(int64_t index, int64_t epoch, const ScaledRegion& region) const {
    return read_scaled(index, region);
  }
  // What sample `index` belongs to for per-group metrics (`spvit eval`: the slide of a slide region); "" = none.
  virtual std::string sample_group(int64_t index) const { return {}; }
  // Class name -> "#rrggbb" as the data's annotations colour their classes (slides: QuPath, ASAP), first seen first.
  virtual std::vector<std::pair<std::string, std::string>> class_colours() const { return {}; }
  // A short description for logs ("synthetic pathology, 16 x 256x256", "hdf5 'x.h5', 100 x 64x64x64").
  virtual std::string describe() const { return "dataset"; }
  // What a model trained on this data needs of it at inference, as JSON, stored in checkpoints (a NIfTI dataset's
  // normalisation statistics); empty for none.
  virtual std::string statistics_json() const { return {}; }
};

// torch::empty for sample buffers. Large ones (>= 8 MB) are allocated 2 MB-aligned and marked for transparent huge
// pages on Linux: a fresh 8192² sample is ~1.3 GB, and first touches of 4 KB pages then cost more than rendering it.
torch::Tensor empty_buffer(const std::vector<int64_t>& sizes, torch::ScalarType type);

// Throws Error naming the dataset unless 0 <= index < dataset.size().
void check_index(const Dataset& dataset, int64_t index);

}  // namespace spvit::data
