// The prefetching loader: a pool of worker threads loads batches ahead of the consumer, in a window of `prefetch`
// batches, and next() hands them out in order.
#include "spvit/data/loader.h"

#include <numeric>

#include "spvit/core/error.h"
#include "spvit/data/hash.h"

namespace spvit::data {

std::vector<int64_t> epoch_permutation(int64_t size, uint64_t seed, int64_t epoch, bool shuffle) {
  std::vector<int64_t> order(static_cast<size_t>(std::max<int64_t>(0, size)));
  std::iota(order.begin(), order.end(), int64_t{0});
  if (!shuffle) return order;
  // Fisher-Yates driven by a counter-based hash: the same permutation on every rank and every platform.
  HashStream s(hash_key({seed, static_cast<uint64_t>(epoch), 0x5e0f1eu}));
  for (int64_t i = size - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(s.bits() % static_cast<uint64_t>(i + 1));
    std::swap(order[i], order[j]);
  }
  return order;
}

namespace {
void check_options(const LoaderOptions& o) {
  if (o.data_size < 1 || o.data_rank < 0 || o.data_rank >= o.data_size) {
    SPVIT_THROW(ConfigError, "loader: data_rank ", o.data_rank, " must be in [0, data_size = ", o.data_size, ")");
  }
  if (o.batch_size < 1) SPVIT_THROW(ConfigError, "loader: batch_size must be >= 1, got ", o.batch_size);
  if (o.workers < 0) SPVIT_THROW(ConfigError, "loader: workers must be >= 0, got ", o.workers);
  if (o.prefetch < 1) SPVIT_THROW(ConfigError, "loader: prefetch must be >= 1, got ", o.prefetch);
}

int64_t shard_length(int64_t size, const LoaderOptions& o) {
  return o.drop_last ? size / o.data_size : (size + o.data_size - 1) / o.data_size;
}
}  // namespace

std::vector<int64_t> shard_indices(int64_t size, const LoaderOptions& options, int64_t epoch) {
  check_options(options);
  const auto order = epoch_permutation(size, options.seed, epoch, options.shuffle);
  std::vector<int64_t> mine;
  const int64_t n = shard_length(size, options);
  for (int64_t k = 0; k < n; ++k) mine.push_back(order[(k * options.data_size + options.data_rank) % size]);
  return mine;
}

LoaderOptions LoaderOptions::from_config(const Config& c, int data_rank, int data_size, bool training) {
  LoaderOptions o;
  o.workers = static_cast<int>(c.data.workers);
  o.prefetch = static_cast<int>(c.data.prefetch);
  o.shuffle = training;
  o.seed = c.seed;
  o.data_rank = data_rank;
  o.data_size = data_size;
  o.batch_size = training ? c.train.batch_size : 1;
  o.augment = training && c.data.augment;
  o.augment_options.color_jitter = c.data.color_jitter;
  o.augment_options.stain_jitter = c.data.stain_jitter;
  o.augment_options.threshold_jitter = c.data.patcher.threshold_jitter;
  o.drop_last = training;
  return o;
}

Loader::Loader(std::shared_ptr<const Dataset> dataset, LoaderOptions options, RegionFn region_for)
    : dataset_(std::move(dataset)), options_(std::move(options)), region_for_(std::move(region_for)) {
  SPVIT_CHECK(dataset_ != nullptr, "Loader: no dataset");
  SPVIT_CHECK(!(options_.tokens && region_for_), "Loader: a token loader reads its own token range, not a region");
  check_options(options_);
  if (batches_per_epoch() < 1) {
    SPVIT_THROW(ConfigError, "loader: ", dataset_->describe(), " has ", dataset_->size(), " samples, too few for ",
                options_.data_size, " data groups with batch_size ", options_.batch_size,
                options_.drop_last ? " and drop_last" : "", " (an epoch would have no batch)");
  }
  for (int i = 0; i < options_.workers; ++i) threads_.emplace_back([this] { worker_loop(); });
}

Loader::~Loader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  work_ready_.notify_all();
  batch_ready_.notify_all();
  for (auto& t : threads_) t.join();
}

int64_t Loader::batches_per_epoch() const {
  const int64_t n = shard_length(dataset_->size(), options_), b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

void Loader::start_epoch(int64_t epoch, int64_t first_batch) {
  auto order = shard_indices(dataset_->size(), options_, epoch);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++generation_;
    epoch_ = epoch;
    order_ = std::move(order);
    num_batches_ = batches_per_epoch();
    next_task_ = std::min(std::max<int64_t>(first_batch, 0), num_batches_);
    next_out_ = next_task_;
    ready_.clear();
    started_ = true;
  }
  work_ready_.notify_all();
}

