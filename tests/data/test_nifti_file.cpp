// NIfTI reading and writing (data/nifti_file.h), checked against Debian's nibabel (python3-nibabel) both ways: files we
// write are read by nibabel, files nibabel writes are read by us; slabs equal crops of whole reads; every failure
// names the file. Needs /usr/bin/python3 with nibabel and numpy (or SPVIT_PYTHON): the tests fail, not skip, without.
// No LibTorch here (test_support.h pulls it in), hence the small local helpers.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "spvit/core/error.h"
#include "spvit/data/nifti_file.h"
#include "test_support.h"

namespace spvit::data {
namespace {

namespace fs = std::filesystem;

class NiftiTempDir {
 public:
  explicit NiftiTempDir(const std::string& tag) {
    path_ = fs::temp_directory_path() / ("spvit_nifti_" + tag + "_" + std::to_string(::getpid()));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~NiftiTempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string path() const { return path_.string(); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  // Names in the folder, to show that a failed write left no temporary file behind.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(path_)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  fs::path path_;
};

using spvit::testing::thrown_message;

#define EXPECT_MENTIONS(message, text) \
  EXPECT_NE((message).find(text), std::string::npos) << "message: '" << (message) << "' lacks '" << (text) << "'"

// ---- python3-nibabel ----------------------------------------------------------------------------------------------

// Debian's interpreter: a python3 earlier on PATH (pyenv, a venv) usually lacks the python3-nibabel package.
std::string python() {
  if (const char* p = std::getenv("SPVIT_PYTHON"); p != nullptr && *p != '\0') return p;
  return fs::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
}

struct PythonRun {
  int status = -1;
  std::string output;  // stdout and stderr
};

PythonRun run_python(const NiftiTempDir& dir, const std::string& script, const std::string& args) {
  const std::string script_path = dir.file("script.py");
  std::ofstream(script_path) << script;
  PythonRun run;
  FILE* pipe = ::popen((python() + " " + script_path + " " + args + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return run;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, pipe)) run.output.append(buf, n);
  run.status = ::pclose(pipe);
  return run;
}

::testing::AssertionResult nibabel_available(const NiftiTempDir& dir) {
  const PythonRun r = run_python(dir, "import nibabel, numpy\n", "");
  if (r.status == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "these tests need python3 with nibabel and numpy: apt-get install "
                                          "python3-nibabel python3-numpy (or set SPVIT_PYTHON); '"
                                       << python() << "' said: " << r.output;
}

// Checks one file with nibabel: shape, on-disk dtype, sform, qform and best affine (to 1e-5), their codes, zooms
// against the affine's column lengths, and the voxels against a raw little-endian dump in file order.
const char* kNibabelCheck = R"(
import sys, numpy as np, nibabel as nib
path, dtype, dump, dump_dtype, shape, affine, scode, qcode = sys.argv[1:9]
shape = tuple(int(x) for x in shape.split(','))
affine = np.array([float(x) for x in affine.split(',')]).reshape(4, 4)
img = nib.load(path)
hdr = img.header
errors = []
if img.shape != shape: errors.append(f'shape {img.shape} != {shape}')
if str(hdr.get_data_dtype().newbyteorder('=')) != dtype: errors.append(f'dtype {hdr.get_data_dtype()} != {dtype}')
sform, sc = hdr.get_sform(coded=True)
qform, qc = hdr.get_qform(coded=True)
if int(sc) != int(scode) or int(qc) != int(qcode): errors.append(f'codes {int(sc)},{int(qc)} != {scode},{qcode}')
for name, m in (('sform', sform), ('qform', qform), ('affine', img.affine)):
    if m is None or not np.allclose(m, affine, rtol=0, atol=1e-5): errors.append(f'{name}\n{m}\n!=\n{affine}')
norms = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
if not np.allclose(hdr.get_zooms()[:3], norms, rtol=0, atol=1e-5): errors.append(f'zooms {hdr.get_zooms()} != {norms}')
expected = np.fromfile(dump, dtype=dump_dtype).reshape(shape, order='F')
raw = np.asanyarray(img.dataobj)
if np.issubdtype(expected.dtype, np.floating):
    if not np.allclose(raw, expected, rtol=0, atol=1e-6, equal_nan=True): errors.append('float voxels differ')
elif not np.array_equal(raw, expected): errors.append('label voxels differ')
print('\n'.join(errors) if errors else 'ok')
sys.exit(1 if errors else 0)
)";

template <class T>
void dump(const std::string& path, const std::vector<T>& values) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

std::string joined(const std::vector<int64_t>& shape) {
  std::string s;
  for (const int64_t n : shape) s += (s.empty() ? "" : ",") + std::to_string(n);
  return s;
}

std::string joined(const std::array<std::array<double, 4>, 4>& m) {
  std::ostringstream s;
  s.precision(17);
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 4; ++c) s << (r + c ? "," : "") << m[r][c];
  return s.str();
}

// ---- fixtures -----------------------------------------------------------------------------------------------------

// Rotated about z by 30 and about x by 10 degrees, anisotropic 0.8 x 0.8 x 3.0 mm, translated.
NiftiHeader oblique_header() {
  const double pi = 3.14159265358979323846;
  const double z = pi / 6, x = pi / 18, s[3] = {0.8, 0.8, 3.0};
  const double rz[3][3] = {{std::cos(z), -std::sin(z), 0}, {std::sin(z), std::cos(z), 0}, {0, 0, 1}};
  const double rx[3][3] = {{1, 0, 0}, {0, std::cos(x), -std::sin(x)}, {0, std::sin(x), std::cos(x)}};
  NiftiHeader h;
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 3; ++c) {
      double v = 0;
      for (int k = 0; k < 3; ++k) v += rz[r][k] * rx[k][c];
      h.affine[r][c] = v * s[c];
    }
  }
  h.affine[0][3] = -90.25;
  h.affine[1][3] = 12.5;
  h.affine[2][3] = 33.75;
  h.spacing = {0.8, 0.8, 3.0};
  h.sform_code = 2;
  h.qform_code = 1;
  return h;
}

int64_t count(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (const int64_t s : shape) n *= s;
  return n;
}

std::vector<float> image_values(const std::vector<int64_t>& shape) {
  std::vector<float> v(count(shape));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(std::sin(0.37 * i) * 1000.0 + 0.125 * i);
  return v;
}

std::vector<uint8_t> label_values(const std::vector<int64_t>& shape) {
  std::vector<uint8_t> v(count(shape));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<uint8_t>((i * 7 + i / 13) % 6);
  return v;
}

void expect_affine_near(const std::array<std::array<double, 4>, 4>& a, const std::array<std::array<double, 4>, 4>& b,
                        double tolerance) {
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 4; ++c) EXPECT_NEAR(a[r][c], b[r][c], tolerance) << "affine[" << r << "][" << c << "]";
}

