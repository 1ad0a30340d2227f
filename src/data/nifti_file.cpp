// NIfTI-1/2 reading and writing (see nifti_file.h). libnifti parses headers and does the quaternion maths; voxel
// data goes through znzlib directly, because libnifti's loaders (nifti_image_load, nifti_read_subregion_image)
//  - look for the data file by base name, .nii before .nii.gz, so reading x.nii.gz next to a stale x.nii would mix
//    one file's header with the other's voxels;
//  - report a short read in nifti_read_subregion_image only when the library's debug level is above 1, so a
//    truncated file would quietly give a partly filled buffer;
//  - replace NaN and Inf by 0 in float data;
// and its writer (nifti_image_write) reports no error at all and picks compression from the file name, which the
// temporary name of an atomic write does not have.
#include "spvit/data/nifti_file.h"

#include <nifti2_io.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <type_traits>

#include "spvit/core/atomic_file.h"
#include "spvit/core/error.h"

namespace spvit::data {
namespace {

namespace fs = std::filesystem;

// Raw bytes held at once while reading or writing voxel data: bounds memory whatever the volume's size.
constexpr int64_t kChunkBytes = int64_t{8} << 20;

struct NimFree {
  void operator()(nifti_image* nim) const { nifti_image_free(nim); }
};
using NimPtr = std::unique_ptr<nifti_image, NimFree>;

struct ZnzClose {
  void operator()(znzptr* file) const { Xznzclose(&file); }
};
using ZnzPtr = std::unique_ptr<znzptr, ZnzClose>;

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() > suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}
bool is_gz(const std::string& path) { return ends_with(path, ".nii.gz"); }
bool is_nifti_name(const std::string& path) { return ends_with(path, ".nii") || is_gz(path); }

int errno_or_eio() { return errno != 0 ? errno : EIO; }

// ---- reading ------------------------------------------------------------------------------------------------------

// The first bytes of `path`'s header: how many could be read (SIZE_MAX when gzip data does not decompress) and its
// sizeof_hdr field in native order (348 NIfTI-1, 540 NIfTI-2; anything else: not NIfTI).
struct HeaderStart {
  size_t got = 0;
  int32_t header_size = 0;
  int open_error = 0;
};

HeaderStart header_start(const std::string& path) {
  HeaderStart start;
  errno = 0;
  const ZnzPtr file(znzopen(path.c_str(), "rb", is_gz(path)));
  if (!file) {
    start.open_error = errno_or_eio();
    return start;
  }
  unsigned char buf[sizeof(nifti_2_header)] = {};
  start.got = znzread(buf, 1, sizeof buf, file.get());
  int32_t size = 0;
  if (start.got >= 4 && start.got <= sizeof buf) std::memcpy(&size, buf, 4);
  const int32_t swapped = static_cast<int32_t>(__builtin_bswap32(static_cast<uint32_t>(size)));
  start.header_size = (size == 348 || size == 540) ? size : (swapped == 348 || swapped == 540) ? swapped : 0;
  return start;
}

// Why libnifti refused `path`: it prints its reason to stderr, our exception has to carry one.
std::string header_problem(const std::string& path) {
  const HeaderStart start = header_start(path);
  if (start.open_error != 0) return std::string("cannot open it: ") + std::strerror(start.open_error);
  if (start.got > sizeof(nifti_2_header)) return "it is not valid gzip data (corrupt or truncated .nii.gz)";
  if (start.header_size == 0) return "not a NIfTI file (no NIfTI-1 or NIfTI-2 header at its start)";
  if (start.got < static_cast<size_t>(start.header_size)) return "its header is truncated";
  return "its NIfTI header is invalid (magic, dimensions or datatype)";
}

// Converts `n` stored values of type T at `raw` to float, applying the scaling when `slope` != 0.
template <class T>
void convert(const unsigned char* raw, int64_t n, double slope, double inter, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    T v;
    std::memcpy(&v, raw + i * static_cast<int64_t>(sizeof(T)), sizeof(T));
    out[i] = slope != 0.0 ? static_cast<float>(static_cast<double>(v) * slope + inter) : static_cast<float>(v);
  }
}

using Converter = void (*)(const unsigned char*, int64_t, double, double, float*);

