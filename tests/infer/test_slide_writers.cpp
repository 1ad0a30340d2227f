// Slide reading (OpenSlide and OpenCV), tissue detection, and the writers (pyramidal TIFF reopened with OpenSlide,
// GeoJSON parsed back).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <map>
#include <random>
#include <set>

#include "infer_test_util.h"
#include "test_support.h"
#include "spvit/build_info.h"
#include "spvit/core/error.h"
#include "spvit/data/annotations.h"
#include "spvit/data/synthetic.h"
#include "spvit/infer/slide.h"
#include "spvit/infer/synthetic_slides.h"
#include "spvit/infer/tissue.h"
#include "spvit/infer/writers.h"

namespace fs = std::filesystem;
using namespace spvit;
using namespace spvit::infer;

namespace {

using spvit::testing::temp_dir;

// The message of the DataError `f` throws ("" if it throws nothing).
template <class F>
std::string data_error(F&& f) {
  return spvit::testing::thrown_message<DataError>(std::forward<F>(f));
}

cv::Mat channel0(const cv::Mat& rgb) {
  cv::Mat c[3];
  cv::split(rgb, c);
  return c[0];
}

}  // namespace

TEST(Slide, PlainImageThroughOpenCvOneLevelWhiteOutside) {
  const auto dir = temp_dir("png");
  auto [rgb, mask] = spvit::testing::synthetic_slide_image(100, 150);
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  ASSERT_TRUE(cv::imwrite(dir + "/a.png", bgr));
  auto slide = Slide::open(dir + "/a.png");
  EXPECT_EQ(slide->format(), "opencv");
  ASSERT_EQ(slide->level_count(), 1);
  EXPECT_EQ(slide->level(0).width, 150);
  EXPECT_EQ(slide->level(0).height, 100);
  const cv::Mat region = read_rgb(*slide, 0, 140, 90, 20, 20);  // 10 × 10 inside, the rest outside
  EXPECT_EQ(cv::norm(region(cv::Rect(0, 0, 10, 10)), rgb(cv::Rect(140, 90, 10, 10)), cv::NORM_INF), 0);
  EXPECT_EQ(cv::countNonZero(channel0(region(cv::Rect(10, 0, 10, 20))) != 255), 0);
  EXPECT_NE(data_error([&] { read_rgb(*slide, 1, 0, 0, 4, 4); }).find("has no level 1"), std::string::npos);
}

TEST(Slide, ArgbPremultipliedToRgbOnWhite) {
  const uint32_t px[3] = {0x00000000u, 0xff102030u, 0x80402000u};  // transparent, opaque, half alpha premultiplied
  cv::Mat rgb(1, 3, CV_8UC3);
  data::argb_to_rgb(px, 3, 1, rgb.data);
  EXPECT_EQ(rgb.at<cv::Vec3b>(0, 0), cv::Vec3b(255, 255, 255));
  EXPECT_EQ(rgb.at<cv::Vec3b>(0, 1), cv::Vec3b(0x10, 0x20, 0x30));
  EXPECT_EQ(rgb.at<cv::Vec3b>(0, 2), cv::Vec3b(0x40 + 0x7f, 0x20 + 0x7f, 0x7f));
}

TEST(Slide, MissingAndCorruptFilesNameTheFile) {
  const auto dir = temp_dir("bad");
  auto missing = data_error([&] { Slide::open(dir + "/no_such.svs"); });
  EXPECT_NE(missing.find("no_such.svs' does not exist"), std::string::npos) << missing;
  std::ofstream(dir + "/garbage.tiff") << "II*\0 this is not a TIFF at all, just some bytes";
  auto corrupt = data_error([&] { Slide::open(dir + "/garbage.tiff"); });
  EXPECT_NE(corrupt.find("garbage.tiff'"), std::string::npos) << corrupt;
  std::ofstream(dir + "/text.png") << "not a png";
  auto text = data_error([&] { Slide::open(dir + "/text.png"); });
  EXPECT_NE(text.find("text.png'"), std::string::npos) << text;
}

