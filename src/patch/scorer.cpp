// Summed-area tables over cell grids, the O(1) region-score oracle, and the named scorers.
#include "spvit/patch/scorer.h"

#include <algorithm>

#include "spvit/build_info.h"
#include "spvit/core/error.h"
#include "spvit/patch/banding.h"

namespace spvit::patch {

// ---- SummedAreaTable

SummedAreaTable::SummedAreaTable(const torch::Tensor& map, int64_t cell, int power)
    : dims_(static_cast<int>(map.dim())), cell_(cell) {
  SPVIT_CHECK(dims_ == 2 || dims_ == 3, "summed-area table: expected a 2-D or 3-D map, got sizes ", map.sizes());
  SPVIT_CHECK(map.numel() > 0, "summed-area table of an empty map");
  SPVIT_CHECK(cell >= 1, "summed-area table: cell side must be >= 1, got ", cell);
  SPVIT_CHECK(power == 1 || power == 2, "summed-area table: power must be 1 or 2, got ", power);
  SPVIT_CHECK(!map.is_floating_point() && !map.is_complex(),
              "summed-area table: the map must be integer-valued (exact sums), got ", map.scalar_type());
  // table[i, j] = Σ cells[<i, <j]: a leading zero row/column (plane) so that a box sum needs no bounds tests.
  std::vector<int64_t> table_shape;
  for (int d = 0; d < dims_; ++d) table_shape.push_back((map.size(d) + cell - 1) / cell + 1);
  auto table = torch::zeros(table_shape, map.options().dtype(torch::kLong));
  // Cell sums band by band (see banding.h), one axis at a time: splitting the innermost axis into (cells, cell)
  // and summing it, then the next; far faster than one reduction over all the cell axes at once.
  const int64_t n0 = map.size(0), rows = detail::band_rows(map.numel() / n0, cell);
  for (int64_t r0 = 0; r0 < n0; r0 += rows) {
    const int64_t b = std::min(rows, n0 - r0);
    auto t = map.narrow(0, r0, b).to(torch::kLong);
    if (power == 2) t = t * t;  // not in place: for an int64 map, t may be the map itself
    std::vector<int64_t> pad;  // zero padding to whole cells; constant_pad_nd lists the last dimension first
    for (int d = dims_ - 1; d >= 0; --d) {
      pad.push_back(0);
      pad.push_back((t.size(d) + cell - 1) / cell * cell - t.size(d));
    }
    if (std::any_of(pad.begin(), pad.end(), [](int64_t p) { return p != 0; })) t = at::constant_pad_nd(t, pad, 0);
    for (int d = dims_ - 1; d >= 0; --d) {
      auto shape = t.sizes().vec();
      shape[d] /= cell;
      shape.insert(shape.begin() + d + 1, cell);
      t = t.view(shape).sum({d + 1});
    }
    auto dst = table.narrow(0, 1 + r0 / cell, t.size(0));
    for (int d = 1; d < dims_; ++d) dst = dst.narrow(d, 1, t.size(d));
    dst.copy_(t);
  }
  for (int d = 0; d < dims_; ++d) table.cumsum_(d);
  table_ = table.to(torch::kCPU).contiguous();
  for (int a = 0; a < dims_; ++a) {
    extent_.push_back(map.size(dims_ - 1 - a));
    strides_.push_back(table_.stride(dims_ - 1 - a));
  }
}

int64_t SummedAreaTable::sum(const int64_t* lo, const int64_t* hi) const {
  SPVIT_CHECK(table_.defined(), "sum over an empty summed-area table");
  int64_t clo[3], chi[3];
  for (int a = 0; a < dims_; ++a) {
    clo[a] = std::max<int64_t>(lo[a], 0) / cell_;
    // A clipped upper bound may fall inside a cell; that cell holds only in-image pixels (the rest was zero padding).
    chi[a] = (std::min(hi[a], extent_[a]) + cell_ - 1) / cell_;
    if (chi[a] <= clo[a]) return 0;
  }
  const int64_t* data = table_.data_ptr<int64_t>();
  int64_t total = 0;
  for (int corner = 0; corner < (1 << dims_); ++corner) {  // inclusion-exclusion over the box's corners
    int64_t offset = 0;
    int lows = 0;
    for (int a = 0; a < dims_; ++a) {
      const bool low = (corner >> a) & 1;
      lows += low;
      offset += (low ? clo[a] : chi[a]) * strides_[a];
    }
    total += (lows % 2 == 0) ? data[offset] : -data[offset];
  }
  return total;
}

// ---- RegionScores

RegionScores::RegionScores(std::vector<SummedAreaTable> tables, ScoreCombine combine, std::vector<int64_t> image_size)
    : tables_(std::move(tables)), combine_(combine), image_size_(std::move(image_size)) {
  SPVIT_CHECK(!tables_.empty(), "region scores need at least one table");
  SPVIT_CHECK(combine_ != ScoreCombine::SquaredDeviation || tables_.size() == 2,
              "squared-deviation scores need the tables of v and v^2");
  extent_.assign(image_size_.rbegin(), image_size_.rend());
}

double RegionScores::score(const int64_t* corner, int64_t side) const {
  const int dims = static_cast<int>(extent_.size());
  int64_t hi[3];
  int64_t pixels = 1;
  for (int a = 0; a < dims; ++a) {
    hi[a] = corner[a] + side;
    pixels *= std::max<int64_t>(0, std::min(hi[a], extent_[a]) - corner[a]);
  }
  if (pixels == 0) return 0.0;  // wholly in the padding
  const int64_t s0 = tables_[0].sum(corner, hi);
  if (combine_ == ScoreCombine::Sum) return static_cast<double>(s0);
  // Σ(v - mean)² = (n·Σv² - (Σv)²) / n, with the numerator exact in 128 bits so ties and zeros are exact too.
  const int64_t s1 = tables_[1].sum(corner, hi);
  const __int128 numerator = static_cast<__int128>(pixels) * s1 - static_cast<__int128>(s0) * s0;
  return static_cast<double>(numerator) / static_cast<double>(pixels);
}

RegionScores Scorer::index(const torch::Tensor& image, int spatial_dims, int64_t cell, uint64_t sample) const {
  check_image(image, spatial_dims, "scorer");
  std::vector<SummedAreaTable> tables;
  const auto maps = pixel_maps(image, spatial_dims, sample);
  if (combine() == ScoreCombine::SquaredDeviation) {
    // One map v, two tables: Σ v and Σ v² (squared band by band, so no full-size v² map is ever built).
    SPVIT_CHECK(maps.size() == 1, "squared-deviation scorers return one map");
    tables.emplace_back(maps[0], cell, 1);
    tables.emplace_back(maps[0], cell, 2);
  } else {
    for (const auto& map : maps) tables.emplace_back(map, cell);
  }
  auto size = image.sizes().vec();
  size.pop_back();
  return RegionScores(std::move(tables), combine(), size);
}

// ---- the named scorers

namespace {

class EdgeScorer : public Scorer {
 public:
  explicit EdgeScorer(const ScorerOptions& o) : options_(o) {
#if !SPVIT_HAVE_OPENCV
    SPVIT_THROW(Error, "the 'edges' scorer needs OpenCV, which this build does not have (configure with "
                       "-DSPVIT_WITH_OPENCV=ON); the variance, gradient and texture scorers work without it");
#endif
    if (o.blur_kernel < 1 || o.blur_kernel % 2 == 0) {
      SPVIT_THROW(ConfigError, "edges scorer: blur kernel must be odd and >= 1, got ", o.blur_kernel);
    }
    if (o.canny_low < 0 || o.canny_high < o.canny_low) {
      SPVIT_THROW(ConfigError, "edges scorer: need 0 <= canny_low <= canny_high, got ", o.canny_low, " and ", o.canny_high);
    }
  }
  std::vector<torch::Tensor> pixel_maps(const torch::Tensor& image, int, uint64_t sample) const override {
    return {edge_map(to_gray(image), edge_params(options_, sample))};
  }

