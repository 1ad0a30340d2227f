// Slide datasets (data/slide_dataset.h) and the data layer's slide reader and tissue detector: scaled reads of bands
// and boxes equal the whole read cropped (integer and fractional factors, against a float64 area-average reference),
// manifests, the deterministic tissue / class-balanced samplers, ignored unannotated pixels, a resumed loader that
// reads nothing before its batch, the pale-tissue presets and the tissue cache. Built into spvit_infer_tests: the
// test slides are written with the inference tests' pyramidal TIFF helper.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <opencv2/imgcodecs.hpp>

#include "infer/infer_test_util.h"
#include "test_support.h"
#include "spvit/core/error.h"
#include "spvit/data/label_mask.h"
#include "spvit/data/loader.h"
#include "spvit/data/slide_dataset.h"
#include "spvit/data/token_sampling.h"
#include "spvit/infer/synthetic_slides.h"
#include "spvit/infer/writers.h"
#include "spvit/dist/process_grid.h"
#include "spvit/model/segmenter.h"
#include "spvit/train/class_colours.h"
#include "spvit/train/config_check.h"
#include "spvit/train/evaluation.h"

namespace fs = std::filesystem;
using namespace spvit;
using namespace spvit::data;
using spvit::testing::temp_dir;

namespace {

template <class E, class F>
std::string error_of(F&& f) {
  return spvit::testing::thrown_message<E>(std::forward<F>(f));
}

void write_text(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << text;
}

// A GeoJSON FeatureCollection of axis-aligned rectangles (x0, y0, x1, y1, class).
std::string rectangles_geojson(const std::vector<std::tuple<double, double, double, double, std::string>>& boxes) {
  std::string out = R"({"type":"FeatureCollection","features":[)";
  for (size_t i = 0; i < boxes.size(); ++i) {
    const auto& [x0, y0, x1, y1, name] = boxes[i];
    char ring[256];
    std::snprintf(ring, sizeof(ring), "[[%g,%g],[%g,%g],[%g,%g],[%g,%g],[%g,%g]]", x0, y0, x1, y0, x1, y1, x0, y1, x0,
                  y0);
    out += std::string(i ? "," : "") + R"({"type":"Feature","geometry":{"type":"Polygon","coordinates":[)" + ring +
           R"(]},"properties":{"objectType":"annotation","classification":{"name":")" + name + R"("}}})";
  }
  return out + "]}";
}

// Glass on the left `glass` columns, synthetic tissue on the rest: a 3-level pyramidal TIFF at 0.5 um/px.
std::string tissue_slide(const std::string& path, int64_t h, int64_t w, int64_t glass, uint64_t seed = 3) {
  auto [rgb, mask] = spvit::testing::synthetic_slide_image(h, w, seed);
  rgb(cv::Rect(0, 0, static_cast<int>(glass), static_cast<int>(h))).setTo(cv::Scalar(250, 250, 250));
  fs::create_directories(fs::path(path).parent_path());
  spvit::testing::write_pyramid_tiff(path, rgb, 3, 128, 20000.0);  // 20000 px/cm = 0.5 um/px
  return path;
}

// Brute force: the area average (float64, rounded half up) of level-0 pixels over output pixel (i, j) at scale s.
double area_reference(const torch::Tensor& level0 /* [H, W, 3] uint8 */, double s, int64_t i, int64_t j, int k) {
  double sum = 0;
  for (int64_t r = static_cast<int64_t>(std::floor(i * s)); r < static_cast<int64_t>(std::ceil((i + 1) * s)); ++r) {
    for (int64_t c = static_cast<int64_t>(std::floor(j * s)); c < static_cast<int64_t>(std::ceil((j + 1) * s)); ++c) {
      const double wy = std::min((i + 1) * s, r + 1.0) - std::max(i * s, static_cast<double>(r));
      const double wx = std::min((j + 1) * s, c + 1.0) - std::max(j * s, static_cast<double>(c));
      sum += wy * wx * level0[r][c][k].item<uint8_t>();
    }
  }
  return std::floor(sum / (s * s) + 0.5);
}

SlideDatasetOptions options_for(const std::string& dir, int64_t size, int64_t count) {
  SlideDatasetOptions o;
  o.entries = SlideManifest::read(dir).split("train");
  o.source = dir;
  o.level = 0;
  o.classes.ids = {{"Tumor", 1}, {"Stroma", 2}};
  o.size = size;
  o.count = count;
  o.seed = 11;
  o.min_tissue = 0.5;
  return o;
}

}  // namespace