#if SPVIT_HAVE_OPENSLIDE
TEST(Slide, PyramidTiffThroughOpenSlide) {
  const auto dir = temp_dir("pyr");
  auto [rgb, mask] = spvit::testing::synthetic_slide_image(700, 900);
  const auto levels = spvit::testing::write_pyramid_tiff(dir + "/s.tiff", rgb, 3);
  auto slide = Slide::open(dir + "/s.tiff");
  EXPECT_EQ(slide->format(), "openslide:generic-tiff");
  ASSERT_EQ(slide->level_count(), 3);
  for (int l = 0; l < 3; ++l) {
    EXPECT_EQ(slide->level(l).width, levels[static_cast<size_t>(l)].cols);
    EXPECT_EQ(slide->level(l).height, levels[static_cast<size_t>(l)].rows);
  }
  EXPECT_NEAR(slide->level(1).downsample, 2.0, 0.01);
  // Lossless deflate: a region read back equals what was written, at level 0 and level 1.
  EXPECT_EQ(cv::norm(read_rgb(*slide, 0, 130, 250, 300, 200), rgb(cv::Rect(130, 250, 300, 200)), cv::NORM_INF), 0);
  EXPECT_EQ(cv::norm(read_rgb(*slide, 1, 64, 40, 100, 90), levels[1](cv::Rect(64, 40, 100, 90)), cv::NORM_INF), 0);
  EXPECT_EQ(slide->level_for_max_side(500), 1);
  auto bad = data_error([&] { slide->level(3); });
  EXPECT_NE(bad.find("s.tiff' has no level 3 (it has 3 levels: 0..2)"), std::string::npos) << bad;
  // A truncated copy: OpenSlide must fail on open or on read with an error naming the file.
  {
    std::ifstream in(dir + "/s.tiff", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(dir + "/cut.tiff", std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 3));
  }
  auto cut = data_error([&] {
    auto s = Slide::open(dir + "/cut.tiff");
    for (int l = 0; l < s->level_count(); ++l) read_rgb(*s, l, 0, 0, s->level(l).width, s->level(l).height);
  });
  EXPECT_NE(cut.find("cut.tiff'"), std::string::npos) << cut;
}
#endif

// The resolution of a slide: OpenSlide's openslide.mpp-x where it has one; else the TIFF resolution tags (a
// generic pyramidal TIFF through OpenSlide, a plain striped TIFF through OpenCV); else none, and asking for a
// resolution names the way out.
TEST(Slide, MicronsPerPixelFromTiffResolutionTags) {
  const auto dir = temp_dir("mpp");
  auto [rgb, mask] = spvit::testing::synthetic_slide_image(600, 800);
  spvit::testing::write_pyramid_tiff(dir + "/tagged.tiff", rgb, 3, 128, /*pixels_per_cm=*/40000);  // 0.25 um/px
  auto tagged = Slide::open(dir + "/tagged.tiff");
  EXPECT_NEAR(tagged->mpp_x(), 0.25, 1e-6);
  EXPECT_NEAR(tagged->mpp_y(), 0.25, 1e-6);
  EXPECT_EQ(tagged->mpp_source(), "TIFF XResolution");
  EXPECT_EQ(tagged->level_for_mpp(0.5), 1);
  EXPECT_EQ(tagged->level_for_mpp(1.0), 2);

  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  ASSERT_TRUE(cv::imwrite(dir + "/plain.tif", bgr, {cv::IMWRITE_TIFF_RESUNIT, 2, cv::IMWRITE_TIFF_XDPI, 50800,
                                                     cv::IMWRITE_TIFF_YDPI, 50800}));  // inch: 0.5 um/px
  auto plain = Slide::open(dir + "/plain.tif");
  EXPECT_NEAR(plain->mpp_x(), 0.5, 1e-6);
  EXPECT_EQ(plain->mpp_source(), "TIFF XResolution");

  spvit::testing::write_pyramid_tiff(dir + "/untagged.tiff", rgb, 2);
  auto untagged = Slide::open(dir + "/untagged.tiff");
  EXPECT_EQ(untagged->mpp_x(), 0.0);
  EXPECT_EQ(untagged->mpp_source(), "none");
  const auto why = data_error([&] { untagged->level_for_mpp(0.5); });
  EXPECT_NE(why.find("untagged.tiff' has no resolution (no openslide.mpp-x property, no TIFF XResolution tag between "
                     "0.02 and 50 um/px): choose a level instead (data.level for training, --level for spvit infer)"),
            std::string::npos) << why;
  // A screen placeholder (72 dpi = 353 um/px) is not a slide's resolution.
  ASSERT_TRUE(cv::imwrite(dir + "/screen.tif", bgr, {cv::IMWRITE_TIFF_RESUNIT, 2, cv::IMWRITE_TIFF_XDPI, 72,
                                                      cv::IMWRITE_TIFF_YDPI, 72}));
  EXPECT_EQ(Slide::open(dir + "/screen.tif")->mpp_source(), "none");
}

