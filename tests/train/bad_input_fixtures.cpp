// Writes the malformed inputs that tests/train/bad_input.cmake feeds to `spvit train` on 2 ranks:
//
//   OUT/missing_image/   a mask whose image is gone (images/tile-1.png deleted)
//   OUT/dangling_image/  images/tile-1.png is a link to a file that does not exist
//   OUT/bad_mask_size/   masks/tile-1.png is 16x24 while images/tile-1.png is 32x32
//   OUT/corrupt_png/     images/tile-1.png is garbage bytes (no PNG signature)
//   OUT/truncated_png/   images/tile-1.png keeps its PNG header but loses the rest of its data
//   OUT/rank3.h5         'images' is [2, 32, 32] (rank 3, no channel axis), 'masks' [2, 32]
//   OUT/truncated.h5     a valid file cut to half its size (as after an interrupted copy)
//   OUT/misspelled.yaml  a configuration with the unknown key data.pth
//
// Every folder starts as a valid 2-sample, 32x32, 3-channel folder from `write_image_folder`, with its files renamed
// to tile-0/tile-1 so that the tests can name the broken file exactly. Folders need OpenCV; without it only the
// HDF5 and YAML fixtures are written.
//   spvit_bad_input_fixtures OUT
#include <hdf5.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "spvit/build_info.h"
#include "spvit/core/error.h"
#include "spvit/data/formats.h"
#include "spvit/data/synthetic.h"

namespace fs = std::filesystem;
using namespace spvit;

namespace {

// A valid image folder of `count` 2D pathology samples of `shape`, files named tile-<i>.png in sample order.
void write_folder(const fs::path& root, std::vector<int64_t> shape, int64_t count) {
  fs::remove_all(root);
  data::write_image_folder(root.string(), *data::make_synthetic_pathology({2, std::move(shape), count, 3}));
  for (const char* sub : {"images", "masks"}) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(root / sub)) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (size_t i = 0; i < files.size(); ++i) fs::rename(files[i], root / sub / ("tile-" + std::to_string(i) + ".png"));
  }
}

// HDF5 file with uint8 datasets 'images' and 'masks' of the given shapes (all zeros).
void write_hdf5_shapes(const fs::path& path, const std::vector<hsize_t>& images, const std::vector<hsize_t>& masks) {
  hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  SPVIT_CHECK(file >= 0, "cannot create '", path.string(), "'");
  for (const auto& [name, dims] : {std::pair{"images", images}, std::pair{"masks", masks}}) {
    hsize_t n = 1;
    for (auto d : dims) n *= d;
    const std::vector<uint8_t> zeros(n, 0);
    hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
    hid_t set = H5Dcreate2(file, name, H5T_STD_U8LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    SPVIT_CHECK(set >= 0 && H5Dwrite(set, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, zeros.data()) >= 0,
                "cannot write '", name, "' to '", path.string(), "'");
    H5Dclose(set);
    H5Sclose(space);
  }
  H5Fclose(file);
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  SPVIT_CHECK(out.good(), "cannot write '", path.string(), "'");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  try {
    const fs::path out = argv[1];
    fs::create_directories(out);

    write_hdf5_shapes(out / "rank3.h5", {2, 32, 32}, {2, 32});

    const fs::path truncated_h5 = out / "truncated.h5";
    data::write_hdf5(truncated_h5.string(), *data::make_synthetic_pathology({2, {32, 32}, 2, 3}));
    fs::resize_file(truncated_h5, fs::file_size(truncated_h5) / 2);

    write_text(out / "misspelled.yaml", "grid:\n  seq: 2\ndata:\n  source: hdf5\n  pth: train.h5\n");

#if SPVIT_HAVE_OPENCV
    write_folder(out / "missing_image", {32, 32}, 2);
    fs::remove(out / "missing_image/images/tile-1.png");

    write_folder(out / "dangling_image", {32, 32}, 2);
    fs::remove(out / "dangling_image/images/tile-1.png");
    fs::create_symlink(out / "nowhere/tile-1.png", out / "dangling_image/images/tile-1.png");

    write_folder(out / "bad_mask_size", {32, 32}, 2);
    write_folder(out / "small", {16, 24}, 2);
    fs::copy_file(out / "small/masks/tile-1.png", out / "bad_mask_size/masks/tile-1.png",
                  fs::copy_options::overwrite_existing);
    fs::remove_all(out / "small");

    write_folder(out / "corrupt_png", {32, 32}, 2);
    write_text(out / "corrupt_png/images/tile-1.png", "\x01\x02 garbage, not a PNG at all \x7f\x13");

    // The first 64 bytes hold the signature and the IHDR chunk (size known without decoding), not the pixels.
    write_folder(out / "truncated_png", {32, 32}, 2);
    const fs::path truncated = out / "truncated_png/images/tile-1.png";
    fs::resize_file(truncated, 64);
#endif
    std::printf("bad-input fixtures written to %s\n", out.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bad-input fixtures: %s\n", e.what());
    return 1;
  }
}
