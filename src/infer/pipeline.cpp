#include "spvit/infer/pipeline.h"

#include <sys/resource.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "spvit/core/atomic_file.h"
#include "spvit/core/error.h"
#include "spvit/core/logging.h"
#include "spvit/infer/writers.h"

namespace spvit::infer {

std::set<std::string> parse_formats(const std::string& list) {
  std::set<std::string> out;
  std::stringstream in(list);
  std::string f;
  while (std::getline(in, f, ',')) {
    if (f.empty()) continue;
    if (f != "tiff" && f != "geojson" && f != "png" && f != "json") {
      SPVIT_THROW(ConfigError, "unknown output format '", f, "' in --formats (allowed: tiff, geojson, png, json)");
    }
    out.insert(f);
  }
  if (out.empty()) SPVIT_THROW(ConfigError, "--formats names no output format");
  return out;
}

namespace {

int64_t peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<int64_t>(u.ru_maxrss) * 1024;
}

// Rank 0, after the tiling: finishes the mask, writes GeoJSON, overlay and summary (WriteError on failure).
void write_outputs(const Slide& slide, const TissueMask& tissue, const SlideLevel& L, double mpp_level,
                   const InferOptions& o, std::unique_ptr<PyramidTiffWriter> tiff,
                   std::unique_ptr<ReducedLabels> reduced, InferResult& result) {
  const int64_t C = static_cast<int64_t>(o.class_names.size());
  const auto& s = result.stats;
  nlohmann::json j;
  int64_t polygons = -1;
  if (tiff) {
    tiff->finish();
    j["outputs"]["tiff"] = {{"path", o.out_dir + "/mask.tiff"}, {"levels", tiff->levels()}};
  }
  if (o.formats.count("geojson")) {
    // In QuPath's frame: a slide with a scanned area (.mrxs) has its coordinates start at the area's corner.
    const std::array<double, 2> origin{static_cast<double>(slide.bounds()[0]), static_cast<double>(slide.bounds()[1])};
    polygons = write_geojson(o.out_dir + "/polygons.geojson", reduced->image(),
                             static_cast<double>(reduced->factor()) * L.downsample, o.class_names, 1.0, origin,
                             o.class_colours);
    j["outputs"]["geojson"] = {{"path", o.out_dir + "/polygons.geojson"}, {"polygons", polygons},
                               {"contour_downsample", reduced->factor()}};
  }
  if (o.formats.count("png")) {
    write_overlay_png(o.out_dir + "/overlay.png", to_mat(data::slide_thumbnail(slide, o.thumbnail_side)),
                      reduced->image(), o.class_colours);
    j["outputs"]["png"] = {{"path", o.out_dir + "/overlay.png"}};
  }
  const double ds2 = L.downsample * L.downsample;
  for (int64_t c = 0; c < C; ++c) {
    const double px = static_cast<double>(s.class_pixels[static_cast<size_t>(c)]);
    const auto colour = class_colour(static_cast<int>(c), o.class_colours);
    nlohmann::json a{{"class_id", c}, {"name", o.class_names[static_cast<size_t>(c)]},
                     {"color", {colour[0], colour[1], colour[2]}}, {"pixels", px}, {"level0_pixels", px * ds2}};
    if (slide.mpp_x() > 0) a["mm2"] = px * ds2 * slide.mpp_x() * slide.mpp_y() * 1e-6;
    j["areas"].push_back(a);
  }
  j["slide"] = {{"path", slide.path()}, {"format", slide.format()},
                {"level", result.level >= 0 ? nlohmann::json(result.level) : nlohmann::json(nullptr)},
                {"width", L.width}, {"height", L.height}, {"downsample", L.downsample}, {"mpp", slide.mpp_x()}};
  j["tiling"] = {{"tile", o.tiler.tile}, {"overlap", o.tiler.overlap}, {"batch", o.tiler.batch},
                 {"blend", o.tiler.blend}, {"ranks", o.tiler.world}};
  j["tiles"] = {{"total", s.tiles_total}, {"run", s.tiles_run}, {"skipped", s.tiles_skipped}};
  j["tissue"] = {{"mode", o.tissue.mode}, {"fraction", tissue.tissue_fraction()}, {"pixels_predicted", s.covered_pixels}};
  j["seconds"] = s.seconds;
  j["tissue_mpix_per_s"] = s.seconds > 0 ? static_cast<double>(s.covered_pixels) / 1e6 / s.seconds : 0.0;
  j["peak_rss_mb"] = static_cast<double>(peak_rss_bytes()) / (1024.0 * 1024.0);
  result.summary_json = j.dump(2) + "\n";
  if (o.formats.count("json")) write_text_atomically(o.out_dir + "/summary.json", result.summary_json);
}

}  // namespace