namespace {
// A dataset as one epoch sees it: read() is the underlying dataset's read_epoch (slide regions are drawn per epoch),
// so the region and token readers below need not know about epochs.
class EpochView : public Dataset {
 public:
  EpochView(const Dataset& dataset, int64_t epoch) : d_(dataset), epoch_(epoch) {}
  int64_t size() const override { return d_.size(); }
  int spatial_dims() const override { return d_.spatial_dims(); }
  int64_t channels() const override { return d_.channels(); }
  int64_t num_classes() const override { return d_.num_classes(); }
  std::vector<int64_t> spatial_shape(int64_t index) const override { return d_.spatial_shape(index); }
  Sample read(int64_t index, const std::optional<Region>& region) const override {
    return d_.read_epoch(index, epoch_, region);
  }
  std::optional<Sample> read_scaled(int64_t index, const ScaledRegion& region) const override {
    return d_.read_scaled_epoch(index, epoch_, region);
  }
  bool has_scaled_reads() const override { return d_.has_scaled_reads(); }
  std::string describe() const override { return d_.describe(); }

 private:
  const Dataset& d_;
  int64_t epoch_;
};
}  // namespace

Batch Loader::load_batch(int64_t epoch, int64_t step, const std::vector<int64_t>& indices) const {
  const EpochView view(*dataset_, epoch);
  const Dataset& dataset = view;
  Batch batch;
  batch.epoch = epoch;
  batch.step = step;
  batch.indices = indices;
  for (int64_t index : indices) {
    try {
      const AugmentDraw draw =
          options_.augment ? draw_augmentation(options_.augment_options, options_.seed, epoch, index) : AugmentDraw{};
      const auto full = dataset.spatial_shape(index);
      const auto region = region_for_ ? region_for_(index, full) : std::nullopt;
      Sample s;
      if (options_.tokens) {
        s = read_token_sample(dataset, index, draw, *options_.tokens);
      } else if (!options_.augment) {
        s = dataset.read(index, region);
      } else if (region) {
        s = apply_augmentation_to_region(dataset.read(index, preimage(*region, draw, full)), draw, *region, full);
      } else {
        s = apply_augmentation(dataset.read(index), draw);
      }
      batch.samples.push_back(std::move(s));
      batch.draws.push_back(draw);
    } catch (Error& e) {
      e.add_context("loading sample " + std::to_string(index) + " of " + dataset_->describe() + " (epoch " +
                    std::to_string(epoch) + ", batch " + std::to_string(step) + ")");
      throw;
    }
  }
  return batch;
}

namespace {
std::vector<int64_t> batch_slice(const std::vector<int64_t>& order, int64_t step, int64_t batch_size) {
  const auto b = static_cast<size_t>(step * batch_size);
  const auto e = std::min(order.size(), b + static_cast<size_t>(batch_size));
  return std::vector<int64_t>(order.begin() + b, order.begin() + e);
}
}  // namespace

void Loader::worker_loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    work_ready_.wait(lock, [&] {
      return stop_ || (started_ && next_task_ < num_batches_ && next_task_ < next_out_ + options_.prefetch);
    });
    if (stop_) return;
    const int64_t step = next_task_++, epoch = epoch_;
    const uint64_t generation = generation_;
    const auto indices = batch_slice(order_, step, options_.batch_size);
    lock.unlock();
    Result result;
    try {
      result.batch = load_batch(epoch, step, indices);
    } catch (...) {
      result.error = std::current_exception();
    }
    lock.lock();
    if (generation == generation_) {  // else start_epoch was called meanwhile: drop it
      ready_[step] = std::move(result);
      batch_ready_.notify_all();
    }
  }
}

std::optional<Batch> Loader::next() {
  bool started;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    started = started_;
  }
  if (!started) start_epoch(0);
  std::unique_lock<std::mutex> lock(mutex_);
  if (next_out_ >= num_batches_) return std::nullopt;
  const int64_t step = next_out_;
  if (threads_.empty()) {  // no workers: load here
    ++next_out_;
    const auto indices = batch_slice(order_, step, options_.batch_size);
    const int64_t epoch = epoch_;
    lock.unlock();
    return load_batch(epoch, step, indices);
  }
  batch_ready_.wait(lock, [&] { return stop_ || ready_.count(step) > 0; });
  SPVIT_CHECK(!stop_, "Loader::next called while the loader is being destroyed");
  Result result = std::move(ready_[step]);
  ready_.erase(step);
  ++next_out_;
  lock.unlock();
  work_ready_.notify_all();  // the prefetch window moved
  if (result.error) std::rethrow_exception(result.error);
  return std::move(result.batch);
}

}  // namespace spvit::data
