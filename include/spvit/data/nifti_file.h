// NIfTI-1 / NIfTI-2 volume files (.nii, .nii.gz) for 3D data: the header and its geometry, reads of whole volumes or
// of slabs along the last spatial axis as float, and atomic writes of float images and integer label maps that keep a
// source image's geometry. For data.source: nifti (Medical Segmentation Decathlon and nnU-Net v2 layouts) and for 3D
// inference writing label maps next to the images they came from. Plain buffers, no LibTorch; built on Debian's
// libnifti2 (header parsing, quaternion maths) and its znzlib (plain and gzip streams).
//
// Voxel order everywhere is the file's: i fastest, then j, then k, then the 4th axis (channels). The 4th axis is
// whatever the file stores there: MSD multi-modal images keep modalities there, nnU-Net v2 uses one file per channel.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace spvit::data {

struct NiftiHeader {
  // Voxels per axis in file order: {i, j, k}, or {i, j, k, c} when the file declares 4 or more dimensions (those
  // beyond the 4th must be 1). 2-D files read as {i, j, 1}.
  std::vector<int64_t> shape;
  // mm per voxel along i, j, k (pixdim, converted from metres or micrometres when xyzt_units says so).
  std::array<double, 3> spacing{1.0, 1.0, 1.0};
  // Voxel (i, j, k, 1) -> world, as stored (world units are the file's): the sform when sform_code > 0, else the
  // qform when qform_code > 0, else diag(pixdim) with origin 0 (the NIfTI standard's "method 1"; nibabel's
  // get_best_affine instead centres and x-flips in that last case, which MSD / nnU-Net files never reach).
  std::array<std::array<double, 4>, 4> affine{{{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}}};
  int sform_code = 0, qform_code = 0;  // NIFTI_XFORM_* (0 unknown, 1 scanner, 2 aligned, 3 Talairach, 4 MNI, ...)
  int datatype = 16;                   // NIFTI_TYPE_* as stored (2 uint8, 4 int16, 8 int32, 16 float32, 64 float64...)
  double scl_slope = 0.0, scl_inter = 0.0;  // stored value * slope + inter; slope 0 means no scaling
  int nifti_version = 1;                    // 1 or 2
  std::string path;

  int64_t channels() const { return shape.size() > 3 ? shape[3] : 1; }
  int64_t voxels_per_slice() const { return shape.at(0) * shape.at(1); }  // one k index of one channel
};

// Reads the header only (no voxel data). DataError naming the file when it is missing, is not named .nii / .nii.gz,
// is not a single-file NIfTI-1/2 (ANALYZE, .hdr/.img pairs), is truncated or corrupt, has more than 4 non-trivial
// dimensions or a datatype read_nifti_slab cannot convert (complex, RGB, binary, float128).
NiftiHeader read_nifti_header(const std::string& path);

// Voxels with k0 <= k < k1 (the last spatial axis), every i and j, of channel `channel`, or of all channels when -1,
// as float with scl_slope / scl_inter applied: layout [c][k - k0][j][i] (i fastest; c absent for one channel).
// Integer types above 2^24 round to the nearest float; NaN and Inf in float files are kept (libnifti's own loaders
// turn them into 0). DataError naming the file for a slab or channel out of range, or data that ends early or does
// not decompress.
//
// Memory: the result plus a read buffer of min(slab, 8 MiB) and zlib's ~70 KiB stream state; the volume is never
// held (measured: a 4-slice slab, 1.6 MiB, at the end of a 100 MiB .nii.gz raises peak RSS by 3.6 MiB). Each
// channel's slab is one contiguous run of the file, reached by a forward seek: on .nii that is fseek, on .nii.gz
// zlib's gzseek, which decompresses the bytes before the slab into its fixed buffers and discards them. So a slab
// near the end of a .nii.gz costs decompressing the volume up to it (time, not memory); random access to many slabs
// of large compressed volumes is better served by converting them to .nii once.
std::vector<float> read_nifti_slab(const std::string& path, int64_t k0, int64_t k1, int64_t channel = -1);

// The whole volume as float, [c][k][j][i] (read_nifti_slab over every k and channel).
std::vector<float> read_nifti(const std::string& path);

// Writes `data` (product(shape) floats in file order) as a float32 NIfTI-1 file, gzip-compressed (level 1, like
// nibabel) when `path` ends in .nii.gz, plain for .nii. `shape` is {i, j, k} or {i, j, k, c}.
// Geometry: `like`'s affine when `like` has a transform (sform_code or qform_code > 0), else diag(like.spacing) with
// the affine's translation (so a header built by hand from spacing alone is honoured). It is stored as both sform and
// qform, with pixdim = its column lengths (units mm), so every reader (nibabel, ITK / SimpleITK, libnifti) sees the
// same geometry; each code is `like`'s, a missing one takes the other's, and both are 1 (scanner) when `like` has
// neither. Written atomically (a temporary file in the same folder, flushed, then renamed; parent folders are
// created): readers and crashes see the old file or the complete new one. WriteError naming `path` and the OS
// reason when the file cannot be written; spvit::Error for a bad shape or a singular affine.
void write_nifti(const std::string& path, const NiftiHeader& like, const std::vector<int64_t>& shape,
                 const float* data);

// Label maps: stored as uint8 when every value is in [0, 255], else int16 when they fit, else int32 (an error past
// that); otherwise as write_nifti. Overloads for the element types label tensors come in.
void write_nifti_labels(const std::string& path, const NiftiHeader& like, const std::vector<int64_t>& shape,
                        const uint8_t* labels);
void write_nifti_labels(const std::string& path, const NiftiHeader& like, const std::vector<int64_t>& shape,
                        const int16_t* labels);
void write_nifti_labels(const std::string& path, const NiftiHeader& like, const std::vector<int64_t>& shape,
                        const int32_t* labels);
void write_nifti_labels(const std::string& path, const NiftiHeader& like, const std::vector<int64_t>& shape,
                        const int64_t* labels);

}  // namespace spvit::data
