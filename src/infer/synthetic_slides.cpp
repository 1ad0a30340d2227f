#include "spvit/infer/synthetic_slides.h"

#include <filesystem>

#include "spvit/core/error.h"
#include "spvit/data/dataset.h"
#include "spvit/data/synthetic.h"
#include "spvit/infer/writers.h"

namespace spvit::infer {

SyntheticSlide write_synthetic_slide(const std::string& dir, const std::string& name,
                                     const SyntheticSlideOptions& o) {
  SPVIT_CHECK(o.width > 0 && o.height > 0 && o.mpp > 0, "synthetic slide: size ", o.width, "x", o.height, " and mpp ",
              o.mpp, " must be positive");
  std::filesystem::create_directories(dir + "/slides");
  std::filesystem::create_directories(dir + "/annotations");
  SyntheticSlide out;
  out.slide = dir + "/slides/" + name + ".tiff";
  out.annotations = dir + "/annotations/" + name + ".geojson";
  out.asap = dir + "/annotations/" + name + ".xml";

  const std::vector<int64_t> shape{o.height, o.width};
  const auto generator = data::make_synthetic_pathology({2, shape, 1, o.seed, o.feature_scale});
  PyramidTiffWriter tiff(out.slide, o.width, o.height, o.mpp, PyramidTiffWriter::Kind::Rgb);
  ReducedLabels labels(o.width, o.height, o.max_vector_side);
  constexpr int64_t kBand = 256;
  for (int64_t y0 = 0; y0 < o.height; y0 += kBand) {
    const int64_t y1 = std::min(o.height, y0 + kBand);
    const auto band = generator->read(0, data::band_region(shape, 0, y0, y1));
    const auto rgb = band.image.mul(255.0).round_().clamp_(0, 255).to(torch::kUInt8).contiguous();
    const auto ids = band.mask.to(torch::kUInt8).contiguous();
    const int rows = static_cast<int>(y1 - y0), cols = static_cast<int>(o.width);
    tiff.append(cv::Mat(rows, cols, CV_8UC3, rgb.data_ptr<uint8_t>()));
    labels.append(y0, cv::Mat(rows, cols, CV_8U, ids.data_ptr<uint8_t>()));
  }
  tiff.finish();
  const auto scale = static_cast<double>(labels.factor());
  out.polygons = write_geojson(out.annotations, labels.image(), scale, data::synthetic_pathology_classes());
  if (o.asap) out.asap_annotations = write_asap_xml(out.asap, labels.image(), scale, data::synthetic_pathology_classes());
  return out;
}

}  // namespace spvit::infer
