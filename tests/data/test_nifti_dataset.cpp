// NIfTI datasets (data/nifti_dataset.h): both layouts give the same samples, which equal the source voxels normalised
// by statistics computed here directly; region (slab) reads equal the whole crop cut; placements are deterministic,
// inside the volume and oversample foreground; CT statistics against a direct sort; folds; bad input named.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "data_test_util.h"
#include "spvit/data/nifti_dataset.h"
#include "spvit/data/nifti_file.h"
#include "spvit/data/volume_resample.h"
#include "spvit/data/annotations.h"

namespace fs = std::filesystem;
using namespace spvit;
using namespace spvit::data;
using spvit::data::testing::TempDir;

namespace {

// One case's volumes, tensor order [D, H, W]: channels float, labels 0..3.
struct CaseVolumes {
  std::vector<torch::Tensor> channels;
  torch::Tensor labels;
};

CaseVolumes make_case(int64_t d, int64_t h, int64_t w, int64_t channels, uint64_t seed) {
  torch::manual_seed(static_cast<int64_t>(seed));
  CaseVolumes c;
  for (int64_t ch = 0; ch < channels; ++ch) c.channels.push_back(torch::rand({d, h, w}) * 100 + 50 * ch - 20);
  c.labels = torch::zeros({d, h, w}, torch::kUInt8);
  c.labels.narrow(0, d / 4, d / 2).narrow(1, h / 4, h / 3).narrow(2, w / 3, w / 3).fill_(1);
  c.labels.narrow(0, d / 2, 2).narrow(1, h / 2, 3).narrow(2, w / 2, 2).fill_(3);
  return c;
}

NiftiHeader geometry(double sx, double sy, double sz) {
  NiftiHeader h;
  h.affine = {{{-sx, 0, 0, 10}, {0, -sy, 0, 20}, {0, 0, sz, -30}, {0, 0, 0, 1}}};
  h.sform_code = h.qform_code = 1;
  h.spacing = {sx, sy, sz};
  return h;
}

std::vector<int64_t> file_shape(const torch::Tensor& t) { return {t.size(2), t.size(1), t.size(0)}; }

void write_image(const std::string& path, const torch::Tensor& v, const NiftiHeader& g) {
  const auto c = v.to(torch::kFloat32).contiguous();
  write_nifti(path, g, file_shape(v), c.data_ptr<float>());
}

void write_labels(const std::string& path, const torch::Tensor& v, const NiftiHeader& g) {
  const auto c = v.to(torch::kUInt8).contiguous();
  write_nifti_labels(path, g, file_shape(v), c.data_ptr<uint8_t>());
}

void write_json(const std::string& path, const nlohmann::json& j) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << j.dump(2);
}

const std::vector<std::string> kChannelNames{"T2", "ADC"};
nlohmann::json labels_json() { return {{"background", 0}, {"gland", 1}, {"lesion", 3}, {"unused", 2}}; }

// The same cases as an nnU-Net v2 folder (a file per channel) and an MSD folder (one 4-D file per case).
void write_nnunet(const std::string& root, const std::vector<CaseVolumes>& cases, const NiftiHeader& g,
                  const std::vector<std::string>& names = kChannelNames) {
  nlohmann::json channel_names;
  for (size_t c = 0; c < names.size(); ++c) channel_names[std::to_string(c)] = names[c];
  write_json(root + "/dataset.json", {{"channel_names", channel_names}, {"labels", labels_json()},
                                      {"numTraining", cases.size()}, {"file_ending", ".nii.gz"}});
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::string name = "c" + std::to_string(i);
    for (size_t ch = 0; ch < cases[i].channels.size(); ++ch) {
      write_image(root + "/imagesTr/" + name + "_000" + std::to_string(ch) + ".nii.gz", cases[i].channels[ch], g);
    }
    write_labels(root + "/labelsTr/" + name + ".nii.gz", cases[i].labels, g);
  }
}

void write_msd(const std::string& root, const std::vector<CaseVolumes>& cases, const NiftiHeader& g) {
  nlohmann::json training = nlohmann::json::array(), labels;
  const auto names = labels_json();
  for (const auto& [name, value] : names.items()) labels[std::to_string(value.get<int>())] = name;
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::string name = "c" + std::to_string(i);
    const auto all = torch::stack(cases[i].channels).to(torch::kFloat32).contiguous();  // [C, D, H, W]
    auto shape = file_shape(cases[i].labels);
    shape.push_back(all.size(0));
    write_nifti(root + "/imagesTr/" + name + ".nii", g, shape, all.data_ptr<float>());
    write_labels(root + "/labelsTr/" + name + ".nii", cases[i].labels, g);
    training.push_back({{"image", "./imagesTr/" + name + ".nii"}, {"label", "./labelsTr/" + name + ".nii"}});
  }
  write_json(root + "/dataset.json", {{"modality", {{"0", "T2"}, {"1", "ADC"}}}, {"labels", labels},
                                      {"training", training}, {"numTraining", cases.size()}});
}