TEST(SlideRead, ScaledBandsAndBoxesEqualTheWholeReadCroppedAndTheAreaAverage) {
  const auto dir = temp_dir("scaled");
  auto slide = Slide::open(tissue_slide(dir + "/s.tiff", 300, 420, 0));
  const auto level0 = slide->read_region(0, 0, 0, 420, 300);
  // 1.5: fractional from level 0; 3: fractional (1.5) from level 1; 2: level 1 itself; 8: integer (2) from level 2.
  for (double ds : {1.5, 3.0, 2.0, 8.0}) {
    const int64_t W = static_cast<int64_t>(420 / ds) - 2, H = static_cast<int64_t>(300 / ds) - 2;
    const auto whole = slide->read_scaled(ds, 1, 2, W, H);
    ASSERT_EQ(whole.sizes(), (std::vector<int64_t>{H, W, 3}));
    for (int64_t b0 : {int64_t{0}, H / 3, H / 2}) {  // bands of rows, and a box
      const int64_t b1 = std::min(H, b0 + H / 3 + 1);
      EXPECT_TRUE(torch::equal(slide->read_scaled(ds, 1, 2 + b0, W, b1 - b0), whole.slice(0, b0, b1)))
          << "band " << b0 << ".." << b1 << " at downsample " << ds;
    }
    EXPECT_TRUE(torch::equal(slide->read_scaled(ds, 1 + W / 4, 2 + H / 5, W / 3, H / 4),
                             whole.slice(0, H / 5, H / 5 + H / 4).slice(1, W / 4, W / 4 + W / 3)))
        << "box at downsample " << ds;
    if (ds == 1.5) {  // fractional from level 0: the float64 area average of level 0, pixel by pixel
      for (int64_t i : {int64_t{0}, int64_t{7}, H - 1}) {
        for (int64_t j : {int64_t{0}, int64_t{13}, W - 1}) {
          for (int k = 0; k < 3; ++k) {
            EXPECT_EQ(whole[i][j][k].item<uint8_t>(), area_reference(level0, 1.5, i + 2, j + 1, k)) << i << "," << j;
          }
        }
      }
    }
  }
  // An integer factor from a one-level image: OpenCV's block mean, within rounding of the float64 mean.
  cv::Mat bgr = cv::imread(dir + "/s.tiff");  // (only its first directory)
  ASSERT_FALSE(bgr.empty());
  ASSERT_TRUE(cv::imwrite(dir + "/flat.png", bgr));
  auto flat = Slide::open(dir + "/flat.png");
  const auto reduced = flat->read_scaled(3.0, 0, 0, 140, 100).to(torch::kFloat64);
  const auto mean = torch::avg_pool2d(level0.permute({2, 0, 1}).to(torch::kFloat64).unsqueeze(0), 3).squeeze(0).permute({1, 2, 0});
  EXPECT_LE((reduced - mean).abs().max().item<double>(), 0.5 + 1e-9);
  EXPECT_TRUE(torch::equal(flat->read_scaled(3.0, 0, 40, 140, 30), flat->read_scaled(3.0, 0, 0, 140, 100).slice(0, 40, 70)));
}

TEST(SlideManifest, FolderConventionAndCsvWithSplits) {
  const auto dir = temp_dir("manifest");
  tissue_slide(dir + "/slides/a.tiff", 128, 128, 0);
  tissue_slide(dir + "/slides/b.tiff", 128, 128, 0);
  write_text(dir + "/annotations/a.geojson", rectangles_geojson({}));
  // b has no annotation: named with the file it expected.
  EXPECT_NE(error_of<DataError>([&] { SlideManifest::read(dir); }).find("annotations/b.geojson"), std::string::npos);
  write_text(dir + "/annotations/b.xml", "<ASAP_Annotations><Annotations/></ASAP_Annotations>");
  const auto folder = SlideManifest::read(dir);
  ASSERT_EQ(folder.entries.size(), 2u);
  EXPECT_FALSE(folder.has_splits);
  EXPECT_EQ(fs::path(folder.entries[1].annotation).filename(), "b.xml");
  EXPECT_EQ(folder.split("val").size(), 2u) << "a folder is one split, whatever it is opened for";

  write_text(dir + "/m.csv", "slide,annotation,split\nslides/a.tiff,annotations/a.geojson,train\n"
                             "slides/b.tiff,annotations/b.xml,val\n");
  const auto csv = SlideManifest::read(dir + "/m.csv");
  EXPECT_TRUE(csv.has_splits);
  ASSERT_EQ(csv.split("train").size(), 1u);
  EXPECT_EQ(csv.split("train")[0].slide, (fs::path(dir) / "slides/a.tiff").string());
  EXPECT_EQ(csv.split("val").size(), 1u);
  EXPECT_TRUE(csv.split("test").empty());
  // No split column: one split, whatever it is opened for; a byte-order mark (Excel's "CSV UTF-8") is not a column.
  write_text(dir + "/one.csv", "\xEF\xBB\xBFslide,annotation\nslides/a.tiff,annotations/a.geojson\n");
  const auto one = SlideManifest::read(dir + "/one.csv");
  EXPECT_FALSE(one.has_splits);
  EXPECT_EQ(one.split("train").size(), 1u);
  EXPECT_EQ(one.split("val").size(), 1u);
  write_text(dir + "/bad.csv", "image,annotation\nslides/a.tiff,x\n");
  EXPECT_NE(error_of<DataError>([&] { SlideManifest::read(dir + "/bad.csv"); }).find("has no 'slide' column"),
            std::string::npos);
  write_text(dir + "/split.csv", "slide,split\nslides/a.tiff,holdout\n");
  EXPECT_NE(error_of<DataError>([&] { SlideManifest::read(dir + "/split.csv"); }).find("line 2: split 'holdout'"),
            std::string::npos);
}