Converter converter_for(int datatype) {
  switch (datatype) {
    case NIFTI_TYPE_UINT8: return convert<uint8_t>;
    case NIFTI_TYPE_INT8: return convert<int8_t>;
    case NIFTI_TYPE_UINT16: return convert<uint16_t>;
    case NIFTI_TYPE_INT16: return convert<int16_t>;
    case NIFTI_TYPE_UINT32: return convert<uint32_t>;
    case NIFTI_TYPE_INT32: return convert<int32_t>;
    case NIFTI_TYPE_UINT64: return convert<uint64_t>;
    case NIFTI_TYPE_INT64: return convert<int64_t>;
    case NIFTI_TYPE_FLOAT32: return convert<float>;
    case NIFTI_TYPE_FLOAT64: return convert<double>;
    default: return nullptr;
  }
}

void check_readable_name(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) SPVIT_THROW(DataError, "NIfTI file not found: '", path, "'");
  if (!is_nifti_name(path))
    SPVIT_THROW(DataError, "'", path, "' is not a NIfTI file name (expected .nii or .nii.gz)");
}

// The parsed header of `path` (no voxel data), checked for what this reader supports.
NimPtr open_header(const std::string& path) {
  check_readable_name(path);
  NimPtr nim(nifti_image_read(path.c_str(), /*read_data=*/0));
  if (!nim) SPVIT_THROW(DataError, "cannot read NIfTI file '", path, "': ", header_problem(path));
  // libnifti marks NIfTI-2 files NIFTI1_1 too once read: the type only says "one file" here.
  if (nim->nifti_type != NIFTI_FTYPE_NIFTI1_1)
    SPVIT_THROW(DataError, "'", path, "' is not a single-file NIfTI-1/2 image (ANALYZE or a .hdr/.img pair header)");
  for (int d = 5; d <= nim->dim[0]; ++d) {
    if (nim->dim[d] > 1)
      SPVIT_THROW(DataError, "NIfTI file '", path, "' has ", nim->dim[0], " dimensions (dim[", d, "] = ", nim->dim[d],
                  "); only i, j, k and one channel axis are supported");
  }
  if (!converter_for(nim->datatype))
    SPVIT_THROW(DataError, "NIfTI file '", path, "' has unsupported datatype ", nifti_datatype_string(nim->datatype),
                " (", nim->datatype, "); integer and float types are read");
  return nim;
}

// mm per unit of the file's spatial unit code.
double millimetres_per_unit(int xyz_units) {
  if (xyz_units == NIFTI_UNITS_METER) return 1000.0;
  if (xyz_units == NIFTI_UNITS_MICRON) return 0.001;
  return 1.0;  // mm, or unknown (which the NIfTI standard and every MSD / nnU-Net file mean as mm)
}

NiftiHeader header_of(const nifti_image& nim, const std::string& path) {
  NiftiHeader h;
  const int64_t ndim = nim.dim[0];
  for (int d = 1; d <= 3; ++d) h.shape.push_back(d <= ndim ? std::max<int64_t>(1, nim.dim[d]) : 1);
  if (ndim >= 4) h.shape.push_back(std::max<int64_t>(1, nim.dim[4]));
  const double unit = millimetres_per_unit(nim.xyz_units);
  for (int d = 1; d <= 3; ++d) h.spacing[d - 1] = d <= ndim ? nim.pixdim[d] * unit : 1.0;
  // libnifti has already chosen the NIfTI "method 1" diagonal for qto_xyz when qform_code is 0.
  const nifti_dmat44& m = nim.sform_code > 0 ? nim.sto_xyz : nim.qto_xyz;
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 4; ++c) h.affine[r][c] = m.m[r][c];
  h.sform_code = nim.sform_code;
  h.qform_code = nim.qform_code;
  h.datatype = nim.datatype;
  h.scl_slope = nim.scl_slope;
  h.scl_inter = nim.scl_inter;
  h.path = path;
  return h;
}

void seek_to(znzFile file, int64_t offset, const std::string& path) {
  if (znzseek(file, static_cast<znz_off_t>(offset), SEEK_SET) < 0)
    SPVIT_THROW(DataError, "NIfTI file '", path, "' is truncated or corrupt: cannot seek to byte ", offset);
}

