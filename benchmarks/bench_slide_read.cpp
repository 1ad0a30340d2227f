// Slide read throughput per rank: what one training step reads from a pyramidal whole-slide TIFF, in Mpix/s, and
// the shortest step time the reader keeps up with (the loader reads ahead of the step, so reading costs nothing
// while it is faster than the step). Cases (docs/data.md, "Slide read throughput"):
//   uniform S²: each of P sequence ranks reads its band of S/P rows through SlideDataset::read (slide pixels; with a
//     generated slide no annotations, so that the reader is timed, not the rasteriser), at level 0 (downsample 1) and at downsample 2 (a pyramid level) and 1.5
//     (area-averaged from level 0);
//   adaptive 65536²: planning reads the whole region, today at full resolution band by band, and would read only
//     the pyramid level f = data.patcher.score_downsample coarser; both timed here on the slide at hand and scaled to
//     65536² pixels by the measured Mpix/s.
// The host memory of one band: the uint8 image + int16 labels a loader holds (band MiB), and the float32 + int64 copy
// the model gets (stack_batch; model MiB); the process's peak resident memory at the end.
//   bench_slide_read [--side N (generated slide, default 16384)] [--slide PATH --annotations PATH]
//                    [--region S (default 8192)] [--repeats R (default 3)]
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include "spvit/core/device_memory.h"
#include "spvit/core/timer.h"
#include "spvit/data/slide.h"
#include "spvit/data/slide_dataset.h"
#include "spvit/data/synthetic.h"
#include "spvit/infer/synthetic_slides.h"
#include "spvit/train/data_setup.h"

using namespace spvit;

namespace {

struct Args {
  int64_t side = 16384, region = 8192, repeats = 3;
  std::string slide, annotations;
};

double mib(double bytes) { return bytes / (1024.0 * 1024.0); }

data::SlideDatasetOptions dataset_options(const Args& a, double downsample_mpp, double slide_mpp) {
  data::SlideDatasetOptions o;
  o.entries = {{a.slide, a.annotations, "train"}};
  o.source = a.slide;
  o.mpp = downsample_mpp * slide_mpp;
  const auto names = data::synthetic_pathology_classes();
  for (size_t k = 1; k < names.size(); ++k) o.classes.ids[names[k]] = static_cast<int64_t>(k);
  o.tissue.mode = "none";  // regions anywhere on the slide: the reader, not the sampler, is measured
  o.size = a.region;
  o.count = a.repeats;
  o.seed = 3;
  return o;
}

// Uniform S²: rank 0 of P reads its band; Mpix/s over `repeats` regions.
void uniform_case(const Args& a, double ds, double slide_mpp) {
  const data::SlideDataset dataset(dataset_options(a, ds, slide_mpp));
  const std::vector<int64_t> shape{a.region, a.region};
  for (int64_t ranks : {1, 2, 4, 8}) {
    const auto band = data::band_region(shape, 0, 0, a.region / ranks);
    (void)dataset.read(0, band);  // warm-up: first touches of the slide's tiles and of fresh memory
    double seconds = 0, pixels = 0, held = 0, model = 0;
    for (int64_t i = 0; i < a.repeats; ++i) {
      Stopwatch watch;
      auto sample = dataset.read(i, band);
      seconds += watch.seconds();
      pixels += static_cast<double>(band.numel());
      held = static_cast<double>(sample.image.nbytes() + sample.mask.nbytes());
      const auto [images, masks] = train::stack_batch({sample});
      model = static_cast<double>(images.nbytes() + masks.nbytes());
    }
    const double mpix_s = pixels / seconds / 1e6;
    std::printf("| uniform %lld², downsample %-4g | %5lld | %9.1f | %8.1f | %10.2f | %8.0f | %8.0f |\n",
                static_cast<long long>(a.region), ds, static_cast<long long>(ranks),
                static_cast<double>(band.numel()) / 1e6, mpix_s, static_cast<double>(band.numel()) / 1e6 / mpix_s,
                mib(held), mib(model));
    std::fflush(stdout);
  }
}

// Planning a 65536² adaptive sample: the whole region read at full resolution vs from a level f coarser.
void adaptive_case(const Args& a, const data::Slide& slide) {
  constexpr double kSide = 65536.0;
  const int64_t side = std::min(slide.level(0).width, slide.level(0).height);
  for (int64_t f : {1, 8, 16}) {
    // Output blocks of up to 2048 × 512 pixels at 1/f, inside the slide.
    const int64_t ow = std::min<int64_t>(2048, side / f), oh = std::min<int64_t>(512, side / f);
    (void)slide.read_scaled(static_cast<double>(f), 0, 0, ow, oh);
    Stopwatch watch;
    double pixels = 0;
    for (int64_t i = 0; i < a.repeats; ++i) {
      const int64_t y = (i * 977) % std::max<int64_t>(1, side / f - oh);
      pixels += static_cast<double>(slide.read_scaled(static_cast<double>(f), 0, y, ow, oh).size(0) * ow);
    }
    const double mpix_s = pixels / watch.seconds() / 1e6;
    const double plan_mpix = kSide * kSide / static_cast<double>(f * f) / 1e6;
    std::printf("| adaptive 65536² plan, read at 1/%-3lld |     - | %9.1f | %8.1f | %10.2f |        - |        - |\n",
                static_cast<long long>(f), plan_mpix, mpix_s, plan_mpix / mpix_s);
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--side") a.side = std::stoll(v);
    else if (k == "--slide") a.slide = v;
    else if (k == "--annotations") a.annotations = v;
    else if (k == "--region") a.region = std::stoll(v);
    else if (k == "--repeats") a.repeats = std::stoll(v);
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  const auto dir = std::filesystem::temp_directory_path() / ("spvit_bench_slide_" + std::to_string(::getpid()));
  if (a.slide.empty()) {
    Stopwatch watch;
    infer::SyntheticSlideOptions o;
    o.width = o.height = a.side;
    o.mpp = 0.25;
    o.feature_scale = 192;
    o.asap = false;  // only the GeoJSON is read here
    const auto written = infer::write_synthetic_slide(dir.string(), "slide", o);
    a.slide = written.slide;
    // No annotations: the slide reader is measured, not the rasteriser (whose cost grows with the polygons' vertices
    // per row: the generator's tissue outline with a hole per nucleus is an extreme case).
    a.annotations = (dir / "empty.geojson").string();
    std::ofstream(a.annotations) << R"({"type": "FeatureCollection", "features": []})";
    std::printf("generated a %lld² slide (0.25 um/px, %lld polygons) in %.1f s\n", static_cast<long long>(a.side),
                static_cast<long long>(written.polygons), watch.seconds());
  }
  const auto slide = data::Slide::open(a.slide);
  std::printf("slide %s: %lldx%lld, %d levels, LibTorch intra-op threads %d\n\n", a.slide.c_str(),
              static_cast<long long>(slide->level(0).width), static_cast<long long>(slide->level(0).height),
              slide->level_count(), at::get_num_threads());
  std::printf("| case                              | ranks | Mpix/rank | Mpix/s   | min step s | band MiB | model MiB |\n");
  std::printf("|-----------------------------------|-------|-----------|----------|------------|----------|-----------|\n");
  const double mpp = slide->mpp_x() > 0 ? slide->mpp_x() : 0.25;
  for (double ds : {1.0, 2.0, 1.5}) uniform_case(a, ds, mpp);
  adaptive_case(a, *slide);
  std::printf("\nprocess peak resident memory: %.0f MiB\n", mib(process_memory_bytes("VmHWM:")));
  std::filesystem::remove_all(dir);
  return 0;
}