TEST(SlideDataset, SamplerIsDeterministicStaysInTissueAndFixedForValidation) {
  const auto dir = temp_dir("sampler");
  tissue_slide(dir + "/slides/s.tiff", 512, 768, 384);  // the left half is glass
  write_text(dir + "/annotations/s.geojson", rectangles_geojson({{400, 100, 600, 300, "Tumor"}}));
  auto o = options_for(dir, 64, 40);
  const SlideDataset a(o), b(o);
  int moved = 0;
  for (int64_t i = 0; i < 40; ++i) {
    const auto p = a.placement(i, 0), q = b.placement(i, 0), next = a.placement(i, 1);
    EXPECT_EQ(p.x, q.x);
    EXPECT_EQ(p.y, q.y);
    EXPECT_GE(p.tissue, 0.5) << "sample " << i << " at " << p.x << "," << p.y;
    EXPECT_GE(p.x, 384 - 64 * 0.5 - 2) << "mostly on the tissue half";
    EXPECT_LE(p.x + 64, 768);
    moved += next.x != p.x || next.y != p.y;
  }
  EXPECT_GT(moved, 30) << "a new epoch draws new regions";
  o.fixed = true;
  const SlideDataset val(o);
  for (int64_t i = 0; i < 40; ++i) EXPECT_EQ(val.placement(i, 0).x, val.placement(i, 5).x);
  // A band of a sample equals the same rows of the whole sample (image and labels).
  const auto whole = a.read_epoch(3, 2, std::nullopt);
  const auto band = a.read_epoch(3, 2, Region{{16, 0}, {48, 64}});
  EXPECT_TRUE(torch::equal(band.image, whole.image.slice(0, 16, 48)));
  EXPECT_TRUE(torch::equal(band.mask, whole.mask.slice(0, 16, 48)));
}

TEST(SlideDataset, LabelsFollowTheAnnotationsAndUnannotatedPixelsCanBeIgnored) {
  const auto dir = temp_dir("labels");
  tissue_slide(dir + "/slides/s.tiff", 256, 256, 0);
  write_text(dir + "/annotations/s.geojson",
             rectangles_geojson({{0, 0, 256, 128, "Stroma"}, {64, 32, 96, 96, "Tumor"}, {100, 100, 120, 120, "Dust"}}));
  auto o = options_for(dir, 256, 1);
  EXPECT_NE(error_of<DataError>([&] { SlideDataset{o}; }).find("class 'Dust', which the class map does not name "
                                                                "(known: 'Stroma', 'Tumor')"),
            std::string::npos);
  o.classes.ids["Dust"] = ClassMap::kIgnore;
  o.level = 1;  // downsample 2: the 256² sample holds the whole 128² level (in its middle), glass around it
  o.ignore_unannotated = true;
  const SlideDataset ds(o);
  const auto s = ds.read(0);
  EXPECT_EQ(s.image.scalar_type(), torch::kUInt8) << "8-bit until the model needs it";
  EXPECT_EQ(s.mask.scalar_type(), torch::kShort);
  const auto p = ds.placement(0, 0);
  EXPECT_EQ(p.x, -64) << "a slide smaller than the sample sits in its middle";
  auto at = [&](int64_t x0, int64_t y0) { return s.mask[y0 / 2 - p.y][x0 / 2 - p.x].item<int64_t>(); };  // level 0
  EXPECT_EQ(at(10, 10), 2);    // Stroma
  EXPECT_EQ(at(80, 60), 1);    // Tumor over Stroma: later in the file
  EXPECT_EQ(at(110, 110), -1); // Dust: ignored
  EXPECT_EQ(at(10, 200), -1);  // unannotated: ignored
  EXPECT_EQ(s.mask[0][0].item<int64_t>(), -1) << "glass outside the slide";
  EXPECT_EQ(ds.num_classes(), 3);
  o.classes.priority = {"Stroma"};
  EXPECT_EQ(SlideDataset(o).read(0).mask[60 / 2 - p.y][80 / 2 - p.x].item<int64_t>(), 2) << "priority wins";
}

TEST(SlideDataset, BalancedSamplingCentresEachClassEquallyOften) {
  const auto dir = temp_dir("balanced");
  tissue_slide(dir + "/slides/s.tiff", 512, 512, 0);
  write_text(dir + "/annotations/s.geojson",
             rectangles_geojson({{0, 0, 512, 512, "Stroma"}, {300, 300, 316, 316, "Tumor"}}));
  auto o = options_for(dir, 32, 400);
  o.balanced = true;
  const SlideDataset ds(o);
  int tumour_centred = 0;
  for (int64_t i = 0; i < 400; ++i) {
    const auto s = ds.read(i, Region{{16, 16}, {17, 17}});  // the centre pixel
    tumour_centred += s.mask.item<int64_t>() == 1;
  }
  EXPECT_GT(tumour_centred, 150) << "of 400 (the tiny class is half the draws)";
  EXPECT_LT(tumour_centred, 250);
}

TEST(SlideDataset, ResumedLoaderReadsNothingBeforeItsBatch) {
  const auto dir = temp_dir("resume");
  tissue_slide(dir + "/slides/s.tiff", 256, 256, 0);
  write_text(dir + "/annotations/s.geojson", rectangles_geojson({{0, 0, 128, 128, "Tumor"}}));
  auto dataset = std::make_shared<SlideDataset>(options_for(dir, 32, 12));
  LoaderOptions lo;
  lo.workers = 0;
  lo.seed = 5;
  Loader straight(dataset, lo);
  straight.start_epoch(1);
  std::vector<Batch> batches;
  while (auto b = straight.next()) batches.push_back(std::move(*b));
  const int64_t before = dataset->reads();
  EXPECT_EQ(before, 12);
  Loader resumed(dataset, lo);
  resumed.start_epoch(1, 7);
  const auto b = resumed.next();
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(dataset->reads() - before, 1) << "batches 0..6 were not read";
  EXPECT_EQ(b->indices, batches[7].indices);
  EXPECT_TRUE(torch::equal(b->samples[0].image, batches[7].samples[0].image));
}

