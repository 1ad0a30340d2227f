// Synthetic NIfTI datasets (synthetic_nifti.h).
#include "spvit/data/synthetic_nifti.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "spvit/core/atomic_file.h"
#include "spvit/core/error.h"
#include "spvit/data/synthetic.h"

namespace spvit::data {

NiftiHeader scanner_geometry(const std::array<double, 3>& spacing) {
  NiftiHeader h;
  const double a = 7.0 * 3.14159265358979 / 180.0, c = std::cos(a), s = std::sin(a);
  h.affine = {{{-c * spacing[0], s * spacing[1], 0, 91.5},
               {-s * spacing[0], -c * spacing[1], 0, 126.25},
               {0, 0, spacing[2], -72.0},
               {0, 0, 0, 1}}};
  h.sform_code = h.qform_code = 1;
  h.spacing = spacing;
  return h;
}

void write_synthetic_nifti(const std::string& dir, const SyntheticNiftiOptions& o) {
  if (o.layout != "nnunet" && o.layout != "msd") SPVIT_THROW(ConfigError, "NIfTI layout must be nnunet or msd, got '", o.layout, "'");
  if (o.channels < 1 || o.channels > 2) SPVIT_THROW(ConfigError, "synthetic NIfTI channels must be 1 or 2, got ", o.channels);
  if (o.held_out < 0 || o.held_out >= o.count) {
    SPVIT_THROW(ConfigError, "held-out cases ", o.held_out, " must leave at least one training case of ", o.count);
  }
  if (o.shape.size() != 3) SPVIT_THROW(ConfigError, "synthetic NIfTI volumes are 3-D (D H W)");
  SyntheticOptions g;
  g.spatial_dims = 3;
  g.shape = o.shape;
  g.count = o.count;
  g.seed = o.seed;
  g.lesion_scale = o.lesion_scale;
  const auto generator = make_synthetic_mri(g);
  const auto geometry = scanner_geometry(o.spacing);
  const bool msd = o.layout == "msd";
  const std::vector<int64_t> shape3{o.shape[2], o.shape[1], o.shape[0]};  // file order i, j, k
  nlohmann::json training = nlohmann::json::array(), test = nlohmann::json::array();
  for (int64_t i = 0; i < o.count; ++i) {
    const bool held_out = i >= o.count - o.held_out;
    char name[32];
    std::snprintf(name, sizeof name, "case_%03lld", static_cast<long long>(i));
    const auto sample = generator->read(i);
    const auto flair = sample.image.select(-1, 0).contiguous();  // [D, H, W]
    std::vector<torch::Tensor> channels{flair};
    if (o.channels == 2) {
      const auto& m = sample.mask;
      const auto t1 = torch::where(m.eq(2), 0.35 * flair, torch::where(m.eq(3), 1.15 * flair, 1.1 - flair));
      channels.push_back(torch::where(m.eq(0), flair * 0.2, t1).contiguous());
    }
    const auto labels = sample.mask.to(torch::kUInt8).contiguous();
    const std::string images = std::string(held_out ? "imagesTs" : "imagesTr") + "/";
    const std::string label_file = std::string(held_out ? "labelsTs" : "labelsTr") + "/" + name + o.extension;
    write_nifti_labels(dir + "/" + label_file, geometry, shape3, labels.data_ptr<uint8_t>());
    if (msd) {  // one file: 4-D with the channels on the 4th axis, [c][k][j][i]; 3-D for one channel, as MSD's tasks
      const auto all = torch::stack(channels).to(torch::kFloat32).contiguous();
      auto shape4 = shape3;
      if (o.channels > 1) shape4.push_back(o.channels);
      const std::string image = images + name + o.extension;
      write_nifti(dir + "/" + image, geometry, shape4, all.data_ptr<float>());
      if (held_out) test.push_back("./" + image);
      else training.push_back({{"image", "./" + image}, {"label", "./" + label_file}});
    } else {
      for (size_t c = 0; c < channels.size(); ++c) {
        char suffix[16];
        std::snprintf(suffix, sizeof suffix, "_%04zu", c);
        const auto v = channels[c].to(torch::kFloat32).contiguous();
        write_nifti(dir + "/" + images + name + suffix + o.extension, geometry, shape3, v.data_ptr<float>());
      }
    }
  }
  const auto classes = synthetic_mri_classes();
  const std::vector<std::string> contrasts{"FLAIR", "T1w"};
  nlohmann::json description, labels = nlohmann::json::object(), channel_names = nlohmann::json::object();
  description["name"] = "spvit synthetic MRI";
  description["description"] = "spvit synth --format nifti: MRI-like head volumes with a tumour (edema, core)";
  for (int64_t c = 0; c < o.channels; ++c) channel_names[std::to_string(c)] = contrasts[static_cast<size_t>(c)];
  if (msd) {  // MSD: value -> name, the cases listed
    for (size_t k = 0; k < classes.size(); ++k) labels[std::to_string(k)] = classes[k];
    description["modality"] = channel_names;
    description["labels"] = labels;
    description["numTraining"] = training.size();
    description["numTest"] = test.size();
    description["training"] = training;
    description["test"] = test;
    description["tensorImageSize"] = o.channels > 1 ? "4D" : "3D";
  } else {  // nnU-Net v2: name -> value, the cases found in labelsTr/
    for (size_t k = 0; k < classes.size(); ++k) labels[classes[k]] = k;
    description["channel_names"] = channel_names;
    description["labels"] = labels;
    description["numTraining"] = o.count - o.held_out;
    description["file_ending"] = o.extension;
  }
  write_text_atomically(dir + "/dataset.json", description.dump(2) + "\n");
}

}  // namespace spvit::data
