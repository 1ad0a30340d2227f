// `spvit data check --config X`: opens every slide and annotation of a slide dataset, or every case of a NIfTI
// dataset, and reports counts, class pixel fractions, resolution / spacing and every problem before a long run
// (docs/data.md, "Checking a slide dataset", "Volumes"). Exits 2 when it finds a problem.
#include <cstdio>
#include <filesystem>

#include "app_context.h"
#include "spvit/build_info.h"
#include "spvit/core/error.h"
#include "spvit/core/exit_codes.h"
#include "spvit/data/nifti_dataset.h"
#include "spvit/train/config_check.h"
#if SPVIT_HAVE_INFER
#include "spvit/data/slide_check.h"
#endif

namespace spvit::app {
namespace {

#if SPVIT_HAVE_INFER
std::string file_name(const std::string& path) { return std::filesystem::path(path).filename().string(); }

// The vector annotations' counts: per class, what was skipped and what was repaired.
void print_vector_annotations(const data::SlideCheck& c) {
  std::printf("\n    %s: %lld annotation(s), %lld polygon(s)", file_name(c.annotation).c_str(),
              static_cast<long long>(c.annotations), static_cast<long long>(c.polygons));
  std::string per_class;
  for (const auto& [name, n] : c.class_counts) per_class += (per_class.empty() ? "" : ", ") + name + " " + std::to_string(n);
  if (!per_class.empty()) std::printf(" (%s)", per_class.c_str());
  std::printf("; skipped %lld line(s), %lld point(s), %lld detection(s), %lld empty",
              static_cast<long long>(c.skipped_lines), static_cast<long long>(c.skipped_points),
              static_cast<long long>(c.skipped_detections), static_cast<long long>(c.skipped_empty));
  if (c.repaired > 0) {
    std::printf("; %lld invalid polygon(s) repaired (%lld left without area)", static_cast<long long>(c.repaired),
                static_cast<long long>(c.skipped_invalid));
  }
  std::printf("\n");
}

void print_slide(const data::SlideCheck& c, const DataConfig& d) {
  std::printf("[%s] %s: ", c.split.c_str(), file_name(c.slide).c_str());
  if (c.levels > 0) {
    std::printf("%s, %d level(s), %lldx%lld", c.format.c_str(), c.levels, static_cast<long long>(c.width),
                static_cast<long long>(c.height));
    if (c.mpp > 0) std::printf(", %.4g um/px (%s)", c.mpp, c.mpp_source.c_str());
    else std::printf(", no resolution");
    if (c.downsample > 0) std::printf(", read at downsample %.4g", c.downsample);
    if (c.tissue_fraction >= 0) std::printf(", tissue %.1f%%", 100.0 * c.tissue_fraction);
  }
  if (c.mask_width > 0) {
    std::string values;
    for (const auto& [name, n] : c.class_counts) values += (values.empty() ? "" : ", ") + name;
    std::printf("\n    %s: label mask %lldx%lld at downsample %.4g, values %s\n", file_name(c.annotation).c_str(),
                static_cast<long long>(c.mask_width), static_cast<long long>(c.mask_height), c.mask_downsample,
                values.empty() ? "(none)" : values.c_str());
  } else {
    print_vector_annotations(c);
  }
  if (!c.label_fractions.empty()) {
    std::printf("    pixels:");
    for (size_t k = 0; k + 1 < c.label_fractions.size(); ++k) {
      std::printf("%s %s %.1f%%", k ? "," : "", c.label_names[k].c_str(), 100.0 * c.label_fractions[k]);
    }
    if (d.unannotated == "ignore" || c.label_fractions.back() > 0) {
      std::printf(", ignored %.1f%%", 100.0 * c.label_fractions.back());
    }
    std::printf("\n");
  }
  for (const auto& p : c.problems) std::printf("    PROBLEM: %s\n", p.c_str());
}
#endif

// NIfTI datasets: one line per case (shape, spacing, label fractions) and its problems, then the normalisation.
int check_nifti(const Config& config) {
  const auto& d = config.data;
  const std::string cache = d.cache_dir.empty() ? config.train.out_dir + "/cache" : d.cache_dir;
  const auto report = data::check_nifti_dataset(d, cache);
  const auto& info = report.info;
  std::string channels, labels;
  for (const auto& c : info.channel_names) channels += (channels.empty() ? "" : ", ") + c;
  for (const auto& [name, value] : info.labels) labels += (labels.empty() ? "" : ", ") + name + " " + std::to_string(value);
  std::printf("NIfTI dataset (%s layout): data.path = %s, fold %lld; channels: %s; labels: %s\n",
              info.layout == "msd" ? "Medical Segmentation Decathlon" : "nnU-Net v2", d.path.c_str(),
              static_cast<long long>(d.fold), channels.c_str(), labels.c_str());
  int64_t train = 0, val = 0;
  for (const auto& c : report.cases) {
    (c.split == "train" ? train : val) += 1;
    std::printf("[%s] %s:", c.split.c_str(), c.name.c_str());
    if (!c.shape.empty()) {
      int64_t voxels = 0;
      for (const auto& [label, n] : c.label_counts) voxels += n;
      std::printf(" %lldx%lldx%lld voxels (i j k), %.4g x %.4g x %.4g mm;", static_cast<long long>(c.shape[0]),
                  static_cast<long long>(c.shape[1]), static_cast<long long>(c.shape[2]), c.spacing[0], c.spacing[1],
                  c.spacing[2]);
      for (const auto& [label, n] : c.label_counts) {
        std::string name = std::to_string(label);
        for (const auto& [l, v] : info.labels) if (v == label) name = l;
        std::printf(" %s %.2f%%", name.c_str(), 100.0 * static_cast<double>(n) / static_cast<double>(voxels));
      }
    }
    std::printf("\n");
    for (const auto& p : c.problems) std::printf("    PROBLEM: %s\n", p.c_str());
  }
  for (const auto& p : report.problems) std::printf("PROBLEM: %s\n", p.c_str());
  for (size_t ch = 0; ch < report.normalization.channels.size(); ++ch) {
    const auto& n = report.normalization.channels[ch];
    std::printf("normalisation of channel %zu (%s): %s", ch, info.channel_names[ch].c_str(), n.scheme.c_str());
    if (n.scheme == "ct") std::printf(" (clip %.6g..%.6g, mean %.6g, std %.6g)", n.low, n.high, n.mean, n.std);
    if (n.scheme == "zscore") std::printf(" (per case)");
    std::printf("\n");
  }
  const auto problems = report.problem_count();
  std::printf("%lld train case(s), %lld validation case(s): %lld problem(s)\n", static_cast<long long>(train),
              static_cast<long long>(val), static_cast<long long>(problems));
  return problems == 0 ? exit_code::kOk : exit_code::kConfigError;
}

void add_data_command(CLI::App& app, AppContext& ctx) {
  auto* data = app.add_subcommand("data", "Inspect training data");
  data->require_subcommand(1);
  auto* check = data->add_subcommand("check", "Open every slide and annotation (or NIfTI case) of the configured "
                                              "dataset and report counts, class fractions, resolution and problems");
  auto path = std::make_shared<std::string>();
  auto overrides = std::make_shared<std::vector<std::string>>();
  check->add_option("--config,-c", *path, "YAML configuration file")->required();
  check->add_option("--set", *overrides, "override a key, e.g. --set data.mpp=0.5 (repeatable)");
  check->callback([&ctx, path, overrides]() {
    ctx.run = [&ctx, path, overrides]() {
      const Config config = train::load_checked_config(*path, *overrides);
      const auto& d = config.data;
      if (d.source == "nifti") return ctx.world_rank == 0 ? check_nifti(config) : 0;
      if (d.source != "slides") {
        SPVIT_THROW(ConfigError, "spvit data check reads slide and NIfTI datasets (data.source: slides, nifti); '",
                    *path, "' has data.source = ", d.source);
      }
#if SPVIT_HAVE_INFER
      if (ctx.world_rank != 0) return 0;
      const std::string cache = d.cache_dir.empty() ? config.train.out_dir + "/cache" : d.cache_dir;
      const auto report = data::check_slide_dataset(d, cache);
      std::printf("slide dataset: data.path = %s%s%s\n", d.path.c_str(), d.val_path.empty() ? "" : ", data.val_path = ",
                  d.val_path.c_str());
      for (const auto& s : report.slides) print_slide(s, d);
      for (const auto& p : report.problems) std::printf("PROBLEM: %s\n", p.c_str());
      int64_t train = 0, val = 0, polygons = 0;
      for (const auto& s : report.slides) (s.split == "train" ? train : val) += 1, polygons += s.polygons;
      const auto problems = report.problem_count();
      std::printf("%lld train slide(s), %lld validation slide(s), %lld polygon(s): %lld problem(s)\n",
                  static_cast<long long>(train), static_cast<long long>(val), static_cast<long long>(polygons),
                  static_cast<long long>(problems));
      return problems == 0 ? exit_code::kOk : exit_code::kConfigError;
#else
      SPVIT_THROW(ConfigError, "slide datasets need a build with OpenCV and libtiff (scripts/install-deps.sh)");
#endif
    };
  });
}

const CommandRegistration data_registration("data", add_data_command);

}  // namespace
}  // namespace spvit::app