TEST(SlideDataset, ResolutionFromMppAndErrorsThatNameTheWayOut) {
  const auto dir = temp_dir("mpp");
  tissue_slide(dir + "/slides/s.tiff", 256, 256, 0);
  write_text(dir + "/annotations/s.geojson", rectangles_geojson({{0, 0, 128, 128, "Tumor"}}));
  auto o = options_for(dir, 32, 4);
  o.mpp = 0.75;  // the slide is 0.5 um/px: downsample 1.5
  EXPECT_DOUBLE_EQ(SlideDataset(o).downsample(0), 1.5);
  o.mpp = 0.25;
  EXPECT_NE(error_of<ConfigError>([&] { SlideDataset{o}; }).find("finer than slide"), std::string::npos);
  // Without a resolution: data.mpp cannot be used, the error names data.level.
  auto [rgb, mask] = spvit::testing::synthetic_slide_image(128, 128);
  spvit::testing::write_pyramid_tiff(dir + "/slides/s.tiff", rgb, 2);
  o.mpp = 0.5;
  EXPECT_NE(error_of<DataError>([&] { SlideDataset{o}; }).find("choose a level instead (data.level"),
            std::string::npos);
  o.entries[0].slide = dir + "/slides/none.svs";
  EXPECT_NE(error_of<DataError>([&] { SlideDataset{o}; }).find("none.svs' does not exist"), std::string::npos);
}

// A random label image: blocks of 4 × 4 pixels, each one of `values`.
cv::Mat random_labels(int rows, int cols, const std::vector<int>& values, uint64_t seed) {
  std::mt19937_64 rng(seed);
  cv::Mat m(rows, cols, CV_8U);
  for (int y = 0; y < rows; y += 4) {
    for (int x = 0; x < cols; x += 4) {
      const int v = values[rng() % values.size()];
      m(cv::Rect(x, y, std::min(4, cols - x), std::min(4, rows - y))).setTo(v);
    }
  }
  return m;
}

// Writes `labels` as a pyramidal tiled grey TIFF (what OpenSlide reads) with spvit's own label writer.
void write_label_tiff(const std::string& path, const cv::Mat& labels) {
  fs::create_directories(fs::path(path).parent_path());
  infer::PyramidTiffWriter w(path, labels.cols, labels.rows);
  w.append(labels);
  w.finish();
}

TEST(LabelMask, EachPixelTakesTheMaskValueUnderItsCentreFromPngAndPyramidalTiff) {
  const auto dir = temp_dir("label_mask");
  const int64_t W = 1024, H = 768;  // the slide's level 0; the mask is at downsample 2
  const cv::Mat values = random_labels(H / 2, W / 2, {0, 1, 2, 7}, 5);
  cv::imwrite(dir + "/m.png", values);
  write_label_tiff(dir + "/m.tiff", values);
  ClassMap classes;
  classes.ids = {{"1", 1}, {"2", 2}, {"7", ClassMap::kIgnore}};
  for (const auto* file : {"/m.png", "/m.tiff"}) {
    const LabelMask mask(dir + file, W, H);
    EXPECT_DOUBLE_EQ(mask.downsample(), 2.0) << file << ": from the sizes";
    for (const double ds : {1.0, 3.0, 0.75}) {
      RasterGrid g;
      g.x0 = -20.5, g.y0 = 7.25, g.downsample = ds;  // starts off the mask on the left
      g.height = static_cast<int64_t>(300 / ds), g.width = static_cast<int64_t>(420 / ds);
      const auto got = mask.labels(g, classes, 0);
      auto want = torch::zeros({g.height, g.width}, torch::kLong);
      for (int64_t i = 0; i < g.height; ++i) {
        for (int64_t j = 0; j < g.width; ++j) {
          const auto mx = static_cast<int64_t>(std::floor(g.centre_x(j) / 2)), my = static_cast<int64_t>(std::floor(g.centre_y(i) / 2));
          if (mx < 0 || my < 0 || mx >= W / 2 || my >= H / 2) continue;  // off the mask: background
          const int v = values.at<uint8_t>(static_cast<int>(my), static_cast<int>(mx));
          want[i][j] = v == 7 ? ClassMap::kIgnore : v;
        }
      }
      EXPECT_TRUE(torch::equal(got, want)) << file << " at downsample " << ds << ": "
                                           << got.ne(want).sum().item<int64_t>() << " pixels differ";
    }
  }
  // Bad input: each error names the mask and the problem.
  EXPECT_NE(error_of<DataError>([&] { LabelMask(dir + "/m.png", W, H, 3); }).find("wrong size for "
            "data.mask_downsample = 3: mask 512x384 (WxH) and the slide's level 0 1024x768"), std::string::npos);
  EXPECT_NE(error_of<DataError>([&] { LabelMask(dir + "/m.png", W, H + 100); }).find("does not cover its slide at "
            "any one downsample"), std::string::npos);
  EXPECT_NE(error_of<DataError>([&] { LabelMask(dir + "/none.png", W, H); }).find("none.png' does not exist"),
            std::string::npos);
  classes.ids.erase("7");
  RasterGrid g;
  g.height = 100, g.width = 100, g.downsample = 4;
  EXPECT_NE(error_of<DataError>([&] { LabelMask(dir + "/m.png", W, H).labels(g, classes, 0); })
                .find("has value 7 at mask pixel"), std::string::npos);
  cv::Mat colour(H / 2, W / 2, CV_8UC3, cv::Scalar(0, 0, 0));
  colour(cv::Rect(3, 3, 4, 4)).setTo(cv::Scalar(0, 0, 255));
  cv::imwrite(dir + "/colour.png", colour);
  EXPECT_NE(error_of<DataError>([&] { LabelMask(dir + "/colour.png", W, H); }).find("has colour pixels"),
            std::string::npos);
  cv::imwrite(dir + "/deep.png", cv::Mat(H / 2, W / 2, CV_16U, cv::Scalar(1)));
  EXPECT_NE(error_of<DataError>([&] { LabelMask(dir + "/deep.png", W, H); }).find("16-bit pixels"),
            std::string::npos);
}

