// The streaming tiler against the untiled result of an analytic network, tissue skipping, and the whole pipeline on
// a generated pyramidal slide (mask reopened with OpenSlide, summary and GeoJSON parsed).
#include <gtest/gtest.h>
#include "spvit/dist/mpi.h"
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "infer_test_util.h"
#include "spvit/build_info.h"
#include "spvit/core/error.h"
#include "spvit/infer/pipeline.h"
#include "spvit/infer/slide.h"
#include "spvit/infer/tiler.h"

namespace fs = std::filesystem;
using namespace spvit;
using namespace spvit::infer;

namespace {

using spvit::testing::temp_dir;

std::unique_ptr<Slide> png_slide(const std::string& path, const cv::Mat& rgb) {
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  cv::imwrite(path, bgr);
  return Slide::open(path);
}

struct Collected {
  cv::Mat labels;
  torch::Tensor probs;
  int64_t next_row = 0, max_chunk = 0;
};

// Runs the tiler and assembles what the sink receives (checking that rows come in order, without gaps).
Collected run_and_collect(const Slide& slide, const TissueMask* tissue, const TilePredictor& predict,
                          TilerOptions o, TilerStats* stats = nullptr) {
  const auto& L = slide.level(0);
  Collected c;
  c.labels = cv::Mat(static_cast<int>(L.height), static_cast<int>(L.width), CV_8U, cv::Scalar(77));
  c.probs = torch::full({4, L.height, L.width}, -1.0f);
  o.probabilities = true;
  auto s = run_tiled(slide, slide.level(0), tissue, predict, 4, o, [&](int64_t y0, const cv::Mat& rows, const torch::Tensor& p) {
    EXPECT_EQ(y0, c.next_row);
    c.next_row = y0 + rows.rows;
    c.max_chunk = std::max<int64_t>(c.max_chunk, rows.rows);
    rows.copyTo(c.labels.rowRange(static_cast<int>(y0), static_cast<int>(y0) + rows.rows));
    c.probs.narrow(1, y0, rows.rows).copy_(p);
  });
  EXPECT_EQ(c.next_row, L.height);
  if (stats) *stats = s;
  return c;
}

}  // namespace

TEST(Tiler, OriginsCoverTheAxisAndEndAtTheEdge) {
  EXPECT_EQ(tile_origins(100, 128, 32), std::vector<int64_t>({0}));
  EXPECT_EQ(tile_origins(128, 128, 32), std::vector<int64_t>({0}));
  EXPECT_EQ(tile_origins(300, 128, 32), std::vector<int64_t>({0, 96, 172}));
  const auto w = blend_window(64, 16, "gaussian");
  EXPECT_GT(w.min().item<float>(), 0.0f);
  EXPECT_GT(blend_window(64, 16, "linear").min().item<float>(), 0.0f);
}