// ---- (a) our files, read by nibabel -------------------------------------------------------------------------------

TEST(NiftiFile, ImagesAndLabelMapsWeWriteReadTheSameInNibabel) {
  const NiftiTempDir dir("write");
  ASSERT_TRUE(nibabel_available(dir));
  const NiftiHeader like = oblique_header();
  const std::vector<int64_t> image_shape{7, 6, 5, 4}, label_shape{7, 6, 5};
  const auto image = image_values(image_shape);
  const auto labels = label_values(label_shape);
  dump(dir.file("image.bin"), image);
  dump(dir.file("labels.bin"), labels);
  for (const std::string ext : {".nii", ".nii.gz"}) {
    write_nifti(dir.file("image" + ext), like, image_shape, image.data());
    write_nifti_labels(dir.file("labels" + ext), like, label_shape, labels.data());
    // The dumps hold the on-disk type, so the dtype argument serves for both.
    for (const auto& [name, dtype, shape] :
         {std::tuple{"image", "float32", image_shape}, std::tuple{"labels", "uint8", label_shape}}) {
      const std::string args = dir.file(name + ext) + " " + dtype + " " + dir.file(std::string(name) + ".bin") + " " +
                               dtype + " " + joined(shape) + " " + joined(like.affine) + " 2 1";
      const PythonRun r = run_python(dir, kNibabelCheck, args);
      EXPECT_EQ(r.status, 0) << name << ext << ": " << r.output;
    }
  }
}