// `spvit synth --format slides`: the slide reopens with its resolution, level 1 is the 2x2 mean of level 0, level 0 is
// the generator's image, and the GeoJSON annotations, rasterised back at level 0, reproduce the generator's classes.
// Distance from (x, y) to the nearest edge of any ring of `set`.
double distance_to_nearest_edge(const data::AnnotationSet& set, double x, double y) {
  double best = std::numeric_limits<double>::max();
  auto ring = [&](const data::Ring& r) {
    for (size_t i = 0; i < r.size(); ++i) {
      const auto& a = r[i];
      const auto& b = r[(i + 1) % r.size()];
      const double dx = b[0] - a[0], dy = b[1] - a[1], len2 = dx * dx + dy * dy;
      const double t = len2 > 0 ? std::clamp(((x - a[0]) * dx + (y - a[1]) * dy) / len2, 0.0, 1.0) : 0.0;
      best = std::min(best, std::hypot(a[0] + t * dx - x, a[1] + t * dy - y));
    }
  };
  for (const auto& an : set.annotations) {
    for (const auto& part : an.parts) {
      ring(part.exterior);
      for (const auto& hole : part.holes) ring(hole);
    }
  }
  return best;
}

TEST(SyntheticSlides, PyramidAndAnnotationsRoundTrip) {
  const auto dir = temp_dir("synth_slides");
  SyntheticSlideOptions o;
  o.height = 600;
  o.width = 800;
  o.mpp = 0.5;
  o.seed = 4;
  const auto written = write_synthetic_slide(dir, "slide_000", o);
  EXPECT_GT(written.polygons, 10);
  auto slide = Slide::open(written.slide);
  EXPECT_EQ(slide->level(0).width, 800);
  EXPECT_EQ(slide->level(0).height, 600);
  ASSERT_EQ(slide->level_count(), 2) << "level 2 (200x150) is smaller than a 256² tile: left out (data/slide.cpp)";
  EXPECT_NEAR(slide->mpp_x(), 0.5, 1e-6);
  const auto generated = data::make_synthetic_pathology({2, {600, 800}, 1, 4})->read(0);
  const auto level0 = read_rgb(*slide, 0, 0, 0, 800, 600);
  const auto expected = generated.image.mul(255.0).round().clamp(0, 255).to(torch::kUInt8).contiguous();
  EXPECT_EQ(cv::norm(level0, cv::Mat(600, 800, CV_8UC3, expected.data_ptr<uint8_t>()), cv::NORM_INF), 0);
  cv::Mat mean;
  cv::resize(level0, mean, cv::Size(400, 300), 0, 0, cv::INTER_AREA);  // exact 2x2 block means (even sides)
  EXPECT_LE(cv::norm(read_rgb(*slide, 1, 0, 0, 400, 300), mean, cv::NORM_INF), 1) << "rounding only";

  auto set = std::make_shared<data::AnnotationSet>(data::read_qupath_geojson(written.annotations));
  data::ClassMap classes;
  const auto names = data::synthetic_pathology_classes();
  for (size_t k = 1; k < names.size(); ++k) classes.ids[names[k]] = static_cast<int64_t>(k);
  data::RasterGrid grid;
  grid.height = 600;
  grid.width = 800;
  const auto labels = data::rasterize(data::AnnotationIndex(set), classes, grid);
  const double agree = labels.eq(generated.mask).to(torch::kFloat64).mean().item<double>();
  EXPECT_GT(agree, 0.95) << "pixel agreement of the vectorised annotations with the generator's mask";
  std::printf("synthetic slide: %lld polygons, %.4f of the pixels agree with the generator's classes\n",
              static_cast<long long>(written.polygons), agree);
  EXPECT_EQ(set->repaired, 0) << "the writer's polygons are valid (GEOS) although approxPolyDP can make them cross";

  // The ASAP XML holds the same regions (holes cut away): the same label of every pixel.
  auto asap = std::make_shared<data::AnnotationSet>(data::read_asap_xml(written.asap));
  EXPECT_EQ(asap->repaired, 0);
  EXPECT_EQ(static_cast<int64_t>(asap->annotations.size()), written.asap_annotations);
  EXPECT_GT(written.asap_annotations, written.polygons) << "some polygons have holes and were cut";
  const auto asap_labels = data::rasterize(data::AnnotationIndex(asap), classes, grid);
  // Where a cut crosses an edge, GEOS rounds the new vertex, so a pixel centre lying exactly on that edge may be
  // decided either way: every pixel labelled differently must be such a tie (its centre within 1e-9 of an edge).
  const auto differ = torch::nonzero(asap_labels.ne(labels));
  EXPECT_LT(differ.size(0), 100);
  for (int64_t k = 0; k < differ.size(0); ++k) {
    const double x = grid.centre_x(differ[k][1].item<int64_t>()), y = grid.centre_y(differ[k][0].item<int64_t>());
    EXPECT_LT(distance_to_nearest_edge(*set, x, y), 1e-9) << "pixel centre (" << x << ", " << y << ")";
  }
}

