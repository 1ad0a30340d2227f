// Typed configuration: YAML file -> these structs, validated, with `--set key.sub=value` overrides.
//
// Each section lists its fields once, in visit(); the same list drives parsing (with unknown-key and range
// errors that name the key and the allowed values) and writing back to YAML (saved beside results/checkpoints).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "spvit/core/config_visit.h"

namespace spvit {

// World = data x seq ranks. data = 0 means "world size / seq".
struct GridConfig {
  int64_t data = 0;
  int64_t seq = 1;
  template <class V>
  void visit(V& v) {
    v.field("data", data, Range<int64_t>{0, 1 << 20}, "data-parallel groups (0 = world size / seq)");
    v.field("seq", seq, Range<int64_t>{1, 1 << 20}, "ranks sharing one sample's token sequence");
  }
};

struct ModelConfig {
  int64_t channels = 3;       // image channels C
  int64_t patch = 16;         // patch side P (tokens carry C*P^2 (or C*P^3 in 3D) values)
  int64_t spatial_dims = 2;   // 2 (images) or 3 (volumes)
  int64_t dim = 192;          // embedding width E
  int64_t depth = 4;          // transformer blocks
  int64_t heads = 3;          // attention heads (dim % heads == 0)
  double mlp_ratio = 4.0;     // MLP hidden width = mlp_ratio * dim
  std::string pos_encoding = "grid";  // grid (learned table), coords (coordinate MLP), none
  int64_t max_tokens = 65536;         // rows of the learned grid table
  std::string attention = "lss-kv";   // local, lss-kv, lss-x
  bool checkpointing = false;         // recompute each block in backward
  template <class V>
  void visit(V& v) {
    v.field("channels", channels, Range<int64_t>{1, 1024}, "image channels");
    v.field("patch", patch, Range<int64_t>{1, 4096}, "patch side in pixels");
    v.field("spatial_dims", spatial_dims, Range<int64_t>{2, 3}, "2 for images, 3 for volumes");
    v.field("dim", dim, Range<int64_t>{1, 1 << 16}, "embedding width");
    v.field("depth", depth, Range<int64_t>{1, 1024}, "number of transformer blocks");
    v.field("heads", heads, Range<int64_t>{1, 1024}, "attention heads");
    v.field("mlp_ratio", mlp_ratio, Range<double>{0.0625, 64.0}, "MLP width / dim");
    v.choice("pos_encoding", pos_encoding, {"grid", "coords", "none"});
    v.field("max_tokens", max_tokens, Range<int64_t>{1, int64_t{1} << 40}, "rows of the learned position table");
    v.choice("attention", attention, {"local", "lss-kv", "lss-x"});
    v.field("checkpointing", checkpointing, Range<bool>{}, "activation checkpointing per block");
  }
};

struct DistConfig {
  std::string backend = "mpi";            // mpi (CPU, or host-staged GPU); nccl comes with the GPU path
  double timeout_s = 300.0;               // a collective that does not finish in this time ends the run
  std::string grad_average = "flat";      // flat (one world all-reduce) or two-stage (seq reduce, data all-reduce)
  double bucket_mb = 25.0;                // gradient bucket size
  template <class V>
  void visit(V& v) {
    v.choice("backend", backend, {"mpi"});
    v.field("timeout_s", timeout_s, Range<double>{0.001, 1e7}, "collective timeout in seconds");
    v.choice("grad_average", grad_average, {"flat", "two-stage"});
    v.field("bucket_mb", bucket_mb, Range<double>{0.001, 1e5}, "gradient bucket size in MB");
  }
};

struct Config {
  uint64_t seed = 0;
  std::string log_level = "info";
  std::string dtype = "float32";
  GridConfig grid;
  ModelConfig model;
  DistConfig dist;
  template <class V>
  void visit(V& v) {
    v.field("seed", seed, Range<uint64_t>{}, "random seed");
    v.choice("log_level", log_level, {"trace", "debug", "info", "warn", "error", "off"});
    v.choice("dtype", dtype, {"float32", "float64"});
    v.section("grid", grid);
    v.section("model", model);
    v.section("dist", dist);
  }
};

// Parses YAML text; `overrides` are "key.sub=value" strings applied on top (values are YAML scalars).
// Throws ConfigError naming the key for unknown keys, wrong types, out-of-range values and inconsistent settings.
Config parse_config(const std::string& yaml_text, const std::vector<std::string>& overrides = {});
// Reads a YAML file (ConfigError if it cannot be read) and parses it as above.
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});
// Checks relations between fields (e.g. dim % heads == 0). parse_config calls it.
void validate(const Config& config);
// The configuration as YAML (every field, defaults included).
std::string to_yaml(const Config& config);

}  // namespace spvit
