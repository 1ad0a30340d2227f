// Image folders: root/images/<stem>.<png|tif|tiff|jpg|jpeg> with root/masks/<stem>.png, read through OpenCV.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>

#include "spvit/build_info.h"
#include "spvit/core/error.h"
#include "spvit/core/logging.h"
#include "spvit/data/formats.h"

#if SPVIT_HAVE_OPENCV
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#endif

namespace fs = std::filesystem;

namespace spvit::data {

namespace {

#if !SPVIT_HAVE_OPENCV
[[noreturn]] void no_opencv(const std::string& what) {
  SPVIT_THROW(Error, what, " needs OpenCV, which this build does not have (configure with -DSPVIT_WITH_OPENCV=ON "
              "where OpenCV is installed, or convert the data to HDF5)");
}
#endif

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool is_image_name(const fs::path& path) {
  const std::string ext = lower(path.extension().string());
  return ext == ".png" || ext == ".tif" || ext == ".tiff" || ext == ".jpg" || ext == ".jpeg";
}

// (H, W) from a PNG's IHDR chunk without decoding it; nullopt for other formats.
std::optional<std::vector<int64_t>> png_shape(const std::string& path) {
  if (lower(fs::path(path).extension().string()) != ".png") return std::nullopt;
  std::ifstream in(path, std::ios::binary);
  unsigned char h[24] = {};
  in.read(reinterpret_cast<char*>(h), sizeof(h));
  static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (in.gcount() < 24 || !std::equal(sig, sig + 8, h) || std::string(reinterpret_cast<char*>(h + 12), 4) != "IHDR") {
    SPVIT_THROW(DataError, "image '", path, "' is not a valid PNG (corrupt or truncated header)");
  }
  auto be32 = [&](int o) { return (int64_t{h[o]} << 24) | (int64_t{h[o + 1]} << 16) | (int64_t{h[o + 2]} << 8) | h[o + 3]; };
  return std::vector<int64_t>{be32(20), be32(16)};
}

#if SPVIT_HAVE_OPENCV
cv::Mat decode(const std::string& path, const char* what) {
  if (!fs::exists(path)) SPVIT_THROW(DataError, "cannot open ", what, " '", path, "' (missing)");
  cv::Mat m;
  try {
    m = cv::imread(path, cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception& e) {
    SPVIT_THROW(DataError, "cannot decode ", what, " '", path, "': ", e.what());
  }
  if (m.empty()) SPVIT_THROW(DataError, "cannot decode ", what, " '", path, "' (corrupt or not an image)");
  return m;
}

torch::Tensor mat_to_tensor(const cv::Mat& m, at::ScalarType type) {  // [H, W, C] copy
  auto t = torch::empty({m.rows, m.cols, m.channels()}, type);
  cv::Mat dst(m.rows, m.cols, m.type(), t.data_ptr());
  m.copyTo(dst);
  return t;
}
#endif

class ImageFolder : public Dataset {
 public:
  explicit ImageFolder(const std::string& root);
  int64_t size() const override { return static_cast<int64_t>(images_.size()); }
  int spatial_dims() const override { return 2; }
  int64_t channels() const override { return channels_; }
  int64_t num_classes() const override { return num_classes_; }
  std::vector<int64_t> spatial_shape(int64_t index) const override;
  Sample read(int64_t index, const std::optional<Region>& region = std::nullopt) const override;
  std::string describe() const override {
    return "image folder '" + root_ + "' (" + std::to_string(images_.size()) + " images)";
  }

 private:
  torch::Tensor read_image(const std::string& path) const;  // float [H, W, C]
  torch::Tensor read_mask(const std::string& path) const;   // int64 [H, W]

  std::string root_;
  std::vector<std::string> images_, masks_;
  int64_t channels_ = 0, num_classes_ = 0;
  mutable std::mutex shapes_mutex_;
  mutable std::vector<std::vector<int64_t>> shapes_;  // cached; empty = not known yet
};

ImageFolder::ImageFolder(const std::string& root) : root_(root) {
#if !SPVIT_HAVE_OPENCV
  no_opencv("reading the image folder '" + root + "'");
#endif
  if (!fs::is_directory(root)) SPVIT_THROW(DataError, "image folder '", root, "' does not exist or is not a folder");
  const fs::path image_dir = fs::path(root) / "images", mask_dir = fs::path(root) / "masks";
  if (!fs::is_directory(image_dir)) SPVIT_THROW(DataError, "image folder '", root, "' has no images/ subfolder");
  if (!fs::is_directory(mask_dir)) SPVIT_THROW(DataError, "image folder '", root, "' has no masks/ subfolder");
  for (const auto& entry : fs::directory_iterator(image_dir)) {
    if (!is_image_name(entry.path())) continue;
    // A link whose target is gone is a missing image, not a file to skip quietly.
    if (entry.is_symlink() && !fs::exists(entry.path())) {
      SPVIT_THROW(DataError, "image '", entry.path().string(), "' is a link to '", fs::read_symlink(entry.path()).string(),
                  "', which does not exist");
    }
    if (entry.is_regular_file()) images_.push_back(entry.path().string());
  }
  std::sort(images_.begin(), images_.end());
  if (images_.empty()) SPVIT_THROW(DataError, "no images (*.png, *.tif, *.tiff, *.jpg, *.jpeg) in '", image_dir.string(), "'");
  std::set<std::string> stems;
  for (const auto& image : images_) {
    const fs::path mask = mask_dir / (fs::path(image).stem().string() + ".png");
    if (!fs::exists(mask)) SPVIT_THROW(DataError, "image '", image, "' has no mask: '", mask.string(), "' does not exist");
    masks_.push_back(mask.string());
    stems.insert(fs::path(image).stem().string());
  }
  // A mask without its image means an image went missing (a failed copy, a deleted file): training on the rest
  // without a word would hide it.
  for (const auto& entry : fs::directory_iterator(mask_dir)) {
    if (lower(entry.path().extension().string()) != ".png" || stems.count(entry.path().stem().string())) continue;
    SPVIT_THROW(DataError, "mask '", entry.path().string(), "' has no image: there is no '",
                (image_dir / entry.path().stem()).string(), ".png' (or .tif, .tiff, .jpg, .jpeg)");
  }
  shapes_.resize(images_.size());
  channels_ = read_image(images_[0]).size(2);

  const fs::path meta = fs::path(root) / "dataset.json";
  if (fs::exists(meta)) {
    try {
      std::ifstream in(meta);
      const auto j = nlohmann::json::parse(in);
      num_classes_ = j.at("num_classes").get<int64_t>();
    } catch (const nlohmann::json::exception& e) {
      SPVIT_THROW(DataError, "cannot read num_classes from '", meta.string(), "': ", e.what());
    }
    if (num_classes_ < 1) SPVIT_THROW(DataError, "'", meta.string(), "': num_classes = ", num_classes_, " must be >= 1");
  } else {
    int64_t most = 0;
    for (const auto& m : masks_) most = std::max(most, read_mask(m).max().item<int64_t>());
    num_classes_ = std::max<int64_t>(2, most + 1);
    log::info("image folder '{}' has no dataset.json; found {} classes in its masks", root, num_classes_);
  }
}

torch::Tensor ImageFolder::read_image(const std::string& path) const {
#if SPVIT_HAVE_OPENCV
  cv::Mat m = decode(path, "image");
  if (m.channels() == 3) cv::cvtColor(m, m, cv::COLOR_BGR2RGB);
  else if (m.channels() == 4) cv::cvtColor(m, m, cv::COLOR_BGRA2RGB);
  else if (m.channels() != 1) SPVIT_THROW(DataError, "image '", path, "' has ", m.channels(), " channels; expected 1, 3 or 4");
  if (m.depth() == CV_8U) return mat_to_tensor(m, torch::kByte).to(torch::kFloat32).div_(255.0);
  if (m.depth() == CV_16U) {
    m.convertTo(m, CV_32F, 1.0 / 65535.0);
    return mat_to_tensor(m, torch::kFloat32);
  }
  if (m.depth() == CV_32F) return mat_to_tensor(m, torch::kFloat32);
  SPVIT_THROW(DataError, "image '", path, "' has an unsupported pixel depth (OpenCV depth ", m.depth(), "); expected 8 or 16 bit");
#else
  no_opencv("reading '" + path + "'");
#endif
}

torch::Tensor ImageFolder::read_mask(const std::string& path) const {
#if SPVIT_HAVE_OPENCV
  cv::Mat m = decode(path, "mask");
  if (m.depth() != CV_8U && m.depth() != CV_16U) {
    SPVIT_THROW(DataError, "mask '", path, "' must be an 8- or 16-bit image of class ids (OpenCV depth ", m.depth(), ")");
  }
  m.convertTo(m, CV_32S);
  auto t = mat_to_tensor(m, torch::kInt).to(torch::kLong);
  if (t.size(2) > 1) {  // accept grey images saved as RGB(A), if every channel holds the same id
    const auto first = t.select(2, 0);
    if (!t.narrow(2, 0, std::min<int64_t>(3, t.size(2))).eq(first.unsqueeze(2)).all().item<bool>()) {
      SPVIT_THROW(DataError, "mask '", path, "' has ", t.size(2), " different channels; masks must be single-channel class ids");
    }
    return first.contiguous();
  }
  return t.select(2, 0).contiguous();
#else
  no_opencv("reading '" + path + "'");
#endif
}

std::vector<int64_t> ImageFolder::spatial_shape(int64_t index) const {
  check_index(*this, index);
  {
    std::lock_guard<std::mutex> lock(shapes_mutex_);
    if (!shapes_[index].empty()) return shapes_[index];
  }
  auto shape = png_shape(images_[index]);
  if (!shape) {
    const auto image = read_image(images_[index]);
    shape = std::vector<int64_t>{image.size(0), image.size(1)};
  }
  std::lock_guard<std::mutex> lock(shapes_mutex_);
  shapes_[index] = *shape;
  return *shape;
}

Sample ImageFolder::read(int64_t index, const std::optional<Region>& region) const {
  check_index(*this, index);
  const std::string& ipath = images_[index];
  const std::string& mpath = masks_[index];
  Sample s;
  s.image = read_image(ipath);
  s.mask = read_mask(mpath);
  s.id = fs::path(ipath).stem().string();
  if (s.image.size(2) != channels_) {
    SPVIT_THROW(DataError, "image '", ipath, "' has ", s.image.size(2), " channels but '", images_[0], "' has ", channels_,
                "; every image of a folder needs the same channel count");
  }
  if (s.mask.size(0) != s.image.size(0) || s.mask.size(1) != s.image.size(1)) {
    SPVIT_THROW(DataError, "mask '", mpath, "' is ", s.mask.size(0), "x", s.mask.size(1), " (HxW) but image '", ipath,
                "' is ", s.image.size(0), "x", s.image.size(1));
  }
  const int64_t hi = s.mask.max().item<int64_t>();
  if (hi >= num_classes_) {
    SPVIT_THROW(DataError, "mask '", mpath, "' holds class id ", hi, " but the dataset has ", num_classes_, " classes");
  }
  s.full_shape = {s.image.size(0), s.image.size(1)};
  {
    std::lock_guard<std::mutex> lock(shapes_mutex_);
    shapes_[index] = s.full_shape;
  }
  s.region = full_region(s.full_shape);
  if (region) {
    check_region(*region, s.full_shape, "image '" + ipath + "'");
    s = crop(s, *region);
    s.image = s.image.contiguous();
    s.mask = s.mask.contiguous();
  }
  return s;
}

std::string file_stem_for(const std::string& id, int64_t index) {
  std::string stem;
  for (char c : id) stem += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.') ? c : '_';
  return stem.empty() ? "sample-" + std::to_string(index) : stem;
}

}  // namespace

std::shared_ptr<Dataset> open_image_folder(const std::string& root) { return std::make_shared<ImageFolder>(root); }

void write_image_folder(const std::string& root, const Dataset& source) {
#if SPVIT_HAVE_OPENCV
  if (source.spatial_dims() != 2) {
    SPVIT_THROW(Error, "image folders hold 2-D images; ", source.describe(), " is ", source.spatial_dims(),
                "-D (write it to HDF5 instead)");
  }
  const int64_t c = source.channels();
  if (c != 1 && c != 3) SPVIT_THROW(Error, "write_image_folder: ", source.describe(), " has ", c, " channels; PNG needs 1 or 3");
  if (source.num_classes() > 65536) SPVIT_THROW(Error, "write_image_folder: too many classes for a 16-bit PNG mask");
  const fs::path image_dir = fs::path(root) / "images", mask_dir = fs::path(root) / "masks";
  std::error_code ec;
  fs::create_directories(image_dir, ec);
  fs::create_directories(mask_dir, ec);
  if (!fs::is_directory(image_dir) || !fs::is_directory(mask_dir)) {
    SPVIT_THROW(DataError, "cannot create '", image_dir.string(), "' and '", mask_dir.string(), "'");
  }
  std::vector<std::string> used;
  for (int64_t i = 0; i < source.size(); ++i) {
    const Sample s = source.read(i);
    std::string stem = file_stem_for(s.id, i);
    if (std::find(used.begin(), used.end(), stem) != used.end()) stem += "-" + std::to_string(i);
    used.push_back(stem);
    auto image = s.image.clamp(0.0, 1.0).mul(255.0).round().to(torch::kByte).contiguous();
    cv::Mat im(static_cast<int>(image.size(0)), static_cast<int>(image.size(1)), CV_8UC(static_cast<int>(c)), image.data_ptr());
    cv::Mat bgr;
    if (c == 3) cv::cvtColor(im, bgr, cv::COLOR_RGB2BGR);
    else bgr = im;
    const bool wide = source.num_classes() > 256;
    auto mask = s.mask.to(wide ? torch::kInt : torch::kByte).contiguous();
    cv::Mat mk(static_cast<int>(mask.size(0)), static_cast<int>(mask.size(1)), wide ? CV_32S : CV_8U, mask.data_ptr());
    if (wide) mk.convertTo(mk, CV_16U);
    const std::string ipath = (image_dir / (stem + ".png")).string(), mpath = (mask_dir / (stem + ".png")).string();
    if (!cv::imwrite(ipath, bgr)) SPVIT_THROW(DataError, "cannot write image '", ipath, "'");
    if (!cv::imwrite(mpath, mk)) SPVIT_THROW(DataError, "cannot write mask '", mpath, "'");
  }
  nlohmann::json meta = {{"num_classes", source.num_classes()}, {"channels", c}, {"count", source.size()},
                         {"source", source.describe()}};
  std::ofstream out(fs::path(root) / "dataset.json");
  out << meta.dump(2) << "\n";
  if (!out) SPVIT_THROW(DataError, "cannot write '", (fs::path(root) / "dataset.json").string(), "'");
#else
  (void)source;
  no_opencv("writing the image folder '" + root + "'");
#endif
}

}  // namespace spvit::data
