// `spvit synth`: writes a synthetic dataset (pathology-like 2D or MRI-like 3D) to an HDF5 file or an image folder,
// or (--format slides) pyramidal whole-slide TIFFs with QuPath GeoJSON and ASAP XML annotations, so that training, evaluation and
// other tools can be tried on files without real data.
#include <cstdio>

#include "app_context.h"
#include "spvit/build_info.h"
#include "spvit/core/atomic_file.h"
#include "spvit/core/error.h"
#include "spvit/core/timer.h"
#include "spvit/data/formats.h"
#include "spvit/data/synthetic_nifti.h"
#include "spvit/data/synthetic.h"
#if SPVIT_HAVE_INFER
#include "spvit/infer/synthetic_slides.h"
#endif

namespace spvit::app {

namespace {

struct SynthArgs {
  std::string kind = "pathology";
  int64_t count = 8;
  std::vector<int64_t> size;  // one side for every axis, or one value per axis
  uint64_t seed = 0;
  std::string out;
  bool float_images = false;
  std::string format = "auto";  // auto (by --out: .h5 or a folder), h5, folder, slides
  double mpp = 0.5;             // slides: micrometres per level-0 pixel
  int64_t feature_scale = 192;  // slides: glands on a 48-pixel grid, tissue blobs of 64 pixels, at any slide size
  int64_t val = 0;              // slides: the last `val` slides are the manifest's val split; nifti: held out
  double lesion_scale = 1.0;    // mri: tumour radii multiplier
  std::string layout = "nnunet";  // nifti: nnunet (v2) or msd
  int64_t channels = 1;         // nifti: MR contrasts per case
  std::vector<double> spacing{0.9, 0.9, 2.5};  // nifti: mm per voxel along i, j, k
};

bool is_hdf5_path(const std::string& path) {
  for (const char* ext : {".h5", ".hdf5", ".hdf"}) {
    const std::string e(ext);
    if (path.size() >= e.size() && path.compare(path.size() - e.size(), e.size(), e) == 0) return true;
  }
  return false;
}

// --format slides: <out>/slides/slide_NNN.tiff + <out>/annotations/slide_NNN.geojson and .xml, one slide per --count;
// manifest.csv names the GeoJSON files, manifest-asap.csv the ASAP XML files.
int run_synth_slides(const SynthArgs& args, int rank) {
  if (args.kind != "pathology") SPVIT_THROW(ConfigError, "--format slides writes pathology slides, not --kind ", args.kind);
  if (args.size.empty() || args.size.size() > 2) {
    SPVIT_THROW(ConfigError, "--size takes 1 or 2 values (H W) for --format slides, got ", args.size.size());
  }
#if SPVIT_HAVE_INFER
  if (rank != 0) return 0;
  Stopwatch watch;
  infer::SyntheticSlideOptions o;
  o.height = args.size[0];
  o.width = args.size.back();
  o.mpp = args.mpp;
  o.feature_scale = args.feature_scale;
  if (args.val < 0 || args.val > args.count) {
    SPVIT_THROW(ConfigError, "--val ", args.val, " must be between 0 and --count ", args.count);
  }
  int64_t polygons = 0;
  std::string manifest = "slide,annotation,split\n", manifest_asap = manifest;
  for (int64_t i = 0; i < args.count; ++i) {
    o.seed = args.seed * 1000003 + static_cast<uint64_t>(i);
    char name[32];
    std::snprintf(name, sizeof name, "slide_%03lld", static_cast<long long>(i));
    polygons += infer::write_synthetic_slide(args.out, name, o).polygons;
    const std::string split = i >= args.count - args.val ? "val" : "train";
    manifest += std::string("slides/") + name + ".tiff,annotations/" + name + ".geojson," + split + "\n";
    manifest_asap += std::string("slides/") + name + ".tiff,annotations/" + name + ".xml," + split + "\n";
  }
  write_text_atomically(args.out + "/manifest.csv", manifest);
  write_text_atomically(args.out + "/manifest-asap.csv", manifest_asap);
  std::printf("wrote %lld synthetic slide(s) of %lldx%lld (HxW) at %.3g um/px with %lld annotation polygon(s) to "
              "'%s' (slides/, annotations/ as GeoJSON and ASAP XML, manifest.csv, manifest-asap.csv) in %.2f s\n",
              static_cast<long long>(args.count), static_cast<long long>(o.height), static_cast<long long>(o.width),
              o.mpp, static_cast<long long>(polygons), args.out.c_str(), watch.seconds());
  return 0;
#else
  (void)rank;
  SPVIT_THROW(ConfigError, "--format slides needs a build with OpenCV and libtiff (see `spvit info`)");
#endif
}

// --format nifti: data::write_synthetic_nifti (data/synthetic_nifti.h).
int run_synth_nifti(const SynthArgs& args, int rank) {
  if (args.kind != "mri") SPVIT_THROW(ConfigError, "--format nifti writes MRI-like volumes: add --kind mri");
  if (args.spacing.size() != 3) SPVIT_THROW(ConfigError, "--spacing takes 3 values (mm along i, j, k)");
  data::SyntheticNiftiOptions o;
  if (args.size.size() == 1) o.shape.assign(3, args.size[0]);
  else if (args.size.size() == 3) o.shape = args.size;
  else SPVIT_THROW(ConfigError, "--size takes 1 or 3 values (D H W) for --format nifti, got ", args.size.size());
  o.layout = args.layout;
  o.count = args.count;
  o.held_out = args.val;
  o.channels = args.channels;
  o.spacing = {args.spacing[0], args.spacing[1], args.spacing[2]};
  o.seed = args.seed;
  o.lesion_scale = args.lesion_scale;
  if (rank != 0) return 0;
  Stopwatch watch;
  data::write_synthetic_nifti(args.out, o);
  std::printf("wrote %lld synthetic MRI case(s) of %s voxels (D H W), %lld channel(s), spacing %g x %g x %g mm, in the "
              "%s layout to '%s' (%lld held out in imagesTs/, labelsTs/) in %.2f s\n",
              static_cast<long long>(o.count), data::shape_string(o.shape).c_str(), static_cast<long long>(o.channels),
              o.spacing[0], o.spacing[1], o.spacing[2],
              o.layout == "msd" ? "Medical Segmentation Decathlon" : "nnU-Net v2", args.out.c_str(),
              static_cast<long long>(o.held_out), watch.seconds());
  return 0;
}

int run_synth(const SynthArgs& args, int rank) {
  if (args.format == "slides") return run_synth_slides(args, rank);
  if (args.format == "nifti") return run_synth_nifti(args, rank);
  data::SyntheticOptions o;
  o.spatial_dims = args.kind == "mri" ? 3 : 2;
  o.count = args.count;
  o.seed = args.seed;
  o.lesion_scale = args.lesion_scale;
  if (args.size.size() == 1) o.shape.assign(o.spatial_dims, args.size[0]);
  else if (static_cast<int>(args.size.size()) == o.spatial_dims) o.shape = args.size;
  else SPVIT_THROW(ConfigError, "--size takes 1 or ", o.spatial_dims, " values for --kind ", args.kind, ", got ", args.size.size());
  const auto dataset = args.kind == "mri" ? data::make_synthetic_mri(o) : data::make_synthetic_pathology(o);
  if (rank != 0) return 0;  // one writer
  Stopwatch watch;
  const bool h5 = args.format == "auto" ? is_hdf5_path(args.out) : args.format == "h5";
  if (h5) {
    data::Hdf5WriteOptions w;
    w.float_images = args.float_images;
    data::write_hdf5(args.out, *dataset, w);
  } else {
    if (o.spatial_dims != 2) {
      SPVIT_THROW(ConfigError, "--kind mri writes 3-D volumes, which need an HDF5 file (--out NAME.h5), not the folder '",
                  args.out, "'");
    }
    data::write_image_folder(args.out, *dataset);
  }
  std::printf("wrote %s: %lld samples of %s, %lld channel(s), %lld classes, to %s '%s' in %.2f s\n",
              dataset->describe().c_str(), static_cast<long long>(dataset->size()), data::shape_string(o.shape).c_str(),
              static_cast<long long>(dataset->channels()), static_cast<long long>(dataset->num_classes()),
              h5 ? "HDF5 file" : "image folder", args.out.c_str(), watch.seconds());
  return 0;
}

void add_synth_command(CLI::App& app, AppContext& ctx) {
  auto* cmd = app.add_subcommand("synth", "Write a synthetic dataset (pathology-like 2D or MRI-like 3D) to HDF5 or a folder");
  auto args = std::make_shared<SynthArgs>();
  cmd->add_option("--kind", args->kind, "pathology (2D RGB, 4 classes) or mri (3D, 1 channel, 4 classes)")
      ->check(CLI::IsMember({"pathology", "mri"}))
      ->capture_default_str();
  cmd->add_option("--count", args->count, "number of samples")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--size", args->size, "side of every axis (S), or one per axis (H W / D H W)")->required();
  cmd->add_option("--seed", args->seed, "random seed")->capture_default_str();
  cmd->add_option("--out", args->out, "NAME.h5 (HDF5 file) or a folder (images/ + masks/ PNGs, 2D only; or the slides)")
      ->required();
  cmd->add_flag("--float", args->float_images, "store HDF5 images as float32 instead of uint8");
  cmd->add_option("--format", args->format,
                  "auto (by --out), h5, folder, slides (pyramidal TIFFs + QuPath GeoJSON in <out>/slides, "
                  "<out>/annotations), or nifti (--kind mri: an nnU-Net v2 or MSD dataset folder)")
      ->check(CLI::IsMember({"auto", "h5", "folder", "slides", "nifti"}))
      ->capture_default_str();
  cmd->add_option("--mpp", args->mpp, "slides: micrometres per level-0 pixel")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--layout", args->layout, "nifti: nnunet (v2: a file per channel) or msd (one 4-D file per case)")
      ->check(CLI::IsMember({"nnunet", "msd"}))
      ->capture_default_str();
  cmd->add_option("--channels", args->channels, "nifti: MR contrasts per case (1: FLAIR-like; 2: also T1-like)")
      ->capture_default_str();
  cmd->add_option("--spacing", args->spacing, "nifti: voxel spacing in mm along i, j, k (W, H, D)")
      ->expected(3)
      ->capture_default_str();
  cmd->add_option("--val", args->val, "slides: the last N slides form the val split of <out>/manifest.csv; nifti: "
                                      "the last N cases are held out in imagesTs/ + labelsTs/")
      ->capture_default_str();
  cmd->add_option("--lesion-scale", args->lesion_scale, "mri: tumour radii multiplier (2: BraTS-like tumour "
                  "fractions of the head)")
      ->check(CLI::Range(0.1, 4.0))
      ->capture_default_str();
  cmd->add_option("--feature-scale", args->feature_scale,
                  "slides: the image side the generator sizes its features for (glands on a side/4 grid); 0 = the "
                  "slide's own side")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->callback([&ctx, args]() { ctx.run = [&ctx, args]() { return run_synth(*args, ctx.world_rank); }; });
}

const CommandRegistration synth_registration("synth", add_synth_command);

}  // namespace
}  // namespace spvit::app
