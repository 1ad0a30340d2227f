// Helpers for the inference tests: pyramidal RGB test slides written with libtiff (OpenSlide's generic tiled TIFF),
// synthetic pathology images with their masks, and an analytic per-pixel "network".
#pragma once
#define TIFF_DISABLE_DEPRECATED  // libtiff's deprecated int64 typedef would clash with OpenCV's
#include <tiffio.h>
#include <unistd.h>
#include <torch/torch.h>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "spvit/data/synthetic.h"

namespace spvit::testing {

// A fresh, empty temporary directory for one test (named after the test and the process).
inline std::string temp_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("spvit_infer_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

// The fields of one directory of an 8-bit RGB tiled, deflated TIFF level (`reduced`: a pyramid level below 0, the
// layout OpenSlide's generic-tiff reader expects).
inline void set_rgb_tiled_fields(TIFF* t, int64_t width, int64_t height, int tile, bool reduced) {
  TIFFSetField(t, TIFFTAG_SUBFILETYPE, reduced ? FILETYPE_REDUCEDIMAGE : 0);
  TIFFSetField(t, TIFFTAG_IMAGEWIDTH, static_cast<uint32_t>(width));
  TIFFSetField(t, TIFFTAG_IMAGELENGTH, static_cast<uint32_t>(height));
  TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 8);
  TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 3);
  TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_RGB);
  TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
  TIFFSetField(t, TIFFTAG_TILEWIDTH, static_cast<uint32_t>(tile));
  TIFFSetField(t, TIFFTAG_TILELENGTH, static_cast<uint32_t>(tile));
  TIFFSetField(t, TIFFTAG_COMPRESSION, COMPRESSION_ADOBE_DEFLATE);
}

// A synthetic pathology image (RGB uint8) and its mask (uint8 class ids), H × W.
inline std::pair<cv::Mat, cv::Mat> synthetic_slide_image(int64_t height, int64_t width, uint64_t seed = 3) {
  data::SyntheticOptions so;
  so.shape = {height, width};
  so.count = 1;
  so.seed = seed;
  auto sample = data::make_synthetic_pathology(so)->read(0);
  auto rgb = (sample.image.clamp(0, 1) * 255).round().to(torch::kUInt8).contiguous();
  auto mask = sample.mask.to(torch::kUInt8).contiguous();
  cv::Mat image(static_cast<int>(height), static_cast<int>(width), CV_8UC3, rgb.data_ptr());
  cv::Mat labels(static_cast<int>(height), static_cast<int>(width), CV_8U, mask.data_ptr());
  return {image.clone(), labels.clone()};
}

// A rows × cols mosaic of distinct side × side synthetic samples. The generator scales its glands with the image
// size (gland cell = clamp(side / 4, 48, 192)), so a slide that a model trained on 128² samples should recognise is
// a mosaic of small samples (side <= 192 keeps the training scale), not one large sample.
inline std::pair<cv::Mat, cv::Mat> synthetic_mosaic(int rows, int cols, int64_t side, uint64_t seed) {
  data::SyntheticOptions so;
  so.shape = {side, side};
  so.count = rows * cols;
  so.seed = seed;
  auto ds = data::make_synthetic_pathology(so);
  cv::Mat image(static_cast<int>(rows * side), static_cast<int>(cols * side), CV_8UC3);
  cv::Mat labels(image.rows, image.cols, CV_8U);
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) {
      auto sample = ds->read(r * cols + c);
      auto rgb = (sample.image.clamp(0, 1) * 255).round().to(torch::kUInt8).contiguous();
      auto mask = sample.mask.to(torch::kUInt8).contiguous();
      const cv::Rect box(static_cast<int>(c * side), static_cast<int>(r * side), static_cast<int>(side), static_cast<int>(side));
      cv::Mat(static_cast<int>(side), static_cast<int>(side), CV_8UC3, rgb.data_ptr()).copyTo(image(box));
      cv::Mat(static_cast<int>(side), static_cast<int>(side), CV_8U, mask.data_ptr()).copyTo(labels(box));
    }
  }
  return {image, labels};
}

