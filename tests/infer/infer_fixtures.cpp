// Writes the inputs of the `spvit infer` CLI tests into the folder argv[1]: a generated 3-level slide, a small PNG,
// a corrupt TIFF, a randomly initialised checkpoint of a small model and one whose weights do not fit its config.
// `--bench SIDE PATH` writes a SIDE × SIDE synthetic slide for timing; `--dice MASK TRUTH MIN` checks a mask.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <cmath>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "infer_test_util.h"
#include "spvit/core/config.h"
#include "spvit/data/annotations.h"
#include "spvit/data/tissue.h"
#include "spvit/infer/slide.h"
#include "spvit/model/segmenter.h"
#include "spvit/train/checkpoint.h"
#include "spvit/train/optim/optimizer.h"

using namespace spvit;

namespace {
void save_model(const std::string& path, const Config& weights_config, const std::string& stored_yaml) {
  torch::manual_seed(0);
  model::Segmenter model(model::SegmenterOptions::from_config(weights_config.model, 4));
  auto opt = train::make_adamw({train::ParamGroup{model->parameters(), 0.0}}, {});
  train::save_checkpoint(path, *model, *opt, {}, stored_yaml);
}
// The tissue sections of the benchmark slide: two ellipses (centre y, x and semi-axes as fractions of the side),
// the rest is white glass, as on a scanned slide (about 38% of the area; the synthetic tissue inside them has its own
// gaps, so the tissue detector keeps about a third of the tiles).
struct Section {
  double cy, cx, ry, rx;
};
constexpr Section kBenchSections[] = {{0.36, 0.30, 0.30, 0.22}, {0.62, 0.72, 0.30, 0.20}};

// White outside the sections; returns the columns [x0, x1) of band rows [y0, y1) that touch a section (x0 == x1
// when none does), so that only those are rendered.
std::pair<int64_t, int64_t> section_columns(int64_t n, int64_t y0, int64_t y1) {
  int64_t x0 = n, x1 = 0;
  for (const auto& s : kBenchSections) {
    const double cy = s.cy * n, ry = s.ry * n, cx = s.cx * n, rx = s.rx * n;
    if (y1 <= cy - ry || y0 >= cy + ry) continue;
    const double dy = std::max(0.0, std::max(cy - y1, y0 - cy));  // nearest band row to the centre
    const double half = rx * std::sqrt(std::max(0.0, 1 - (dy / ry) * (dy / ry)));
    x0 = std::min(x0, std::max<int64_t>(0, static_cast<int64_t>(cx - half)));
    x1 = std::max(x1, std::min<int64_t>(n, static_cast<int64_t>(cx + half) + 1));
  }
  return x0 < x1 ? std::make_pair(x0, x1) : std::make_pair(int64_t{0}, int64_t{0});
}

void whiten_outside_sections(cv::Mat& band, int64_t n, int64_t y0) {
  cv::Mat inside(band.size(), CV_8U, cv::Scalar(0));
  for (const auto& s : kBenchSections)
    cv::ellipse(inside, cv::Point(static_cast<int>(s.cx * n), static_cast<int>(s.cy * n - y0)),
                cv::Size(static_cast<int>(s.rx * n), static_cast<int>(s.ry * n)), 0, 0, 360, cv::Scalar(255),
                cv::FILLED);
  band.setTo(cv::Scalar(255, 255, 255), inside == 0);
}

// A large synthetic slide for timing `spvit infer` (docs/inference.md): level 0 generated and written band by band
// (the synthetic generator renders any region on its own; only the tissue sections are rendered), plus levels at
// 1/16 and 1/64 from a shrunk copy.
int write_bench_slide(int64_t n, const std::string& path) {
  data::SyntheticOptions so;
  so.shape = {n, n};
  so.count = 1;
  so.seed = 21;
  auto ds = data::make_synthetic_pathology(so);
  TIFF* t = TIFFOpen(path.c_str(), "w8");
  if (t == nullptr) return 1;
  const int tile = 256;
  auto set_fields = [&](int64_t w, int64_t h, bool reduced) {
    spvit::testing::set_rgb_tiled_fields(t, w, h, tile, reduced);
    TIFFSetField(t, TIFFTAG_ZIPQUALITY, 1);  // the benchmark slide is big: fastest deflate
  };
  auto write_band = [&](const cv::Mat& band, int64_t y0) {
    std::vector<uint8_t> buf(static_cast<size_t>(tile * tile * 3));
    for (int x = 0; x < band.cols; x += tile) {
      std::fill(buf.begin(), buf.end(), 255);
      for (int r = 0; r < tile && r < band.rows; ++r) {
        const int w = std::min(tile, band.cols - x);
        std::memcpy(&buf[static_cast<size_t>(r * tile * 3)], band.ptr<uint8_t>(r) + 3 * x, static_cast<size_t>(3 * w));
      }
      TIFFWriteEncodedTile(t, TIFFComputeTile(t, static_cast<uint32_t>(x), static_cast<uint32_t>(y0), 0, 0), buf.data(),
                           static_cast<tmsize_t>(buf.size()));
    }
  };
  set_fields(n, n, false);
  const int64_t small_n = (n + 15) / 16;
  cv::Mat small(static_cast<int>(small_n), static_cast<int>(small_n), CV_8UC3, cv::Scalar(255, 255, 255));
  for (int64_t y0 = 0; y0 < n; y0 += tile) {
    const int64_t y1 = std::min(n, y0 + tile);
    cv::Mat band(static_cast<int>(y1 - y0), static_cast<int>(n), CV_8UC3, cv::Scalar(255, 255, 255));
    const auto [x0, x1] = section_columns(n, y0, y1);
    if (x1 > x0) {
      auto sample = ds->read(0, data::Region{{y0, x0}, {y1, x1}});
      auto rgb = (sample.image.clamp(0, 1) * 255).round().to(torch::kUInt8).contiguous();
      cv::Mat(static_cast<int>(y1 - y0), static_cast<int>(x1 - x0), CV_8UC3, rgb.data_ptr())
          .copyTo(band.colRange(static_cast<int>(x0), static_cast<int>(x1)));
      whiten_outside_sections(band, n, y0);
    }
    write_band(band, y0);
    cv::Mat shrunk;
    const int s0 = static_cast<int>(y0 / 16), s1 = static_cast<int>((y1 + 15) / 16);
    cv::resize(band, shrunk, cv::Size(static_cast<int>(small_n), s1 - s0), 0, 0, cv::INTER_AREA);
    shrunk.copyTo(small.rowRange(s0, s1));
    if (y0 % (tile * 16) == 0) std::cout << "rows " << y1 << "/" << n << std::endl;
  }
  TIFFWriteDirectory(t);
  for (int f : {1, 4}) {
    cv::Mat lvl = small;
    if (f > 1) cv::resize(small, lvl, cv::Size((small.cols + f - 1) / f, (small.rows + f - 1) / f), 0, 0, cv::INTER_AREA);
    set_fields(lvl.cols, lvl.rows, true);
    for (int y0 = 0; y0 < lvl.rows; y0 += tile) write_band(lvl.rowRange(y0, std::min(lvl.rows, y0 + tile)), y0);
    TIFFWriteDirectory(t);
  }
  TIFFClose(t);
  std::cout << "bench slide " << n << "x" << n << " written to " << path << "\n";
  return 0;
}

// Mean foreground Dice of level 0 of a label mask written by spvit infer against a ground-truth label PNG; exits
// non-zero below `min_dice`.
int check_dice(const std::string& mask_path, const std::string& truth_path, double min_dice) {
  auto mask = infer::Slide::open(mask_path);
  const cv::Mat truth = cv::imread(truth_path, cv::IMREAD_GRAYSCALE);
  if (truth.empty()) {
    std::cerr << "cannot read " << truth_path << "\n";
    return 1;
  }
  if (mask->level(0).width != truth.cols || mask->level(0).height != truth.rows) {
    std::cerr << "mask is " << mask->level(0).width << "x" << mask->level(0).height << ", truth " << truth.cols << "x"
              << truth.rows << "\n";
    return 1;
  }
  cv::Mat channels[3];
  cv::split(infer::read_rgb(*mask, 0, 0, 0, truth.cols, truth.rows), channels);
  double sum = 0;
  int n = 0;
  for (int c = 1; c < 4; ++c) {
    const cv::Mat p = channels[0] == c, g = truth == c;
    const double inter = cv::countNonZero(p & g), denom = cv::countNonZero(p) + cv::countNonZero(g);
    if (denom == 0) continue;
    const double dice = 2 * inter / denom;
    std::cout << "class " << c << " Dice " << dice << "\n";
    sum += dice, ++n;
  }
  const double mean = n ? sum / n : 0;
  std::cout << "mean foreground Dice " << mean << " (minimum " << min_dice << ")\n";
  return mean >= min_dice ? 0 : 1;
}

// Mean foreground Dice of [0, K) labels `pred` against `truth` (uint8 [H, W] each; truth may hold 255 = ignored).
double mean_foreground_dice(const cv::Mat& pred, const cv::Mat& truth, int classes, const std::string& what,
                            const std::vector<std::string>& names) {
  const cv::Mat counted = truth != 255;
  double sum = 0;
  int n = 0;
  std::cout << what << ":";
  for (int c = 1; c < classes; ++c) {
    const cv::Mat p = (pred == c) & counted, g = truth == c;
    const double inter = cv::countNonZero(p & g), denom = cv::countNonZero(p) + cv::countNonZero(g);
    if (cv::countNonZero(g) == 0) continue;  // a class the slide does not have
    const double dice = 2 * inter / denom;
    std::cout << " " << names[static_cast<size_t>(c)] << " " << dice;
    sum += dice, ++n;
  }
  const double mean = n ? sum / n : 0;
  std::cout << "; mean foreground Dice " << mean << "\n";
  return mean;
}

// The slide end-to-end check: `spvit infer`'s mask of a generated slide against its GeoJSON annotations rasterised
// at the mask's resolution (pixel-centre rule, classes "name=id,..."), and against the colour-threshold baseline —
// the tissue detector's Otsu mask labelled as the first class. Passes when the model's mean foreground Dice is at
// least `min_dice` and at least `margin` above the baseline's.
int check_slide_dice(const std::string& mask_path, const std::string& slide_path, const std::string& annotations,
                     const std::string& class_list, double min_dice, double margin) {
  auto mask = infer::Slide::open(mask_path);
  auto slide = infer::Slide::open(slide_path);
  const int64_t W = mask->level(0).width, H = mask->level(0).height;
  data::ClassMap classes;
  std::vector<std::string> names{"background"};
  std::stringstream list(class_list);
  for (std::string item; std::getline(list, item, ',');) {
    const auto eq = item.find('=');
    const int64_t id = std::stoll(item.substr(eq + 1));
    classes.ids[item.substr(0, eq)] = id;
    if (static_cast<int64_t>(names.size()) <= id) names.resize(static_cast<size_t>(id + 1));
    names[static_cast<size_t>(id)] = item.substr(0, eq);
  }
  data::RasterGrid grid;
  grid.downsample = static_cast<double>(slide->level(0).width) / static_cast<double>(W);
  grid.width = W, grid.height = H;
  auto set = std::make_shared<data::AnnotationSet>(data::read_annotations(annotations));
  const auto labels = data::rasterize(data::AnnotationIndex(set), classes, grid).to(torch::kUInt8).contiguous();
  const cv::Mat truth(static_cast<int>(H), static_cast<int>(W), CV_8U, labels.data_ptr<uint8_t>());
  cv::Mat channels[3];
  cv::split(infer::read_rgb(*mask, 0, 0, 0, W, H), channels);
  const int K = static_cast<int>(names.size());
  const double model = mean_foreground_dice(channels[0], truth, K, "model (" + mask_path + ")", names);
  const auto tissue = data::TissueMask::detect(*slide, data::TissueOptions{});
  cv::Mat otsu = infer::to_mat(tissue.mask()), baseline;
  cv::resize(otsu, baseline, cv::Size(static_cast<int>(W), static_cast<int>(H)), 0, 0, cv::INTER_NEAREST);
  const double base = mean_foreground_dice(baseline, truth, K, "Otsu tissue baseline (tissue = " + names[1] + ")",
                                           names);
  std::cout << "mean foreground Dice " << model << " (minimum " << min_dice << "), Otsu baseline " << base
            << ", margin " << model - base << " (minimum " << margin << ")\n";
  return model >= min_dice && model - base >= margin ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 5 && std::string(argv[1]) == "--dice") return check_dice(argv[2], argv[3], std::stod(argv[4]));
  if (argc == 8 && std::string(argv[1]) == "--slide-dice") {
    return check_slide_dice(argv[2], argv[3], argv[4], argv[5], std::stod(argv[6]), std::stod(argv[7]));
  }
  if (argc == 4 && std::string(argv[1]) == "--bench") return write_bench_slide(std::stoll(argv[2]), argv[3]);
  if (argc != 2) {
    std::cerr << "usage: spvit_infer_fixtures DIR | --bench SIDE SLIDE.tiff | --dice MASK.tiff TRUTH.png MIN | "
                 "--slide-dice MASK.tiff SLIDE.tiff ANNOTATIONS name=id,... MIN MARGIN\n";
    return 1;
  }
  const std::string dir = argv[1];
  std::filesystem::create_directories(dir);
  auto [rgb, mask] = testing::synthetic_slide_image(768, 1024, 9);
  testing::write_pyramid_tiff(dir + "/slide.tiff", rgb, 3);
  {
    // For the end-to-end test with the demo model: a 1152x960 slide of 6 × 5 generated samples of 192² (the
    // training scale, see synthetic_mosaic; a seed no training image uses) and its ground-truth labels.
    auto [big, truth] = testing::synthetic_mosaic(5, 6, 192, 424242);
    testing::write_pyramid_tiff(dir + "/trained_slide.tiff", big, 3);
    cv::imwrite(dir + "/trained_truth.png", truth);
  }
  cv::Mat bgr;
  cv::cvtColor(rgb(cv::Rect(0, 0, 300, 200)), bgr, cv::COLOR_RGB2BGR);
  cv::imwrite(dir + "/small.png", bgr);
  {
    std::ofstream out(dir + "/corrupt.tiff", std::ios::binary);
    out << "II*";
    out.put('\0');
    for (int i = 0; i < 4096; ++i) out.put(static_cast<char>((i * 131 + 7) % 251));
  }
  const std::vector<std::string> small{"grid.seq=1", "grid.data=0", "model.patch=8", "model.dim=32", "model.heads=2",
                                       "model.depth=2", "model.mlp_ratio=2", "model.max_tokens=256",
                                       "model.decoder_width=8", "data.size=128", "device=cpu"};
  const Config config = parse_config("", small);
  save_model(dir + "/model.pt", config, to_yaml(config));
  // A tile-decoder model on adaptive quadtree layouts (coordinate positions: any tile size that is a multiple of P).
  auto tile = small;
  for (const char* kv : {"model.decoder=tile", "model.pos_encoding=coords", "data.patcher.kind=adaptive",
                         "data.patcher.length=100", "data.patcher.scorer=variance"}) {
    tile.push_back(kv);
  }
  const Config tile_config = parse_config("", tile);
  save_model(dir + "/model_tile.pt", tile_config, to_yaml(tile_config));
  auto wider = small;
  wider.push_back("model.dim=48");
  save_model(dir + "/mismatch.pt", config, to_yaml(parse_config("", wider)));
  std::cout << "fixtures written to " << dir << "\n";
  return 0;
}
