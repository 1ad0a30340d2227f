// `spvit synth`: writes a synthetic dataset (pathology-like 2D or MRI-like 3D) to an HDF5 file or an image folder,
// so that training, evaluation and other tools can be tried on files without real data.
#include <cstdio>

#include "app_context.h"
#include "spvit/core/error.h"
#include "spvit/core/timer.h"
#include "spvit/data/formats.h"
#include "spvit/data/synthetic.h"

namespace spvit::app {

namespace {

struct SynthArgs {
  std::string kind = "pathology";
  int64_t count = 8;
  std::vector<int64_t> size;  // one side for every axis, or one value per axis
  uint64_t seed = 0;
  std::string out;
  bool float_images = false;
};

bool is_hdf5_path(const std::string& path) {
  for (const char* ext : {".h5", ".hdf5", ".hdf"}) {
    const std::string e(ext);
    if (path.size() >= e.size() && path.compare(path.size() - e.size(), e.size(), e) == 0) return true;
  }
  return false;
}

int run_synth(const SynthArgs& args, int rank) {
  data::SyntheticOptions o;
  o.spatial_dims = args.kind == "mri" ? 3 : 2;
  o.count = args.count;
  o.seed = args.seed;
  if (args.size.size() == 1) o.shape.assign(o.spatial_dims, args.size[0]);
  else if (static_cast<int>(args.size.size()) == o.spatial_dims) o.shape = args.size;
  else SPVIT_THROW(ConfigError, "--size takes 1 or ", o.spatial_dims, " values for --kind ", args.kind, ", got ", args.size.size());
  const auto dataset = args.kind == "mri" ? data::make_synthetic_mri(o) : data::make_synthetic_pathology(o);
  if (rank != 0) return 0;  // one writer
  Stopwatch watch;
  const bool h5 = is_hdf5_path(args.out);
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
  cmd->add_option("--out", args->out, "NAME.h5 (HDF5 file) or a folder (images/ + masks/ PNGs, 2D only)")->required();
  cmd->add_flag("--float", args->float_images, "store HDF5 images as float32 instead of uint8");
  cmd->callback([&ctx, args]() { ctx.run = [&ctx, args]() { return run_synth(*args, ctx.world_rank); }; });
}

const CommandRegistration synth_registration("synth", add_synth_command);

}  // namespace
}  // namespace spvit::app
