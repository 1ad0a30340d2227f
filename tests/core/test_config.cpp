#include <gtest/gtest.h>

#include "spvit/build_info.h"
#include "spvit/core/config.h"
#include "spvit/core/error.h"
#include "spvit/train/config_check.h"

namespace spvit {
namespace {

// The whole check every command runs: core's parse_config, then the rules of the registries above it.
Config checked_config(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  return train::parse_checked_config(yaml, overrides);
}

// Expects checked_config to throw ConfigError whose message contains `needle`.
void expect_config_error(const std::string& yaml, const std::vector<std::string>& overrides,
                         const std::string& needle) {
  try {
    checked_config(yaml, overrides);
    FAIL() << "expected a ConfigError containing: " << needle;
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(Config, EmptyTextGivesDefaults) {
  const Config c = checked_config("");
  EXPECT_EQ(c.model.attention, "lss-kv");
  EXPECT_EQ(c.grid.seq, 1);
  EXPECT_DOUBLE_EQ(c.dist.bucket_mb, 25.0);
}

TEST(Config, ReadsValuesAndOverrides) {
  const Config c = checked_config("model:\n  dim: 96\n  heads: 6\ngrid:\n  seq: 2\n",
                                {"model.depth=7", "dist.grad_average=two-stage", "seed=42"});
  EXPECT_EQ(c.model.dim, 96);
  EXPECT_EQ(c.model.heads, 6);
  EXPECT_EQ(c.model.depth, 7);
  EXPECT_EQ(c.grid.seq, 2);
  EXPECT_EQ(c.dist.grad_average, "two-stage");
  EXPECT_EQ(c.seed, 42u);
}

TEST(Config, OverrideCreatesMissingSections) {
  const Config c = checked_config("seed: 1\n", {"model.checkpointing=true"});
  EXPECT_TRUE(c.model.checkpointing);
}

TEST(Config, YamlRoundTrip) {
  const Config c = checked_config("", {"model.dim=48", "model.heads=4", "model.pos_encoding=coords", "dtype=float64"});
  const Config again = checked_config(to_yaml(c));
  EXPECT_EQ(to_yaml(c), to_yaml(again));
  EXPECT_EQ(again.model.dim, 48);
  EXPECT_EQ(again.model.pos_encoding, "coords");
}

TEST(Config, UnknownKeyNamesKeyAndAlternatives) {
  expect_config_error("model:\n  dimm: 3\n", {}, "unknown config key 'model.dimm'");
  expect_config_error("model:\n  dimm: 3\n", {}, "dim, heads");
  expect_config_error("", {"trainer.steps=3"}, "unknown config key 'trainer'");
}

TEST(Config, BadChoiceListsAllowedValues) {
  expect_config_error("model:\n  attention: rings\n", {},
                      "config key 'model.attention' must be one of local, lss-kv, lss-x, ulysses, ring, hybrid, "
                      "got 'rings'");
}

TEST(Config, WrongTypeAndRange) {
  expect_config_error("", {"model.dim=abc"}, "config key 'model.dim' must be an integer");
  expect_config_error("", {"model.depth=0"}, "config key 'model.depth' = 0 is outside the allowed range");
  expect_config_error("", {"model.checkpointing=maybe"}, "must be true or false");
  expect_config_error("model: 3\n", {}, "config key 'model' must be a mapping");
}

TEST(Config, CrossFieldValidation) {
  expect_config_error("", {"model.dim=100", "model.heads=3"}, "must be divisible by 'model.heads'");
  expect_config_error("", {"model.attention=local", "grid.seq=2"},
                      "needs lss-kv, lss-x, ulysses, ring or hybrid");
}

TEST(ConfigRefuses, HybridUlyssesSizeThatDoesNotDivideTheSequenceRanks) {
  expect_config_error("", {"model.attention=hybrid", "grid.seq=4", "dist.ulysses_size=3"},
                      "config key 'dist.ulysses_size' = 3 must divide 'grid.seq' = 4");
  expect_config_error("", {"model.attention=hybrid", "grid.seq=4"}, "'dist.ulysses_size' = 0 must divide");
  expect_config_error("", {"model.attention=hybrid", "grid.seq=4", "dist.ulysses_size=2", "dist.hybrid_outer=lss-x"},
                      "'dist.hybrid_outer'");
  checked_config("", {"model.attention=hybrid", "grid.seq=4", "dist.ulysses_size=2", "dist.hybrid_outer=ring"});
}

// Combinations that cannot run are refused by validate() (`spvit config`, and every command before its ranks start
// work) with a message naming the keys: each test mirrors a check that would otherwise throw at run time.
TEST(ConfigRefuses, UnetrNeedsAPowerOfTwoPatch) {  // Segmenter: log2(P) upsampling stages
  expect_config_error("", {"model.patch=12", "data.size=120"},
                      "config key 'model.patch' = 12 must be a power of two >= 2 for 'model.decoder' = unetr");
  expect_config_error("", {"model.patch=1", "model.max_tokens=16384"}, "'model.patch' = 1 must be a power of two >= 2");
  checked_config("", {"model.patch=12", "data.size=120", "model.decoder=tile"});  // the tile decoder takes any patch
}

TEST(ConfigRefuses, DecoderChunkRowsWithTheTileDecoder) {
  expect_config_error("", {"model.decoder=tile", "model.decoder_chunk_rows=2"},
                      "config key 'model.decoder_chunk_rows' = 2 chunks the rows of the unetr decoder; "
                      "'model.decoder' = tile has no rows to chunk");
  checked_config("", {"model.decoder_chunk_rows=2"});
}

TEST(ConfigRefuses, ReducedPrecisionOnTheCpuOrWithFloat64) {  // RunPrecision::from_config
  expect_config_error("", {"train.precision=bf16", "device=cpu"},
                      "config key 'train.precision' = bf16 needs a CUDA device, but 'device' = cpu");
  expect_config_error("", {"train.precision=fp16", "dtype=float64"},
                      "config key 'train.precision' = fp16 needs 'dtype' = float32 (the master copy of the "
                      "parameters), got float64");
#if !SPVIT_HAVE_CUDA
  expect_config_error("", {"train.precision=bf16"}, "config key 'train.precision' = bf16 needs a CUDA build of spvit");
#endif
}

TEST(ConfigRefuses, DeviceAndBackendThisBuildCannotRun) {  // select_device, resolve_backend
#if !SPVIT_HAVE_CUDA
  expect_config_error("", {"device=cuda"}, "config key 'device' = cuda needs a CUDA build of spvit");
#endif
#if !SPVIT_HAVE_NCCL
  expect_config_error("", {"dist.backend=nccl"},
                      "config key 'dist.backend' = nccl needs a build with CUDA LibTorch and NCCL");
#else
  expect_config_error("", {"dist.backend=nccl", "device=cpu"}, "'dist.backend' = nccl needs GPUs, but 'device' = cpu");
#endif
}

TEST(ConfigRefuses, ImageFoldersAre2DAndNeedOpenCV) {  // open_image_folder
#if SPVIT_HAVE_OPENCV
  expect_config_error("", {"data.source=folder", "data.path=/data/tiles", "model.spatial_dims=3"},
                      "config key 'data.source' = folder holds 2-D images, but 'model.spatial_dims' = 3");
  checked_config("", {"data.source=folder", "data.path=/data/tiles"});
#else
  expect_config_error("", {"data.source=folder", "data.path=/data/tiles"},
                      "config key 'data.source' = folder reads images through OpenCV");
#endif
}

TEST(ConfigRefuses, SyntheticKindFixesDimensionsAndChannels) {  // open_datasets
  expect_config_error("", {"model.spatial_dims=3"},
                      "config key 'model.spatial_dims' = 3 but 'data.kind' = pathology generates 2-D images");
  expect_config_error("", {"data.kind=mri"},
                      "config key 'model.spatial_dims' = 2 but 'data.kind' = mri generates 3-D volumes");
  expect_config_error("", {"model.channels=1"},
                      "config key 'model.channels' = 1 but 'data.kind' = pathology generates 3-channel (RGB) images");
  expect_config_error("", {"data.kind=mri", "model.spatial_dims=3"},
                      "config key 'model.channels' = 3 but 'data.kind' = mri generates 1-channel volumes");
  checked_config("", {"data.kind=mri", "model.spatial_dims=3", "model.channels=1"});
  // Other sources are checked when they are opened: their shapes are not in the configuration.
  checked_config("", {"data.source=hdf5", "data.path=/data/volumes.h5", "model.spatial_dims=3", "model.channels=1"});
}

TEST(ConfigRefuses, TooFewTrainingSamplesForABatch) {  // Loader: an epoch without a batch
  expect_config_error("", {"data.train_samples=2", "train.batch_size=4"},
                      "config key 'data.train_samples' = 2 is too few for 'train.batch_size' = 4: an epoch would have "
                      "no batch");
  expect_config_error("", {"data.train_samples=5", "train.batch_size=2", "grid.data=3"},
                      "is too few for 'train.batch_size' = 2 in each of 'grid.data' = 3 data groups");
  checked_config("", {"data.train_samples=6", "train.batch_size=2", "grid.data=3"});
}

TEST(ConfigRefuses, UnetrBandsOfWholeTokenRows) {  // open_datasets, UniformBands::even
  expect_config_error("", {"data.size=100"},
                      "config key 'data.size' = 100 must be a multiple of 'model.patch' = 16 for 'model.decoder' = "
                      "unetr");
  expect_config_error("", {"grid.seq=16"},
                      "config key 'grid.seq' = 16 needs a token row per sequence rank, but 'data.size' = 128 at "
                      "'model.patch' = 16 has 8 token rows");
  checked_config("", {"grid.seq=8"});
  checked_config("", {"data.size=100", "model.decoder=tile"});  // tile layouts pad the image to whole tokens
}

TEST(ConfigRefuses, UniformGridLongerThanTheSequenceOrTheTable) {  // UniformPatcher, GridPositionalEncoding
  expect_config_error("", {"model.decoder=tile", "data.patcher.length=10"},
                      "config key 'data.patcher.length' = 10 is shorter than the uniform grid of 64 tokens");
  expect_config_error("", {"model.max_tokens=32"},
                      "config key 'model.max_tokens' = 32 is smaller than the 64 tokens of the uniform grid "
                      "('data.size' = 128, 'model.patch' = 16)");
  expect_config_error("", {"data.kind=mri", "model.spatial_dims=3", "model.channels=1", "model.max_tokens=500"},
                      "'model.max_tokens' = 500 is smaller than the 512 tokens");
  expect_config_error("", {"model.decoder=tile", "data.patcher.length=100", "model.max_tokens=80"},
                      "'model.max_tokens' = 80 is smaller than the 100 tokens");
  checked_config("", {"model.max_tokens=64"});
  checked_config("", {"model.max_tokens=32", "model.pos_encoding=coords"});  // no table
  // Sizes whose token count overflows int64 are still compared correctly.
  expect_config_error("", {"data.kind=mri", "model.spatial_dims=3", "model.channels=1", "data.size=4194304",
                           "model.patch=2"},
                      "is smaller than the 9223372036854775807 tokens");
}

TEST(ConfigRefuses, ScoreDownsampleMustDivideTheSyntheticSize) {  // shrunk_sample
  const std::vector<std::string> adaptive{"model.decoder=tile", "model.pos_encoding=coords",
                                          "data.patcher.kind=adaptive", "data.patcher.length=10",
                                          "data.patcher.score_downsample=16"};
  auto bad = adaptive;
  bad.push_back("data.size=200");
  expect_config_error("", bad,
                      "config key 'data.size' = 200 must be a multiple of 'data.patcher.score_downsample' = 16");
  checked_config("", adaptive);
}

TEST(ConfigRefuses, EdgesScorerSettings) {  // EdgeScorer
  const std::vector<std::string> edges{"model.decoder=tile", "model.pos_encoding=coords", "data.patcher.kind=adaptive",
                                       "data.patcher.length=10", "data.patcher.scorer=edges"};
  auto even = edges;
  even.push_back("data.patcher.blur_kernel=4");
#if SPVIT_HAVE_OPENCV
  expect_config_error("", even,
                      "config key 'data.patcher.blur_kernel' = 4 must be odd for 'data.patcher.scorer' = edges");
  checked_config("", edges);
#else
  expect_config_error("", edges, "config key 'data.patcher.scorer' = edges needs OpenCV");
#endif
  auto variance = even;
  variance.push_back("data.patcher.scorer=variance");  // only the edges scorer blurs: an even kernel is unused
  checked_config("", variance);
}

TEST(ConfigRefuses, ScheduleOptionsTheScheduleRejects) {  // LrSchedule
  expect_config_error("", {"train.lr=0.001", "train.min_lr=0.01"},
                      "config key 'train.min_lr' = 0.01 must not exceed 'train.lr' = 0.001");
  expect_config_error("", {"train.power=0"}, "config key 'train.power' = 0 must be > 0");
  // A warmup longer than the run is not refused: the schedule clamps it with a warning.
  EXPECT_EQ(checked_config("", {"train.steps=4", "train.warmup_steps=10"}).train.warmup_steps, 10);
}

TEST(ConfigRefuses, StainJitterOnNonRgbImages) {  // data.stain_jitter deconvolves RGB into H, E, D
  expect_config_error("", {"data.stain_jitter=0.1", "model.channels=1"},
                      "config key 'data.stain_jitter' = 0.1 needs RGB images, but 'model.channels' = 1");
  EXPECT_EQ(checked_config("", {"data.stain_jitter=0.05"}).data.stain_jitter, 0.05);
}

TEST(Config, CoordinatePositionsWorkWithEveryDecoder) {
  EXPECT_EQ(checked_config("", {"model.pos_encoding=coords"}).model.decoder, "unetr");
  EXPECT_EQ(checked_config("", {"model.pos_encoding=coords", "model.decoder=tile"}).model.decoder, "tile");
}

TEST(Config, MalformedOverrides) {
  expect_config_error("", {"model.dim"}, "must look like key.sub=value");
  expect_config_error("seed: 3\n", {"seed.x=1"}, "'seed' is a value, not a section");
  expect_config_error("", {"seed.x=1"}, "config key 'seed' must be an integer");
  expect_config_error("", {"model..dim=3"}, "empty key component");
}

TEST(Config, BadFileAndBadYaml) {
  EXPECT_THROW(load_config("/nonexistent/spvit.yaml"), ConfigError);
  try {
    load_config("/nonexistent/spvit.yaml");
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot read config file '/nonexistent/spvit.yaml'"), std::string::npos);
  }
  expect_config_error("model: [1, 2\n", {}, "not valid YAML");
}

}  // namespace
}  // namespace spvit
