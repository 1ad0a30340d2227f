// HDF5 datasets: "images" [N, (D,) H, W, C] and "masks" [N, (D,) H, W], region reads through hyperslabs.
#include <hdf5.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mutex>

#include "spvit/core/error.h"
#include "spvit/core/logging.h"
#include "spvit/data/formats.h"

namespace spvit::data {

namespace {

// One lock around every HDF5 call of this layer: Debian's serial library is built thread-safe (a global lock of its
// own), but other builds (the GPU machine's) need not be, and the loader's workers read concurrently.
std::mutex& hdf5_mutex() {
  static std::mutex m;
  return m;
}

struct H5Id {  // owns an HDF5 identifier
  hid_t id = -1;
  herr_t (*close)(hid_t) = nullptr;
  H5Id() = default;
  H5Id(hid_t i, herr_t (*c)(hid_t)) : id(i), close(c) {}
  H5Id(H5Id&& o) noexcept : id(o.id), close(o.close) { o.id = -1; }
  H5Id& operator=(H5Id&& o) noexcept {
    std::swap(id, o.id);
    std::swap(close, o.close);
    return *this;
  }
  ~H5Id() {
    if (id >= 0 && close) close(id);
  }
};

// ": <the innermost message on HDF5's error stack>" (e.g. ": truncated file: eof = 4096, ..."), or "" when the stack
// is empty. Automatic printing of the stack is off (it would interleave across ranks), so the reason goes into the
// exception instead. Must run before the next HDF5 call, which clears the stack.
std::string h5_reason() {
  std::string reason;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD,
           [](unsigned, const H5E_error2_t* e, void* out) -> herr_t {
             if (e->desc != nullptr && *e->desc != '\0') *static_cast<std::string*>(out) = e->desc;
             return 0;
           },
           &reason);
  return reason.empty() ? "" : ": " + reason;
}

void h5_check(herr_t status, const std::string& what, const std::string& path) {
  if (status < 0) SPVIT_THROW(DataError, "HDF5 error while ", what, " in '", path, "'", h5_reason());
}
hid_t h5_valid(hid_t id, const std::string& what, const std::string& path) {
  if (id < 0) SPVIT_THROW(DataError, "HDF5 error while ", what, " in '", path, "'", h5_reason());
  return id;
}

std::vector<int64_t> dims_of(hid_t dataset) {
  H5Id space(H5Dget_space(dataset), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.id);
  std::vector<hsize_t> d(static_cast<size_t>(std::max(rank, 0)));
  if (rank > 0) H5Sget_simple_extent_dims(space.id, d.data(), nullptr);
  return std::vector<int64_t>(d.begin(), d.end());
}

enum class PixelType { kUint8, kUint16, kFloat };

class Hdf5Dataset : public Dataset {
 public:
  explicit Hdf5Dataset(const std::string& path);
  int64_t size() const override { return count_; }
  int spatial_dims() const override { return static_cast<int>(shape_.size()); }
  int64_t channels() const override { return channels_; }
  int64_t num_classes() const override { return num_classes_; }
  std::vector<int64_t> spatial_shape(int64_t index) const override {
    check_index(*this, index);
    return shape_;
  }
  Sample read(int64_t index, const std::optional<Region>& region = std::nullopt) const override;
  std::string describe() const override {
    return "HDF5 file '" + path_ + "' (" + std::to_string(count_) + " x " + shape_string(shape_) + ")";
  }

 private:
  // Reads `region` of sample `index` of `set` (whose trailing dimension of size `trailing` is read whole, if any).
  void read_slab(hid_t set, hid_t mem_type, int64_t index, const Region& region, int64_t trailing, void* out) const;