TEST(Tissue, OtsuOnSaturationFindsTheTissueOfASyntheticSlide) {
  auto [rgb, mask] = spvit::testing::synthetic_slide_image(600, 800, 5);
  // Glass on the left third (the generator's tissue covers most of the image): white, no tissue there.
  rgb(cv::Rect(0, 0, 260, 600)).setTo(cv::Scalar(255, 255, 255));
  mask(cv::Rect(0, 0, 260, 600)).setTo(0);
  const auto dir = temp_dir("tissue");
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  cv::imwrite(dir + "/t.png", bgr);
  auto slide = Slide::open(dir + "/t.png");
  TissueOptions to;
  to.max_side = 200;
  const auto tissue = TissueMask::detect(*slide, to);
  ASSERT_FALSE(tissue.empty());
  // Blocks of 40 × 40: every block that is mostly tissue in the truth touches detected tissue; no glass block does.
  int tissue_blocks = 0, found = 0, glass_blocks = 0, false_alarms = 0;
  for (int y = 0; y + 40 <= 600; y += 40) {
    for (int x = 0; x + 40 <= 800; x += 40) {
      const double frac = cv::countNonZero(mask(cv::Rect(x, y, 40, 40))) / 1600.0;
      const bool hit = tissue.touches(x, y, x + 40, y + 40);
      if (frac > 0.9) ++tissue_blocks, found += hit;
      if (x + 40 <= 240) ++glass_blocks, false_alarms += hit;
    }
  }
  ASSERT_GT(tissue_blocks, 20);
  EXPECT_GE(found, tissue_blocks * 95 / 100) << found << " of " << tissue_blocks;
  EXPECT_EQ(false_alarms, 0) << "of " << glass_blocks << " glass blocks";

  TissueOptions none = to;
  none.mode = "none";
  EXPECT_TRUE(TissueMask::detect(*slide, none).touches(0, 0, 1, 1));
}

