// The loader: each sample once per epoch across data shards, reproducible shuffles, identical views for the ranks of a
// sequence group, worker errors surfacing in next(), clean shutdown.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <numeric>
#include <set>
#include <thread>

#include "data_test_util.h"
#include "spvit/data/loader.h"
#include "spvit/data/synthetic.h"

namespace spvit::data {
namespace {

using testing::expect_same_sample;

// A small dataset whose read() can fail at one index or be slow, and counts its reads.
class ProbeDataset : public Dataset {
 public:
  ProbeDataset(int64_t n, int64_t fail_at = -1, int delay_ms = 0)
      : inner_(make_synthetic_pathology(SyntheticOptions{2, {8, 8}, n, 1})), fail_at_(fail_at), delay_ms_(delay_ms) {}
  int64_t size() const override { return inner_->size(); }
  int spatial_dims() const override { return 2; }
  int64_t channels() const override { return 3; }
  int64_t num_classes() const override { return 4; }
  std::vector<int64_t> spatial_shape(int64_t i) const override { return inner_->spatial_shape(i); }
  Sample read(int64_t index, const std::optional<Region>& region = std::nullopt) const override {
    reads_.fetch_add(1);
    if (delay_ms_) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms_));
    if (index == fail_at_) SPVIT_THROW(DataError, "probe: sample ", index, " is unreadable");
    return inner_->read(index, region);
  }
  std::string describe() const override { return "probe dataset"; }
  mutable std::atomic<int64_t> reads_{0};

 private:
  std::shared_ptr<Dataset> inner_;
  int64_t fail_at_;
  int delay_ms_;
};

std::vector<int64_t> epoch_indices(Loader& loader, int64_t epoch) {
  loader.start_epoch(epoch);
  std::vector<int64_t> seen;
  int64_t batches = 0;
  while (auto batch = loader.next()) {
    EXPECT_EQ(batch->epoch, epoch);
    EXPECT_EQ(batch->samples.size(), batch->indices.size());
    for (size_t k = 0; k < batch->indices.size(); ++k) {
      EXPECT_EQ(batch->samples[k].id, "pathology-" + std::string(6 - std::to_string(batch->indices[k]).size(), '0') +
                                          std::to_string(batch->indices[k]));
    }
    seen.insert(seen.end(), batch->indices.begin(), batch->indices.end());
    ++batches;
  }
  EXPECT_EQ(batches, loader.batches_per_epoch());
  return seen;
}

TEST(Loader, EverySampleOncePerEpochAcrossShards) {
  const auto d = std::make_shared<ProbeDataset>(24);
  for (int data_size : {1, 2, 3, 4}) {
    for (int workers : {0, 1, 3}) {
      std::vector<int64_t> all;
      for (int rank = 0; rank < data_size; ++rank) {
        LoaderOptions o;
        o.workers = workers;
        o.prefetch = 2;
        o.seed = 11;
        o.data_rank = rank;
        o.data_size = data_size;
        o.batch_size = 2;
        Loader loader(d, o);
        EXPECT_EQ(loader.batches_per_epoch(), 24 / data_size / 2);
        const auto mine = epoch_indices(loader, 5);
        EXPECT_EQ(mine, shard_indices(24, o, 5));
        all.insert(all.end(), mine.begin(), mine.end());
      }
      std::sort(all.begin(), all.end());
      std::vector<int64_t> expected(24);
      std::iota(expected.begin(), expected.end(), 0);
      EXPECT_EQ(all, expected) << "data_size " << data_size << ", workers " << workers;
    }
  }
}

TEST(Loader, ShuffleIsReproducibleAndChangesPerEpoch) {
  const auto d = std::make_shared<ProbeDataset>(30);
  LoaderOptions o;
  o.seed = 3;
  o.batch_size = 3;
  Loader a(d, o), b(d, o);
  const auto a0 = epoch_indices(a, 0), b0 = epoch_indices(b, 0), a1 = epoch_indices(a, 1);
  EXPECT_EQ(a0, b0);
  EXPECT_NE(a0, a1);
  EXPECT_EQ(epoch_indices(a, 0), a0) << "replaying an epoch gives its order again";
  std::vector<int64_t> identity(30);
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_NE(a0, identity);
  o.shuffle = false;
  Loader plain(d, o);
  EXPECT_EQ(epoch_indices(plain, 4), identity);
  o.shuffle = true;
  o.seed = 4;
  Loader other(d, o);
  EXPECT_NE(epoch_indices(other, 0), a0);
}