  std::string path_;
  H5Id file_, images_, masks_;
  int64_t count_ = 0, channels_ = 0, num_classes_ = 0;
  std::vector<int64_t> shape_;
  PixelType pixel_ = PixelType::kFloat;
};

Hdf5Dataset::Hdf5Dataset(const std::string& path) : path_(path) {
  if (!std::ifstream(path).good()) SPVIT_THROW(DataError, "cannot open HDF5 file '", path, "' (missing or unreadable)");
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  if (H5Fis_hdf5(path.c_str()) <= 0) SPVIT_THROW(DataError, "'", path, "' is not an HDF5 file");
  file_ = H5Id(h5_valid(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), "opening the file", path), H5Fclose);
  for (const char* name : {"images", "masks"}) {
    if (H5Lexists(file_.id, name, H5P_DEFAULT) <= 0) {
      SPVIT_THROW(DataError, "HDF5 file '", path, "' has no dataset '", name,
                  "' (expected 'images' [N, H, W, C] or [N, D, H, W, C] and 'masks' [N, H, W] or [N, D, H, W])");
    }
  }
  images_ = H5Id(h5_valid(H5Dopen2(file_.id, "images", H5P_DEFAULT), "opening 'images'", path), H5Dclose);
  masks_ = H5Id(h5_valid(H5Dopen2(file_.id, "masks", H5P_DEFAULT), "opening 'masks'", path), H5Dclose);
  const auto idims = dims_of(images_.id), mdims = dims_of(masks_.id);
  if (idims.size() != 4 && idims.size() != 5) {
    SPVIT_THROW(DataError, "HDF5 dataset 'images' in '", path, "' has rank ", idims.size(), " (shape ",
                shape_string(idims), "); expected rank 4 [N, H, W, C] or 5 [N, D, H, W, C]");
  }
  if (mdims.size() != idims.size() - 1) {
    SPVIT_THROW(DataError, "HDF5 dataset 'masks' in '", path, "' has rank ", mdims.size(), " (shape ",
                shape_string(mdims), "); expected rank ", idims.size() - 1, " to match 'images' ", shape_string(idims));
  }
  if (!std::equal(mdims.begin(), mdims.end(), idims.begin())) {
    SPVIT_THROW(DataError, "HDF5 file '", path, "': 'masks' ", shape_string(mdims), " does not match 'images' ",
                shape_string(idims), " (masks must be [N, spatial...] of the images)");
  }
  count_ = idims[0];
  channels_ = idims.back();
  shape_.assign(idims.begin() + 1, idims.end() - 1);
  if (count_ < 1 || channels_ < 1) SPVIT_THROW(DataError, "HDF5 file '", path, "' holds no samples (images ", shape_string(idims), ")");

  H5Id itype(H5Dget_type(images_.id), H5Tclose), mtype(H5Dget_type(masks_.id), H5Tclose);
  const H5T_class_t iclass = H5Tget_class(itype.id);
  const size_t isize = H5Tget_size(itype.id);
  const bool is_unsigned = iclass == H5T_INTEGER && H5Tget_sign(itype.id) == H5T_SGN_NONE;
  if (iclass == H5T_FLOAT) pixel_ = PixelType::kFloat;
  else if (is_unsigned && isize == 1) pixel_ = PixelType::kUint8;
  else if (is_unsigned && isize == 2) pixel_ = PixelType::kUint16;
  else SPVIT_THROW(DataError, "HDF5 dataset 'images' in '", path, "' has an unsupported type (", isize,
                   "-byte class ", static_cast<int>(iclass), "); expected uint8, uint16 or float");
  if (H5Tget_class(mtype.id) != H5T_INTEGER) {
    SPVIT_THROW(DataError, "HDF5 dataset 'masks' in '", path, "' must hold integer class ids");
  }

  if (H5Aexists(file_.id, "num_classes") > 0) {
    H5Id attr(H5Aopen(file_.id, "num_classes", H5P_DEFAULT), H5Aclose);
    int64_t k = 0;
    h5_check(H5Aread(attr.id, H5T_NATIVE_INT64, &k), "reading attribute 'num_classes'", path);
    if (k < 1) SPVIT_THROW(DataError, "HDF5 file '", path, "': attribute num_classes = ", k, " must be >= 1");
    num_classes_ = k;
  } else {  // no attribute: one pass over the masks
    int64_t most = 0;
    const Region all = full_region(shape_);
    auto buffer = torch::empty(all.extents(), torch::kLong);
    for (int64_t i = 0; i < count_; ++i) {
      read_slab(masks_.id, H5T_NATIVE_INT64, i, all, 0, buffer.data_ptr());
      most = std::max(most, buffer.max().item<int64_t>());
    }
    num_classes_ = std::max<int64_t>(2, most + 1);
    log::info("HDF5 '{}' has no num_classes attribute; found {} classes in its masks", path, num_classes_);
  }
}

