#include "spvit/data/slide_dataset.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <tuple>
#include <filesystem>
#include <map>
#include <sstream>

#include "spvit/core/error.h"
#include "spvit/core/logging.h"
#include "spvit/data/hash.h"
#include "spvit/data/label_mask.h"
#include "spvit/patch/patcher.h"

namespace fs = std::filesystem;

namespace spvit::data {

struct SlideDataset::SlideState {
  std::unique_ptr<Slide> slide;
  std::shared_ptr<AnnotationSet> annotations;  // level-0 coordinates (shifted by the scanned area's origin)
  std::unique_ptr<AnnotationIndex> index;
  std::unique_ptr<TissueMask> tissue;
  std::unique_ptr<LabelMask> mask;          // the labels, when the annotation file is a label mask
  torch::Tensor mask_overview;              // balanced sampling from a label mask: its values at a coarse scale,
  double overview_ds = 1;                   // level-0 pixels per overview pixel,
  std::map<int64_t, std::vector<int64_t>> label_pixels;  // and the overview pixels of each foreground label
  double ds = 1;                            // level-0 pixels per target pixel
  int64_t x0 = 0, y0 = 0, x1 = 0, y1 = 0;   // the scanned area in target pixels
  std::vector<int64_t> tissue_rows;         // cumulative tissue pixels per mask row (uniform tissue points)
  std::string name;                         // file stem
};

namespace {

constexpr int kPlacementTries = 32;
// The class name data.classes maps annotations without a classification to (QuPath exports them without one).
constexpr const char* kUnclassified = "(unclassified)";

// Adds (dx, dy) to every vertex: QuPath's .mrxs coordinates are relative to the scanned area.
void shift(AnnotationSet& set, double dx, double dy) {
  if (dx == 0 && dy == 0) return;
  for (auto& a : set.annotations) {
    for (auto& part : a.parts) {
      for (auto& v : part.exterior) v[0] += dx, v[1] += dy;
      for (auto& hole : part.holes) {
        for (auto& v : hole) v[0] += dx, v[1] += dy;
      }
    }
    a.update_bounds();
  }
}

}  // namespace

ClassMap class_map_from_config(const DataConfig& d) {
  ClassMap map;
  for (const auto& [name, value] : d.classes) {
    if (value == "ignore") {
      map.ids[name] = ClassMap::kIgnore;
      continue;
    }
    int64_t id = 0;
    try {
      size_t used = 0;
      id = std::stoll(value, &used);
      if (used != value.size()) id = 0;
    } catch (const std::exception&) {
      id = 0;
    }
    if (id < 1 || id > 255) {
      SPVIT_THROW(ConfigError, "config key 'data.classes." + name + "' = ", value, " must be a label id from 1 to 255 ",
                  "(0 is background) or 'ignore'");
    }
    map.ids[name] = id;
  }
  for (const auto& name : d.class_priority) {
    if (!map.ids.count(name)) {
      SPVIT_THROW(ConfigError, "config key 'data.class_priority' names '", name, "', which 'data.classes' does not");
    }
  }
  map.priority = d.class_priority;
  return map;
}

SlideDatasetOptions SlideDatasetOptions::from_config(const DataConfig& d, const std::string& path,
                                                     const std::string& split, int64_t count, uint64_t seed) {
  SlideDatasetOptions o;
  const auto manifest = SlideManifest::read(path);
  const bool implicit_val = split == "val" && path == d.path;
  if (!implicit_val || manifest.has_splits) o.entries = manifest.split(split);
  if (split == "train" && o.entries.empty()) {
    SPVIT_THROW(DataError, "slide manifest '", path, "' has no row of split train");
  }
  o.source = path;
  o.mpp = d.mpp;
  o.level = static_cast<int>(d.level);
  o.classes = class_map_from_config(d);
  o.ignore_unannotated = d.unannotated == "ignore";
  o.geojson.include_detections = d.include_detections;
  o.mask_downsample = d.mask_downsample;
  if (d.tissue == "none") {
    o.tissue.mode = "none";
  } else {
    o.tissue = TissueOptions::preset(d.tissue);
  }
  o.cache_dir = d.cache_dir;
  o.min_tissue = d.min_tissue;
  o.balanced = d.sampling == "balanced";
  o.fixed = split != "train";
  o.size = d.size;
  if (patch::patchers().at(d.patcher.kind).adaptive) {
    while (o.align * 2 <= d.size / 4) o.align *= 2;
  }
  o.count = count;
  o.seed = seed;
  return o;
}

SlideDataset::SlideDataset(SlideDatasetOptions options) : options_(std::move(options)) {
  SPVIT_CHECK(options_.size > 0 && options_.count > 0, "slide dataset: size and count must be positive");
  if (options_.classes.ids.empty()) {
    SPVIT_THROW(ConfigError, "config key 'data.classes' is empty: map the annotation class names of '",
                options_.source, "' to label ids, e.g. data.classes: {Tumor: 1, Stroma: 2} (`spvit data check` lists "
                "the names the annotations use)");
  }
  int64_t max_id = 0;
  for (const auto& [name, id] : options_.classes.ids) max_id = std::max(max_id, id);
  num_classes_ = max_id + 1;
  double cumulative = 0;
  for (const auto& e : options_.entries) {
    auto st = std::make_unique<SlideState>();
    st->name = fs::path(e.slide).stem().string();
    st->slide = Slide::open(e.slide);
    const auto& b = st->slide->bounds();
    if (options_.mpp > 0) {
      st->ds = st->slide->downsample_for_mpp(options_.mpp);
      if (st->ds < 1.0 - 1e-6) {
        SPVIT_THROW(ConfigError, "config key 'data.mpp' = ", options_.mpp, " is finer than slide '", e.slide,
                    "' was scanned (", st->slide->mpp_x(), " um/px at level 0)");
      }
    } else {
      st->ds = st->slide->level(options_.level).downsample;  // throws naming the slide and its levels
    }
    st->x0 = static_cast<int64_t>(std::ceil(static_cast<double>(b[0]) / st->ds));
    st->y0 = static_cast<int64_t>(std::ceil(static_cast<double>(b[1]) / st->ds));
    st->x1 = std::max(st->x0 + 1, static_cast<int64_t>(std::floor(static_cast<double>(b[2]) / st->ds)));
    st->y1 = std::max(st->y0 + 1, static_cast<int64_t>(std::floor(static_cast<double>(b[3]) / st->ds)));
    auto add_balanced = [&](int64_t label, int64_t annotation, double area) {
      auto it = std::find_if(balanced_.begin(), balanced_.end(), [&](const auto& c) { return c.label == label; });
      if (it == balanced_.end()) it = balanced_.insert(balanced_.end(), BalancedClass{label, {}, {}});
      it->annotations.emplace_back(static_cast<int64_t>(slides_.size()), annotation);
      it->cdf.push_back((it->cdf.empty() ? 0.0 : it->cdf.back()) + area);
    };
    const bool label_mask = !e.annotation.empty() && is_label_mask_path(e.annotation);
    st->annotations = std::make_shared<AnnotationSet>(
        e.annotation.empty() || label_mask ? AnnotationSet{} : read_annotations(e.annotation, options_.geojson));
    if (label_mask) {
      const auto& l0 = st->slide->level(0);
      st->mask = std::make_unique<LabelMask>(e.annotation, l0.width, l0.height, options_.mask_downsample);
      if (options_.balanced) index_mask_classes(*st, [&](int64_t label, double area) { add_balanced(label, -1, area); });
    }
    shift(*st->annotations, static_cast<double>(b[0]), static_cast<double>(b[1]));
    for (size_t i = 0; i < st->annotations->annotations.size(); ++i) {
      auto& a = st->annotations->annotations[i];
      if (a.class_name.empty()) a.class_name = kUnclassified;
      const int64_t label = options_.classes.label_of(a.class_name, e.annotation);
      const bool known = std::any_of(class_colours_.begin(), class_colours_.end(),
                                     [&](const auto& c) { return c.first == a.class_name; });
      if (!a.colour.empty() && !known) class_colours_.emplace_back(a.class_name, a.colour);
      if (label < 1) continue;
      add_balanced(label, static_cast<int64_t>(i), std::max(1.0, (a.bounds[2] - a.bounds[0]) * (a.bounds[3] - a.bounds[1])));
    }
    st->index = std::make_unique<AnnotationIndex>(st->annotations);
    st->tissue = std::make_unique<TissueMask>(TissueMask::detect_cached(*st->slide, options_.tissue, options_.cache_dir));
    const auto& m = st->tissue->mask();
    const int64_t mh = m.size(0), mw = m.size(1);
    st->tissue_rows.assign(static_cast<size_t>(mh) + 1, 0);
    const uint8_t* p = m.data_ptr<uint8_t>();
    for (int64_t r = 0; r < mh; ++r) {
      int64_t n = 0;
      for (int64_t c = 0; c < mw; ++c) n += p[r * mw + c];
      st->tissue_rows[static_cast<size_t>(r) + 1] = st->tissue_rows[static_cast<size_t>(r)] + n;
    }
    const double area = static_cast<double>(st->tissue_rows.back()) * st->tissue->scale_x() *
                        st->tissue->scale_y() / (st->ds * st->ds);
    cumulative += area;
    tissue_cdf_.push_back(cumulative);
    slides_.push_back(std::move(st));
  }
  if (slides_.empty()) SPVIT_THROW(DataError, "slide dataset '", options_.source, "' has no slides");
  if (!options_.balanced && cumulative <= 0) {
    SPVIT_THROW(DataError, "slide dataset '", options_.source, "': no tissue found in any slide (try data.tissue: "
                "pale, or none)");
  }
  std::sort(balanced_.begin(), balanced_.end(), [](const auto& a, const auto& b) { return a.label < b.label; });
  if (options_.balanced && balanced_.empty()) {
    SPVIT_THROW(DataError, "slide dataset '", options_.source, "': data.sampling = balanced, but no annotation has a "
                "foreground class");
  }
}

void SlideDataset::index_mask_classes(SlideState& st, const std::function<void(int64_t, double)>& add) const {
  std::tie(st.mask_overview, st.overview_ds) = st.mask->overview();
  const auto table = LabelMask::value_labels(options_.classes, 0);
  const auto* v = st.mask_overview.data_ptr<uint8_t>();
  for (int64_t k = 0, n = st.mask_overview.numel(); k < n; ++k) {
    const int64_t label = table[v[k]];  // values without a class (an averaged pyramid's borders) are passed over
    if (label >= 1) st.label_pixels[label].push_back(k);
  }
  for (const auto& [label, pixels] : st.label_pixels) {
    add(label, static_cast<double>(pixels.size()) * st.overview_ds * st.overview_ds);
  }
}

SlideDataset::~SlideDataset() = default;

double SlideDataset::downsample(int64_t i) const { return slide(i).ds; }
const std::string& SlideDataset::slide_path(int64_t i) const { return slide(i).slide->path(); }

SlidePlacement SlideDataset::place_around(int64_t s, double cx, double cy) const {
  const SlideState& st = slide(s);
  const int64_t S = options_.size;
  auto axis = [S](double c, int64_t lo, int64_t hi) {
    if (hi - lo <= S) return lo - (S - (hi - lo)) / 2;  // a slide smaller than the sample sits in its middle
    const auto v = static_cast<int64_t>(std::llround(c - static_cast<double>(S) / 2));
    return std::min(std::max(v, lo), hi - S);
  };
  const int64_t a = options_.align;
  auto snap = [a](int64_t v) { return v >= 0 ? v / a * a : -((-v + a - 1) / a) * a; };  // down to a multiple of a
  SlidePlacement p;
  p.slide = s;
  p.x = snap(axis(cx, st.x0, st.x1));
  p.y = snap(axis(cy, st.y0, st.y1));
  auto l0 = [&](int64_t v) { return static_cast<int64_t>(std::floor(static_cast<double>(v) * st.ds)); };
  p.tissue = st.tissue->fraction(l0(p.x), l0(p.y), l0(p.x + S), l0(p.y + S));
  return p;
}

SlidePlacement SlideDataset::tissue_placement(uint64_t key) const {
  HashStream rng(key);
  SlidePlacement best;
  best.tissue = -1;
  for (int t = 0; t < kPlacementTries; ++t) {
    const double u = rng.uniform() * tissue_cdf_.back();
    const auto s = static_cast<int64_t>(std::upper_bound(tissue_cdf_.begin(), tissue_cdf_.end(), u) - tissue_cdf_.begin());
    const int64_t slide_index = std::min<int64_t>(s, slide_count() - 1);
    const SlideState& st = slide(slide_index);
    // The k-th tissue pixel of the mask, then a uniform point inside it.
    const auto k = static_cast<int64_t>(rng.uniform() * static_cast<double>(st.tissue_rows.back()));
    const auto row = static_cast<int64_t>(std::upper_bound(st.tissue_rows.begin(), st.tissue_rows.end(), k) -
                                          st.tissue_rows.begin()) - 1;
    const auto& m = st.tissue->mask();
    const int64_t mw = m.size(1);
    const uint8_t* p = m.data_ptr<uint8_t>() + row * mw;
    int64_t left = k - st.tissue_rows[static_cast<size_t>(row)], col = 0;
    for (; col < mw; ++col) {
      if (p[col] && left-- == 0) break;
    }
    const double x = (static_cast<double>(col) + rng.uniform()) * st.tissue->scale_x() / st.ds;
    const double y = (static_cast<double>(row) + rng.uniform()) * st.tissue->scale_y() / st.ds;
    const SlidePlacement candidate = place_around(slide_index, x, y);
    if (candidate.tissue > best.tissue) best = candidate;
    if (candidate.tissue >= options_.min_tissue) break;
  }
  return best;
}

SlidePlacement SlideDataset::balanced_placement(uint64_t key) const {
  HashStream rng(key);
  const auto& c = balanced_[std::min(balanced_.size() - 1, static_cast<size_t>(rng.uniform() * balanced_.size()))];
  // One of that label's annotations over all slides, chosen by the area of its bounds.
  const auto pick = std::min<size_t>(
      static_cast<size_t>(std::upper_bound(c.cdf.begin(), c.cdf.end(), rng.uniform() * c.cdf.back()) - c.cdf.begin()),
      c.annotations.size() - 1);
  const auto [s, a] = c.annotations[pick];
  const SlideState& st = slide(s);
  if (a < 0) {  // the slide's label mask: a uniform point of one of its overview pixels of the label
    const auto& pixels = st.label_pixels.at(c.label);
    const auto k = pixels[std::min(pixels.size() - 1, static_cast<size_t>(rng.uniform() * static_cast<double>(pixels.size())))];
    const int64_t w = st.mask_overview.size(1);
    const double x = (static_cast<double>(k % w) + rng.uniform()) * st.overview_ds;
    const double y = (static_cast<double>(k / w) + rng.uniform()) * st.overview_ds;
    return place_around(s, x / st.ds, y / st.ds);
  }
  const auto& ann = st.annotations->annotations[static_cast<size_t>(a)];
  // A uniform point of the bounds inside the annotation (32 tries; a thin or hollow shape may need them all, and then
  // the centre of its bounds is taken).
  double x = (ann.bounds[0] + ann.bounds[2]) / 2, y = (ann.bounds[1] + ann.bounds[3]) / 2;
  for (int t = 0; t < kPlacementTries; ++t) {
    const double px = rng.uniform(ann.bounds[0], ann.bounds[2]), py = rng.uniform(ann.bounds[1], ann.bounds[3]);
    const bool inside = std::any_of(ann.parts.begin(), ann.parts.end(),
                                    [&](const PolygonPart& part) { return polygon_contains(part, px, py); });
    if (inside) {
      x = px, y = py;
      break;
    }
  }
  return place_around(s, x / st.ds, y / st.ds);
}

SlidePlacement SlideDataset::placement(int64_t index, int64_t epoch) const {
  check_index(*this, index);
  const uint64_t key = hash_key({options_.seed, options_.fixed ? 0 : static_cast<uint64_t>(epoch) + 1,
                                 static_cast<uint64_t>(index), 0x51de});
  return options_.balanced ? balanced_placement(key) : tissue_placement(key);
}

Sample SlideDataset::read(int64_t index, const std::optional<Region>& region) const {
  return read_epoch(index, 0, region);
}

Sample SlideDataset::read_epoch(int64_t index, int64_t epoch, const std::optional<Region>& region) const {
  const SlidePlacement p = placement(index, epoch);
  const SlideState& st = slide(p.slide);
  const std::vector<int64_t> shape{options_.size, options_.size};
  const Region r = region.value_or(full_region(shape));
  check_region(r, shape, describe());
  ++reads_;
  const int64_t y = p.y + r.begin[0], x = p.x + r.begin[1], h = r.extent(0), w = r.extent(1);
  Sample s;
  s.image = st.slide->read_scaled(st.ds, x, y, w, h);  // uint8 until the model needs it (model_image)
  RasterGrid grid;
  grid.x0 = static_cast<double>(x) * st.ds;
  grid.y0 = static_cast<double>(y) * st.ds;
  grid.downsample = st.ds;
  grid.height = h;
  grid.width = w;
  const int64_t background = options_.ignore_unannotated ? ClassMap::kIgnore : 0;
  s.mask = (st.mask ? st.mask->labels(grid, options_.classes, background)
                    : rasterize(*st.index, options_.classes, grid, background))
               .to(torch::kShort);  // labels -1..255
  s.region = r;
  s.full_shape = shape;
  s.id = st.name + "@" + std::to_string(p.x) + "," + std::to_string(p.y);
  return s;
}

std::optional<Sample> SlideDataset::read_scaled_epoch(int64_t index, int64_t epoch, const ScaledRegion& r) const {
  const SlidePlacement p = placement(index, epoch);
  const int64_t k = r.scale;
  SPVIT_CHECK(k >= 1 && r.x % k == 0 && r.y % k == 0 && r.width > 0 && r.height > 0, "slide dataset: bad scaled region ",
              r.x, ",", r.y, " ", r.width, "x", r.height, " at scale ", k);
  if (p.x % k != 0 || p.y % k != 0) return std::nullopt;
  const SlideState& st = slide(p.slide);
  ++scaled_reads_;
  const int64_t x = (p.x + r.x) / k, y = (p.y + r.y) / k;  // in output pixels
  Sample s;
  s.image = st.slide->read_scaled(st.ds * static_cast<double>(k), x, y, r.width, r.height);
  // Labels at the blocks' pixels (x + j·k + ⌊k/2⌋): a grid of pitch k·ds whose centres are those pixels' centres.
  RasterGrid grid;
  grid.downsample = st.ds * static_cast<double>(k);
  grid.x0 = (static_cast<double>(p.x + r.x + k / 2) + 0.5) * st.ds - grid.downsample / 2;
  grid.y0 = (static_cast<double>(p.y + r.y + k / 2) + 0.5) * st.ds - grid.downsample / 2;
  grid.height = r.height;
  grid.width = r.width;
  const int64_t background = options_.ignore_unannotated ? ClassMap::kIgnore : 0;
  s.mask = (st.mask ? st.mask->labels(grid, options_.classes, background)
                    : rasterize(*st.index, options_.classes, grid, background))
               .to(torch::kShort);
  s.full_shape = {options_.size / k, options_.size / k};
  s.region = Region{{r.y / k, r.x / k}, {r.y / k + r.height, r.x / k + r.width}};
  s.id = st.name + "@" + std::to_string(p.x) + "," + std::to_string(p.y);
  return s;
}

std::string SlideDataset::sample_group(int64_t index) const {
  return fs::path(slide(placement(index, 0).slide).slide->path()).filename().string();
}

std::string SlideDataset::describe() const {
  std::ostringstream d;
  d << "slides '" << options_.source << "', " << slides_.size() << " slide" << (slides_.size() == 1 ? "" : "s")
    << " at ";
  if (options_.mpp > 0) d << options_.mpp << " um/px";
  else d << "level " << options_.level;
  d << ", " << options_.count << " x " << options_.size << "x" << options_.size << " region"
    << (options_.count == 1 ? "" : "s") << (options_.fixed ? " (fixed)" : " per epoch");
  return d.str();
}

}  // namespace spvit::data
