// `spvit patchify`: runs the adaptive patcher on one image (a file, or a generated tissue-like image) and shows what
// it did: a picture with the leaf borders, token count, leaf-size histogram, coverage per level, time per stage.
// The layout code is the one training and inference use; this command only adds reporting.
#include <cmath>
#include <cstdio>
#include <map>

#include "app_context.h"
#include "spvit/core/error.h"
#include "spvit/core/timer.h"
#include "spvit/patch/extract.h"
#include "spvit/patch/image_io.h"
#include "spvit/patch/patcher.h"

namespace spvit::app {

namespace {

struct PatchifyArgs {
  std::string image;
  int64_t synthetic = 0;
  double tissue_fraction = 0.35;
  uint64_t seed = 1;
  std::string out, json, h5;
  int64_t out_size = 2048;
  uint64_t sample = 0;
  patch::PatcherOptions options;
};

double mpix_per_s(int64_t pixels, double seconds) { return static_cast<double>(pixels) / 1e6 / std::max(seconds, 1e-9); }

// Leaves per side and the fraction of image pixels each level covers (leaf area clipped to the image).
void print_histogram(const patch::PatchLayout& layout) {
  std::map<int64_t, std::pair<int64_t, double>, std::greater<int64_t>> by_side;  // side -> (leaves, pixels)
  for (int64_t i = 0; i < layout.length(); ++i) {
    if (layout.empty_slot(i)) continue;
    double covered = 1;
    for (int a = 0; a < layout.spatial_dims; ++a) {
      const int64_t c = layout.coord(a, i);
      covered *= static_cast<double>(std::max<int64_t>(0, std::min(c + layout.side[i], layout.image_extent(a)) - c));
    }
    auto& entry = by_side[layout.side[i]];
    entry.first += 1;
    entry.second += covered;
  }
  std::printf("leaf sides:  %8s %6s %8s %9s\n", "side", "level", "leaves", "pixels");
  for (const auto& [side, entry] : by_side) {
    const int64_t level = static_cast<int64_t>(std::llround(std::log2(static_cast<double>(layout.root_side / side))));
    std::printf("             %8lld %6lld %8lld %8.2f%%\n", static_cast<long long>(side), static_cast<long long>(level),
                static_cast<long long>(entry.first), 100.0 * entry.second / static_cast<double>(layout.num_pixels()));
  }
}

int run_patchify(const PatchifyArgs& args) {
  auto o = args.options;
  if (args.image.empty() == (args.synthetic == 0)) {
    SPVIT_THROW(ConfigError, "patchify needs exactly one of IMAGE or --synthetic SIDE");
  }
  const auto& kind = patch::patchers().at(o.kind);
  if (kind.spatial_dims == 3 || o.spatial_dims != 2) SPVIT_THROW(ConfigError, "patchify works on 2-D images");
  Stopwatch watch;
  torch::Tensor image;
  std::string source;
  if (!args.image.empty()) {
    image = patch::read_image(args.image);
    source = args.image;
  } else {
    image = patch::synthetic_tissue(args.synthetic, args.seed, args.tissue_fraction);
    source = "synthetic tissue (seed " + std::to_string(args.seed) + ", tissue fraction " +
             std::to_string(args.tissue_fraction).substr(0, 4) + ")";
  }
  const double t_load = watch.seconds();
  const int64_t H = image.size(0), W = image.size(1), pixels = H * W;
  std::printf("image:       %s, %lld x %lld x %lld\n", source.c_str(), static_cast<long long>(W),
              static_cast<long long>(H), static_cast<long long>(image.size(2)));

  patch::PatchLayout layout;
  double t_score = 0, t_tree = 0;
  if (!kind.adaptive) {
    o.length = 0;  // exactly the grid's tokens
    watch.reset();
    layout = patch::make_patcher(o)->plan(image);
    t_tree = watch.seconds();
  } else {
    const patch::QuadtreePatcher patcher(o);
    watch.reset();
    const auto scores = patcher.score(image, args.sample);
    t_score = watch.seconds();
    watch.reset();
    layout = patcher.refine(scores);
    t_tree = watch.seconds();
  }
  watch.reset();
  const auto tokens = patch::extract(image, layout);
  const double t_extract = watch.seconds();
  watch.reset();
  const auto restored = patch::paste(tokens, layout);
  const double t_paste = watch.seconds();
  const double mse = (restored - image.to(torch::kFloat32)).pow(2).mean().item<double>();
  const double psnr = mse > 0 ? 10.0 * std::log10(255.0 * 255.0 / mse) : INFINITY;

  const int64_t P = layout.patch;
  const int64_t uniform = ((H + P - 1) / P) * ((W + P - 1) / P);
  std::printf("layout:      %s, scorer %s, P=%lld, L=%lld, min side %lld, root %lld\n", o.kind.c_str(),
              layout.scorer.c_str(), static_cast<long long>(P), static_cast<long long>(layout.length()),
              static_cast<long long>(layout.min_side), static_cast<long long>(layout.root_side));
  std::printf("tokens:      %lld = %lld leaves + %lld empty; a uniform %lldx%lld grid needs %lld tokens (%.1fx more)\n",
              static_cast<long long>(layout.length()), static_cast<long long>(layout.num_leaves()),
              static_cast<long long>(layout.length() - layout.num_leaves()), static_cast<long long>(P),
              static_cast<long long>(P), static_cast<long long>(uniform),
              static_cast<double>(uniform) / static_cast<double>(layout.length()));
  print_histogram(layout);
  std::printf("paste(extract(image)): PSNR %.2f dB (tokens %lld x %lld)\n", psnr, static_cast<long long>(tokens.size(0)),
              static_cast<long long>(tokens.size(1)));

  watch.reset();
  if (!args.json.empty()) patch::save_json(layout, args.json);
  if (!args.h5.empty()) patch::save_hdf5(layout, args.h5);
  if (!args.out.empty()) patch::write_image(args.out, patch::draw_layout(image, layout, args.out_size));
  const double t_write = watch.seconds();
  std::printf("time:        load %.3f s | score+SAT %.3f s (%.0f Mpix/s) | tree %.4f s | extract %.3f s (%.0f Mpix/s) | "
              "paste %.3f s (%.0f Mpix/s) | write %.3f s\n",
              t_load, t_score, mpix_per_s(pixels, t_score), t_tree, t_extract, mpix_per_s(pixels, t_extract), t_paste,
              mpix_per_s(pixels, t_paste), t_write);
  if (!args.out.empty()) std::printf("wrote %s\n", args.out.c_str());
  std::fflush(stdout);
  return 0;
}

void add_patchify_command(CLI::App& app, AppContext& ctx) {
  auto* cmd = app.add_subcommand("patchify", "Adaptive patching of one image: layout picture, statistics, timings");
  auto args = std::make_shared<PatchifyArgs>();
  auto& o = args->options;
  o.length = 4096;
  cmd->add_option("image", args->image, "image file (PNG, JPEG, TIFF, ...)");
  cmd->add_option("--synthetic", args->synthetic, "generate a tissue-like SIDE x SIDE image instead of reading one")
      ->check(CLI::Range(int64_t{2}, int64_t{1} << 17));
  cmd->add_option("--tissue-fraction", args->tissue_fraction, "synthetic: fraction of the area covered by tissue")
      ->default_val(args->tissue_fraction)->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--seed", args->seed, "synthetic: random seed")->default_val(args->seed);
  cmd->add_option("--length,-L", o.length, "fixed sequence length L (ignored by --kind uniform)")->default_val(o.length);
  cmd->add_option("--patch,-P", o.patch, "token tile side P (a power of two)")->default_val(o.patch);
  cmd->add_option("--scorer", o.scorer, patch::scorers().names_text())
      ->default_val(o.scorer)->check(CLI::IsMember(patch::scorer_names()));
  cmd->add_option("--min-side", o.min_side, "smallest leaf side (0 = P/4)")->default_val(o.min_side);
  // patchify plans 2-D images
  const auto kinds_2d = patch::patchers().names_where([](const auto& e) { return e.spatial_dims != 3; });
  cmd->add_option("--kind", o.kind, "patcher")->default_val(o.kind)->check(CLI::IsMember(kinds_2d));
  cmd->add_option("--canny-low", o.scoring.canny_low, "edges: Canny low threshold")->default_val(o.scoring.canny_low);
  cmd->add_option("--canny-high", o.scoring.canny_high, "edges: Canny high threshold")->default_val(o.scoring.canny_high);
  cmd->add_option("--blur", o.scoring.blur_kernel, "edges: Gaussian kernel side (odd, 1 = none)")
      ->default_val(o.scoring.blur_kernel);
  cmd->add_flag("--augment", o.scoring.augment, "edges: draw thresholds and blur for --sample from --seed");
  cmd->add_option("--sample", args->sample, "sample index for the augmentation draw")->default_val(args->sample);
  cmd->add_option("--texture-window", o.scoring.texture_window, "texture: LBP entropy block side")
      ->default_val(o.scoring.texture_window);
  cmd->add_option("--out", args->out, "PNG with the leaf borders drawn over the image");
  cmd->add_option("--out-size", args->out_size, "longer side of the --out picture (0 = full size)")
      ->default_val(args->out_size);
  cmd->add_option("--json", args->json, "write the layout as JSON");
  cmd->add_option("--h5", args->h5, "write the layout as HDF5");
  cmd->callback([&ctx, args]() {
    args->options.scoring.seed = args->seed;
    // One rank does the work: patchify is a single-image inspection tool.
    ctx.run = [&ctx, args]() { return ctx.world_rank == 0 ? run_patchify(*args) : 0; };
  });
}

const CommandRegistration patchify_registration("patchify", add_patchify_command);

}  // namespace
}  // namespace spvit::app
