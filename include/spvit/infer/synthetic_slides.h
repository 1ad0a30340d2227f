// Synthetic whole-slide images with annotations, so slide training and `spvit infer` can be tried and tested without
// real slides: the synthetic pathology generator's tissue written as a pyramidal RGB TIFF (OpenSlide's generic-tiff
// layout, resolution tags set), and its class regions vectorised into a QuPath GeoJSON FeatureCollection (one
// MultiPolygon per class, holes kept, level-0 pixel coordinates, class names from
// data::synthetic_pathology_classes()), and the same regions as ASAP XML (holes cut away, writers.h).
#pragma once
#include <cstdint>
#include <string>

namespace spvit::infer {

struct SyntheticSlideOptions {
  int64_t width = 4096, height = 4096;  // level 0
  double mpp = 0.5;                     // micrometres per level-0 pixel (resolution tags)
  uint64_t seed = 0;                    // the generator's seed: different seeds give different slides
  int64_t max_vector_side = 8192;       // class regions are vectorised on the label image reduced to this side
  int64_t feature_scale = 0;            // data::SyntheticOptions::feature_scale (0: the slide's longer side)
  bool asap = true;                     // also write the ASAP XML
};

struct SyntheticSlide {
  std::string slide, annotations;  // paths written: the slide and its QuPath GeoJSON
  std::string asap;                // the ASAP XML
  int64_t polygons = 0;            // polygons in the GeoJSON
  int64_t asap_annotations = 0;    // polygons in the ASAP XML (more: those with holes are cut into pieces)
};

// Writes <dir>/slides/<name>.tiff, <dir>/annotations/<name>.geojson and <name>.xml (all atomically), generating the slide
// 256 rows at a time (memory stays at a few bands whatever the size).
SyntheticSlide write_synthetic_slide(const std::string& dir, const std::string& name,
                                     const SyntheticSlideOptions& options);

}  // namespace spvit::infer