// Level k + 1 = level k shrunk 2× (INTER_AREA), `levels` levels, each a tiled (tile × tile) deflate RGB IFD.
// `pixels_per_cm` > 0 also writes level 0's XResolution/YResolution (unit centimetre). Returns the levels' images.
inline std::vector<cv::Mat> write_pyramid_tiff(const std::string& path, const cv::Mat& rgb, int levels, int tile = 128,
                                               double pixels_per_cm = 0) {
  TIFF* t = TIFFOpen(path.c_str(), "w8");
  if (t == nullptr) throw std::runtime_error("cannot create " + path);
  std::vector<cv::Mat> images{rgb};
  for (int l = 1; l < levels; ++l) {
    cv::Mat small;
    const auto& prev = images.back();
    cv::resize(prev, small, cv::Size((prev.cols + 1) / 2, (prev.rows + 1) / 2), 0, 0, cv::INTER_AREA);
    images.push_back(small);
  }
  for (int l = 0; l < levels; ++l) {
    const cv::Mat& im = images[static_cast<size_t>(l)];
    set_rgb_tiled_fields(t, im.cols, im.rows, tile, /*reduced=*/l > 0);
    if (l == 0 && pixels_per_cm > 0) {
      TIFFSetField(t, TIFFTAG_XRESOLUTION, static_cast<float>(pixels_per_cm));
      TIFFSetField(t, TIFFTAG_YRESOLUTION, static_cast<float>(pixels_per_cm));
      TIFFSetField(t, TIFFTAG_RESOLUTIONUNIT, RESUNIT_CENTIMETER);
    }
    std::vector<uint8_t> buf(static_cast<size_t>(tile * tile * 3));
    for (int y = 0; y < im.rows; y += tile) {
      for (int x = 0; x < im.cols; x += tile) {
        std::fill(buf.begin(), buf.end(), 255);
        for (int r = 0; r < tile && y + r < im.rows; ++r) {
          const int w = std::min(tile, im.cols - x);
          std::memcpy(&buf[static_cast<size_t>(r * tile * 3)], im.ptr<uint8_t>(y + r) + 3 * x, static_cast<size_t>(3 * w));
        }
        TIFFWriteEncodedTile(t, TIFFComputeTile(t, static_cast<uint32_t>(x), static_cast<uint32_t>(y), 0, 0), buf.data(),
                             static_cast<tmsize_t>(buf.size()));
      }
    }
    TIFFWriteDirectory(t);
  }
  TIFFClose(t);
  return images;
}

// The analytic network: per pixel, logits = A · rgb + b, softmax over 4 classes. Its output on a whole image is the
// "untiled" reference: tiling, overlap and blending must reproduce it.
inline torch::Tensor analytic_probabilities(const torch::Tensor& rgb /* [B, 3, H, W] */) {
  static const auto A = torch::tensor({{-4.0f, -4.0f, -4.0f}, {3.0f, -6.0f, 2.0f}, {6.0f, -2.0f, -3.0f}, {-3.0f, 5.0f, -1.0f}});
  static const auto b = torch::tensor({9.0f, 0.5f, -1.0f, 0.2f});
  auto logits = torch::einsum("kc,bchw->bkhw", {A, rgb}) + b.view({1, 4, 1, 1});
  return torch::softmax(logits, 1);
}

// HWC uint8 RGB -> [1, 3, H, W] float in [0, 1].
inline torch::Tensor to_batch(const cv::Mat& rgb) {
  auto t = torch::from_blob(const_cast<uint8_t*>(rgb.ptr<uint8_t>()), {rgb.rows, rgb.cols, 3}, torch::kUInt8);
  return t.permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat32).div(255.0f).contiguous();
}

}  // namespace spvit::testing
