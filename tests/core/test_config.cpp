#include <gtest/gtest.h>

#include "spvit/core/config.h"
#include "spvit/core/error.h"

namespace spvit {
namespace {

// Expects parse_config to throw ConfigError whose message contains `needle`.
void expect_config_error(const std::string& yaml, const std::vector<std::string>& overrides,
                         const std::string& needle) {
  try {
    parse_config(yaml, overrides);
    FAIL() << "expected a ConfigError containing: " << needle;
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(Config, EmptyTextGivesDefaults) {
  const Config c = parse_config("");
  EXPECT_EQ(c.model.attention, "lss-kv");
  EXPECT_EQ(c.grid.seq, 1);
  EXPECT_DOUBLE_EQ(c.dist.bucket_mb, 25.0);
}

TEST(Config, ReadsValuesAndOverrides) {
  const Config c = parse_config("model:\n  dim: 96\n  heads: 6\ngrid:\n  seq: 2\n",
                                {"model.depth=7", "dist.grad_average=two-stage", "seed=42"});
  EXPECT_EQ(c.model.dim, 96);
  EXPECT_EQ(c.model.heads, 6);
  EXPECT_EQ(c.model.depth, 7);
  EXPECT_EQ(c.grid.seq, 2);
  EXPECT_EQ(c.dist.grad_average, "two-stage");
  EXPECT_EQ(c.seed, 42u);
}

TEST(Config, OverrideCreatesMissingSections) {
  const Config c = parse_config("seed: 1\n", {"model.checkpointing=true"});
  EXPECT_TRUE(c.model.checkpointing);
}

TEST(Config, YamlRoundTrip) {
  const Config c = parse_config("", {"model.dim=48", "model.heads=4", "model.pos_encoding=coords", "dtype=float64"});
  const Config again = parse_config(to_yaml(c));
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
  expect_config_error("model:\n  attention: ring\n", {},
                      "config key 'model.attention' must be one of local, lss-kv, lss-x, got 'ring'");
}

TEST(Config, WrongTypeAndRange) {
  expect_config_error("", {"model.dim=abc"}, "config key 'model.dim' must be an integer");
  expect_config_error("", {"model.depth=0"}, "config key 'model.depth' = 0 is outside the allowed range");
  expect_config_error("", {"model.checkpointing=maybe"}, "must be true or false");
  expect_config_error("model: 3\n", {}, "config key 'model' must be a mapping");
}

TEST(Config, CrossFieldValidation) {
  expect_config_error("", {"model.dim=100", "model.heads=3"}, "must be divisible by 'model.heads'");
  expect_config_error("", {"model.attention=local", "grid.seq=2"}, "needs lss-kv or lss-x");
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