// A label mask drawn from the same rectangles as a GeoJSON gives the same samples, and balanced sampling finds the
// small class in it.
TEST(SlideDataset, LabelMaskDatasetsEqualTheirVectorTwinAndSampleBalanced) {
  const auto vector_dir = temp_dir("mask_twin_vector"), mask_dir = temp_dir("mask_twin_mask");
  for (const auto& d : {vector_dir, mask_dir}) tissue_slide(d + "/slides/s.tiff", 512, 512, 0);
  write_text(vector_dir + "/annotations/s.geojson",
             rectangles_geojson({{0, 0, 512, 256, "2"}, {300, 300, 316, 316, "1"}, {40, 40, 80, 80, "1"}}));
  cv::Mat labels(256, 256, CV_8U, cv::Scalar(0));  // the same at downsample 2 (even corners: centres agree)
  labels(cv::Rect(0, 0, 256, 128)).setTo(2);
  labels(cv::Rect(150, 150, 8, 8)).setTo(1);
  labels(cv::Rect(20, 20, 20, 20)).setTo(1);
  fs::create_directories(mask_dir + "/annotations");
  cv::imwrite(mask_dir + "/annotations/s.png", labels);
  auto options = [&](const std::string& dir) {
    auto o = options_for(dir, 64, 40);
    o.classes.ids = {{"1", 1}, {"2", 2}};
    return o;
  };
  const SlideDataset from_vectors(options(vector_dir)), from_mask(options(mask_dir));
  for (int64_t i = 0; i < 40; ++i) {
    ASSERT_EQ(from_mask.placement(i, 0).x, from_vectors.placement(i, 0).x);
    ASSERT_TRUE(torch::equal(from_mask.read(i).mask, from_vectors.read(i).mask)) << "sample " << i;
  }
  auto o = options(mask_dir);
  o.balanced = true;
  o.size = 8;
  o.count = 400;
  const SlideDataset balanced(o);
  int small_class = 0;
  for (int64_t i = 0; i < 400; ++i) small_class += balanced.read(i, Region{{4, 4}, {5, 5}}).mask.item<int64_t>() == 1;
  EXPECT_GT(small_class, 150) << "of 400 (class 1 is half the draws)";
  EXPECT_LT(small_class, 250);
}

// Checkpoints remember the annotations' class colours: training copies them into data.class_colors (which the
// checkpoint's YAML keeps), `spvit infer` draws each class id in them.
TEST(ClassColours, AnnotationColoursReachTheConfigurationAndTheOutputs) {
  const auto dir = temp_dir("colours");
  tissue_slide(dir + "/slides/s.tiff", 256, 256, 0);
  write_text(dir + "/annotations/s.geojson", R"({"type":"FeatureCollection","features":[
    {"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[0,0],[99,0],[99,99],[0,99],[0,0]]]},
     "properties":{"classification":{"name":"Tumor","color":[200,0,10]}}},
    {"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[100,0],[199,0],[199,99],[100,99],[100,0]]]},
     "properties":{"classification":{"name":"Stroma","colorRGB":-16744256}}}]})");
  auto o = options_for(dir, 64, 2);
  o.classes.ids = {{"Tumor", 1}, {"Stroma", 2}};
  const SlideDataset ds(o);
  const std::vector<std::pair<std::string, std::string>> expected{{"Tumor", "#c8000a"}, {"Stroma", "#0080c0"}};
  EXPECT_EQ(ds.class_colours(), expected) << "QuPath's color array and packed colorRGB";

  Config config;
  config.data.source = "slides";
  config.data.classes = {{"Tumor", "1"}, {"Stroma", "2"}, {"Dust", "ignore"}};
  config.data.class_colors = {{"Stroma", "#ffffff"}};  // the user's choice is kept
  train::adopt_annotation_colours(config.data, ds);
  const auto restored = parse_config(to_yaml(config));  // what a checkpoint stores and infer reads back
  const auto table = train::class_colour_table(restored.data, 4);
  ASSERT_EQ(table.size(), 4u);
  EXPECT_EQ(table[0], train::class_colour_rgb(0));
  EXPECT_EQ(table[1], (std::array<uint8_t, 3>{200, 0, 10}));
  EXPECT_EQ(table[2], (std::array<uint8_t, 3>{255, 255, 255}));
  EXPECT_EQ(table[3], train::class_colour_rgb(3)) << "an id without a coloured name keeps the palette's";

  auto bad = config.data;
  bad.class_colors = {{"Tumor", "#12345"}};
  EXPECT_NE(error_of<ConfigError>([&] { train::class_colour_table(bad, 3); }).find("'data.class_colors.Tumor' = "
            "'#12345' is not a colour"), std::string::npos);
  bad.class_colors = {{"Necrosis", "#123456"}};
  EXPECT_NE(error_of<ConfigError>([&] { train::class_colour_table(bad, 3); }).find("names 'Necrosis', which "
            "'data.classes' does not"), std::string::npos);

  // The outputs: GeoJSON classification colours and ASAP group colours.
  cv::Mat labels(64, 64, CV_8U, cv::Scalar(0));
  labels(cv::Rect(8, 8, 20, 20)).setTo(1);
  labels(cv::Rect(36, 36, 20, 20)).setTo(2);
  const std::vector<std::string> names{"background", "Tumor", "Stroma"};
  infer::write_geojson(dir + "/p.geojson", labels, 1.0, names, 1.0, {0, 0}, table);
  const auto written = read_qupath_geojson(dir + "/p.geojson");
  ASSERT_EQ(written.annotations.size(), 2u);
  EXPECT_EQ(written.annotations[0].colour, "#c8000a");
  EXPECT_EQ(written.annotations[1].colour, "#ffffff");
  infer::write_asap_xml(dir + "/p.xml", labels, 1.0, names, 1.0, {0, 0}, table);
  const auto asap = read_asap_xml(dir + "/p.xml");
  ASSERT_EQ(asap.annotations.size(), 2u);
  EXPECT_EQ(asap.annotations[0].colour, "#c8000a");
}

