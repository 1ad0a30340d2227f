// HDF5 files and image folders: round trips, region (hyperslab) reads, and clear errors for bad input.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <fstream>

#include "data_test_util.h"
#include "spvit/build_info.h"
#include "spvit/data/formats.h"
#include "spvit/data/synthetic.h"

namespace spvit::data {
namespace {

namespace fs = std::filesystem;
using testing::error_message;
using testing::expect_same_sample;
using testing::same;
using testing::TempDir;

// What an 8-bit file stores for an image in [0, 1].
torch::Tensor quantised(const torch::Tensor& image) { return image.clamp(0, 1).mul(255).round().div(255).to(torch::kFloat32); }

// Writes an HDF5 file with uint8 "images" and "masks" datasets of the given shapes (empty = leave it out).
void write_raw_hdf5(const std::string& path, const std::vector<hsize_t>& images, const std::vector<hsize_t>& masks,
                    int64_t mask_value = 0, int64_t num_classes = -1) {
  hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  auto make = [&](const char* name, const std::vector<hsize_t>& dims, uint8_t value) {
    if (dims.empty()) return;
    hsize_t n = 1;
    for (auto d : dims) n *= d;
    std::vector<uint8_t> data(n, value);
    hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
    hid_t set = H5Dcreate2(file, name, H5T_STD_U8LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(set, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data());
    H5Dclose(set);
    H5Sclose(space);
  };
  make("images", images, 128);
  make("masks", masks, static_cast<uint8_t>(mask_value));
  if (num_classes > 0) {
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(file, "num_classes", H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(attr, H5T_NATIVE_INT64, &num_classes);
    H5Aclose(attr);
    H5Sclose(space);
  }
  H5Fclose(file);
}

TEST(Hdf5, RoundTrip2DUint8AndRegionReads) {
  TempDir dir("h5_2d");
  const auto source = make_synthetic_pathology(SyntheticOptions{2, {48, 70}, 3, 7});
  const std::string path = dir.file("tiles.h5");
  Hdf5WriteOptions options;
  options.chunk = {16, 32};  // regions below cross chunk borders
  write_hdf5(path, *source, options);
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    EXPECT_EQ(entry.path().filename(), "tiles.h5") << "temporary file left behind";
  }
  const auto d = open_hdf5(path);
  EXPECT_EQ(d->size(), 3);
  EXPECT_EQ(d->spatial_dims(), 2);
  EXPECT_EQ(d->channels(), 3);
  EXPECT_EQ(d->num_classes(), source->num_classes());
  EXPECT_EQ(d->spatial_shape(1), (std::vector<int64_t>{48, 70}));
  for (int64_t i = 0; i < 3; ++i) {
    const Sample want = source->read(i), got = d->read(i);
    EXPECT_TRUE(same(got.image, quantised(want.image))) << "sample " << i;
    EXPECT_TRUE(same(got.mask, want.mask)) << "sample " << i;
    for (const Region& r : {Region{{0, 0}, {48, 70}}, Region{{5, 13}, {40, 69}}, Region{{47, 0}, {48, 1}}}) {
      expect_same_sample(d->read(i, r), crop(got, r));
    }
  }
}

TEST(Hdf5, RoundTrip3DFloatAndHyperslabs) {
  TempDir dir("h5_3d");
  const auto source = make_synthetic_mri(SyntheticOptions{3, {12, 16, 20}, 2, 4});
  const std::string path = dir.file("vols.h5");
  Hdf5WriteOptions options;
  options.float_images = true;
  options.chunk = {5, 7, 9};
  options.compression = 1;
  write_hdf5(path, *source, options);
  const auto d = open_hdf5(path);
  EXPECT_EQ(d->spatial_dims(), 3);
  EXPECT_EQ(d->channels(), 1);
  EXPECT_EQ(d->num_classes(), 4);
  for (int64_t i = 0; i < 2; ++i) {
    const Sample want = source->read(i), got = d->read(i);
    EXPECT_TRUE(same(got.image, want.image)) << "float32 storage must be exact";
    EXPECT_TRUE(same(got.mask, want.mask));
    for (const Region& r : {Region{{2, 3, 4}, {11, 15, 19}}, Region{{6, 0, 0}, {12, 16, 20}}, Region{{0, 7, 9}, {1, 8, 10}}}) {
      expect_same_sample(d->read(i, r), crop(got, r));
    }
  }
}

TEST(Hdf5, BadFilesAreNamed) {
  TempDir dir("h5_bad");
  const std::string missing = dir.file("missing.h5");
  auto msg = error_message([&] { open_hdf5(missing); });
  EXPECT_ERROR_MENTIONS(msg, "cannot open HDF5 file '" + missing + "'");

  const std::string garbage = dir.file("garbage.h5");
  std::ofstream(garbage) << "this is not HDF5";
  msg = error_message([&] { open_hdf5(garbage); });
  EXPECT_ERROR_MENTIONS(msg, "'" + garbage + "' is not an HDF5 file");

  const std::string rank3 = dir.file("rank3.h5");
  write_raw_hdf5(rank3, {2, 8, 8}, {2, 8});
  msg = error_message([&] { open_hdf5(rank3); });
  EXPECT_ERROR_MENTIONS(msg, "HDF5 dataset 'images' in '" + rank3 + "' has rank 3 (shape 2x8x8)");

  const std::string no_masks = dir.file("no_masks.h5");
  write_raw_hdf5(no_masks, {2, 8, 8, 3}, {});
  msg = error_message([&] { open_hdf5(no_masks); });
  EXPECT_ERROR_MENTIONS(msg, "HDF5 file '" + no_masks + "' has no dataset 'masks'");

  const std::string mismatch = dir.file("mismatch.h5");
  write_raw_hdf5(mismatch, {2, 8, 8, 3}, {2, 8, 9});
  msg = error_message([&] { open_hdf5(mismatch); });
  EXPECT_ERROR_MENTIONS(msg, "'masks' 2x8x9 does not match 'images' 2x8x8x3");

  const std::string bad_class = dir.file("bad_class.h5");
  write_raw_hdf5(bad_class, {2, 8, 8, 1}, {2, 8, 8}, 5, 3);
  const auto d = open_hdf5(bad_class);
  msg = error_message([&] { d->read(1); });
  EXPECT_ERROR_MENTIONS(msg, "masks[1] holds class id 5 outside [0, 3)");

  // Without a num_classes attribute the classes come from the masks.
  const std::string no_attr = dir.file("no_attr.h5");
  write_raw_hdf5(no_attr, {2, 4, 4, 1, 1}, {2, 4, 4, 1}, 6);
  EXPECT_EQ(open_hdf5(no_attr)->num_classes(), 7);
  EXPECT_EQ(open_hdf5(no_attr)->spatial_dims(), 3);
}

#if SPVIT_HAVE_OPENCV
void write_folder(const std::string& root, std::vector<int64_t> shape, int64_t count, uint64_t seed) {
  write_image_folder(root, *make_synthetic_pathology(SyntheticOptions{2, std::move(shape), count, seed}));
}

std::vector<std::string> files_in(const std::string& folder) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(folder)) out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(ImageFolder, RoundTripAndRegionReads) {
  TempDir dir("folder_rt");
  const auto source = make_synthetic_pathology(SyntheticOptions{2, {40, 56}, 3, 2});
  write_image_folder(dir.path(), *source);
  const auto d = open_image_folder(dir.path());
  EXPECT_EQ(d->size(), 3);
  EXPECT_EQ(d->channels(), 3);
  EXPECT_EQ(d->num_classes(), source->num_classes());
  EXPECT_EQ(d->spatial_shape(2), (std::vector<int64_t>{40, 56}));
  for (int64_t i = 0; i < 3; ++i) {  // ids sort in sample order
    const Sample want = source->read(i), got = d->read(i);
    EXPECT_EQ(got.id, want.id);
    EXPECT_TRUE(same(got.image, quantised(want.image))) << "sample " << i;
    EXPECT_TRUE(same(got.mask, want.mask)) << "sample " << i;
    const Region r{{3, 9}, {31, 50}};
    expect_same_sample(d->read(i, r), crop(got, r));
  }
  // Without dataset.json the classes come from a scan of the masks.
  fs::remove(dir.file("dataset.json"));
  int64_t most = 0;
  for (int64_t i = 0; i < 3; ++i) most = std::max(most, source->read(i).mask.max().item<int64_t>());
  EXPECT_EQ(open_image_folder(dir.path())->num_classes(), most + 1);
}

TEST(ImageFolder, BadInputIsNamed) {
  TempDir dir("folder_bad");
  const std::string missing = dir.file("nowhere");
  auto msg = error_message([&] { open_image_folder(missing); });
  EXPECT_ERROR_MENTIONS(msg, "image folder '" + missing + "' does not exist");

  const std::string root = dir.file("set");
  write_folder(root, {40, 56}, 3, 1);
  const auto images = files_in(root + "/images"), masks = files_in(root + "/masks");
  ASSERT_EQ(images.size(), 3u);

  // A mask of the wrong size (taken from a folder of 32x48 tiles).
  const std::string other = dir.file("other");
  write_folder(other, {32, 48}, 3, 1);
  fs::copy_file(files_in(other + "/masks")[1], masks[1], fs::copy_options::overwrite_existing);
  auto d = open_image_folder(root);
  msg = error_message([&] { d->read(1); });
  EXPECT_ERROR_MENTIONS(msg, "mask '" + masks[1] + "' is 32x48 (HxW) but image '" + images[1] + "' is 40x56");

  // A corrupt PNG: garbage bytes under a .png name.
  std::ofstream(images[2], std::ios::binary | std::ios::trunc) << "\x01\x02garbage, not a PNG at all\x7f\x00\x13";
  msg = error_message([&] { d->read(2); });
  EXPECT_ERROR_MENTIONS(msg, "cannot decode image '" + images[2] + "' (corrupt or not an image)");
  msg = error_message([&] { d->spatial_shape(2); });
  EXPECT_ERROR_MENTIONS(msg, "'" + images[2] + "' is not a valid PNG");

  // A missing mask is reported when the folder is opened.
  fs::remove(masks[0]);
  msg = error_message([&] { open_image_folder(root); });
  EXPECT_ERROR_MENTIONS(msg, "image '" + images[0] + "' has no mask: '" + masks[0] + "' does not exist");

  // 3-D data cannot go to a folder.
  msg = error_message([&] { write_image_folder(dir.file("vol"), *make_synthetic_mri(SyntheticOptions{3, {4, 4, 4}, 1, 0})); });
  EXPECT_ERROR_MENTIONS(msg, "image folders hold 2-D images");
}
#endif

}  // namespace
}  // namespace spvit::data
