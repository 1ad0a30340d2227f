// The adaptive patcher's cost per stage and the tokens it saves (docs/adaptive-patching.md, "Benchmark"; issue 3).
//
//   bench_patcher [--sizes 2048,8192,16384] [--length 4096] [--patch 16] [--scorer edges] [--reps 3]
//                 [--reduction-size 8192] [--threads N] [--first-touch 0|1]
//
// Table 1: time and Mpix/s of each stage (score + summed-area table, tree, extract, paste) on synthetic
// tissue-like images; the median of --reps runs after one warm-up. Mpix/s = image pixels / stage time (the tree is
// O(L log L) and does not depend on the pixels; its Mpix/s only puts it on the same scale).
// Table 2: score + SAT for each scorer at the middle size.
// Table 3: token reduction versus the uniform P×P grid on a detailed image (tissue everywhere) and a flat one
// (mostly background): the tokens needed so that every leaf with any edge pixel is at most P wide (no detail is
// averaged away), and the reconstruction PSNR of paste(extract(image)) at fixed L = uniform/16 and /64.
// Printed as markdown, ready for docs/adaptive-patching.md.
#include <malloc.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "spvit/core/timer.h"
#include "spvit/patch/extract.h"
#include "spvit/patch/image_io.h"
#include "spvit/patch/patcher.h"

using namespace spvit;
using namespace spvit::patch;

