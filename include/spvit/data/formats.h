// Datasets on disk: image folders (PNG/TIFF/JPEG through OpenCV) and HDF5 files (2D and 3D, region reads).
#pragma once
#include <memory>
#include <string>

#include "spvit/data/dataset.h"

namespace spvit::data {

// root/images/<stem>.png|tif|tiff|jpg|jpeg and root/masks/<stem>.png (single-channel class ids, same size).
// Images may be grey, RGB or RGBA (alpha dropped), 8 or 16 bit; every image must have the same channel count.
// num_classes comes from root/dataset.json ({"num_classes": K}) when present, otherwise from a scan of the masks.
// Needs OpenCV (throws Error saying so when this build has none).
std::shared_ptr<Dataset> open_image_folder(const std::string& root);
// Writes every sample of a 2D dataset as root/images/<id>.png (8-bit) + root/masks/<id>.png + root/dataset.json.
void write_image_folder(const std::string& root, const Dataset& source);

// Datasets "images" [N, H, W, C] or [N, D, H, W, C] (uint8 read as v/255, uint16 as v/65535, float as is) and
// "masks" [N, H, W] or [N, D, H, W] (any integer type). Attribute "num_classes" on the file root (else the masks are
// scanned once). Region reads are hyperslabs: only the chunks that overlap the region are read.
std::shared_ptr<Dataset> open_hdf5(const std::string& path);

struct Hdf5WriteOptions {
  bool float_images = false;       // store images as float32 (exact) instead of uint8 (round(clamp(v) * 255))
  std::vector<int64_t> chunk;      // spatial chunk shape; empty = 256x256 (2D) or 32x64x64 (3D), clipped to the sample
  int compression = 0;             // gzip level 0-9 (0 = none: fastest reads)
};
// Chunked, written to a temporary name next to `path` then renamed, so a reader never sees half a file.
void write_hdf5(const std::string& path, const Dataset& source);
void write_hdf5(const std::string& path, const Dataset& source, const Hdf5WriteOptions& options);

}  // namespace spvit::data