TEST(NiftiFile, LabelMapsTakeTheSmallestTypeThatHoldsThem) {
  const NiftiTempDir dir("label_types");
  ASSERT_TRUE(nibabel_available(dir));
  const NiftiHeader like = oblique_header();
  const std::vector<int64_t> shape{4, 3, 2};
  for (const auto& [top, dtype] : {std::pair<int64_t, std::string>{255, "uint8"}, {300, "int16"}, {70000, "int32"}}) {
    std::vector<int64_t> labels(count(shape));
    for (size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int64_t>(i) * top / (labels.size() - 1);
    const std::string path = dir.file("labels_" + dtype + ".nii.gz");
    write_nifti_labels(path, like, shape, labels.data());
    dump(dir.file("labels.bin"), labels);
    const PythonRun r = run_python(dir, kNibabelCheck,
                             path + " " + dtype + " " + dir.file("labels.bin") + " int64 " + joined(shape) + " " +
                                 joined(like.affine) + " 2 1");
    EXPECT_EQ(r.status, 0) << dtype << ": " << r.output;
    const auto back = read_nifti(path);
    for (size_t i = 0; i < labels.size(); ++i) ASSERT_EQ(back[i], static_cast<float>(labels[i])) << dtype << " " << i;
  }
  std::vector<int64_t> huge(count(shape), int64_t{1} << 40);
  EXPECT_MENTIONS(thrown_message<Error>([&] { write_nifti_labels(dir.file("huge.nii"), like, shape, huge.data()); }),
                  dir.file("huge.nii"));
}

TEST(NiftiFile, HeaderWeWriteReadsBackWithItsGeometry) {
  const NiftiTempDir dir("header");
  const NiftiHeader like = oblique_header();
  const std::vector<int64_t> shape{7, 6, 5, 4};
  const auto image = image_values(shape);
  write_nifti(dir.file("x.nii.gz"), like, shape, image.data());
  const NiftiHeader h = read_nifti_header(dir.file("x.nii.gz"));
  EXPECT_EQ(h.shape, shape);
  EXPECT_EQ(h.channels(), 4);
  for (int d = 0; d < 3; ++d) EXPECT_NEAR(h.spacing[d], like.spacing[d], 1e-6);
  expect_affine_near(h.affine, like.affine, 1e-5);
  EXPECT_EQ(h.sform_code, 2);
  EXPECT_EQ(h.qform_code, 1);
  EXPECT_EQ(h.datatype, 16);
  EXPECT_EQ(h.nifti_version, 1);
  EXPECT_EQ(h.path, dir.file("x.nii.gz"));
  EXPECT_EQ(read_nifti(dir.file("x.nii.gz")), image);
  EXPECT_EQ(dir.names(), std::vector<std::string>{"x.nii.gz"});  // no temporary file left

  // A header made from spacing alone (no transform codes) is written as that spacing, and gets codes.
  NiftiHeader plain;
  plain.spacing = {0.5, 0.6, 2.0};
  write_nifti(dir.file("plain.nii"), plain, shape, image.data());
  const NiftiHeader p = read_nifti_header(dir.file("plain.nii"));
  for (int d = 0; d < 3; ++d) EXPECT_NEAR(p.spacing[d], plain.spacing[d], 1e-6);
  EXPECT_NEAR(p.affine[0][0], 0.5, 1e-6);
  EXPECT_NEAR(p.affine[1][1], 0.6, 1e-6);
  EXPECT_NEAR(p.affine[2][2], 2.0, 1e-6);
  EXPECT_EQ(p.sform_code, 1);
  EXPECT_EQ(p.qform_code, 1);
}

TEST(NiftiFile, NanAndInfinityInFloatImagesSurvive) {
  const NiftiTempDir dir("nan");
  const std::vector<int64_t> shape{3, 2, 2};
  std::vector<float> v(count(shape), 1.5f);
  v[1] = std::nanf("");
  v[5] = INFINITY;
  v[7] = -INFINITY;
  write_nifti(dir.file("nan.nii.gz"), oblique_header(), shape, v.data());
  const auto back = read_nifti(dir.file("nan.nii.gz"));
  EXPECT_TRUE(std::isnan(back[1]));
  EXPECT_EQ(back[5], INFINITY);
  EXPECT_EQ(back[7], -INFINITY);
  EXPECT_EQ(back[0], 1.5f);
}

// ---- (b) nibabel's files, read by us ------------------------------------------------------------------------------

// Writes files with nibabel's own header writer (so the on-disk scaling, byte order and codes are what we ask for;
// nib.save would recompute scaling) and with nib.save, then reports for each: path|shape|best affine|datatype|zooms,
// and dumps nibabel's get_fdata() as float64 in file order next to it.
const char* kNibabelWrite = R"(
import sys, gzip, numpy as np, nibabel as nib
out = sys.argv[1]
t = np.deg2rad(20)
A = np.eye(4)
A[:3, :3] = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]]) @ np.diag([0.7, 0.9, 2.5])
A[:3, 3] = [10.5, -20.25, 5.0]