// Reads `count` voxels from the current position of `file` into `out` as float, one chunk of raw bytes at a time.
void read_run(znzFile file, const nifti_image& nim, int64_t count, float* out, const std::string& path) {
  const int64_t per_chunk = std::max<int64_t>(1, kChunkBytes / nim.nbyper);
  std::vector<unsigned char> raw(static_cast<size_t>(std::min(count, per_chunk) * nim.nbyper));
  const bool swap = nim.swapsize > 1 && nim.byteorder != nifti_short_order();
  const double slope = std::isfinite(nim.scl_slope) ? nim.scl_slope : 0.0;
  const double inter = std::isfinite(nim.scl_inter) ? nim.scl_inter : 0.0;
  const Converter to_float = converter_for(nim.datatype);
  for (int64_t done = 0; done < count;) {
    const int64_t n = std::min(per_chunk, count - done);
    const size_t want = static_cast<size_t>(n * nim.nbyper);
    const size_t got = znzread(raw.data(), 1, want, file);
    if (got != want)
      SPVIT_THROW(DataError, "NIfTI file '", path, "' is truncated or corrupt: ",
                  got > want ? std::string("its gzip data does not decompress")
                             : "its voxel data ends early (" + std::to_string(got) + " of " + std::to_string(want) +
                                   " bytes of a read)");
    if (swap) nifti_swap_Nbytes(n * nim.nbyper / nim.swapsize, nim.swapsize, raw.data());
    to_float(raw.data(), n, slope, inter, out + done);
    done += n;
  }
}

// After the last voxel of a .nii.gz: one more read makes zlib check the gzip trailer's CRC, the only thing that
// catches damage that still inflates. (Slabs ending earlier cannot be checked without decompressing the rest.)
void expect_clean_end(znzFile file, const std::string& path) {
  unsigned char extra = 0;
  if (znzread(&extra, 1, 1, file) > 1)
    SPVIT_THROW(DataError, "NIfTI file '", path, "' is truncated or corrupt: its gzip checksum does not match");
}

std::vector<float> read_slab(const nifti_image& nim, const NiftiHeader& h, int64_t k0, int64_t k1, int64_t channel) {
  const std::string& path = h.path;
  const int64_t nk = h.shape[2], nc = h.channels();
  if (k0 < 0 || k1 > nk || k0 >= k1)
    SPVIT_THROW(DataError, "slab [", k0, ", ", k1, ") is out of range for NIfTI file '", path, "', which has ", nk,
                " slices along k");
  if (channel < -1 || channel >= nc)
    SPVIT_THROW(DataError, "channel ", channel, " is out of range for NIfTI file '", path, "', which has ", nc,
                " channel(s)");
  const int64_t c0 = channel < 0 ? 0 : channel, c1 = channel < 0 ? nc : channel + 1;
  const int64_t run = h.voxels_per_slice() * (k1 - k0);  // one channel's slab: contiguous in the file
  std::vector<float> out(static_cast<size_t>(run * (c1 - c0)));
  errno = 0;
  const ZnzPtr file(znzopen(path.c_str(), "rb", is_gz(path)));
  if (!file) SPVIT_THROW(DataError, "cannot open NIfTI file '", path, "': ", std::strerror(errno_or_eio()));
  for (int64_t c = c0; c < c1; ++c) {  // increasing offsets: a .nii.gz is only ever read forwards
    seek_to(file.get(), nim.iname_offset + (c * nk + k0) * h.voxels_per_slice() * nim.nbyper, path);
    read_run(file.get(), nim, run, out.data() + (c - c0) * run, path);
  }
  if (is_gz(path) && c1 == nc && k1 == nk) expect_clean_end(file.get(), path);
  return out;
}

// ---- writing ------------------------------------------------------------------------------------------------------

template <class T>
constexpr int nifti_type_of() {
  if constexpr (std::is_same_v<T, float>) {
    return NIFTI_TYPE_FLOAT32;
  } else if constexpr (std::is_same_v<T, uint8_t>) {
    return NIFTI_TYPE_UINT8;
  } else if constexpr (std::is_same_v<T, int16_t>) {
    return NIFTI_TYPE_INT16;
  } else {
    static_assert(std::is_same_v<T, int32_t>, "NIfTI output is float32, uint8, int16 or int32");
    return NIFTI_TYPE_INT32;
  }
}

int64_t checked_voxel_count(const std::string& path, const std::vector<int64_t>& shape) {
  SPVIT_CHECK(shape.size() == 3 || shape.size() == 4, "cannot write NIfTI file '", path,
              "': shape needs 3 (i, j, k) or 4 (i, j, k, c) entries, got ", shape.size());
  int64_t count = 1;
  for (const int64_t n : shape) {
    SPVIT_CHECK(n > 0 && n <= std::numeric_limits<int16_t>::max(), "cannot write NIfTI file '", path,
                "': every axis needs 1 to 32767 voxels (NIfTI-1), got ", n);
    count *= n;
  }
  return count;
}