// A dataset without scaled reads: the same samples, read only at full resolution (what every non-slide dataset does).
class FullResolutionOnly : public Dataset {
 public:
  explicit FullResolutionOnly(const Dataset& d) : d_(d) {}
  int64_t size() const override { return d_.size(); }
  int spatial_dims() const override { return d_.spatial_dims(); }
  int64_t channels() const override { return d_.channels(); }
  int64_t num_classes() const override { return d_.num_classes(); }
  std::vector<int64_t> spatial_shape(int64_t i) const override { return d_.spatial_shape(i); }
  Sample read(int64_t i, const std::optional<Region>& r) const override { return d_.read(i, r); }

 private:
  const Dataset& d_;
};

// Adaptive layouts on slides: planned from a pyramid level (no full-resolution read at all) and read leaf by leaf,
// each leaf at its own scale; the tokens equal those extracted from the full-resolution box up to the 8-bit rounding
// of the pyramid's means (half a grey level per rounding), the targets and weights exactly, on 1 and 2 sequence ranks.
TEST(SlideDataset, AdaptiveLayoutsArePlannedFromThePyramidAndReadLeafByLeaf) {
  const auto dir = temp_dir("adaptive_slide");
  tissue_slide(dir + "/slides/s.tiff", 1024, 1024, 0);
  write_text(dir + "/annotations/s.geojson",
             rectangles_geojson({{0, 0, 1024, 600, "Stroma"}, {300.5, 200.25, 517, 433, "Tumor"},
                                 {40, 700, 90, 777.5, "Tumor"}}));
  auto o = options_for(dir, 512, 3);
  o.align = 128;  // what from_config gives a 512² adaptive sample
  o.min_tissue = 0;
  const SlideDataset ds(o);
  const FullResolutionOnly full_resolution(ds);
  LayoutSampling sampling;
  sampling.patcher.kind = "adaptive";
  sampling.patcher.patch = 8;
  sampling.patcher.length = 2048;  // leaves of 4 to 128 pixels
  sampling.patcher.min_side = 4;
  sampling.patcher.scorer = "variance";
  sampling.score_downsample = 4;
  int64_t small = 0, large = 0;
  for (int64_t i = 0; i < 3; ++i) {
    EXPECT_EQ(ds.placement(i, 0).x % 128, 0);
    const int64_t reads = ds.reads();
    auto layout = std::make_shared<const patch::PatchLayout>(plan_layout(ds, i, AugmentDraw{}, sampling));
    EXPECT_EQ(ds.reads(), reads) << "planning read nothing at full resolution";
    for (int64_t k = 0; k < layout->length(); ++k) {
      small += layout->side[static_cast<size_t>(k)] > 0 && layout->side[static_cast<size_t>(k)] < 8;
      large += layout->side[static_cast<size_t>(k)] > 8;
    }
    std::vector<torch::Tensor> rank_tokens;
    for (int ranks : {1, 2}) {
      for (int rank = 0; rank < ranks; ++rank) {
        sampling.seq_size = ranks;
        sampling.seq_rank = rank;
        const int64_t scaled = ds.scaled_reads(), before = ds.reads();
        const auto leafwise = read_layout_tokens(ds, i, AugmentDraw{}, layout, sampling);
        EXPECT_EQ(ds.reads(), before) << "leaf by leaf: nothing read at full resolution";
        EXPECT_GT(ds.scaled_reads(), scaled);
        const auto boxed = read_layout_tokens(full_resolution, i, AugmentDraw{}, layout, sampling);
        const auto& a = token_sample(leafwise);
        const auto& b = token_sample(boxed);
        ASSERT_EQ(a.tokens.sizes(), b.tokens.sizes());
        // Half a grey level per rounding: levels 1 and 2 (each made from the one above) and the read's own mean.
        EXPECT_LE((a.tokens - b.tokens).abs().max().item<float>(), 1.5f / 255 + 1e-6f)
            << "sample " << i << ", rank " << rank << " of " << ranks << ": beyond the pyramid's rounding";
        // Cells of weight 0 (empty slots, padding) count nowhere; the box path fills them with whatever it clamps to.
        const auto counted = a.weight.gt(0);
        EXPECT_TRUE(torch::equal(a.target.masked_select(counted), b.target.masked_select(counted)))
            << a.target.ne(b.target).logical_and(counted).sum().item<int64_t>() << " labels differ";
        EXPECT_TRUE(torch::equal(a.weight, b.weight));
        if (ranks == 2) rank_tokens.push_back(a.tokens);
        else rank_tokens.insert(rank_tokens.begin(), a.tokens);
      }
    }
    EXPECT_TRUE(torch::equal(torch::cat({rank_tokens[1], rank_tokens[2]}), rank_tokens[0])) << "2 ranks' tokens = 1 rank's";
    sampling.seq_size = 1;
    sampling.seq_rank = 0;
  }
  EXPECT_GT(small, 0) << "leaves smaller than P (enlarged) were tested";
  EXPECT_GT(large, 0) << "leaves larger than P (read from the pyramid) were tested";
}

