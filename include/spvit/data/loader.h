// The training loader: worker threads fill a bounded prefetch queue with batches of (augmented) samples.
//
// Order: every epoch has one permutation of the dataset, the same on every rank (a hash of (seed, epoch)). Data
// group r of `data_size` takes positions r, r + data_size, r + 2·data_size, ... of it, so the shards are disjoint
// and cover the dataset. Ranks of one sequence group share data_rank, so they get the same samples in the same order
// and the same augmentation draws; each may read only its part of a sample through `region_for`.
// Sizes: with drop_last every shard has floor(N / data_size) samples and floor(that / batch_size) batches; without
// it ceil(N / data_size) samples (the permutation wraps around to pad, as torch's DistributedSampler does) and a
// smaller final batch. All ranks therefore run the same number of steps.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "spvit/core/config.h"
#include "spvit/data/augment.h"
#include "spvit/data/dataset.h"
#include "spvit/data/token_sampling.h"

namespace spvit::data {

struct LoaderOptions {
  int workers = 2;        // 0 = load in the calling thread inside next()
  int prefetch = 4;       // batches loaded ahead of the consumer (at least 1)
  bool shuffle = true;
  uint64_t seed = 0;
  int data_rank = 0;
  int data_size = 1;
  int64_t batch_size = 1;
  bool augment = false;
  AugmentOptions augment_options;
  bool drop_last = true;
  // Token decoders: plan each (augmented) sample's patch layout and deliver this rank's tokens in Sample::tokens
  // (read_token_sample) instead of pixels.
  std::optional<LayoutSampling> tokens;

  // The loader a configuration asks for on data group `data_rank` of `data_size`: data.workers, prefetch, augment,
  // color_jitter, patcher.threshold_jitter, seed; training shuffles, augments, drops the last partial batch and
  // takes train.batch_size samples, evaluation none of that and one sample per batch. `tokens` stays unset.
  static LoaderOptions from_config(const Config& config, int data_rank, int data_size, bool training);
};

struct Batch {
  std::vector<Sample> samples;
  std::vector<int64_t> indices;
  int64_t epoch = 0;
  std::vector<AugmentDraw> draws;  // one per sample (identity draws when augmentation is off)
  int64_t step = 0;                // batch number within the epoch
};

// The dataset order of one epoch (identity without shuffle); the same for every rank.
std::vector<int64_t> epoch_permutation(int64_t size, uint64_t seed, int64_t epoch, bool shuffle);
// The sample indices of data group `data_rank`, in order, for one epoch (see the sizes above).
std::vector<int64_t> shard_indices(int64_t size, const LoaderOptions& options, int64_t epoch);

class Loader {
 public:
  using RegionFn = std::function<std::optional<Region>(int64_t index, const std::vector<int64_t>& full_shape)>;
  // `region_for` (pixel samples only): the part of each sample this rank reads, e.g. its band of token rows.
  Loader(std::shared_ptr<const Dataset> dataset, LoaderOptions options, RegionFn region_for = nullptr);
  ~Loader();  // stops workers cleanly (waits for the reads in progress)
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // Starts (or restarts) an epoch at batch `first_batch` (a resumed run: the batches before it are neither read nor
  // returned); batches of a previous unfinished epoch are discarded.
  void start_epoch(int64_t epoch, int64_t first_batch = 0);
  // The next batch, in order; std::nullopt at the end of the epoch. A worker's exception is rethrown here, at the
  // batch it failed on (that batch is skipped; later ones are still delivered). Starts epoch 0 if none was started.
  std::optional<Batch> next();
  int64_t batches_per_epoch() const;
  const LoaderOptions& options() const { return options_; }

  // Loads one batch in the calling thread (what a worker does): used by next() with 0 workers, and by tests.
  Batch load_batch(int64_t epoch, int64_t step, const std::vector<int64_t>& indices) const;

 private:
  void worker_loop();

  std::shared_ptr<const Dataset> dataset_;
  LoaderOptions options_;
  RegionFn region_for_;

  std::mutex mutex_;
  std::condition_variable work_ready_;   // workers wait for a task (or stop)
  std::condition_variable batch_ready_;  // next() waits for its batch
  bool stop_ = false;
  bool started_ = false;
  uint64_t generation_ = 0;              // bumped by start_epoch; stale results are dropped
  int64_t epoch_ = 0;
  std::vector<int64_t> order_;           // this rank's sample indices for the epoch
  int64_t num_batches_ = 0;
  int64_t next_task_ = 0;                // next batch a worker will take
  int64_t next_out_ = 0;                 // next batch next() returns
  struct Result {
    std::optional<Batch> batch;
    std::exception_ptr error;
  };
  std::map<int64_t, Result> ready_;
  std::vector<std::thread> threads_;
};

}  // namespace spvit::data