NiftiDatasetOptions options_for(const std::string& root, const std::string& split, int64_t size, int64_t count) {
  DataConfig d;
  d.size = size;
  d.cache_dir = root + "/cache";
  return NiftiDatasetOptions::from_config(d, root, split, count, 5);
}

std::vector<CaseVolumes> some_cases(int n) {
  std::vector<CaseVolumes> out;
  for (int i = 0; i < n; ++i) out.push_back(make_case(12 + i, 20, 18 + 2 * i, 2, 100 + static_cast<uint64_t>(i)));
  return out;
}

}  // namespace

TEST(NiftiDataset, BothLayoutsGiveTheSourceVoxelsZScoredPerCase) {
  TempDir dir("nifti_layouts");
  const auto cases = some_cases(6);
  write_nnunet(dir.file("nnunet"), cases, geometry(0.8, 0.8, 3));
  write_msd(dir.file("msd"), cases, geometry(0.8, 0.8, 3));
  const NiftiDataset a(options_for(dir.file("nnunet"), "train", 16, 12));
  const NiftiDataset b(options_for(dir.file("msd"), "train", 16, 12));
  EXPECT_EQ(a.channels(), 2);
  EXPECT_EQ(a.num_classes(), 4);
  ASSERT_EQ(a.case_count(), 4) << "fold 0 of 5 holds out cases 0 and 5";
  for (int64_t i = 0; i < a.size(); ++i) {
    const auto sa = a.read_epoch(i, 2, std::nullopt);
    const auto sb = b.read_epoch(i, 2, std::nullopt);
    EXPECT_TRUE(torch::equal(sa.image, sb.image) && torch::equal(sa.mask, sb.mask)) << "sample " << i;
    // The reference: the case's voxels, z-scored with its own mean and std (double), padded with 0 / ignore.
    const auto p = a.placement(i, 2);
    const int64_t case_number = std::stoll(sa.id.substr(1, sa.id.find('_') - 1));
    const auto& src = cases[static_cast<size_t>(case_number)];
    auto image = torch::zeros({16, 16, 16, 2}, torch::kFloat64);
    auto mask = torch::full({16, 16, 16}, -1, torch::kInt16);
    std::vector<torch::indexing::TensorIndex> from, to;
    for (int k = 0; k < 3; ++k) {
      const int64_t n = src.labels.size(k), lo = std::max<int64_t>(0, p.origin[k]),
                    hi = std::min<int64_t>(n, p.origin[k] + 16);
      EXPECT_LT(lo, hi) << "the crop overlaps the volume";
      from.emplace_back(torch::indexing::Slice(lo, hi));
      to.emplace_back(torch::indexing::Slice(lo - p.origin[k], hi - p.origin[k]));
    }
    for (int ch = 0; ch < 2; ++ch) {
      const auto v = src.channels[static_cast<size_t>(ch)].to(torch::kFloat64);
      const double mean = v.mean().item<double>(), sd = v.std(/*unbiased=*/false).item<double>();
      auto dst = image.select(-1, ch);
      dst.index_put_(to, (v.index(from) - mean) / sd);
    }
    mask.index_put_(to, src.labels.index(from).to(torch::kInt16));
    EXPECT_LT((sa.image.to(torch::kFloat64) - image).abs().max().item<double>(), 1e-4) << "sample " << i;
    EXPECT_TRUE(torch::equal(sa.mask, mask)) << "sample " << i;
  }
}