// The voxel -> world matrix to store (see write_nifti), checked invertible.
nifti_dmat44 output_affine(const NiftiHeader& like, const std::string& path) {
  nifti_dmat44 a{};
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 4; ++c) a.m[r][c] = like.affine[r][c];
  a.m[3][3] = 1.0;
  if (like.sform_code <= 0 && like.qform_code <= 0) {
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 3; ++c) a.m[r][c] = r == c ? like.spacing[r] : 0.0;
  }
  const double det = a.m[0][0] * (a.m[1][1] * a.m[2][2] - a.m[1][2] * a.m[2][1]) -
                     a.m[0][1] * (a.m[1][0] * a.m[2][2] - a.m[1][2] * a.m[2][0]) +
                     a.m[0][2] * (a.m[1][0] * a.m[2][1] - a.m[1][1] * a.m[2][0]);
  SPVIT_CHECK(std::isfinite(det) && det != 0.0, "cannot write NIfTI file '", path,
              "': the voxel-to-world matrix is singular or not finite");
  return a;
}

// Stores `a` as sform and qform, pixdim following it so the qform reproduces it exactly (shear aside).
void set_geometry(nifti_image& nim, const NiftiHeader& like, const nifti_dmat44& a) {
  const int fallback = like.sform_code > 0 ? like.sform_code : like.qform_code > 0 ? like.qform_code : 1;
  nim.sform_code = like.sform_code > 0 ? like.sform_code : fallback;
  nim.qform_code = like.qform_code > 0 ? like.qform_code : fallback;
  nim.sto_xyz = a;
  nim.qto_xyz = a;
  double dx = 0, dy = 0, dz = 0;
  nifti_dmat44_to_quatern(a, &nim.quatern_b, &nim.quatern_c, &nim.quatern_d, &nim.qoffset_x, &nim.qoffset_y,
                          &nim.qoffset_z, &dx, &dy, &dz, &nim.qfac);
  nim.dx = nim.pixdim[1] = dx;
  nim.dy = nim.pixdim[2] = dy;
  nim.dz = nim.pixdim[3] = dz;
  nim.xyz_units = NIFTI_UNITS_MM;
}

nifti_1_header make_header(const std::string& path, const NiftiHeader& like, const std::vector<int64_t>& shape,
                           int datatype) {
  int64_t dims[8] = {static_cast<int64_t>(shape.size()), 1, 1, 1, 1, 1, 1, 1};
  for (size_t d = 0; d < shape.size(); ++d) dims[d + 1] = shape[d];
  const nifti_dmat44 affine = output_affine(like, path);
  const NimPtr nim(nifti_make_new_nim(dims, datatype, /*data_fill=*/0));
  SPVIT_CHECK(nim != nullptr, "cannot write NIfTI file '", path, "': libnifti could not make a header");
  set_geometry(*nim, like, affine);
  nim->nifti_type = NIFTI_FTYPE_NIFTI1_1;
  nim->iname_offset = sizeof(nifti_1_header) + 4;  // the header, then 4 bytes saying "no extensions"
  nifti_1_header header;
  SPVIT_CHECK(nifti_convert_nim2n1hdr(nim.get(), &header) == 0, "cannot write NIfTI file '", path,
              "': its header does not fit NIfTI-1");
  return header;
}

void put(znzFile file, const void* data, size_t bytes, const std::string& path, const char* what) {
  errno = 0;
  if (znzwrite(data, 1, bytes, file) != bytes) throw WriteError(write_failure_message(path, errno_or_eio(), what));
}

// Streams `count` values as Out, converting a chunk at a time so no second copy of the volume is made.
template <class Out, class In>
void put_voxels(znzFile file, const In* values, int64_t count, const std::string& path) {
  const int64_t per_chunk = kChunkBytes / static_cast<int64_t>(sizeof(Out));
  std::vector<Out> buffer;
  for (int64_t done = 0; done < count;) {
    const int64_t n = std::min(per_chunk, count - done);
    const void* bytes = values + done;
    if constexpr (!std::is_same_v<In, Out>) {
      buffer.assign(values + done, values + done + n);
      bytes = buffer.data();
    }
    put(file, bytes, static_cast<size_t>(n) * sizeof(Out), path, "writing voxel data");
    done += n;
  }
}

