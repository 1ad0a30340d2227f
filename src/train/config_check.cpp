#include "spvit/train/config_check.h"

#include <limits>

#include "spvit/build_info.h"
#include "spvit/core/int_math.h"
#include "spvit/data/sources.h"
#include "spvit/model/attention.h"
#include "spvit/model/decoder.h"
#include "spvit/patch/patcher.h"

namespace spvit::train {
namespace {

bool has_opencv_build() { return SPVIT_HAVE_OPENCV != 0; }

// a · b, or the largest int64 when that overflows (token counts of huge synthetic volumes only need comparing).
int64_t saturating_product(int64_t a, int64_t b) {
  if (a != 0 && b > std::numeric_limits<int64_t>::max() / a) return std::numeric_limits<int64_t>::max();
  return a * b;
}

// The attention strategy against the grid.
void check_attention(const Config& c) {
  const auto& strategy = model::attention_strategies().at(c.model.attention);
  if (!strategy.shards_sequence && c.grid.seq > 1) {
    const auto sharding = model::attention_strategies().names_where([](const auto& e) { return e.shards_sequence; });
    SPVIT_THROW(ConfigError, "config key 'model.attention' = ", strategy.name,
                " cannot shard a sequence: 'grid.seq' = ", c.grid.seq, " needs ", join_names(sharding, " or "));
  }
  if (strategy.strategy == model::AttentionStrategy::Hybrid && c.grid.seq > 1) {
    const int64_t u = c.dist.ulysses_size;
    if (u < 1 || c.grid.seq % u != 0) {
      SPVIT_THROW(ConfigError, "config key 'dist.ulysses_size' = ", u, " must divide 'grid.seq' = ", c.grid.seq,
                  " for model.attention = hybrid (Ulysses groups of that many ranks, e.g. the GPUs of one node)");
    }
  }
}

// data.patcher against the model: which layouts each decoder can train on, and the adaptive tree's constraints
// (the patcher checks them again, but a config error should come before any data is read).
void check_patcher(const Config& c) {
  const auto& p = c.data.patcher;
  const auto& m = c.model;
  const auto& patcher = patch::patchers().at(p.kind);
  const auto& scorer = patch::scorers().at(p.scorer);
  const auto& decoder = model::decoders().at(m.decoder);
  if (decoder.uniform_bands && patcher.adaptive) {
    const auto token_decoders = model::decoders().names_where([](const auto& e) { return !e.uniform_bands; });
    SPVIT_THROW(ConfigError, "config key 'data.patcher.kind' = ", p.kind, " needs 'model.decoder' = ",
                join_names(token_decoders, " or "), ": the ", m.decoder, " decoder works on uniform grids only");
  }
  if (patcher.spatial_dims != 0 && patcher.spatial_dims != m.spatial_dims) {
    SPVIT_THROW(ConfigError, "config key 'data.patcher.kind' = ", p.kind, " plans ", patcher.spatial_dims,
                "-D layouts, but 'model.spatial_dims' = ", m.spatial_dims);
  }
  if (!patcher.adaptive) {
    if (p.score_downsample != 1 || p.threshold_jitter != 0.0) {
      SPVIT_THROW(ConfigError, "config keys 'data.patcher.score_downsample' and 'data.patcher.threshold_jitter' "
                  "shape adaptive layouts; 'data.patcher.kind' = ", p.kind, " needs them at 1 and 0");
    }
    return;
  }
  if (p.length < 1) {
    SPVIT_THROW(ConfigError, "config key 'data.patcher.length' must give the fixed token count L (>= 1) for "
                "'data.patcher.kind' = ", p.kind);
  }
  if (m.pos_encoding == "grid") {
    SPVIT_THROW(ConfigError, "config key 'model.pos_encoding' = grid has no table slot for an adaptive leaf: use "
                "coords (or none) with 'data.patcher.kind' = ", p.kind);
  }
  if (!is_power_of_two(m.patch)) {
    SPVIT_THROW(ConfigError, "config key 'model.patch' = ", m.patch,
                " must be a power of two for 'data.patcher.kind' = ", p.kind, " (leaves halve down to it)");
  }
  if (p.min_side != 0 && (!is_power_of_two(p.min_side) || p.min_side > m.patch)) {
    SPVIT_THROW(ConfigError, "config key 'data.patcher.min_side' = ", p.min_side,
                " must be 0 or a power of two <= 'model.patch' = ", m.patch);
  }
  if (!is_power_of_two(p.score_downsample) || p.score_downsample > m.patch) {
    SPVIT_THROW(ConfigError, "config key 'data.patcher.score_downsample' = ", p.score_downsample,
                " must be a power of two <= 'model.patch' = ", m.patch);
  }
  if (scorer.needs_opencv && !has_opencv_build()) {
    const auto without_opencv = patch::scorers().names_where([](const auto& e) { return !e.needs_opencv; });
    SPVIT_THROW(ConfigError, "config key 'data.patcher.scorer' = ", p.scorer, " needs OpenCV, which this build does "
                "not have; the ", join_names(without_opencv, " and "), " scorers work without it");
  }
  if (scorer.uses_canny && p.blur_kernel % 2 == 0) {
    SPVIT_THROW(ConfigError, "config key 'data.patcher.blur_kernel' = ", p.blur_kernel,
                " must be odd for 'data.patcher.scorer' = ", p.scorer, " (a Gaussian kernel has a centre pixel)");
  }
  if (p.threshold_jitter > 0 && !scorer.uses_canny) {
    const auto canny = patch::scorers().names_where([](const auto& e) { return e.uses_canny; });
    SPVIT_THROW(ConfigError, "config key 'data.patcher.threshold_jitter' = ", p.threshold_jitter,
                " scales Canny thresholds, which only 'data.patcher.scorer' = ", join_names(canny, " or "),
                " has (got ", p.scorer, ")");
  }
  if (p.canny_high < p.canny_low) {
    SPVIT_THROW(ConfigError, "config key 'data.patcher.canny_high' = ", p.canny_high,
                " must not be below 'data.patcher.canny_low' = ", p.canny_low);
  }
}

// The data against the model. Image folders hold 2-D images; synthetic data is known from the configuration alone
// (its kind fixes the channels and dimensions, data.size the sample shape), so everything open_datasets, the
// loader, the bands, the patcher and the positional table check at run time is checked here. Folders and HDF5
// files are checked when they are opened.
void check_data(const Config& c) {
  const auto& d = c.data;
  const auto& m = c.model;
  const auto& p = d.patcher;
  const auto& source = data::dataset_sources().at(d.source);
  if (source.reads_files && d.path.empty()) {
    SPVIT_THROW(ConfigError, "config key 'data.path' must name the training data for data.source = ", d.source);
  }
  if (source.needs_opencv && !has_opencv_build()) {
    SPVIT_THROW(ConfigError, "config key 'data.source' = ", d.source, " reads images through OpenCV, which this build "
                "does not have: convert the data to HDF5 (data.source = hdf5)");
  }
  if (source.spatial_dims != 0 && m.spatial_dims != source.spatial_dims) {
    SPVIT_THROW(ConfigError, "config key 'data.source' = ", d.source, " holds ", source.spatial_dims,
                "-D images, but 'model.spatial_dims' = ", m.spatial_dims,
                " (volumes come from data.source = hdf5, or synthetic with 'data.kind' = mri)");
  }
  if (source.reads_files) return;
  const bool mri = d.kind == "mri";
  const int64_t dims = mri ? 3 : 2, channels = mri ? 1 : 3;
  if (m.spatial_dims != dims) {
    SPVIT_THROW(ConfigError, "config key 'model.spatial_dims' = ", m.spatial_dims, " but 'data.kind' = ", d.kind,
                " generates ", dims, "-D ", mri ? "volumes" : "images", " (set 'model.spatial_dims' = ", dims, ")");
  }
  if (m.channels != channels) {
    SPVIT_THROW(ConfigError, "config key 'model.channels' = ", m.channels, " but 'data.kind' = ", d.kind,
                " generates ", channels, "-channel ", mri ? "volumes" : "(RGB) images", " (set 'model.channels' = ",
                channels, ")");
  }
  const int64_t groups = std::max<int64_t>(1, c.grid.data);
  if (d.train_samples < saturating_product(groups, c.train.batch_size)) {
    SPVIT_THROW(ConfigError, "config key 'data.train_samples' = ", d.train_samples,
                " is too few for 'train.batch_size' = ", c.train.batch_size, c.grid.data > 0 ? " in each of 'grid.data' = " + std::to_string(c.grid.data) +
                " data groups" : std::string(), ": an epoch would have no batch");
  }
  // The uniform grid: whole token rows for the band decoders (the bands); padded to whole tokens for the others.
  const auto& decoder = model::decoders().at(m.decoder);
  const auto& patcher = patch::patchers().at(p.kind);
  int64_t count = 1;
  const int64_t per_side = decoder.uniform_bands ? d.size / m.patch : (d.size + m.patch - 1) / m.patch;
  for (int64_t k = 0; k < dims; ++k) count = saturating_product(count, per_side);
  if (decoder.uniform_bands) {
    if (d.size % m.patch != 0) {
      SPVIT_THROW(ConfigError, "config key 'data.size' = ", d.size, " must be a multiple of 'model.patch' = ", m.patch,
                  " for 'model.decoder' = ", m.decoder, " (its bands are whole token rows)");
    }
    if (per_side < c.grid.seq) {
      SPVIT_THROW(ConfigError, "config key 'grid.seq' = ", c.grid.seq, " needs a token row per sequence rank, but "
                  "'data.size' = ", d.size, " at 'model.patch' = ", m.patch, " has ", per_side, " token rows");
    }
  }
  if (!patcher.adaptive && !decoder.uniform_bands && p.length != 0 && p.length < count) {
    SPVIT_THROW(ConfigError, "config key 'data.patcher.length' = ", p.length, " is shorter than the uniform grid of ",
                count, " tokens ('data.size' = ", d.size, ", 'model.patch' = ", m.patch, "): use 0 (the grid's size) "
                "or at least ", count);
  }
  if (m.pos_encoding == "grid" && !patcher.adaptive) {
    const int64_t tokens = !decoder.uniform_bands && p.length != 0 ? p.length : count;
    if (tokens > m.max_tokens) {
      SPVIT_THROW(ConfigError, "config key 'model.max_tokens' = ", m.max_tokens, " is smaller than the ", tokens,
                  " tokens of the uniform grid ('data.size' = ", d.size, ", 'model.patch' = ", m.patch,
                  ") that 'model.pos_encoding' = grid gives a table row each: raise it to ", tokens, " or use coords");
    }
  }
  if (patcher.adaptive && d.size % p.score_downsample != 0) {
    SPVIT_THROW(ConfigError, "config key 'data.size' = ", d.size, " must be a multiple of "
                "'data.patcher.score_downsample' = ", p.score_downsample, " (the layout is planned on the sample "
                "shrunk by that factor)");
  }
}

}  // namespace

void check_config(const Config& c) {
  // Every name first (in the order of the configuration's keys), so an unknown one is reported as such.
  model::attention_strategies().at_config(c.model.attention);
  const auto& decoder = model::decoders().at_config(c.model.decoder);
  data::dataset_sources().at_config(c.data.source);
  patch::patchers().at_config(c.data.patcher.kind);
  patch::scorers().at_config(c.data.patcher.scorer);
  check_attention(c);
  decoder.validate(c);
  check_patcher(c);
  check_data(c);
}

Config parse_checked_config(const std::string& yaml_text, const std::vector<std::string>& overrides) {
  Config config = parse_config(yaml_text, overrides);
  check_config(config);
  return config;
}

Config load_checked_config(const std::string& path, const std::vector<std::string>& overrides) {
  Config config = load_config(path, overrides);
  try {
    check_config(config);
  } catch (Error& e) {
    e.add_context("loading config file '" + path + "'");
    throw;  // the original object, so its type (ConfigError) is kept
  }
  return config;
}

}  // namespace spvit::train
