// Loader throughput: samples/s delivered by data::Loader for synthetic pathology tiles (256², 2048², an 8192²
// region of a 65536² slide, one sequence rank's half of an 8192² sample), MRI-like volumes and an HDF5 file, with
// 1 and 2 worker threads. The consumer does nothing, so this is the most the loader can feed; compare it with the
// training step's rate (docs/data.md; `spvit bench step` measures both at a training configuration).
//   bench_loader [--quick] [substring of the case names to run]
#include <cstdio>
#include <filesystem>
#include <string>
#include <unistd.h>

#include "spvit/core/timer.h"
#include "spvit/data/formats.h"
#include "spvit/data/loader.h"
#include "spvit/data/synthetic.h"

using namespace spvit;

namespace {

struct Case {
  std::string name;
  std::shared_ptr<const data::Dataset> dataset;
  int64_t samples;                  // samples to time
  data::Loader::RegionFn region;    // null = whole samples
  bool augment = true;
};

void run(const Case& c, int workers) {
  data::LoaderOptions o;
  o.workers = workers;
  o.prefetch = 4;
  o.batch_size = 1;
  o.augment = c.augment;
  data::Loader loader(c.dataset, o, c.region);
  loader.start_epoch(0);
  // Warm-up: one sample (thread start, first allocations).
  (void)loader.next();
  Stopwatch watch;
  int64_t n = 0, pixels = 0;
  while (n < c.samples) {
    auto b = loader.next();
    if (!b) {
      loader.start_epoch(n + 1);
      continue;
    }
    for (const auto& s : b->samples) pixels += s.mask.numel();
    n += static_cast<int64_t>(b->samples.size());
  }
  const double t = watch.seconds();
  std::printf("| %-38s | %7d | %10.2f | %9.1f | %10.1f |\n", c.name.c_str(), workers, n / t, 1e3 * t / n,
              pixels / t / 1e6);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  std::string filter;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--quick") quick = true;
    else filter = argv[i];
  }
  const int64_t scale = quick ? 4 : 1;
  const auto tmp = std::filesystem::temp_directory_path() / ("spvit_bench_loader_" + std::to_string(::getpid()) + ".h5");
  auto p256 = data::make_synthetic_pathology({2, {256, 256}, 64, 1});
  data::write_hdf5(tmp.string(), *data::make_synthetic_pathology({2, {256, 256}, 64, 2}));
  std::vector<Case> cases = {
      {"pathology 256², augmented", p256, 64 / scale, nullptr},
      {"pathology 256² from HDF5, augmented", data::open_hdf5(tmp.string()), 64 / scale, nullptr},
      {"pathology 2048², augmented", data::make_synthetic_pathology({2, {2048, 2048}, 16, 1}), 8 / scale, nullptr},
      {"8192² region of a 65536² slide", data::make_synthetic_pathology({2, {65536, 65536}, 8, 1}), 4 / scale,
       [](int64_t index, const std::vector<int64_t>&) -> std::optional<data::Region> {
         const int64_t y = 8192 * (index % 7), x = 8192 * ((index * 3) % 7);
         return data::Region{{y, x}, {y + 8192, x + 8192}};
       },
       false},
      // What one of 2 sequence ranks reads per sample at the 8192² uniform config (`spvit bench step`, docs/benchmarks.md).
      {"pathology 8192², band 1 of 2, augmented", data::make_synthetic_pathology({2, {8192, 8192}, 8, 1}), 4 / scale,
       [](int64_t, const std::vector<int64_t>& full) -> std::optional<data::Region> {
         return data::band_region(full, 0, 0, full[0] / 2);
       }},
      {"mri 128³, augmented", data::make_synthetic_mri({3, {128, 128, 128}, 16, 1}), 8 / scale, nullptr},
  };
  std::printf("LibTorch intra-op threads: %d\n\n", at::get_num_threads());
  std::printf("| %-38s | %7s | %10s | %9s | %10s |\n", "case", "workers", "samples/s", "ms/sample", "Mpixel/s");
  std::printf("|%s|%s|%s|%s|%s|\n", std::string(40, '-').c_str(), std::string(9, '-').c_str(),
              std::string(12, '-').c_str(), std::string(11, '-').c_str(), std::string(12, '-').c_str());
  for (const auto& c : cases) {
    if (c.name.find(filter) == std::string::npos) continue;
    for (int workers : {1, 2}) run(c, workers);
  }
  std::filesystem::remove(tmp);
  return 0;
}