TEST(Tissue, UserMaskIsStretchedOverTheSlide) {
  const auto dir = temp_dir("usermask");
  cv::imwrite(dir + "/slide.png", cv::Mat(400, 800, CV_8UC3, cv::Scalar(255, 255, 255)));
  cv::Mat user(40, 80, CV_8U, cv::Scalar(0));
  user(cv::Rect(60, 30, 10, 5)).setTo(1);  // level-0 box [600, 700) x [300, 350)
  cv::imwrite(dir + "/mask.png", user);
  auto slide = Slide::open(dir + "/slide.png");
  TissueOptions o;
  o.mode = dir + "/mask.png";
  const auto tissue = TissueMask::detect(*slide, o);
  EXPECT_TRUE(tissue.touches(650, 320, 660, 330));
  EXPECT_TRUE(tissue.touches(690, 340, 720, 380));
  EXPECT_FALSE(tissue.touches(0, 0, 590, 400));
  EXPECT_FALSE(tissue.touches(700, 0, 800, 400));
  o.mode = dir + "/no_mask.png";
  try {
    TissueMask::detect(*slide, o);
    ADD_FAILURE() << "no error";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("no_mask.png'"), std::string::npos) << e.what();
  }
}

TEST(Tissue, BlankSlideHasNoTissue) {
  const auto dir = temp_dir("blank");
  cv::imwrite(dir + "/white.png", cv::Mat(300, 400, CV_8UC3, cv::Scalar(250, 250, 250)));
  auto slide = Slide::open(dir + "/white.png");
  const auto tissue = TissueMask::detect(*slide, TissueOptions{});
  EXPECT_TRUE(tissue.empty());
  EXPECT_FALSE(tissue.touches(0, 0, 400, 300));
}

TEST(Writers, PyramidTiffReopensWithOpenSlideAndMatchesTheLabels) {
  const auto dir = temp_dir("tiffw");
  const int W = 1000, H = 700;
  cv::Mat labels(H, W, CV_8U);
  std::mt19937 rng(1);
  cv::randu(labels, 0, 4);
  cv::rectangle(labels, cv::Rect(100, 120, 300, 200), cv::Scalar(2), cv::FILLED);
  {
    PyramidTiffWriter w(dir + "/mask.tiff", W, H, 0.5);
    int y = 0;
    while (y < H) {  // uneven chunks, as the tiler's stripes come
      const int n = std::min<int>(H - y, 1 + static_cast<int>(rng() % 97));
      w.append(labels.rowRange(y, y + n));
      y += n;
    }
    EXPECT_FALSE(fs::exists(dir + "/mask.tiff"));  // only the temporary name until finish()
    EXPECT_EQ(w.levels(), 3);                       // 1000 -> 500 -> 250
    w.finish();
  }
  ASSERT_TRUE(fs::exists(dir + "/mask.tiff"));
  EXPECT_FALSE(fs::exists(dir + "/mask.tiff.tmp"));
  EXPECT_FALSE(fs::exists(dir + "/mask.tiff.level1.tmp"));
  // libtiff: BigTIFF, tiled 256, three directories.
  TIFF* t = TIFFOpen((dir + "/mask.tiff").c_str(), "r");
  ASSERT_NE(t, nullptr);
  EXPECT_TRUE(TIFFIsBigEndian(t) == 0 && TIFFIsTiled(t));
  EXPECT_TRUE(TIFFIsBigTIFF(t));
  EXPECT_EQ(TIFFNumberOfDirectories(t), 3);
  TIFFClose(t);
#if SPVIT_HAVE_OPENSLIDE
  auto slide = Slide::open(dir + "/mask.tiff");
  // Level 2 (250x175) is smaller than one 256² tile, which OpenSlide 3.4 with libtiff 4.5 misreads: left out.
  ASSERT_EQ(slide->level_count(), 2);
  EXPECT_EQ(slide->level(0).width, W);
  EXPECT_EQ(slide->level(1).width, 500);
  EXPECT_EQ(cv::norm(channel0(read_rgb(*slide, 0, 0, 0, W, H)), labels, cv::NORM_INF), 0);
  cv::Mat sub(350, 500, CV_8U);
  for (int y = 0; y < 350; ++y)
    for (int x = 0; x < 500; ++x) sub.at<uint8_t>(y, x) = labels.at<uint8_t>(2 * y, 2 * x);
  EXPECT_EQ(cv::norm(channel0(read_rgb(*slide, 1, 0, 0, 500, 350)), sub, cv::NORM_INF), 0);
#endif
}