void Hdf5Dataset::read_slab(hid_t set, hid_t mem_type, int64_t index, const Region& region, int64_t trailing,
                            void* out) const {
  std::vector<hsize_t> start{static_cast<hsize_t>(index)}, count{1}, mem;
  for (int d = 0; d < region.dims(); ++d) {
    start.push_back(static_cast<hsize_t>(region.begin[d]));
    count.push_back(static_cast<hsize_t>(region.extent(d)));
    mem.push_back(static_cast<hsize_t>(region.extent(d)));
  }
  if (trailing > 0) {
    start.push_back(0);
    count.push_back(static_cast<hsize_t>(trailing));
    mem.push_back(static_cast<hsize_t>(trailing));
  }
  H5Id file_space(H5Dget_space(set), H5Sclose);
  h5_check(H5Sselect_hyperslab(file_space.id, H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr),
           "selecting region " + to_string(region) + " of sample " + std::to_string(index), path_);
  H5Id mem_space(H5Screate_simple(static_cast<int>(mem.size()), mem.data(), nullptr), H5Sclose);
  h5_check(H5Dread(set, mem_type, mem_space.id, file_space.id, H5P_DEFAULT, out),
           "reading region " + to_string(region) + " of sample " + std::to_string(index), path_);
}

Sample Hdf5Dataset::read(int64_t index, const std::optional<Region>& region) const {
  check_index(*this, index);
  Sample s;
  s.full_shape = shape_;
  s.region = region ? *region : full_region(shape_);
  s.id = std::filesystem::path(path_).stem().string() + "#" + std::to_string(index);
  check_region(s.region, shape_, describe() + ", sample " + std::to_string(index));
  auto extents = s.region.extents();
  s.mask = torch::empty(extents, torch::kLong);
  extents.push_back(channels_);
  torch::Tensor raw;
  {
    std::lock_guard<std::mutex> lock(hdf5_mutex());
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    if (pixel_ == PixelType::kUint8) {
      raw = torch::empty(extents, torch::kByte);
      read_slab(images_.id, H5T_NATIVE_UINT8, index, s.region, channels_, raw.data_ptr());
    } else if (pixel_ == PixelType::kUint16) {
      raw = torch::empty(extents, torch::kInt);  // LibTorch 1.13 has no uint16: HDF5 widens on read
      read_slab(images_.id, H5T_NATIVE_INT32, index, s.region, channels_, raw.data_ptr());
    } else {
      raw = torch::empty(extents, torch::kFloat32);
      read_slab(images_.id, H5T_NATIVE_FLOAT, index, s.region, channels_, raw.data_ptr());
    }
    read_slab(masks_.id, H5T_NATIVE_INT64, index, s.region, 0, s.mask.data_ptr());
  }
  s.image = pixel_ == PixelType::kUint8    ? raw.to(torch::kFloat32).div_(255.0)
            : pixel_ == PixelType::kUint16 ? raw.to(torch::kFloat32).div_(65535.0)
                                           : raw;
  const int64_t lo = s.mask.min().item<int64_t>(), hi = s.mask.max().item<int64_t>();
  if (lo < 0 || hi >= num_classes_) {
    SPVIT_THROW(DataError, "HDF5 file '", path_, "': masks[", index, "] holds class id ", lo < 0 ? lo : hi,
                " outside [0, ", num_classes_, ")");
  }
  return s;
}

}  // namespace

std::shared_ptr<Dataset> open_hdf5(const std::string& path) { return std::make_shared<Hdf5Dataset>(path); }

void write_hdf5(const std::string& path, const Dataset& source) { write_hdf5(path, source, Hdf5WriteOptions{}); }