TEST(NiftiDataset, SlabReadsEqualTheWholeCropCutAndReadOnlyTheSlab) {
  TempDir dir("nifti_slabs");
  write_nnunet(dir.path(), some_cases(6), geometry(1, 1, 1));
  const NiftiDataset ds(options_for(dir.path(), "train", 16, 6));
  for (int64_t i = 0; i < ds.size(); ++i) {
    const auto whole = ds.read_epoch(i, 0, std::nullopt);
    const int64_t before = ds.voxels_read();
    const Region band{{4, 0, 0}, {9, 16, 16}};
    const auto part = ds.read_epoch(i, 0, band);
    const int64_t read = ds.voxels_read() - before;
    EXPECT_TRUE(torch::equal(part.image, whole.image.slice(0, 4, 9))) << "sample " << i;
    EXPECT_TRUE(torch::equal(part.mask, whole.mask.slice(0, 4, 9))) << "sample " << i;
    const auto p = ds.placement(i, 0);
    const auto& h = ds.header(p.case_index);
    // At most 5 k-slices of every channel and the labels: (2 + 1) files x 5 x H x W voxels.
    EXPECT_LE(read, 3 * 5 * h.shape[0] * h.shape[1]) << "a band reads its slab only";
  }
}

TEST(NiftiDataset, PlacementsAreDeterministicInsideAndOversampleForeground) {
  TempDir dir("nifti_sampling");
  write_nnunet(dir.path(), some_cases(6), geometry(1, 1, 1));
  const NiftiDataset a(options_for(dir.path(), "train", 8, 300));
  const NiftiDataset b(options_for(dir.path(), "train", 8, 300));
  int64_t with_lesion = 0, moved = 0;
  for (int64_t i = 0; i < a.size(); ++i) {
    const auto p = a.placement(i, 1), q = b.placement(i, 1), r = a.placement(i, 2);
    EXPECT_EQ(p.case_index, q.case_index);
    EXPECT_EQ(p.origin, q.origin);
    moved += p.origin != r.origin;
    const auto& h = a.header(p.case_index);
    const std::array<int64_t, 3> n{h.shape[2], h.shape[1], h.shape[0]};
    for (int k = 0; k < 3; ++k) {
      EXPECT_GE(p.origin[k], 0);
      EXPECT_LE(p.origin[k] + 8, n[k]);
    }
    with_lesion += a.read_epoch(i, 1, std::nullopt).mask.eq(3).any().item<bool>();
  }
  EXPECT_GT(moved, 250) << "epochs draw new crops";
  // The lesion is 2x3x2 voxels of a volume of ~12x20x20: a uniform 8³ crop holds it in ~15% of draws; a third of
  // the crops are centred on a foreground class (gland or lesion, each half the time), so >= 1/6 + ~12%.
  EXPECT_GT(with_lesion, 300 * 0.22) << with_lesion;
  const NiftiDataset val(options_for(dir.path(), "val", 8, 4));
  EXPECT_EQ(val.placement(3, 0).origin, val.placement(3, 7).origin) << "validation crops are fixed";
}

TEST(NiftiDataset, CtChannelsUseTheTrainingForegroundPercentilesAndMoments) {
  TempDir dir("nifti_ct");
  auto cases = some_cases(6);
  write_nnunet(dir.path(), cases, geometry(1, 1, 1), {"CT", "noNorm"});
  const NiftiDataset ds(options_for(dir.path(), "train", 8, 2));
  const NiftiDataset val(options_for(dir.path(), "val", 8, 2));
  std::vector<double> fg;
  for (size_t i : {1, 2, 3, 4}) {  // fold 0's training cases
    const auto v = cases[i].channels[0].flatten(), l = cases[i].labels.flatten();
    for (int64_t k = 0; k < v.numel(); ++k) {
      if (l[k].item<int>() > 0) fg.push_back(v[k].item<float>());
    }
  }
  std::sort(fg.begin(), fg.end());
  auto pct = [&](double q) {
    const double pos = q * static_cast<double>(fg.size() - 1);
    const auto i = static_cast<size_t>(pos);
    return fg[i] + (pos - static_cast<double>(i)) * (fg[std::min(i + 1, fg.size() - 1)] - fg[i]);
  };
  double mean = 0, sq = 0;
  for (double v : fg) mean += v;
  mean /= static_cast<double>(fg.size());
  for (double v : fg) sq += (v - mean) * (v - mean);
  const auto& c = ds.normalization().channels;
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].scheme, "ct");
  EXPECT_EQ(c[1].scheme, "none");
  EXPECT_NEAR(c[0].mean, mean, 1e-3);
  EXPECT_NEAR(c[0].std, std::sqrt(sq / static_cast<double>(fg.size())), 1e-3);
  EXPECT_NEAR(c[0].low, pct(0.005), 1e-4);
  EXPECT_NEAR(c[0].high, pct(0.995), 1e-4);
  EXPECT_EQ(val.normalization().to_json(), ds.normalization().to_json()) << "validation uses the training statistics";
  // Cached: a second open reads the statistics file (here doctored) instead of computing them again.
  for (const auto& e : fs::directory_iterator(dir.path() + "/cache/nifti")) {
    if (e.path().filename().string().rfind("normalization-", 0) == 0) {
      auto n = NiftiNormalization::from_json(ds.normalization().to_json());
      n.channels[0].mean = 12345;
      std::ofstream(e.path()) << n.to_json();
    }
  }
  EXPECT_EQ(NiftiDataset(options_for(dir.path(), "train", 8, 2)).normalization().channels[0].mean, 12345);
}