TEST(Writers, UnfinishedTiffLeavesNoFile) {
  const auto dir = temp_dir("tiffu");
  {
    PyramidTiffWriter w(dir + "/mask.tiff", 600, 600);
    w.append(cv::Mat(100, 600, CV_8U, cv::Scalar(1)));
  }
  EXPECT_TRUE(fs::is_empty(dir));
}

TEST(Writers, GeoJsonPolygonsPerClassInLevel0Coordinates) {
  const auto dir = temp_dir("geo");
  cv::Mat labels(200, 300, CV_8U, cv::Scalar(0));
  cv::rectangle(labels, cv::Rect(10, 20, 50, 40), cv::Scalar(1), cv::FILLED);
  cv::rectangle(labels, cv::Rect(200, 100, 30, 30), cv::Scalar(1), cv::FILLED);
  cv::rectangle(labels, cv::Rect(100, 50, 80, 80), cv::Scalar(3), cv::FILLED);
  cv::rectangle(labels, cv::Rect(120, 70, 40, 40), cv::Scalar(0), cv::FILLED);  // a hole in class 3
  const double scale = 8;
  const auto n = write_geojson(dir + "/p.geojson", labels, scale, {"background", "a", "b", "c"});
  EXPECT_EQ(n, 3);
  std::ifstream in(dir + "/p.geojson");
  const auto doc = nlohmann::json::parse(in);
  ASSERT_EQ(doc["type"], "FeatureCollection");
  ASSERT_EQ(doc["features"].size(), 2u);  // class 2 is absent
  std::map<int, nlohmann::json> by_class;
  for (const auto& f : doc["features"]) by_class[f["properties"]["class_id"].get<int>()] = f;
  ASSERT_EQ(by_class.count(1), 1u);
  ASSERT_EQ(by_class.count(3), 1u);
  EXPECT_EQ(by_class[1]["properties"]["classification"]["name"], "a");
  EXPECT_EQ(by_class[1]["geometry"]["type"], "MultiPolygon");
  EXPECT_EQ(by_class[1]["geometry"]["coordinates"].size(), 2u);
  const auto& ring3 = by_class[3]["geometry"]["coordinates"][0];
  ASSERT_EQ(ring3.size(), 2u);  // outer ring + the hole
  // Bounding box of the outer ring of class 3, in level-0 pixels: the rectangle's first and last pixel × scale.
  double x0 = 1e9, y0 = 1e9, x1 = -1, y1 = -1;
  for (const auto& p : ring3[0]) {
    x0 = std::min(x0, p[0].get<double>()), x1 = std::max(x1, p[0].get<double>());
    y0 = std::min(y0, p[1].get<double>()), y1 = std::max(y1, p[1].get<double>());
  }
  EXPECT_DOUBLE_EQ(x0, 100 * scale);
  EXPECT_DOUBLE_EQ(y0, 50 * scale);
  EXPECT_DOUBLE_EQ(x1, 179 * scale);
  EXPECT_DOUBLE_EQ(y1, 129 * scale);
  EXPECT_EQ(ring3[0].front(), ring3[0].back());  // closed
}