// Closing is where buffered and gzip data reach the file, so its failure (a full disk) is a write failure.
void close_checked(ZnzPtr& file, const std::string& path) {
  znzFile raw = file.release();
  errno = 0;
  if (Xznzclose(&raw) != 0) throw WriteError(write_failure_message(path, errno_or_eio(), "closing"));
}

template <class Out, class In>
void write_volume(const std::string& path, const NiftiHeader& like, const std::vector<int64_t>& shape,
                  const In* values) {
  if (!is_nifti_name(path))
    SPVIT_THROW(WriteError, "cannot write '", path, "': a NIfTI file name must end in .nii or .nii.gz");
  const int64_t count = checked_voxel_count(path, shape);
  SPVIT_CHECK(values != nullptr, "cannot write NIfTI file '", path, "': no voxel data given");
  const nifti_1_header header = make_header(path, like, shape, nifti_type_of<Out>());
  write_file_atomically(path, [&](const std::string& temporary) {
    errno = 0;
    ZnzPtr file(znzopen(temporary.c_str(), is_gz(path) ? "wb1" : "wb", is_gz(path)));
    if (!file) throw WriteError(write_failure_message(path, errno_or_eio(), "creating '" + temporary + "'"));
    const char no_extensions[4] = {0, 0, 0, 0};
    put(file.get(), &header, sizeof header, path, "writing the header");
    put(file.get(), no_extensions, sizeof no_extensions, path, "writing the header");
    put_voxels<Out>(file.get(), values, count, path);
    close_checked(file, path);
  });
}

template <class In>
void write_labels(const std::string& path, const NiftiHeader& like, const std::vector<int64_t>& shape,
                  const In* labels) {
  const int64_t count = checked_voxel_count(path, shape);
  SPVIT_CHECK(labels != nullptr, "cannot write NIfTI file '", path, "': no voxel data given");
  const auto [lo, hi] = std::minmax_element(labels, labels + count);
  const auto fits = [&](auto type_tag) {
    using T = decltype(type_tag);
    return static_cast<int64_t>(*lo) >= std::numeric_limits<T>::min() &&
           static_cast<int64_t>(*hi) <= std::numeric_limits<T>::max();
  };
  if (fits(uint8_t{})) return write_volume<uint8_t>(path, like, shape, labels);
  if (fits(int16_t{})) return write_volume<int16_t>(path, like, shape, labels);
  SPVIT_CHECK(fits(int32_t{}), "cannot write label map '", path, "': labels span [", static_cast<int64_t>(*lo), ", ",
              static_cast<int64_t>(*hi), "], beyond int32");
  write_volume<int32_t>(path, like, shape, labels);
}

}  // namespace

NiftiHeader read_nifti_header(const std::string& path) {
  NiftiHeader h = header_of(*open_header(path), path);
  h.nifti_version = header_start(path).header_size == 540 ? 2 : 1;  // libnifti keeps no trace of it
  return h;
}

std::vector<float> read_nifti_slab(const std::string& path, int64_t k0, int64_t k1, int64_t channel) {
  const NimPtr nim = open_header(path);
  return read_slab(*nim, header_of(*nim, path), k0, k1, channel);
}

std::vector<float> read_nifti(const std::string& path) {
  const NimPtr nim = open_header(path);
  const NiftiHeader h = header_of(*nim, path);
  return read_slab(*nim, h, 0, h.shape[2], -1);
}

void write_nifti(const std::string& path, const NiftiHeader& like, const std::vector<int64_t>& shape,
                 const float* data) {
  write_volume<float>(path, like, shape, data);
}

void write_nifti_labels(const std::string& path, const NiftiHeader& like, const std::vector<int64_t>& shape,
                        const uint8_t* labels) {
  write_volume<uint8_t>(path, like, shape, labels);
}
void write_nifti_labels(const std::string& path, const NiftiHeader& like, const std::vector<int64_t>& shape,
                        const int16_t* labels) {
  write_labels(path, like, shape, labels);
}
void write_nifti_labels(const std::string& path, const NiftiHeader& like, const std::vector<int64_t>& shape,
                        const int32_t* labels) {
  write_labels(path, like, shape, labels);
}
void write_nifti_labels(const std::string& path, const NiftiHeader& like, const std::vector<int64_t>& shape,
                        const int64_t* labels) {
  write_labels(path, like, shape, labels);
}

}  // namespace spvit::data