// Evaluating adaptive layouts on slides reads labels leaf by leaf (never the rank's box at full resolution: a 65536²
// sample's box is gigapixels) and counts exactly what the box path counts (the path an overlay still takes).
TEST(SlideDataset, AdaptiveEvaluationReadsLeafByLeafAndCountsAsTheBox) {
  const auto dir = temp_dir("adaptive_eval");
  tissue_slide(dir + "/slides/s.tiff", 1024, 1024, 0, 5);
  write_text(dir + "/annotations/s.geojson",
             rectangles_geojson({{0, 0, 1024, 600, "Stroma"}, {300.5, 200.25, 517, 433, "Tumor"},
                                 {40, 700, 90, 777.5, "Tumor"}}));
  auto o = options_for(dir, 512, 2);
  o.align = 128;
  o.min_tissue = 0;
  const SlideDataset ds(o);
  const auto c = train::parse_checked_config(
      "", {"model.decoder=tile", "model.pos_encoding=coords", "model.patch=8", "model.dim=16", "model.depth=1",
           "model.heads=2", "grid.seq=1", "data.size=512", "data.patcher.kind=adaptive", "data.patcher.length=1024",
           "data.patcher.min_side=4", "data.patcher.scorer=variance", "data.patcher.score_downsample=4"});
  torch::manual_seed(3);
  model::Segmenter model(model::SegmenterOptions::from_config(c.model, ds.num_classes()));
  auto self = dist::ProcessGrid::create_self(60);
  const int64_t reads = ds.reads();
  const auto by_leaf = train::evaluate(model, ds, c, self);
  EXPECT_EQ(ds.reads(), reads) << "leaf by leaf: no box read at full resolution";
  train::EvalOptions with_overlays;
  with_overlays.overlay_dir = dir + "/overlays";
  with_overlays.overlays = 2;
  const auto boxed = train::evaluate(model, ds, c, self, with_overlays);
  EXPECT_GT(ds.reads(), reads) << "an overlay reads the box";
  EXPECT_EQ(by_leaf.total, 2.0 * 512 * 512) << "every pixel counted once";
  EXPECT_EQ(by_leaf.total, boxed.total);
  EXPECT_EQ(by_leaf.correct, boxed.correct);
  EXPECT_TRUE(torch::equal(by_leaf.tp, boxed.tp) && torch::equal(by_leaf.fp, boxed.fp) &&
              torch::equal(by_leaf.fn, boxed.fn))
      << by_leaf.tp << boxed.tp << by_leaf.fp << boxed.fp;
  EXPECT_GT(by_leaf.tp.sum().item<double>(), 0.0);
  EXPECT_GT((by_leaf.fp + by_leaf.fn).sum().item<double>(), 0.0) << "an untrained model: not a trivial count";
}

TEST(Tissue, PalePresetsKeepPaleTissueThatTheStandardOneMisses) {
  const auto dir = temp_dir("pale");
  cv::Mat rgb(300, 400, CV_8UC3, cv::Scalar(247, 247, 247));                   // glass
  rgb(cv::Rect(20, 20, 120, 120)).setTo(cv::Scalar(190, 90, 160));             // saturated H&E
  rgb(cv::Rect(220, 120, 140, 140)).setTo(cv::Scalar(236, 224, 232));          // pale stroma: saturation ~13
  cv::Mat noise(rgb.size(), CV_8UC3);
  cv::randn(noise, cv::Scalar::all(0), cv::Scalar::all(2));
  rgb += noise;
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  cv::imwrite(dir + "/p.png", bgr);
  auto slide = Slide::open(dir + "/p.png");
  const auto standard = TissueMask::detect(*slide, TissueOptions::preset("standard"));
  const auto pale = TissueMask::detect(*slide, TissueOptions::preset("pale"));
  EXPECT_GT(standard.fraction(30, 30, 130, 130), 0.95);
  EXPECT_LT(standard.fraction(230, 130, 350, 250), 0.05) << "the standard preset drops pale tissue";
  EXPECT_GT(pale.fraction(230, 130, 350, 250), 0.95) << "the pale preset keeps it";
  EXPECT_GT(pale.fraction(30, 30, 130, 130), 0.95);
  for (const auto* m : {&standard, &pale}) EXPECT_LT(m->fraction(150, 0, 210, 100), 0.01) << "glass stays glass";
  EXPECT_NE(error_of<ConfigError>([] { TissueOptions::preset("fancy"); }).find("known: standard, pale, ihc"),
            std::string::npos);
}