def raw_write(path, hdr, arr):
    with (gzip.open if path.endswith('.gz') else open)(path, 'wb') as f:
        hdr.write_to(f)
        f.write(b'\0' * (int(hdr['vox_offset']) - f.tell()))
        f.write(arr.astype(hdr.get_data_dtype()).tobytes(order='F'))

files = []
h = nib.Nifti1Header(endianness='>')
shape = (6, 5, 4)
h.set_data_shape(shape); h.set_data_dtype(np.int16); h.set_qform(A, code=1); h.set_sform(A, code=2)
h['scl_slope'] = 2.0; h['scl_inter'] = 1.0
raw_write(f'{out}/int16_scaled_bigendian.nii.gz', h, np.arange(120).reshape(shape, order='F') * 37 % 2001 - 1000)
files.append(f'{out}/int16_scaled_bigendian.nii.gz')

h = nib.Nifti2Header()
shape = (5, 4, 3, 2)
h.set_data_shape(shape); h.set_data_dtype(np.float32); h.set_qform(A, code=1); h.set_sform(None, code=0)
data = (np.random.default_rng(3).standard_normal(shape) * 100).astype(np.float32)
data[1, 2, 0, 1] = np.nan
raw_write(f'{out}/float_qform_only.nii', h, data)
files.append(f'{out}/float_qform_only.nii')

img = nib.Nifti2Image((np.arange(24, dtype=np.uint16) * 1000).reshape((4, 3, 2)), A)
img.set_data_dtype(np.uint16)
nib.save(img, f'{out}/uint16_nifti2.nii.gz')
files.append(f'{out}/uint16_nifti2.nii.gz')

nib.save(nib.Nifti1Image(np.zeros((2, 2, 2), np.complex64), A), f'{out}/complex.nii')

for p in files:
    img = nib.load(p)
    img.get_fdata(dtype=np.float64).reshape(-1, order='F').astype('<f8').tofile(p + '.expected')
    print('|'.join([p, ' '.join(map(str, img.shape)), ' '.join(repr(float(x)) for x in img.affine.ravel()),
                    str(int(img.header['datatype'])), ' '.join(repr(float(z)) for z in img.header.get_zooms()[:3])]))
)";

struct NibabelFile {
  std::string path;
  std::vector<int64_t> shape;
  std::array<std::array<double, 4>, 4> affine{};
  int datatype = 0;
  std::array<double, 3> zooms{};
};

std::vector<NibabelFile> parse_report(const std::string& output) {
  std::vector<NibabelFile> files;
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    std::vector<std::string> parts;
    std::istringstream fields(line);
    for (std::string f; std::getline(fields, f, '|');) parts.push_back(f);
    if (parts.size() != 5) continue;
    NibabelFile f;
    f.path = parts[0];
    std::istringstream shape(parts[1]), affine(parts[2]), zooms(parts[4]);
    for (int64_t n; shape >> n;) f.shape.push_back(n);
    for (int i = 0; i < 16; ++i) affine >> f.affine[i / 4][i % 4];
    f.datatype = std::stoi(parts[3]);
    for (double& z : f.zooms) zooms >> z;
    files.push_back(f);
  }
  return files;
}

