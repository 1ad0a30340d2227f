// Checkpoints written by older code stay loadable: the fixtures in tests/fixtures/checkpoints were saved at commit
// 2c1f36d, when the decoder's parameters lived at the top level of the model ("up1.weight", "tile_head.bias"); today
// they live under "decoder." (model/parameter_names.h). Every parameter of today's model must come from the stored
// tensor of its old name, and the model built from the stored configuration must run.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "spvit/model/segmenter.h"
#include "spvit/train/checkpoint.h"
#include "spvit/train/config_check.h"

namespace spvit::train {
namespace {

std::string fixture(const std::string& name) {
  const char* dir = std::getenv("SPVIT_FIXTURE_DIR");  // set by the ctest entry (tests/CMakeLists.txt)
  if (dir == nullptr) ADD_FAILURE() << "SPVIT_FIXTURE_DIR is not set: run this test through ctest";
  return std::string(dir ? dir : ".") + "/checkpoints/" + name;
}

// True when the raw archive holds a model parameter of exactly that name (no fallback to older names).
bool stored_under(const std::string& path, const std::string& name) {
  torch::serialize::InputArchive archive, params;
  archive.load_from(path);
  archive.read("model", params);
  torch::Tensor value;
  return params.try_read(name, value);
}

void expect_loads_with_old_names(const std::string& file, bool uniform_bands) {
  const auto path = fixture(file);
  const Config config = parse_checked_config(read_checkpoint_config(path));
  const auto& decoder = model::decoders().at(config.model.decoder);
  ASSERT_EQ(decoder.uniform_bands, uniform_bands) << file;
  const auto bias = read_checkpoint_parameter(path, "decoder." + decoder.head_bias);  // found under its old name
  ASSERT_TRUE(bias.defined()) << file;
  const int64_t classes = decoder.classes_from_head_bias(bias.size(0), config.model.patch, config.model.spatial_dims);
  model::Segmenter net(model::SegmenterOptions::from_config(config.model, classes));
  load_checkpoint(path, *net, nullptr);
  int decoder_params = 0;
  for (const auto& p : net->named_parameters()) {
    const std::string& name = p.key();
    const bool in_decoder = name.rfind("decoder.", 0) == 0;
    const std::string old_name = in_decoder ? name.substr(8) : name;
    // The fixture really is old: the new name is absent, the old one present.
    EXPECT_EQ(stored_under(path, name), !in_decoder) << file << ": " << name;
    ASSERT_TRUE(stored_under(path, old_name)) << file << ": " << old_name;
    EXPECT_TRUE(torch::equal(p.value(), read_checkpoint_parameter(path, old_name))) << file << ": " << name;
    decoder_params += in_decoder ? 1 : 0;
  }
  EXPECT_GT(decoder_params, 0) << file;
}

TEST(CheckpointCompat, UnetrCheckpointFromBeforeTheDecoderModulesLoads) {
  expect_loads_with_old_names("v0-unetr-grid.pt", /*uniform_bands=*/true);
}

TEST(CheckpointCompat, TileCheckpointFromBeforeTheDecoderModulesLoads) {
  expect_loads_with_old_names("v0-tile-coords-adaptive.pt", /*uniform_bands=*/false);
}

}  // namespace
}  // namespace spvit::train