TEST(Writers, OverlayPngAndReducedLabels) {
  const auto dir = temp_dir("png_out");
  ReducedLabels reduced(1000, 300, 256);
  EXPECT_EQ(reduced.factor(), 4);
  cv::Mat rows(300, 1000, CV_8U, cv::Scalar(0));
  rows(cv::Rect(400, 100, 200, 100)).setTo(2);
  reduced.append(0, rows.rowRange(0, 150));
  reduced.append(150, rows.rowRange(150, 300));
  EXPECT_EQ(reduced.image().cols, 250);
  EXPECT_EQ(reduced.image().rows, 75);
  EXPECT_EQ(cv::countNonZero(reduced.image()), 50 * 25);
  cv::Mat thumb(150, 500, CV_8UC3, cv::Scalar(200, 180, 190));
  write_overlay_png(dir + "/o.png", thumb, reduced.image());
  const cv::Mat back = cv::imread(dir + "/o.png");
  ASSERT_EQ(back.cols, 500);
  ASSERT_EQ(back.rows, 150);
  EXPECT_NE(back.at<cv::Vec3b>(75, 250), back.at<cv::Vec3b>(10, 10));  // coloured inside the class-2 box only
}

// region_contours (RETR_LIST borders grouped by orientation and connected component, linear in the contours) gives
// exactly RETR_CCOMP's regions: the same outer borders, each with the same holes, on random images with regions
// inside holes inside regions, one-pixel regions and one-pixel holes.
TEST(Writers, RegionContoursEqualOpenCvTwoLevelHierarchy) {
  using Key = std::vector<int>;
  auto key = [](const std::vector<cv::Point>& c) {
    Key k;
    for (const auto& p : c) k.insert(k.end(), {p.x, p.y});
    return k;
  };
  for (int seed : {1, 2, 3, 4}) {
    std::mt19937 g(static_cast<unsigned>(seed));
    const int n = seed % 2 ? 300 : 517;
    cv::Mat m(n, n, CV_8U, cv::Scalar(0));
    for (int i = 0; i < 40 * n; ++i) {
      const cv::Point centre(static_cast<int>(g() % n), static_cast<int>(g() % n));
      if (i % 3) m.at<uchar>(centre) = (g() % 2) ? 255 : 0;  // single pixels and single-pixel holes
      else cv::circle(m, centre, static_cast<int>(g() % 14), (g() % 2) ? 255 : 0, -1);
    }
    std::vector<std::vector<cv::Point>> contours;
    std::vector<cv::Vec4i> hierarchy;
    cv::findContours(m, contours, hierarchy, cv::RETR_CCOMP, cv::CHAIN_APPROX_SIMPLE);
    std::map<Key, std::set<Key>> expected;
    for (size_t i = 0; i < contours.size(); ++i) {
      if (hierarchy[i][3] >= 0) continue;
      auto& holes = expected[key(contours[i])];
      for (int h = hierarchy[i][2]; h >= 0; h = hierarchy[static_cast<size_t>(h)][0]) {
        holes.insert(key(contours[static_cast<size_t>(h)]));
      }
    }
    std::map<Key, std::set<Key>> got;
    int64_t holes = 0;
    for (const auto& r : region_contours(m)) {
      auto& set = got[key(r.outer)];
      for (const auto& h : r.holes) set.insert(key(h));
      holes += static_cast<int64_t>(r.holes.size());
    }
    EXPECT_EQ(got, expected) << "seed " << seed;
    EXPECT_GT(expected.size(), 100u);
    EXPECT_GT(holes, 50) << "the images have holes";
  }
}