std::vector<double> read_doubles(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  std::vector<double> v(static_cast<size_t>(in.tellg()) / sizeof(double));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(v.data()), v.size() * sizeof(double));
  return v;
}

TEST(NiftiFile, FilesNibabelWroteReadAsNibabelReadsThem) {
  const NiftiTempDir dir("nibabel");
  ASSERT_TRUE(nibabel_available(dir));
  const PythonRun r = run_python(dir, kNibabelWrite, dir.path());
  ASSERT_EQ(r.status, 0) << r.output;
  const auto files = parse_report(r.output);
  ASSERT_EQ(files.size(), 3u) << r.output;
  for (const auto& f : files) {
    SCOPED_TRACE(f.path);
    const NiftiHeader h = read_nifti_header(f.path);
    EXPECT_EQ(h.shape, f.shape);
    EXPECT_EQ(h.datatype, f.datatype);
    expect_affine_near(h.affine, f.affine, 1e-5);
    for (int d = 0; d < 3; ++d) EXPECT_NEAR(h.spacing[d], f.zooms[d], 1e-6);
    const auto ours = read_nifti(f.path);
    const auto theirs = read_doubles(f.path + ".expected");
    ASSERT_EQ(ours.size(), theirs.size());
    for (size_t i = 0; i < ours.size(); ++i) {
      if (std::isnan(theirs[i])) {
        EXPECT_TRUE(std::isnan(ours[i])) << i;
      } else {
        ASSERT_NEAR(ours[i], theirs[i], 1e-6 * std::max(1.0, std::abs(theirs[i]))) << i;
      }
    }
  }
  const NiftiHeader scaled = read_nifti_header(files[0].path);
  EXPECT_EQ(scaled.scl_slope, 2.0);
  EXPECT_EQ(scaled.scl_inter, 1.0);
  EXPECT_EQ(scaled.sform_code, 2);
  EXPECT_EQ(read_nifti_header(files[1].path).sform_code, 0);  // affine from the qform
  EXPECT_EQ(read_nifti_header(files[1].path).nifti_version, 2);
  EXPECT_EQ(read_nifti_header(files[2].path).nifti_version, 2);

  const std::string complex = dir.file("complex.nii");
  const std::string message = thrown_message<DataError>([&] { read_nifti_header(complex); });
  EXPECT_MENTIONS(message, complex);
  EXPECT_MENTIONS(message, "unsupported datatype");
}

// ---- (c) slabs ----------------------------------------------------------------------------------------------------

// The [c][k][j][i] crop of a whole read.
std::vector<float> crop(const std::vector<float>& whole, const std::vector<int64_t>& shape, int64_t k0, int64_t k1,
                        int64_t channel) {
  const int64_t slice = shape[0] * shape[1], nk = shape[2], nc = shape.size() > 3 ? shape[3] : 1;
  std::vector<float> out;
  for (int64_t c = channel < 0 ? 0 : channel; c < (channel < 0 ? nc : channel + 1); ++c)
    out.insert(out.end(), whole.begin() + (c * nk + k0) * slice, whole.begin() + (c * nk + k1) * slice);
  return out;
}