namespace {

struct Args {
  std::vector<int64_t> sizes = {2048, 8192, 16384};
  int64_t length = 4096, patch = 16, reduction_size = 8192;
  std::string scorer = "edges";
  int reps = 3, threads = 0;
  bool first_touch = false;
};

template <typename Fn>
double median_seconds(int reps, Fn fn) {
  fn();  // warm-up (allocator, OpenMP pool)
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    Stopwatch w;
    fn();
    t.push_back(w.seconds());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown CPU";
}

// Leaves of the tree in which every leaf that scores > 0 is refined down to side P: what the greedy reaches, at
// min_side = P, when it first pops a zero score. Counted by recursion over the O(1) region scores.
int64_t detail_preserving_tokens(const RegionScores& scores, const int64_t* corner, int64_t side, int64_t P) {
  const auto& size = scores.image_size();
  if (corner[0] >= size[1] || corner[1] >= size[0]) return 1;
  if (side <= P || scores.score(corner, side) <= 0) return 1;
  int64_t total = 0;
  for (int k = 0; k < 4; ++k) {
    const int64_t child[2] = {corner[0] + (k & 1) * side / 2, corner[1] + (k >> 1) * side / 2};
    total += detail_preserving_tokens(scores, child, side / 2, P);
  }
  return total;
}

double psnr(const torch::Tensor& restored, const torch::Tensor& image) {
  const double mse = (restored - image.to(torch::kFloat32)).pow(2).mean().item<double>();
  return mse > 0 ? 10.0 * std::log10(255.0 * 255.0 / mse) : INFINITY;
}

PatcherOptions options(const Args& a, const std::string& scorer, int64_t length) {
  PatcherOptions o;
  o.patch = a.patch;
  o.length = length;
  o.scorer = scorer;
  return o;
}

void stage_table(const Args& a) {
  std::printf("\n| image | L | leaves | score+SAT ms (Mpix/s) | tree ms | extract ms (Mpix/s) | paste ms (Mpix/s) |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  for (int64_t side : a.sizes) {
    const auto image = synthetic_tissue(side, 1, 0.35);
    const QuadtreePatcher patcher(options(a, a.scorer, a.length));
    const double mpix = static_cast<double>(side * side) / 1e6;
    std::unique_ptr<RegionScores> scores;
    const double t_score = median_seconds(a.reps, [&] { scores = std::make_unique<RegionScores>(patcher.score(image)); });
    PatchLayout layout;
    const double t_tree = median_seconds(a.reps, [&] { layout = patcher.refine(*scores); });
    torch::Tensor tokens;
    const double t_extract = median_seconds(a.reps, [&] { tokens = extract(image, layout); });
    const double t_paste = median_seconds(a.reps, [&] { paste(tokens, layout); });
    std::printf("| %lld² | %lld | %lld | %.1f (%.0f) | %.2f | %.1f (%.0f) | %.1f (%.0f) |\n",
                static_cast<long long>(side), static_cast<long long>(layout.length()),
                static_cast<long long>(layout.num_leaves()), t_score * 1e3, mpix / t_score, t_tree * 1e3,
                t_extract * 1e3, mpix / t_extract, t_paste * 1e3, mpix / t_paste);
    std::fflush(stdout);
  }
}

void scorer_table(const Args& a) {
  const int64_t side = a.sizes[a.sizes.size() / 2];
  const auto image = synthetic_tissue(side, 1, 0.35);
  std::printf("\n| scorer (%lld² image) | score+SAT ms | Mpix/s |\n|---|---|---|\n", static_cast<long long>(side));
  for (const auto& name : scorer_names()) {
    try {
      const QuadtreePatcher patcher(options(a, name, a.length));
      const double t = median_seconds(a.reps, [&] { patcher.score(image); });
      std::printf("| %s | %.1f | %.0f |\n", name.c_str(), t * 1e3, static_cast<double>(side * side) / 1e6 / t);
    } catch (const std::exception& e) {
      std::printf("| %s | unavailable: %s | |\n", name.c_str(), e.what());
    }
    std::fflush(stdout);
  }
}

void reduction_table(const Args& a) {
  const int64_t side = a.reduction_size, P = a.patch;
  const int64_t uniform = (side / P) * (side / P);
  std::printf("\n| %lld² image, P=%lld | tissue | uniform tokens | detail-preserving tokens | reduction | PSNR @ L=%lld | "
              "PSNR @ L=%lld |\n|---|---|---|---|---|---|---|\n",
              static_cast<long long>(side), static_cast<long long>(P), static_cast<long long>(uniform / 16),
              static_cast<long long>(uniform / 64));
  for (const auto& [name, fraction] : {std::pair<const char*, double>{"detailed", 1.0}, {"flat", 0.1}}) {
    const auto image = synthetic_tissue(side, 2, fraction);
    auto o = options(a, a.scorer, 1);
    o.min_side = P;
    const QuadtreePatcher exact(o);
    const auto scores = exact.score(image);
    const int64_t root[2] = {0, 0};
    const int64_t needed = detail_preserving_tokens(scores, root, root_side_for(P, {side, side}), P);
    double quality[2];
    for (int k = 0; k < 2; ++k) {
      const QuadtreePatcher patcher(options(a, a.scorer, uniform / (k == 0 ? 16 : 64)));
      const auto layout = patcher.plan(image);
      quality[k] = psnr(paste(extract(image, layout), layout), image);
    }
    std::printf("| %s | %.0f%% | %lld | %lld | %.1fx | %.1f dB | %.1f dB |\n", name, fraction * 100,
                static_cast<long long>(uniform), static_cast<long long>(needed),
                static_cast<double>(uniform) / static_cast<double>(needed), quality[0], quality[1]);
    std::fflush(stdout);
  }
}

std::vector<int64_t> parse_list(const char* text) {
  std::vector<int64_t> out;
  for (const char* p = text; *p;) {
    out.push_back(std::strtoll(p, nullptr, 10));
    p = std::strchr(p, ',');
    if (!p) break;
    ++p;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "--sizes") a.sizes = parse_list(argv[i + 1]);
    else if (k == "--length") a.length = std::atoll(argv[i + 1]);
    else if (k == "--patch") a.patch = std::atoll(argv[i + 1]);
    else if (k == "--scorer") a.scorer = argv[i + 1];
    else if (k == "--reps") a.reps = std::max(1, std::atoi(argv[i + 1]));
    else if (k == "--reduction-size") a.reduction_size = std::atoll(argv[i + 1]);
    else if (k == "--threads") a.threads = std::atoi(argv[i + 1]);
    else if (k == "--first-touch") a.first_touch = std::atoi(argv[i + 1]) != 0;
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  if (a.threads > 0) torch::set_num_threads(a.threads);
  // Steady state, as in a training loop whose allocator keeps its memory (the CUDA caching allocator does): glibc
  // would otherwise mmap every allocation above 32 MB afresh and page-fault it in again on each use, which on the
  // CI VM costs ~5 ms per MB and would dominate every stage. --first-touch 1 measures with glibc's defaults.
  if (!a.first_touch) {
    mallopt(M_MMAP_MAX, 0);
    mallopt(M_TRIM_THRESHOLD, -1);  // -1 becomes SIZE_MAX: never give memory back
  }
  std::printf("bench_patcher: %s, %u hardware threads, LibTorch %d threads; scorer %s, P=%lld, L=%lld, median of %d%s\n",
              cpu_model().c_str(), std::thread::hardware_concurrency(), torch::get_num_threads(), a.scorer.c_str(),
              static_cast<long long>(a.patch), static_cast<long long>(a.length), a.reps,
              a.first_touch ? ", glibc malloc defaults (first-touch page faults)" : ", memory reused (steady state)");
  try {
    stage_table(a);
    scorer_table(a);
    if (a.reduction_size > 0) reduction_table(a);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_patcher: %s\n", e.what());
    return 1;
  }
  return 0;
}