TEST(Loader, UnevenShardsWithoutDropLastPadByWrapping) {
  const auto d = std::make_shared<ProbeDataset>(10);
  std::multiset<int64_t> all;
  for (int rank = 0; rank < 3; ++rank) {
    LoaderOptions o;
    o.data_rank = rank;
    o.data_size = 3;
    o.batch_size = 3;
    o.drop_last = false;
    Loader loader(d, o);
    EXPECT_EQ(loader.batches_per_epoch(), 2);  // ceil(ceil(10 / 3) / 3)
    const auto mine = epoch_indices(loader, 2);
    EXPECT_EQ(mine.size(), 4u);
    all.insert(mine.begin(), mine.end());
  }
  EXPECT_EQ(all.size(), 12u);
  for (int64_t i = 0; i < 10; ++i) EXPECT_GE(all.count(i), 1u) << "sample " << i << " never seen";
}

TEST(Loader, SequenceGroupRanksReadTheirRegionsOfTheSameAugmentedSample) {
  // Two "sequence ranks" of one data group each read half the rows; together they equal the augmented whole sample.
  const auto d = make_synthetic_pathology(SyntheticOptions{2, {32, 32}, 6, 8});
  LoaderOptions o;
  o.seed = 21;
  o.augment = true;
  o.batch_size = 2;
  auto half = [](int part) {
    return [part](int64_t, const std::vector<int64_t>& shape) -> std::optional<Region> {
      return band_region(shape, 0, part * shape[0] / 2, (part + 1) * shape[0] / 2);
    };
  };
  Loader whole(d, o), top(d, o, half(0)), bottom(d, o, half(1));
  for (int64_t epoch : {0, 1}) {
    whole.start_epoch(epoch);
    top.start_epoch(epoch);
    bottom.start_epoch(epoch);
    while (auto w = whole.next()) {
      auto t = top.next(), b = bottom.next();
      ASSERT_TRUE(t && b);
      EXPECT_EQ(t->indices, w->indices);
      EXPECT_EQ(b->indices, w->indices);
      for (size_t k = 0; k < w->samples.size(); ++k) {
        EXPECT_EQ(t->draws[k], draw_augmentation(o.augment_options, o.seed, epoch, w->indices[k]));
        EXPECT_EQ(b->draws[k], t->draws[k]);
        const Sample expected = apply_augmentation(d->read(w->indices[k]), t->draws[k]);
        expect_same_sample(w->samples[k], expected);
        expect_same_sample(t->samples[k], crop(expected, Region{{0, 0}, {16, 32}}));
        expect_same_sample(b->samples[k], crop(expected, Region{{16, 0}, {32, 32}}));
      }
    }
    EXPECT_FALSE(top.next().has_value());
  }
}

TEST(Loader, WorkerErrorsSurfaceInNext) {
  for (int workers : {0, 2}) {
    const auto d = std::make_shared<ProbeDataset>(8, /*fail_at=*/5);
    LoaderOptions o;
    o.workers = workers;
    o.shuffle = false;
    o.batch_size = 2;
    Loader loader(d, o);
    loader.start_epoch(0);
    EXPECT_TRUE(loader.next().has_value());
    EXPECT_TRUE(loader.next().has_value());
    const auto msg = testing::error_message([&] { loader.next(); });
    EXPECT_ERROR_MENTIONS(msg, "probe: sample 5 is unreadable");
    EXPECT_ERROR_MENTIONS(msg, "while loading sample 5 of probe dataset (epoch 0, batch 2)");
    EXPECT_TRUE(loader.next().has_value()) << "later batches still arrive";
    EXPECT_FALSE(loader.next().has_value());
  }
}

TEST(Loader, StopsCleanlyMidEpochAndPrefetchIsBounded) {
  const auto d = std::make_shared<ProbeDataset>(64, -1, /*delay_ms=*/20);
  LoaderOptions o;
  o.workers = 2;
  o.prefetch = 3;
  {
    Loader loader(d, o);
    loader.start_epoch(0);
    ASSERT_TRUE(loader.next().has_value());
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    // One batch consumed: at most `prefetch` more were started (plus the consumed one).
    EXPECT_LE(d->reads_.load(), 1 + o.prefetch);
    loader.start_epoch(1);  // restarting drops the old epoch's batches
    ASSERT_TRUE(loader.next().has_value());
  }  // destroyed mid-epoch: must join its workers without hanging
  { Loader never_started(d, o); }
  EXPECT_THROW(Loader(d, LoaderOptions{2, 4, true, 0, 3, 2}), ConfigError);  // data_rank 3 of 2
  const auto tiny = std::make_shared<ProbeDataset>(3);
  LoaderOptions big_batches;
  big_batches.batch_size = 4;
  const auto msg = testing::error_message([&] { Loader loader(tiny, big_batches); });
  EXPECT_ERROR_MENTIONS(msg, "has 3 samples, too few for 1 data groups with batch_size 4");
}

}  // namespace
}  // namespace spvit::data
