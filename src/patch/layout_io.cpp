// PatchLayout <-> JSON (human-readable, for inspection) and HDF5 (compact, for caching layouts of a data set).
#include <hdf5.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "spvit/core/error.h"
#include "spvit/patch/layout.h"

namespace spvit::patch {

namespace {

constexpr const char* kFormat = "spvit.patch_layout";
constexpr int kVersion = 1;

// ---- JSON

nlohmann::json to_json_value(const PatchLayout& l) {
  nlohmann::json j;
  j["format"] = kFormat;
  j["version"] = kVersion;
  j["spatial_dims"] = l.spatial_dims;
  j["patch"] = l.patch;
  j["root_side"] = l.root_side;
  j["min_side"] = l.min_side;
  j["image_size"] = l.image_size;
  j["order"] = to_string(l.order);
  j["scorer"] = l.scorer;
  j["x"] = l.x;
  j["y"] = l.y;
  if (l.spatial_dims == 3) j["z"] = l.z;
  j["side"] = l.side;
  j["level"] = l.level;
  return j;
}

template <typename T>
T field(const nlohmann::json& j, const char* name) {
  if (!j.contains(name)) SPVIT_THROW(DataError, "layout JSON has no '", name, "' field");
  try {
    return j.at(name).get<T>();
  } catch (const nlohmann::json::exception& e) {
    SPVIT_THROW(DataError, "layout JSON field '", name, "' has the wrong type: ", e.what());
  }
}

// ---- HDF5: one int64 dataset per per-token vector, scalars and strings as attributes of the root group.

// Closes an HDF5 handle when it leaves scope (errors must not leak file handles).
struct H5Handle {
  hid_t id;
  herr_t (*close)(hid_t);
  H5Handle(hid_t i, herr_t (*c)(hid_t)) : id(i), close(c) {}
  ~H5Handle() {
    if (id >= 0) close(id);
  }
  H5Handle(const H5Handle&) = delete;
  H5Handle& operator=(const H5Handle&) = delete;
};

// HDF5 prints its own error stack to stderr by default; our exceptions already say what failed.
void quiet_hdf5() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

void h5_check(herr_t status, const std::string& what, const std::string& path) {
  if (status < 0) SPVIT_THROW(DataError, "HDF5: failed to ", what, " in '", path, "'");
}

void write_vector(hid_t file, const char* name, const std::vector<int64_t>& v, const std::string& path) {
  hsize_t dims[1] = {static_cast<hsize_t>(v.size())};
  H5Handle space(H5Screate_simple(1, dims, nullptr), H5Sclose);
  H5Handle set(H5Dcreate2(file, name, H5T_STD_I64LE, space.id, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose);
  if (set.id < 0) SPVIT_THROW(DataError, "HDF5: cannot create dataset '", name, "' in '", path, "'");
  if (!v.empty()) h5_check(H5Dwrite(set.id, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), std::string("write ") + name, path);
}

std::vector<int64_t> read_vector(hid_t file, const char* name, const std::string& path) {
  if (H5Lexists(file, name, H5P_DEFAULT) <= 0) SPVIT_THROW(DataError, "HDF5 layout '", path, "' has no dataset '", name, "'");
  H5Handle set(H5Dopen2(file, name, H5P_DEFAULT), H5Dclose);
  if (set.id < 0) SPVIT_THROW(DataError, "HDF5: cannot open dataset '", name, "' in '", path, "'");
  H5Handle space(H5Dget_space(set.id), H5Sclose);
  if (H5Sget_simple_extent_ndims(space.id) != 1) SPVIT_THROW(DataError, "HDF5 dataset '", name, "' in '", path, "' is not 1-D");
  hsize_t dims[1] = {0};
  H5Sget_simple_extent_dims(space.id, dims, nullptr);
  std::vector<int64_t> v(static_cast<size_t>(dims[0]));
  if (!v.empty()) h5_check(H5Dread(set.id, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), std::string("read ") + name, path);
  return v;
}

void write_int_attr(hid_t file, const char* name, int64_t value, const std::string& path) {
  H5Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  H5Handle attr(H5Acreate2(file, name, H5T_STD_I64LE, space.id, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (attr.id < 0) SPVIT_THROW(DataError, "HDF5: cannot create attribute '", name, "' in '", path, "'");
  h5_check(H5Awrite(attr.id, H5T_NATIVE_INT64, &value), std::string("write attribute ") + name, path);
}

int64_t read_int_attr(hid_t file, const char* name, const std::string& path) {
  if (H5Aexists(file, name) <= 0) SPVIT_THROW(DataError, "HDF5 layout '", path, "' has no attribute '", name, "'");
  H5Handle attr(H5Aopen(file, name, H5P_DEFAULT), H5Aclose);
  int64_t value = 0;
  h5_check(H5Aread(attr.id, H5T_NATIVE_INT64, &value), std::string("read attribute ") + name, path);
  return value;
}

void write_string_attr(hid_t file, const char* name, const std::string& value, const std::string& path) {
  H5Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.id, std::max<size_t>(1, value.size()));
  H5Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  H5Handle attr(H5Acreate2(file, name, type.id, space.id, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (attr.id < 0) SPVIT_THROW(DataError, "HDF5: cannot create attribute '", name, "' in '", path, "'");
  std::string padded = value.empty() ? std::string(1, '\0') : value;
  h5_check(H5Awrite(attr.id, type.id, padded.data()), std::string("write attribute ") + name, path);
}

std::string read_string_attr(hid_t file, const char* name, const std::string& path) {
  if (H5Aexists(file, name) <= 0) SPVIT_THROW(DataError, "HDF5 layout '", path, "' has no attribute '", name, "'");
  H5Handle attr(H5Aopen(file, name, H5P_DEFAULT), H5Aclose);
  H5Handle type(H5Aget_type(attr.id), H5Tclose);
  if (H5Tget_class(type.id) != H5T_STRING || H5Tis_variable_str(type.id) > 0) {
    SPVIT_THROW(DataError, "HDF5 attribute '", name, "' in '", path, "' is not a fixed-length string");
  }
  std::string value(H5Tget_size(type.id), '\0');
  h5_check(H5Aread(attr.id, type.id, value.data()), std::string("read attribute ") + name, path);
  return value.substr(0, value.find('\0'));
}

}  // namespace

std::string to_json(const PatchLayout& layout, int indent) { return to_json_value(layout).dump(indent); }

PatchLayout layout_from_json(const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    SPVIT_THROW(DataError, "layout JSON does not parse: ", e.what());
  }
  if (!j.is_object() || field<std::string>(j, "format") != kFormat) {
    SPVIT_THROW(DataError, "JSON is not a spvit patch layout (format must be '", kFormat, "')");
  }
  if (field<int>(j, "version") != kVersion) SPVIT_THROW(DataError, "layout JSON version ", j["version"], " is not ", kVersion);
  PatchLayout l;
  l.spatial_dims = field<int>(j, "spatial_dims");
  l.patch = field<int64_t>(j, "patch");
  l.root_side = field<int64_t>(j, "root_side");
  l.min_side = field<int64_t>(j, "min_side");
  l.image_size = field<std::vector<int64_t>>(j, "image_size");
  l.order = parse_token_order(field<std::string>(j, "order"));
  l.scorer = field<std::string>(j, "scorer");
  l.x = field<std::vector<int64_t>>(j, "x");
  l.y = field<std::vector<int64_t>>(j, "y");
  if (l.spatial_dims == 3) l.z = field<std::vector<int64_t>>(j, "z");
  l.side = field<std::vector<int64_t>>(j, "side");
  l.level = field<std::vector<int64_t>>(j, "level");
  l.validate();
  return l;
}

void save_json(const PatchLayout& layout, const std::string& path) {
  std::ofstream out(path);
  if (!out) SPVIT_THROW(DataError, "cannot open '", path, "' for writing the layout");
  out << to_json(layout) << "\n";
  if (!out) SPVIT_THROW(DataError, "failed writing the layout to '", path, "'");
}

PatchLayout load_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) SPVIT_THROW(DataError, "cannot open layout file '", path, "'");
  std::stringstream text;
  text << in.rdbuf();
  try {
    return layout_from_json(text.str());
  } catch (Error& e) {
    e.add_context("loading layout '" + path + "'");
    throw;
  }
}

void save_hdf5(const PatchLayout& layout, const std::string& path) {
  quiet_hdf5();
  H5Handle file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
  if (file.id < 0) SPVIT_THROW(DataError, "cannot create HDF5 file '", path, "'");
  write_string_attr(file.id, "format", kFormat, path);
  write_int_attr(file.id, "version", kVersion, path);
  write_int_attr(file.id, "spatial_dims", layout.spatial_dims, path);
  write_int_attr(file.id, "patch", layout.patch, path);
  write_int_attr(file.id, "root_side", layout.root_side, path);
  write_int_attr(file.id, "min_side", layout.min_side, path);
  write_string_attr(file.id, "order", to_string(layout.order), path);
  write_string_attr(file.id, "scorer", layout.scorer, path);
  write_vector(file.id, "image_size", layout.image_size, path);
  write_vector(file.id, "x", layout.x, path);
  write_vector(file.id, "y", layout.y, path);
  if (layout.spatial_dims == 3) write_vector(file.id, "z", layout.z, path);
  write_vector(file.id, "side", layout.side, path);
  write_vector(file.id, "level", layout.level, path);
}

PatchLayout load_hdf5(const std::string& path) {
  {
    std::ifstream probe(path);
    if (!probe) SPVIT_THROW(DataError, "cannot open layout file '", path, "'");
  }
  quiet_hdf5();
  if (H5Fis_hdf5(path.c_str()) <= 0) SPVIT_THROW(DataError, "'", path, "' is not an HDF5 file");
  H5Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (file.id < 0) SPVIT_THROW(DataError, "cannot open HDF5 file '", path, "'");
  if (read_string_attr(file.id, "format", path) != kFormat) SPVIT_THROW(DataError, "'", path, "' is not a spvit patch layout");
  const int64_t version = read_int_attr(file.id, "version", path);
  if (version != kVersion) SPVIT_THROW(DataError, "layout '", path, "' has version ", version, ", expected ", kVersion);
  PatchLayout l;
  l.spatial_dims = static_cast<int>(read_int_attr(file.id, "spatial_dims", path));
  l.patch = read_int_attr(file.id, "patch", path);
  l.root_side = read_int_attr(file.id, "root_side", path);
  l.min_side = read_int_attr(file.id, "min_side", path);
  l.order = parse_token_order(read_string_attr(file.id, "order", path));
  l.scorer = read_string_attr(file.id, "scorer", path);
  l.image_size = read_vector(file.id, "image_size", path);
  l.x = read_vector(file.id, "x", path);
  l.y = read_vector(file.id, "y", path);
  if (l.spatial_dims == 3) l.z = read_vector(file.id, "z", path);
  l.side = read_vector(file.id, "side", path);
  l.level = read_vector(file.id, "level", path);
  try {
    l.validate();
  } catch (Error& e) {
    e.add_context("loading layout '" + path + "'");
    throw;
  }
  return l;
}

}  // namespace spvit::patch