TEST(NiftiDataset, FoldsComeFromSplitsFinalJsonOrFiveFolds) {
  TempDir dir("nifti_folds");
  write_nnunet(dir.path(), some_cases(7), geometry(1, 1, 1));
  const auto info = NiftiDatasetInfo::read(dir.path());
  EXPECT_EQ(info.layout, "nnunet");
  EXPECT_EQ(info.split("val", 1).size(), 2u);  // c1, c6
  EXPECT_EQ(info.split("val", 1)[1].name, "c6");
  EXPECT_EQ(info.split("train", 1).size(), 5u);
  write_json(dir.file("splits_final.json"), nlohmann::json::array({{{"train", {"c0", "c2"}}, {"val", {"c5"}}}}));
  EXPECT_EQ(info.split("train", 0).size(), 2u);
  EXPECT_EQ(info.split("val", 0)[0].name, "c5");
  EXPECT_ERROR_MENTIONS(data::testing::error_message([&] { info.split("val", 1); }), "holds 1 fold");
  write_json(dir.file("splits_final.json"), nlohmann::json::array({{{"train", {"c0", "nope"}}, {"val", {"c5"}}}}));
  EXPECT_ERROR_MENTIONS(data::testing::error_message([&] { info.split("train", 0); }), "names case 'nope'");
}

TEST(NiftiDataset, BadInputIsNamedBeforeTraining) {
  auto open = [](const std::string& root) {
    return data::testing::error_message([&] { NiftiDataset(options_for(root, "train", 8, 1)); });
  };
  TempDir dir("nifti_bad");
  const auto cases = some_cases(5);
  // Shape mismatch between a channel and its label.
  auto bad = cases;
  bad[1].channels[1] = torch::rand({13, 20, 19});
  write_nnunet(dir.file("shape"), bad, geometry(1, 1, 1));
  auto m = open(dir.file("shape"));
  EXPECT_ERROR_MENTIONS(m, "case 'c1'");
  EXPECT_ERROR_MENTIONS(m, "c1_0001.nii.gz' has shape 19x20x13");
  // An affine that differs between image and label.
  write_nnunet(dir.file("affine"), cases, geometry(1, 1, 1));
  write_labels(dir.file("affine") + "/labelsTr/c2.nii.gz", cases[2].labels, geometry(1, 1, 1.5));
  EXPECT_ERROR_MENTIONS(open(dir.file("affine")), "different affines");
  // A label value dataset.json does not list.
  write_nnunet(dir.file("value"), cases, geometry(1, 1, 1));
  auto wrong = cases[3].labels.clone();
  wrong[0][0][0] = 7;
  write_labels(dir.file("value") + "/labelsTr/c3.nii.gz", wrong, geometry(1, 1, 1));
  m = open(dir.file("value"));
  EXPECT_ERROR_MENTIONS(m, "case 'c3'");
  EXPECT_ERROR_MENTIONS(m, "holds the value 7");
  // A missing channel file.
  write_nnunet(dir.file("missing"), cases, geometry(1, 1, 1));
  fs::remove(dir.file("missing") + "/imagesTr/c4_0001.nii.gz");
  m = open(dir.file("missing"));
  EXPECT_ERROR_MENTIONS(m, "case 'c4'");
  EXPECT_ERROR_MENTIONS(m, "channel 1 (ADC) file");
  // A truncated .nii.gz.
  write_nnunet(dir.file("truncated"), cases, geometry(1, 1, 1));
  const auto victim = dir.file("truncated") + "/imagesTr/c2_0000.nii.gz";
  fs::resize_file(victim, fs::file_size(victim) / 2);
  EXPECT_ERROR_MENTIONS(open(dir.file("truncated")), "c2_0000.nii.gz");
  // Mixed spacings: every offender listed.
  write_nnunet(dir.file("spacing"), cases, geometry(1, 1, 1));
  for (int i : {2, 4}) {
    const std::string n = "c" + std::to_string(i);
    const auto root = dir.file("spacing");
    for (int ch = 0; ch < 2; ++ch) {
      write_image(root + "/imagesTr/" + n + "_000" + std::to_string(ch) + ".nii.gz",
                  cases[static_cast<size_t>(i)].channels[static_cast<size_t>(ch)], geometry(1, 1, 2.5));
    }
    write_labels(root + "/labelsTr/" + n + ".nii.gz", cases[static_cast<size_t>(i)].labels, geometry(1, 1, 2.5));
  }
  m = open(dir.file("spacing"));
  EXPECT_ERROR_MENTIONS(m, "mixes voxel spacings");
  EXPECT_ERROR_MENTIONS(m, "c2 (1 x 1 x 2.5 mm)");
  EXPECT_ERROR_MENTIONS(m, "c4 (1 x 1 x 2.5 mm)");
  // Not a dataset folder.
  fs::create_directories(dir.file("empty"));
  EXPECT_ERROR_MENTIONS(open(dir.file("empty")), "dataset.json");
  write_json(dir.file("neither/dataset.json"), {{"name", "x"}});
  EXPECT_ERROR_MENTIONS(open(dir.file("neither")), "neither an nnU-Net v2 dataset.json");
}

