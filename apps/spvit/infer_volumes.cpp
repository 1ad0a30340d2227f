// `spvit infer --input CASE.nii.gz | FOLDER`: 3D inference (docs/inference.md, "Volumes"). Every case's label map is
// written as <out>/<case>.nii.gz with the input's geometry, and <out>/summary.json lists each case's label and region
// volumes. With mpirun -np N the cases are split over N / seq data groups; each group's first rank writes its cases.
#include "infer_volumes.h"

#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>

#include "spvit/core/atomic_file.h"
#include "spvit/core/error.h"
#include "spvit/data/nifti_file.h"
#include "spvit/dist/output_agreement.h"
#include "volume_run.h"

namespace spvit::app {

void print_volume_metrics(const nlohmann::json& m) {
  for (const auto& [name, scores] : m["per_case"].items()) {
    std::printf("%s: Dice", name.c_str());
    for (const auto& [structure, d] : scores.items()) {
      if (d.is_null()) {
        std::printf(" %s -", structure.c_str());
      } else {
        std::printf(" %s %.4f", structure.c_str(), d.get<double>());
      }
    }
    std::printf("\n");
  }
  std::printf("mean Dice over %zu case(s):", m["cases"].get<size_t>());
  for (const auto& [structure, d] : m["mean"].items()) {
    if (!d.is_null()) std::printf(" %s %.4f", structure.c_str(), d.get<double>());
  }
  std::printf("; mean foreground Dice %.4f\n", m["mean_foreground_dice"].get<double>());
}

int run_volume_inference(AppContext& ctx, const VolumeRunOptions& options, const std::string& input,
                         const std::string& out_dir, const std::string& labels_dir) {
  VolumeRun run(ctx, options);
  const auto& model = run.model();
  const auto cases = infer::volume_cases(input, static_cast<int64_t>(model.channel_names.size()));
  const auto K = run.classes();
  // A label map must never replace an input (e.g. --out pointing at the images' own folder).
  for (const auto& c : cases) {
    const auto target = std::filesystem::weakly_canonical(out_dir + "/" + c.name + ".nii.gz");
    for (const auto& image : c.images) {
      if (std::filesystem::weakly_canonical(image) == target) {
        SPVIT_THROW(ConfigError, "--out '", out_dir, "' would overwrite the input '", image, "' with its label map: ",
                    "choose another output folder");
      }
    }
  }
  // Every reference label map is found before any case runs (a missing one is an error, not a hang of the others).
  std::vector<std::string> references;
  for (const auto& c : cases) {
    if (labels_dir.empty()) break;
    std::string path = labels_dir + "/" + c.name + ".nii.gz";
    if (!std::filesystem::exists(path) && std::filesystem::exists(labels_dir + "/" + c.name + ".nii")) {
      path = labels_dir + "/" + c.name + ".nii";
    }
    if (!std::filesystem::exists(path)) {
      SPVIT_THROW(DataError, "--labels: case '", c.name, "' has no reference label map '", path, "'");
    }
    references.push_back(path);
  }
  // Per case: voxels per label, seconds, windows (summed over the ranks: only the case's writer fills its row).
  auto totals = torch::zeros({static_cast<int64_t>(cases.size()), K + 2}, torch::kFloat64);
  std::string write_error;
  std::map<size_t, infer::CaseOverlap> scored;  // --labels: this rank's cases against their references
  run.for_each_case(cases, [&](size_t i, const infer::VolumeSegmentation& s, bool writer) {
    if (!writer) return;
    if (!labels_dir.empty()) {
      const auto reference = infer::read_reference_labels(references[i], s.header, cases[i].name);
      scored.emplace(i, infer::CaseOverlap::of(cases[i].name, s.labels, reference, model));
    }
    auto row = totals[static_cast<int64_t>(i)];
    row.narrow(0, 0, K).copy_(infer::label_voxels(s.labels, K));
    row[K] = s.seconds;
    row[K + 1] = static_cast<double>(s.windows.windows);
    try {
      const auto labels = s.labels.contiguous();  // [k][j][i]: file order
      data::write_nifti_labels(out_dir + "/" + cases[i].name + ".nii.gz", s.header,
                               std::vector<int64_t>(s.header.shape.begin(), s.header.shape.begin() + 3),
                               labels.data_ptr<uint8_t>());
    } catch (const WriteError& e) {
      write_error = e.what();
    }
  });
  run.sum_over_ranks(totals);
  dist::agree_on_write_errors(run.world(), write_error);
  std::optional<nlohmann::json> metrics;
  if (!labels_dir.empty()) metrics = infer::volume_metrics_json(run.gather_overlaps(cases, scored), model);
  nlohmann::json summary;
  summary["classes"] = model.class_names;
  summary["regions"] = nlohmann::json::object();
  for (const auto& r : model.regions) summary["regions"][r.name] = r.labels;
  double seconds = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto row = totals[static_cast<int64_t>(i)];
    auto c = infer::volume_summary(data::read_nifti_header(cases[i].images[0]), row.narrow(0, 0, K), model);
    c["label_map"] = cases[i].name + ".nii.gz";
    c["seconds"] = row[K].item<double>();
    c["windows"] = static_cast<int64_t>(row[K + 1].item<double>());
    seconds += row[K].item<double>();
    summary["cases"][cases[i].name] = c;
  }
  if (metrics) summary["metrics"] = *metrics;
  const std::string text = summary.dump(2) + "\n";
  dist::write_on_one_rank(run.world(), run.world_writer(),
                          [&] { write_text_atomically(out_dir + "/summary.json", text); });
  if (ctx.world_rank == 0) {
    for (size_t i = 0; i < cases.size(); ++i) {
      const auto& c = summary["cases"][cases[i].name];
      std::printf("%s: %s", cases[i].name.c_str(), c["label_map"].get<std::string>().c_str());
      for (const auto& [name, ml] : c["volume_ml"].items()) {
        if (name != model.class_names[0]) std::printf(", %s %.2f mL", name.c_str(), ml.get<double>());
      }
      for (const auto& [name, ml] : c["regions_ml"].items()) std::printf(", %s %.2f mL", name.c_str(), ml.get<double>());
      std::printf("\n");
    }
    if (metrics) print_volume_metrics(*metrics);
    std::printf("%zu case(s) segmented in %.2f s (summed over cases); outputs in %s (summary.json)\n", cases.size(),
                seconds, out_dir.c_str());
  }
  return 0;
}

}  // namespace spvit::app