TEST(NiftiFile, SlabsEqualTheWholeVolumeCropped) {
  const NiftiTempDir dir("slabs");
  const NiftiHeader like = oblique_header();
  // The large one spans several 8 MiB read chunks per slab.
  for (const std::vector<int64_t>& shape : {std::vector<int64_t>{7, 6, 5, 4}, std::vector<int64_t>{256, 200, 48}}) {
    const auto image = image_values(shape);
    for (const std::string ext : {".nii", ".nii.gz"}) {
      const std::string path = dir.file("slabs" + ext);
      write_nifti(path, like, shape, image.data());
      const auto whole = read_nifti(path);
      ASSERT_EQ(whole, image);
      const int64_t nk = shape[2], nc = shape.size() > 3 ? shape[3] : 1;
      for (const auto& [k0, k1] : {std::pair<int64_t, int64_t>{0, 1}, {2, 5}, {nk - 1, nk}, {0, nk}, {1, nk - 1}}) {
        for (int64_t channel = -1; channel < nc; ++channel) {
          EXPECT_EQ(read_nifti_slab(path, k0, k1, channel), crop(whole, shape, k0, k1, channel))
              << path << " [" << k0 << ", " << k1 << ") channel " << channel;
        }
      }
    }
  }
}

// ---- (d) errors ---------------------------------------------------------------------------------------------------

TEST(NiftiFile, UnreadableFilesAreDataErrorsNamingThem) {
  const NiftiTempDir dir("errors");
  const std::string missing = dir.file("missing.nii.gz");
  EXPECT_MENTIONS(thrown_message<DataError>([&] { read_nifti_header(missing); }), missing);
  EXPECT_MENTIONS(thrown_message<DataError>([&] { read_nifti(missing); }), "not found");

  const std::string text = dir.file("notes.nii.gz");
  std::ofstream(text) << std::string(1000, 'x') << "\nnot an image at all\n";
  std::string message = thrown_message<DataError>([&] { read_nifti(text); });
  EXPECT_MENTIONS(message, text);
  EXPECT_MENTIONS(message, "not a NIfTI file");
  const std::string tiny = dir.file("tiny.nii");
  std::ofstream(tiny) << "hi";
  EXPECT_MENTIONS(thrown_message<DataError>([&] { read_nifti_header(tiny); }), tiny);
  const std::string wrong_name = dir.file("volume.img.gz");
  std::ofstream(wrong_name) << "x";
  EXPECT_MENTIONS(thrown_message<DataError>([&] { read_nifti_header(wrong_name); }), wrong_name);

  const std::vector<int64_t> shape{64, 64, 32};
  const auto image = image_values(shape);
  for (const std::string ext : {".nii.gz", ".nii"}) {
    const std::string cut = dir.file("cut" + ext);
    write_nifti(cut, oblique_header(), shape, image.data());
    fs::resize_file(cut, fs::file_size(cut) / 2);
    EXPECT_EQ(read_nifti_header(cut).shape, shape);  // the header is intact
    message = thrown_message<DataError>([&] { read_nifti(cut); });
    EXPECT_MENTIONS(message, cut);
    EXPECT_MENTIONS(message, "truncated or corrupt");
    EXPECT_MENTIONS(thrown_message<DataError>([&] { read_nifti_slab(cut, 30, 32); }), cut);
  }
  const std::string garbled = dir.file("garbled.nii.gz");
  write_nifti(garbled, oblique_header(), shape, image.data());
  {
    std::fstream f(garbled, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(fs::file_size(garbled) / 2));
    f.write(std::string(4096, '\x5a').data(), 4096);  // corrupt deflate data in the middle
  }
  EXPECT_MENTIONS(thrown_message<DataError>([&] { read_nifti(garbled); }), garbled);
}

TEST(NiftiFile, SlabsAndChannelsOutOfRangeAreDataErrorsNamingTheFile) {
  const NiftiTempDir dir("range");
  const std::vector<int64_t> shape{4, 3, 5, 2};
  const auto image = image_values(shape);
  const std::string path = dir.file("x.nii");
  write_nifti(path, oblique_header(), shape, image.data());
  for (const auto& [k0, k1] : {std::pair<int64_t, int64_t>{0, 6}, {-1, 2}, {3, 3}, {4, 2}, {5, 6}}) {
    const std::string message = thrown_message<DataError>([&] { read_nifti_slab(path, k0, k1); });
    EXPECT_MENTIONS(message, path);
    EXPECT_MENTIONS(message, "out of range");
  }
  for (const int64_t channel : {2, -2}) {
    const std::string message = thrown_message<DataError>([&] { read_nifti_slab(path, 0, 5, channel); });
    EXPECT_MENTIONS(message, path);
    EXPECT_MENTIONS(message, "channel");
  }
}