// Tiled + overlapped + blended == untiled, everywhere including tile borders and the image edge.
TEST(Tiler, BlendedTilesReproduceTheUntiledAnalyticNetwork) {
  const auto dir = temp_dir("exact");
  auto [rgb, mask] = spvit::testing::synthetic_slide_image(333, 457, 11);
  auto slide = png_slide(dir + "/s.png", rgb);
  const auto untiled = spvit::testing::analytic_probabilities(spvit::testing::to_batch(rgb))[0];  // [4, H, W]
  const auto top2 = std::get<0>(untiled.topk(2, 0));
  const auto margin = (top2[0] - top2[1]);
  const auto untiled_labels = untiled.argmax(0).to(torch::kUInt8);
  struct Case { int64_t tile, overlap, batch; const char* blend; float tolerance; };
  // Float32 sums: the rounding grows with the number of tiles over a pixel (up to 12² with 96/88).
  for (const auto& k : {Case{64, 16, 4, "gaussian", 2e-6f}, Case{50, 13, 3, "linear", 2e-6f},
                        Case{128, 0, 1, "gaussian", 1e-6f}, Case{96, 88, 8, "linear", 2e-5f},
                        Case{512, 64, 2, "gaussian", 1e-6f}}) {
    SCOPED_TRACE(std::to_string(k.tile) + "/" + std::to_string(k.overlap) + " " + k.blend);
    TilerOptions o;
    o.tile = k.tile, o.overlap = k.overlap, o.batch = k.batch, o.blend = k.blend;
    int64_t seen = 0;
    auto predict = [&](const torch::Tensor& batch) {
      EXPECT_LE(batch.size(0), k.batch);
      seen += batch.size(0);
      return spvit::testing::analytic_probabilities(batch);
    };
    TilerStats stats;
    auto c = run_and_collect(*slide, nullptr, predict, o, &stats);
    EXPECT_EQ(seen, stats.tiles_run);
    EXPECT_EQ(stats.tiles_skipped, 0);
    EXPECT_EQ(stats.covered_pixels, 333 * 457);
    EXPECT_LE(c.max_chunk, k.tile);
    EXPECT_LT((c.probs - untiled).abs().max().item<float>(), k.tolerance);
    // Labels identical wherever the analytic network is not within rounding of a tie.
    auto tiled_labels = torch::from_blob(c.labels.data, {333, 457}, torch::kUInt8);
    auto differ = (tiled_labels != untiled_labels) & (margin > 1e-5);
    EXPECT_EQ(differ.sum().item<int64_t>(), 0);
    int64_t sum = 0;
    for (auto n : stats.class_pixels) sum += n;
    EXPECT_EQ(sum, 333 * 457);
  }
}

// Tiles away from tissue are not run; their pixels are background; tissue pixels get the network's labels.
TEST(Tiler, SkippedTilesAreBackground) {
  const auto dir = temp_dir("skip");
  auto [rgb, mask] = spvit::testing::synthetic_slide_image(300, 400, 2);
  auto slide = png_slide(dir + "/s.png", rgb);
  cv::Mat tmask(300, 400, CV_8U, cv::Scalar(0));
  tmask(cv::Rect(250, 40, 60, 50)).setTo(255);  // tissue only here (level-0 = mask pixels)
  TissueMask tissue(torch::from_blob(tmask.data, {300, 400}, torch::kUInt8).clone(), 400, 300);
  TilerOptions o;
  o.tile = 64, o.overlap = 16, o.batch = 2;
  int64_t seen = 0;
  auto predict = [&](const torch::Tensor& batch) {
    seen += batch.size(0);
    auto p = torch::zeros({batch.size(0), 4, 64, 64});
    p.select(1, 2).fill_(1.0f);  // everything run is class 2
    return p;
  };
  TilerStats stats;
  auto c = run_and_collect(*slide, &tissue, predict, o, &stats);
  EXPECT_EQ(seen, stats.tiles_run);
  EXPECT_GT(stats.tiles_skipped, 0);
  EXPECT_EQ(stats.tiles_run + stats.tiles_skipped, stats.tiles_total);
  // Which pixels some tile touching the tissue box covers: computed from the tile grid independently.
  cv::Mat expected(300, 400, CV_8U, cv::Scalar(0));
  int64_t touching = 0;
  for (auto y : tile_origins(300, 64, 16)) {
    for (auto x : tile_origins(400, 64, 16)) {
      const bool hit = x < 310 && x + 64 > 250 && y < 90 && y + 64 > 40;
      if (hit) ++touching, expected(cv::Rect(static_cast<int>(x), static_cast<int>(y), 64, 64) & cv::Rect(0, 0, 400, 300)).setTo(2);
    }
  }
  EXPECT_EQ(stats.tiles_run, touching);
  EXPECT_EQ(cv::norm(c.labels, expected, cv::NORM_INF), 0);
  EXPECT_EQ(stats.class_pixels[2], cv::countNonZero(expected));
  EXPECT_EQ(stats.class_pixels[0], 300 * 400 - cv::countNonZero(expected));
}