// nnU-Net v2 region labels (BraTS: {"whole tumour": [1, 2, 3], ...}): their members are label values, so the cases
// load; a non-numeric MSD label key is a DataError naming dataset.json.
TEST(NiftiDataset, RegionLabelsNameTheirMembersAndBadLabelKeysAreNamed) {
  TempDir dir("nifti_regions");
  write_nnunet(dir.path(), some_cases(5), geometry(1, 1, 1));
  write_json(dir.file("dataset.json"), {{"channel_names", {{"0", "T2"}, {"1", "ADC"}}},
                                        {"labels", {{"background", 0}, {"whole", {1, 3}}, {"core", {3}}}},
                                        {"file_ending", ".nii.gz"}});
  const auto info = NiftiDatasetInfo::read(dir.path());
  EXPECT_EQ(info.labels.at("label 1"), 1);
  EXPECT_EQ(info.labels.at("label 3"), 3);
  EXPECT_EQ(info.num_classes(), 4);
  EXPECT_NO_THROW(NiftiDataset(options_for(dir.path(), "train", 8, 1)));
  TempDir msd("nifti_bad_key");
  write_msd(msd.path(), some_cases(5), geometry(1, 1, 1));
  auto j = nlohmann::json::parse(std::ifstream(msd.file("dataset.json")));
  j["labels"]["one"] = "gland";
  write_json(msd.file("dataset.json"), j);
  const auto m = data::testing::error_message([&] { NiftiDatasetInfo::read(msd.path()); });
  EXPECT_ERROR_MENTIONS(m, "dataset.json");
  EXPECT_ERROR_MENTIONS(m, "must map label values to class names, got \"one\"");
}