InferResult run_inference(const Slide& slide, const TilePredictor& predict, const InferOptions& o) {
  InferResult result;
  const int64_t C = static_cast<int64_t>(o.class_names.size());
  SPVIT_CHECK(C >= 2, "inference needs at least 2 classes");
  // A level by number, else the resolution asked for (read from the next finer level and area-averaged when no
  // level has it, as training reads it), else level 0.
  result.level = o.level >= 0 ? o.level : 0;
  const SlideLevel L = o.level < 0 && o.mpp > 0
                           ? level_at_downsample(slide, slide.downsample_for_mpp(o.mpp), &result.level)
                           : slide.level(result.level);
  result.downsample = L.downsample;
  const bool rank0 = o.tiler.rank == 0 && !o.tiler.follower;
  log::info("slide '{}' ({}): {} level(s), running {} ({}x{}, downsample {:.4g}), tile {} overlap {} batch {}",
            slide.path(), slide.format(), slide.level_count(),
            result.level >= 0 ? "level " + std::to_string(result.level) : std::string("a resampled level"), L.width,
            L.height, L.downsample, o.tiler.tile, o.tiler.overlap, o.tiler.batch);

  const auto tissue = TissueMask::detect(slide, o.tissue);
  log::info("tissue ({}): {:.1f}% of the slide", o.tissue.mode, 100.0 * tissue.tissue_fraction());

  const double mpp_level = slide.mpp_x() > 0 ? slide.mpp_x() * L.downsample : 0;
  std::unique_ptr<PyramidTiffWriter> tiff;
  std::unique_ptr<ReducedLabels> reduced;
  // An output that cannot be written (disk full, permissions) must not leave the other ranks waiting in the
  // stripes' collectives: rank 0 records the first WriteError, drops its writers, keeps tiling with the others, and
  // the caller agrees on the error with every rank at the end (InferResult::write_error).
  auto record_write_error = [&](const std::function<void()>& write) {
    if (!result.write_error.empty()) return;
    try {
      write();
    } catch (const WriteError& e) {
      result.write_error = e.what();
      tiff.reset();
      reduced.reset();
    }
  };
  if (rank0) {
    record_write_error([&] {
      std::error_code ec;
      std::filesystem::create_directories(o.out_dir, ec);
      if (ec) throw WriteError(write_failure_message(o.out_dir, ec.value(), "creating the output folder"));
      if (o.formats.count("tiff")) tiff = std::make_unique<PyramidTiffWriter>(o.out_dir + "/mask.tiff", L.width, L.height, mpp_level);
      if (o.formats.count("geojson") || o.formats.count("png")) {
        reduced = std::make_unique<ReducedLabels>(L.width, L.height, o.reduced_side);
      }
    });
  }
  result.stats = run_tiled(slide, L, &tissue, predict, C, o.tiler,
                           [&](int64_t y0, const cv::Mat& labels, const torch::Tensor&) {
                             record_write_error([&] {
                               if (tiff) tiff->append(labels);
                               if (reduced) reduced->append(y0, labels);
                             });
                           });
  if (!rank0 || !result.write_error.empty()) return result;
  record_write_error([&] { write_outputs(slide, tissue, L, mpp_level, o, std::move(tiff), std::move(reduced), result); });
  return result;
}

}  // namespace spvit::infer
