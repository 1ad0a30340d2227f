// `spvit eval` on a model trained on NIfTI volumes: whole cases segmented as `spvit infer` does (sliding window,
// resampled back to each case's grid) and scored against their label files, per label and region, per case and mean.
#include <cstdio>
#include <map>

#include "infer_volumes.h"
#include "spvit/core/atomic_file.h"
#include "spvit/dist/output_agreement.h"
#include "volume_run.h"

namespace spvit::app {

int run_volume_evaluation(AppContext& ctx, const VolumeRunOptions& options, const Config& config,
                          const std::string& data_path, const std::string& out_dir) {
  const auto info = data::NiftiDatasetInfo::read(data_path.empty() ? config.data.path : data_path);
  const auto cases = data_path.empty() ? info.split("val", config.data.fold) : info.cases;
  if (cases.empty()) {
    SPVIT_THROW(ConfigError, "no case to evaluate: fold ", config.data.fold, " of '", info.root,
                "' has no validation case (pass --data DATASET_FOLDER)");
  }
  VolumeRun run(ctx, options);
  std::map<size_t, infer::CaseOverlap> scored;
  run.for_each_case(cases, [&](size_t i, const infer::VolumeSegmentation& s, bool writer) {
    if (!writer) return;
    const auto reference = infer::read_reference_labels(cases[i].label, s.header, cases[i].name);
    scored.emplace(i, infer::CaseOverlap::of(cases[i].name, s.labels, reference, run.model()));
  });
  const auto metrics = infer::volume_metrics_json(run.gather_overlaps(cases, scored), run.model());
  const std::string text = metrics.dump(2) + "\n";
  dist::write_on_one_rank(run.world(), run.world_writer(),
                          [&] { write_text_atomically(out_dir + "/metrics.json", text); });
  if (ctx.world_rank == 0) {
    print_volume_metrics(metrics);
    std::printf("metrics: %s/metrics.json\n", out_dir.c_str());
  }
  return 0;
}

}  // namespace spvit::app