// data.spacing: cases of other spacings are read from resampled copies — images linear, labels nearest, equal to
// resample_volume of the source voxels (itself checked against grid_sample in test_volume_resample.cpp), with the
// affine's columns scaled (voxel 0 keeps its world position, the orientation is unchanged); a case already at the
// target spacing is read from its own files; the mixed-spacing dataset that is refused without data.spacing opens.
TEST(NiftiDataset, DataSpacingResamplesCasesImagesLinearLabelsNearest) {
  TempDir dir("nifti_spacing");
  const auto cases = some_cases(5);
  const auto root = dir.file("mixed");
  write_nnunet(root, cases, geometry(1, 1, 1.5));
  for (int ch = 0; ch < 2; ++ch) {
    write_image(root + "/imagesTr/c2_000" + std::to_string(ch) + ".nii.gz", cases[2].channels[static_cast<size_t>(ch)],
                geometry(0.75, 1, 2.5));
  }
  write_labels(root + "/labelsTr/c2.nii.gz", cases[2].labels, geometry(0.75, 1, 2.5));
  EXPECT_ERROR_MENTIONS(data::testing::error_message([&] { NiftiDataset(options_for(root, "train", 8, 1)); }),
                        "set data.spacing");
  DataConfig d;
  d.size = 8;
  d.cache_dir = root + "/cache";
  d.spacing = {"1", "1", "1.5"};
  const NiftiDataset dataset(NiftiDatasetOptions::from_config(d, root, "train", 4, 5));
  int64_t checked = 0;
  for (int64_t i = 0; i < dataset.case_count(); ++i) {
    const auto& files = dataset.case_files(i);
    const auto& h = dataset.header(i);
    EXPECT_NEAR(h.spacing[0], 1, 1e-6);
    EXPECT_NEAR(h.spacing[2], 1.5, 1e-6);
    if (files.name != "c2") {
      EXPECT_EQ(files.label, root + "/labelsTr/" + files.name + ".nii.gz") << "already at the target spacing";
      continue;
    }
    const auto& src = cases[2];
    const auto grid = ResampleGrid::between({src.labels.size(0), src.labels.size(1), src.labels.size(2)},
                                            {2.5, 1, 0.75}, {1.5, 1, 1});
    EXPECT_EQ(h.shape, (std::vector<int64_t>{grid.out_shape[2], grid.out_shape[1], grid.out_shape[0]}));
    const auto source = geometry(0.75, 1, 2.5);
    for (int r = 0; r < 3; ++r) {
      EXPECT_NEAR(h.affine[r][3], source.affine[r][3], 1e-4) << "voxel 0 keeps its world position";
      for (int c = 0; c < 3; ++c) {
        const double step = (c == 0 ? 1 / 0.75 : c == 1 ? 1.0 : 1.5 / 2.5);
        EXPECT_NEAR(h.affine[r][c], source.affine[r][c] * step, 1e-5);
      }
    }
    const auto read = [&](const std::string& path) {
      auto v = read_nifti(path);
      return torch::tensor(v).reshape({grid.out_shape[0], grid.out_shape[1], grid.out_shape[2]});
    };
    const auto labels = resample_volume(src.labels.to(torch::kInt16), grid, Interpolation::nearest);
    EXPECT_TRUE(torch::equal(read(files.label), labels.to(torch::kFloat32)));
    for (int ch = 0; ch < 2; ++ch) {
      const auto image = resample_volume(src.channels[static_cast<size_t>(ch)].to(torch::kFloat64), grid,
                                         Interpolation::linear);
      EXPECT_LT((read(files.images[static_cast<size_t>(ch)]).to(torch::kFloat64) - image).abs().max().item<double>(),
                1e-4);
    }
    ++checked;
  }
  EXPECT_EQ(checked, 1) << "c2 is in fold 0's training split";
}

// nnU-Net v2's "ignore" label: not a class, its voxels read as ClassMap::kIgnore (no loss), accepted by the label
// check; it must be the highest value.
TEST(NiftiDataset, IgnoreLabelVoxelsAreIgnoredNotAClass) {
  TempDir dir("nifti_ignore");
  auto cases = some_cases(5);
  for (auto& c : cases) c.labels.narrow(0, 0, 2).fill_(4);  // the first two slices unannotated
  const auto root = dir.file("ds");
  write_nnunet(root, cases, geometry(1, 1, 1));
  auto labels = labels_json();
  labels["ignore"] = 4;
  write_json(root + "/dataset.json", {{"channel_names", {{"0", "T2"}, {"1", "ADC"}}}, {"labels", labels},
                                      {"numTraining", 5}, {"file_ending", ".nii.gz"}});
  const NiftiDataset d(options_for(root, "train", 40, 4));  // crops larger than the volumes: every voxel
  EXPECT_EQ(d.num_classes(), 4);
  int64_t ignored = 0;
  for (int64_t i = 0; i < d.size(); ++i) {
    const auto s = d.read(i);
    const auto p = d.placement(i, 0);
    // The crop's first two volume slices are ignored, like the padding; no voxel reads 4.
    ignored += (s.mask == ClassMap::kIgnore).sum().item<int64_t>();
    EXPECT_EQ((s.mask == 4).sum().item<int64_t>(), 0);
    EXPECT_TRUE((s.mask.narrow(0, -p.origin[0], 2) == ClassMap::kIgnore).all().item<bool>());
  }
  EXPECT_GT(ignored, 0);
  EXPECT_EQ(d.label_counts(0).count(4), 0u) << "not counted as a label";
  labels["lesion"] = 5;
  write_json(root + "/dataset.json", {{"channel_names", {{"0", "T2"}, {"1", "ADC"}}}, {"labels", labels},
                                      {"numTraining", 5}, {"file_ending", ".nii.gz"}});
  EXPECT_ERROR_MENTIONS(data::testing::error_message([&] { NiftiDataset(options_for(root, "train", 8, 1)); }),
                        "the ignore label (4) must be the highest");
}