void write_hdf5(const std::string& path, const Dataset& source, const Hdf5WriteOptions& options) {
  const int64_t n = source.size(), channels = source.channels();
  SPVIT_CHECK(n >= 1, "write_hdf5 '", path, "': ", source.describe(), " is empty");
  const auto shape = source.spatial_shape(0);
  for (int64_t i = 1; i < n; ++i) {
    if (source.spatial_shape(i) != shape) {
      SPVIT_THROW(DataError, "write_hdf5 '", path, "': sample ", i, " of ", source.describe(), " is ",
                  shape_string(source.spatial_shape(i)), " but sample 0 is ", shape_string(shape),
                  "; an HDF5 dataset holds samples of one shape");
    }
  }
  const int nd = static_cast<int>(shape.size());
  std::vector<int64_t> chunk = options.chunk;
  if (chunk.empty()) chunk = nd == 2 ? std::vector<int64_t>{256, 256} : std::vector<int64_t>{32, 64, 64};
  SPVIT_CHECK(static_cast<int>(chunk.size()) == nd, "write_hdf5: chunk ", shape_string(chunk), " for ", nd, "-D samples");
  SPVIT_CHECK(options.compression >= 0 && options.compression <= 9, "write_hdf5: gzip level ", options.compression, " not in 0-9");
  const bool small_masks = source.num_classes() <= 256;

  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  try {
    std::unique_lock<std::mutex> lock(hdf5_mutex());
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    H5Id file(h5_valid(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), "creating the file", tmp), H5Fclose);
    auto create = [&](const char* name, hid_t type, bool with_channels) {
      std::vector<hsize_t> dims{static_cast<hsize_t>(n)}, chunks{1};
      for (int d = 0; d < nd; ++d) {
        dims.push_back(static_cast<hsize_t>(shape[d]));
        chunks.push_back(static_cast<hsize_t>(std::clamp<int64_t>(chunk[d], 1, shape[d])));
      }
      if (with_channels) {
        dims.push_back(static_cast<hsize_t>(channels));
        chunks.push_back(static_cast<hsize_t>(channels));
      }
      H5Id space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose);
      H5Id plist(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
      h5_check(H5Pset_chunk(plist.id, static_cast<int>(chunks.size()), chunks.data()), "setting chunks", tmp);
      if (options.compression > 0) h5_check(H5Pset_deflate(plist.id, static_cast<unsigned>(options.compression)), "setting gzip", tmp);
      return H5Id(h5_valid(H5Dcreate2(file.id, name, type, space.id, H5P_DEFAULT, plist.id, H5P_DEFAULT),
                           std::string("creating '") + name + "'", tmp), H5Dclose);
    };
    H5Id images = create("images", options.float_images ? H5T_IEEE_F32LE : H5T_STD_U8LE, true);
    H5Id masks = create("masks", small_masks ? H5T_STD_U8LE : H5T_STD_I32LE, false);
    {
      H5Id space(H5Screate(H5S_SCALAR), H5Sclose);
      H5Id attr(H5Acreate2(file.id, "num_classes", H5T_STD_I64LE, space.id, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
      const int64_t k = source.num_classes();
      h5_check(H5Awrite(attr.id, H5T_NATIVE_INT64, &k), "writing attribute num_classes", tmp);
    }
    auto write = [&](hid_t set, hid_t mem_type, int64_t index, const Region& r, int64_t trailing, const void* data) {
      std::vector<hsize_t> start{static_cast<hsize_t>(index)}, count{1};
      for (int d = 0; d < nd; ++d) {
        start.push_back(static_cast<hsize_t>(r.begin[d]));
        count.push_back(static_cast<hsize_t>(r.extent(d)));
      }
      if (trailing) {
        start.push_back(0);
        count.push_back(static_cast<hsize_t>(trailing));
      }
      H5Id fs(H5Dget_space(set), H5Sclose);
      h5_check(H5Sselect_hyperslab(fs.id, H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr), "selecting", tmp);
      H5Id ms(H5Screate_simple(static_cast<int>(count.size()) - 1, count.data() + 1, nullptr), H5Sclose);
      h5_check(H5Dwrite(set, mem_type, ms.id, fs.id, H5P_DEFAULT, data), "writing sample " + std::to_string(index), tmp);
    };
    // Samples are copied in slabs along the first spatial axis (~16 M values each), so any size fits in memory.
    int64_t per_row = channels;
    for (int d = 1; d < nd; ++d) per_row *= shape[d];
    const int64_t slab = std::max<int64_t>(1, (int64_t{1} << 24) / per_row);
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t r0 = 0; r0 < shape[0]; r0 += slab) {
        const Region r = band_region(shape, 0, r0, std::min(shape[0], r0 + slab));
        lock.unlock();  // the source may itself be an HDF5 dataset
        Sample s;
        try {
          s = source.read(i, r);
        } catch (...) {
          lock.lock();  // the HDF5 handles above close under the lock
          throw;
        }
        auto image = options.float_images ? s.image.to(torch::kFloat32).contiguous()
                                          : s.image.clamp(0.0, 1.0).mul(255.0).round().to(torch::kByte).contiguous();
        auto mask = s.mask.to(torch::kInt).contiguous();
        lock.lock();
        write(images.id, options.float_images ? H5T_NATIVE_FLOAT : H5T_NATIVE_UINT8, i, r, channels, image.data_ptr());
        write(masks.id, H5T_NATIVE_INT32, i, r, 0, mask.data_ptr());
      }
    }
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    SPVIT_THROW(DataError, "cannot rename '", tmp, "' to '", path, "': ", ec.message());
  }
}

}  // namespace spvit::data