TEST(Tiler, ModelWithTheWrongOutputShapeIsAClearError) {
  const auto dir = temp_dir("shape");
  auto [rgb, mask] = spvit::testing::synthetic_slide_image(64, 64, 2);
  auto slide = png_slide(dir + "/s.png", rgb);
  TilerOptions o;
  o.tile = 32, o.overlap = 8;
  auto bad = [](const torch::Tensor& b) { return torch::zeros({b.size(0), 3, 32, 32}); };
  try {
    run_tiled(*slide, slide->level(0), nullptr, bad, 4, o, [](int64_t, const cv::Mat&, const torch::Tensor&) {});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expected ["), std::string::npos) << e.what();
  }
}

// Tissue tiles split over the data ranks (run under mpirun -np 2): the stripe sums over MPI reproduce the untiled
// result on rank 0, and every tile is run by exactly one rank.
TEST(TilerMpi, TilesSplitOverRanksReproduceTheUntiledResult) {
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size == 1) GTEST_SKIP() << "needs several ranks";
  const auto dir = temp_dir("mpi" + std::to_string(rank));
  auto [rgb, mask] = spvit::testing::synthetic_slide_image(250, 390, 8);
  auto slide = png_slide(dir + "/s.png", rgb);
  const auto untiled = spvit::testing::analytic_probabilities(spvit::testing::to_batch(rgb))[0];
  TilerOptions o;
  o.tile = 64, o.overlap = 24, o.batch = 3, o.blend = "gaussian", o.probabilities = true;
  o.rank = rank, o.world = size;
  o.reduce = [](torch::Tensor& acc) {
    MPI_Allreduce(MPI_IN_PLACE, acc.data_ptr<float>(), static_cast<int>(acc.numel()), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  };
  int64_t seen = 0;
  auto predict = [&](const torch::Tensor& b) {
    seen += b.size(0);
    return spvit::testing::analytic_probabilities(b);
  };
  auto probs = torch::full({4, 250, 390}, -1.0f);
  int64_t rows = 0;
  const auto stats = run_tiled(*slide, slide->level(0), nullptr, predict, 4, o, [&](int64_t y0, const cv::Mat& r, const torch::Tensor& p) {
    probs.narrow(1, y0, r.rows).copy_(p);
    rows += r.rows;
  });
  int64_t total = 0;
  MPI_Allreduce(&seen, &total, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
  EXPECT_EQ(total, stats.tiles_run);
  EXPECT_LT(seen, stats.tiles_run);  // this rank ran only its share
  if (rank == 0) {
    EXPECT_EQ(rows, 250);
    EXPECT_LT((probs - untiled).abs().max().item<float>(), 2e-6f);
  } else {
    EXPECT_EQ(rows, 0);  // only rank 0 receives rows
  }
}

#if SPVIT_HAVE_OPENSLIDE
// The whole pipeline on level 1 of a generated 3-level slide: the mask reopened with OpenSlide equals the untiled
// analytic labels of that level; the summary and the GeoJSON agree with them.
TEST(Pipeline, GeneratedPyramidSlideEndToEnd) {
  const auto dir = temp_dir("pipe");
  auto [rgb, mask] = spvit::testing::synthetic_slide_image(1200, 1500, 4);
  const auto levels = spvit::testing::write_pyramid_tiff(dir + "/slide.tiff", rgb, 3);
  auto slide = Slide::open(dir + "/slide.tiff");
  InferOptions o;
  o.out_dir = dir + "/out";
  o.level = 1;
  o.tiler.tile = 128, o.tiler.overlap = 32, o.tiler.batch = 4;
  o.tissue.mode = "none";
  o.class_names = {"background", "tissue", "nuclei", "gland"};
  const auto result = run_inference(*slide, spvit::testing::analytic_probabilities, o);
  const cv::Mat& lvl = levels[1];
  const auto untiled = spvit::testing::analytic_probabilities(spvit::testing::to_batch(lvl))[0];
  const auto top2 = std::get<0>(untiled.topk(2, 0));
  const auto reliable = (top2[0] - top2[1]) > 1e-5;
  const auto labels = untiled.argmax(0).to(torch::kUInt8);

  auto mask_slide = Slide::open(o.out_dir + "/mask.tiff");
  ASSERT_EQ(mask_slide->level(0).width, lvl.cols);
  ASSERT_EQ(mask_slide->level(0).height, lvl.rows);
  EXPECT_EQ(mask_slide->level_count(), 2);  // 750 -> 375 (-> 188, smaller than a 256² tile: left out by the reader)
  cv::Mat back[3];
  cv::split(read_rgb(*mask_slide, 0, 0, 0, lvl.cols, lvl.rows), back);
  auto written = torch::from_blob(back[0].data, {lvl.rows, lvl.cols}, torch::kUInt8);
  EXPECT_EQ(((written != labels) & reliable).sum().item<int64_t>(), 0);

  std::ifstream sin(o.out_dir + "/summary.json");
  const auto summary = nlohmann::json::parse(sin);
  EXPECT_EQ(summary["slide"]["level"], 1);
  EXPECT_EQ(summary["tiles"]["run"].get<int64_t>(), result.stats.tiles_total);
  int64_t sum = 0;
  for (int c = 0; c < 4; ++c) {
    const auto px = summary["areas"][c]["pixels"].get<double>();
    sum += static_cast<int64_t>(px);
    EXPECT_NEAR(px, (written == c).sum().item<double>(), 0.5);
    EXPECT_NEAR(summary["areas"][c]["level0_pixels"].get<double>(), px * 4, 1e-6 * px + 1e-9);
  }
  EXPECT_EQ(sum, static_cast<int64_t>(lvl.cols) * lvl.rows);
  EXPECT_GT(summary["tissue_mpix_per_s"].get<double>(), 0);

  std::ifstream gin(o.out_dir + "/polygons.geojson");
  const auto geo = nlohmann::json::parse(gin);
  EXPECT_EQ(geo["type"], "FeatureCollection");
  EXPECT_GT(geo["features"].size(), 0u);
  for (const auto& f : geo["features"]) {
    for (const auto& poly : f["geometry"]["coordinates"]) {
      for (const auto& p : poly[0]) {  // level-0 coordinates: inside the level-0 slide, beyond level 1's size
        EXPECT_GE(p[0].get<double>(), 0);
        EXPECT_LE(p[0].get<double>(), 1500);
        EXPECT_LE(p[1].get<double>(), 1200);
      }
    }
  }
  const cv::Mat overlay = cv::imread(o.out_dir + "/overlay.png");
  EXPECT_FALSE(overlay.empty());
  for (const auto& e : fs::directory_iterator(o.out_dir)) {
    EXPECT_EQ(e.path().string().find(".tmp"), std::string::npos) << e.path();
  }
}

// A slide without tissue: nothing is run, the mask is all background, every output is still written.
TEST(Pipeline, BlankSlideGivesAnEmptyMask) {
  const auto dir = temp_dir("blank_pipe");
  cv::Mat white(400, 500, CV_8UC3, cv::Scalar(255, 255, 255));
  spvit::testing::write_pyramid_tiff(dir + "/blank.tiff", white, 2);
  auto slide = Slide::open(dir + "/blank.tiff");
  InferOptions o;
  o.out_dir = dir + "/out";
  o.tiler.tile = 64, o.tiler.overlap = 16;
  o.class_names = {"background", "a"};
  int64_t calls = 0;
  auto predict = [&](const torch::Tensor& b) { ++calls; return torch::ones({b.size(0), 2, 64, 64}); };
  const auto r = run_inference(*slide, predict, o);
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(r.stats.tiles_run, 0);
  EXPECT_EQ(r.stats.class_pixels[0], 400 * 500);
  auto m = Slide::open(o.out_dir + "/mask.tiff");
  cv::Mat back[3];
  cv::split(read_rgb(*m, 0, 0, 0, 500, 400), back);
  EXPECT_EQ(cv::countNonZero(back[0]), 0);
  EXPECT_TRUE(fs::exists(o.out_dir + "/polygons.geojson"));
}
#endif