 private:
  ScorerOptions options_;
};

class VarianceScorer : public Scorer {
 public:
  ScoreCombine combine() const override { return ScoreCombine::SquaredDeviation; }
  std::vector<torch::Tensor> pixel_maps(const torch::Tensor& image, int, uint64_t) const override {
    return {to_gray(image)};
  }
};

class GradientScorer : public Scorer {
 public:
  std::vector<torch::Tensor> pixel_maps(const torch::Tensor& image, int, uint64_t) const override {
    return {gradient_map(to_gray(image))};
  }
};

class TextureScorer : public Scorer {
 public:
  explicit TextureScorer(const ScorerOptions& o) : window_(o.texture_window) {
    if (window_ < 2) SPVIT_THROW(ConfigError, "texture scorer: window must be >= 2, got ", window_);
  }
  std::vector<torch::Tensor> pixel_maps(const torch::Tensor& image, int, uint64_t) const override {
    return {texture_map(to_gray(image), window_)};
  }

 private:
  int64_t window_;
};

}  // namespace

const Registry<ScorerEntry>& scorers() {
  static const Registry<ScorerEntry> registry(
      "scorer", "data.patcher.scorer",
      {{"edges", "Canny edge pixels after a Gaussian blur (the paper's scorer; needs OpenCV)", true, true,
        [](const ScorerOptions& o) -> std::unique_ptr<Scorer> { return std::make_unique<EdgeScorer>(o); }},
       {"variance", "intensity variance times area (extensive, so large flat-ish regions compete)", false, false,
        [](const ScorerOptions&) -> std::unique_ptr<Scorer> { return std::make_unique<VarianceScorer>(); }},
       {"gradient", "summed central-difference gradient magnitude", false, false,
        [](const ScorerOptions&) -> std::unique_ptr<Scorer> { return std::make_unique<GradientScorer>(); }},
       {"texture", "entropy of local-binary-pattern histograms per block", false, false,
        [](const ScorerOptions& o) -> std::unique_ptr<Scorer> { return std::make_unique<TextureScorer>(o); }}});
  return registry;
}

std::vector<std::string> scorer_names() { return scorers().names(); }

std::unique_ptr<Scorer> make_scorer(const std::string& name, const ScorerOptions& options) {
  auto scorer = scorers().at(name).make(options);
  scorer->name_ = name;
  return scorer;
}

}  // namespace spvit::patch