// Makes writes past `bytes` fail with EFBIG (SIGXFSZ ignored), as a full disk would, until destroyed.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    ::getrlimit(RLIMIT_FSIZE, &old_);
    old_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    rlimit limit = old_;
    limit.rlim_cur = bytes;
    ::setrlimit(RLIMIT_FSIZE, &limit);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &old_);
    std::signal(SIGXFSZ, old_handler_);
  }

 private:
  rlimit old_{};
  void (*old_handler_)(int) = nullptr;
};

TEST(NiftiFile, FailedWritesAreWriteErrorsThatLeaveTheOldFileAndNoTemporary) {
  const NiftiTempDir dir("write_errors");
  const NiftiHeader like = oblique_header();
  const std::vector<int64_t> small{4, 3, 2}, big{128, 128, 16};
  const auto old_image = image_values(small);
  const auto new_image = image_values(big);

  const std::string not_a_dir = dir.file("file.txt");
  std::ofstream(not_a_dir) << "x";
  const std::string under_file = not_a_dir + "/out.nii.gz";
  EXPECT_MENTIONS(thrown_message<WriteError>([&] { write_nifti(under_file, like, small, old_image.data()); }),
                  under_file);
  if (::geteuid() != 0) {  // root writes anywhere
    const std::string locked = dir.file("locked");
    fs::create_directories(locked);
    fs::permissions(locked, fs::perms::owner_read | fs::perms::owner_exec);
    const std::string target = locked + "/out.nii";
    EXPECT_MENTIONS(thrown_message<WriteError>([&] { write_nifti(target, like, small, old_image.data()); }), target);
    fs::permissions(locked, fs::perms::owner_all);
    fs::remove_all(locked);
  }
  EXPECT_MENTIONS(thrown_message<WriteError>([&] { write_nifti(dir.file("x.png"), like, small, old_image.data()); }),
                  dir.file("x.png"));

  for (const std::string ext : {".nii", ".nii.gz"}) {
    const std::string path = dir.file("out" + ext);
    write_nifti(path, like, small, old_image.data());
    std::string message;
    {
      const FileSizeLimit limit(64 * 1024);
      message = thrown_message<WriteError>([&] { write_nifti(path, like, big, new_image.data()); });
    }
    EXPECT_MENTIONS(message, path);
    EXPECT_MENTIONS(message, "File too large");
    EXPECT_EQ(read_nifti(path), old_image) << "the failed write replaced " << path;
  }
  ::setenv("SPVIT_INJECT_WRITE_ERROR", "disk_full", 1);
  const std::string full = dir.file("disk_full.nii.gz");
  const std::string message = thrown_message<WriteError>([&] { write_nifti(full, like, small, old_image.data()); });
  ::unsetenv("SPVIT_INJECT_WRITE_ERROR");
  EXPECT_MENTIONS(message, full);
  EXPECT_MENTIONS(message, "No space left on device");
  EXPECT_EQ(dir.names(), (std::vector<std::string>{"file.txt", "out.nii", "out.nii.gz"}));
}

TEST(NiftiFile, BadShapesAreRejectedBeforeWriting) {
  const NiftiTempDir dir("shapes");
  const std::vector<float> v(64, 1.0f);
  for (const std::vector<int64_t>& shape : {std::vector<int64_t>{4, 4}, {2, 2, 2, 2, 2}, {4, 0, 4}, {40000, 1, 1}}) {
    EXPECT_MENTIONS(thrown_message<Error>([&] { write_nifti(dir.file("s.nii"), NiftiHeader{}, shape, v.data()); }),
                    dir.file("s.nii"));
  }
  NiftiHeader flat = oblique_header();
  flat.affine[0] = {0, 0, 0, 1};
  EXPECT_MENTIONS(thrown_message<Error>([&] { write_nifti(dir.file("f.nii"), flat, {4, 4, 4}, v.data()); }),
                  "singular");
  EXPECT_TRUE(dir.names().empty());
}

}  // namespace
}  // namespace spvit::data