TEST(Tissue, MaskIsCachedAndReusedAndAnUnwritableCacheIsOnlyAWarning) {
  const auto dir = temp_dir("cache");
  auto slide = Slide::open(tissue_slide(dir + "/s.tiff", 256, 256, 128));
  const auto first = TissueMask::detect_cached(*slide, TissueOptions{}, dir + "/cache");
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir + "/cache")) files.push_back(e.path());
  ASSERT_EQ(files.size(), 1u);
  EXPECT_TRUE(torch::equal(first.mask(), TissueMask::detect(*slide, TissueOptions{}).mask()));
  // The second call loads the file (overwritten here with an empty mask) instead of detecting again.
  cv::imwrite(files[0].string(), cv::Mat(first.mask().size(0), first.mask().size(1), CV_8U, cv::Scalar(0)));
  EXPECT_TRUE(TissueMask::detect_cached(*slide, TissueOptions{}, dir + "/cache").empty());
  // Other options are another mask.
  EXPECT_FALSE(TissueMask::detect_cached(*slide, TissueOptions::preset("pale"), dir + "/cache").empty());
  write_text(dir + "/file", "x");
  EXPECT_FALSE(TissueMask::detect_cached(*slide, TissueOptions{}, dir + "/file/cache").empty());
}

// Levels whose downsample is not an integer (odd sizes: 601 -> 301 is 1.9967): OpenSlide interpolates at an offset
// that depends on where a read starts, so reads go through fixed blocks of the level's grid — a band still equals
// the same rows of the whole read. And a resolution within 2% of a level's is that level's.
TEST(SlideRead, NonIntegerLevelDownsamplesAndNearbyResolutions) {
  const auto dir = temp_dir("odd_levels");
  auto [rgb, mask] = spvit::testing::synthetic_slide_image(901, 1201, 7);
  spvit::testing::write_pyramid_tiff(dir + "/odd.tiff", rgb, 3, 128, 20000.0);
  auto slide = Slide::open(dir + "/odd.tiff");
  ASSERT_EQ(slide->level_count(), 3);
  ASSERT_NE(slide->level(1).downsample, std::round(slide->level(1).downsample));
  const auto whole = slide->read_region(1, 3, 5, 590, 440);
  for (int64_t y0 : {int64_t{0}, int64_t{97}, int64_t{300}}) {
    EXPECT_TRUE(torch::equal(slide->read_region(1, 3, 5 + y0, 590, 120), whole.slice(0, y0, y0 + 120))) << y0;
  }
  EXPECT_TRUE(torch::equal(slide->read_region(1, 203, 105, 77, 66), whole.slice(0, 100, 166).slice(1, 200, 277)));
  EXPECT_DOUBLE_EQ(slide->downsample_for_mpp(0.505), 1.0) << "0.505 um/px on a 0.5 um/px scan is level 0";
  EXPECT_DOUBLE_EQ(slide->downsample_for_mpp(1.0), slide->level(1).downsample) << "within 2% of level 1";
  EXPECT_DOUBLE_EQ(slide->downsample_for_mpp(1.5), 3.0) << "between levels: resampled";
}

// Column bands (what a rotated sample's row band reads) of a slide written by the synthetic slide writer.
TEST(SlideRead, ColumnBandsOfAGeneratedSlideEqualTheWholeRead) {
  const auto dir = temp_dir("columns");
  infer::SyntheticSlideOptions so;
  so.width = 240, so.height = 160, so.mpp = 0.5, so.seed = 1;
  auto slide = Slide::open(infer::write_synthetic_slide(dir, "s", so).slide);
  for (double ds : {1.5, 1.0, 2.0, 3.0}) {
    const auto whole = slide->read_scaled(ds, 30, 10, 32, 32);
    EXPECT_TRUE(torch::equal(slide->read_scaled(ds, 30, 10, 16, 32), whole.slice(1, 0, 16))) << ds;
    EXPECT_TRUE(torch::equal(slide->read_scaled(ds, 46, 10, 16, 32), whole.slice(1, 16, 32))) << ds;
  }
}

// OpenSlide 3.4 with libtiff 4.5 misreads generic-TIFF levels narrower or shorter than one tile (different garbage
// on every read): such coarse levels are left out, and an image smaller than a tile is read through OpenCV. Every
// read then equals the generated pixels.
TEST(SlideRead, LevelsSmallerThanATileAreReadExactlyOrLeftOut) {
  const auto dir = temp_dir("small_levels");
  for (auto [w, h] : std::vector<std::pair<int64_t, int64_t>>{{240, 300}, {400, 160}, {600, 520}}) {
    infer::SyntheticSlideOptions o;
    o.width = w, o.height = h, o.mpp = 0.5, o.seed = 1;
    const auto path = infer::write_synthetic_slide(dir, "s" + std::to_string(w) + "x" + std::to_string(h), o).slide;
    const auto generated = make_synthetic_pathology({2, {h, w}, 1, 1})->read(0);
    const auto truth = generated.image.mul(255.0).round().clamp(0, 255).to(torch::kUInt8).contiguous();
    for (int k = 0; k < 2; ++k) {
      auto slide = Slide::open(path);
      EXPECT_TRUE(torch::equal(slide->read_region(0, 0, 0, w, h), truth)) << w << "x" << h << ", read " << k;
      for (int l = 0; l < slide->level_count(); ++l) {
        EXPECT_GE(std::min(slide->level(l).width, slide->level(l).height), l == 0 ? 1 : 256) << "level " << l;
      }
    }
    EXPECT_EQ(Slide::open(path)->mpp_x(), 0.5) << "the OpenCV path keeps the TIFF resolution";
  }
}
