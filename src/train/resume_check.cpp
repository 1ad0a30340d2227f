#include "spvit/train/resume_check.h"

#include <yaml-cpp/yaml.h>

#include <map>
#include <set>

#include "spvit/core/error.h"
#include "spvit/core/logging.h"

namespace spvit::train {
namespace {

// Keys that say how long, how often or where a run works, not what it computes: free to change on resume.
// (train.steps reshapes the LR schedule's decay from the resumed step on; that is what "train longer" means.)
const std::set<std::string> kFreeKeys{
    "log_level",          "train.steps",        "train.out_dir",         "train.log_every",
    "train.eval_every",   "train.checkpoint_every", "train.checkpoint_every_minutes", "train.keep_checkpoints",
    "train.max_bad_steps", "train.progress",    "dist.timeout_s",        "data.workers",
    "data.prefetch",      "data.val_path",      "data.val_samples",      "model.checkpointing",
    "model.decoder_chunk_rows", "model.attention_backend", "data.class_colors"};

void flatten(const YAML::Node& node, const std::string& prefix, std::map<std::string, std::string>& out) {
  if (node.IsMap()) {
    for (const auto& kv : node) {
      const auto key = kv.first.as<std::string>();
      flatten(kv.second, prefix.empty() ? key : prefix + "." + key, out);
    }
  } else {
    YAML::Emitter e;
    e << YAML::Flow << node;
    out[prefix] = e.c_str();
  }
}

std::map<std::string, std::string> flat(const std::string& yaml) {
  std::map<std::string, std::string> out;
  flatten(YAML::Load(yaml), "", out);
  return out;
}

bool allowed(const std::string& key, const std::vector<std::string>& allow) {
  for (const auto& a : allow) {
    if (key == a || key.rfind(a + ".", 0) == 0) return true;
  }
  return false;
}

// The configuration as YAML with grid.data resolved for `world_size` ranks (0 = unknown: left as it is).
std::string with_resolved_grid(Config config, int64_t world_size) {
  if (config.grid.data == 0 && world_size > 0) config.grid.data = world_size / config.grid.seq;
  return to_yaml(config);
}

}  // namespace

std::vector<ConfigChange> config_changes(const std::string& saved_yaml, const std::string& now_yaml) {
  const auto saved = flat(saved_yaml), now = flat(now_yaml);
  std::vector<ConfigChange> changes;
  for (const auto& [key, value] : saved) {
    const auto it = now.find(key);
    if (it == now.end()) changes.push_back({key, value, "(absent)"});
    else if (it->second != value) changes.push_back({key, value, it->second});
  }
  for (const auto& [key, value] : now) {
    if (!saved.count(key)) changes.push_back({key, "(absent)", value});
  }
  return changes;
}

void check_resume(const std::string& checkpoint, const CheckpointInfo& saved, const Config& now, int world_size,
                  const std::vector<std::string>& allow) {
  Config saved_config;
  try {
    saved_config = parse_config(saved.config_yaml);
  } catch (Error& e) {
    e.add_context("reading the configuration stored in checkpoint '" + checkpoint + "'");
    throw;
  }
  const auto changes = config_changes(with_resolved_grid(saved_config, saved.position.world_size),
                                      with_resolved_grid(now, world_size));
  std::string refused, names;
  for (const auto& c : changes) {
    if (kFreeKeys.count(c.key)) continue;
    const std::string line = c.key + ": " + c.saved + " -> " + c.now;
    if (allowed(c.key, allow)) {
      log::warn("resuming with a changed setting (--allow-changes): {}; the run no longer continues the checkpoint's "
                "bit-exactly", line);
      continue;
    }
    refused += "\n    " + line;
    names += (names.empty() ? "" : ",") + c.key;
  }
  if (!refused.empty()) {
    SPVIT_THROW(ConfigError, "--resume: checkpoint '", checkpoint, "' (step ", saved.position.step,
                ") was written with other settings:", refused,
                "\n  resuming with them would not continue that run. Resume with the checkpoint's settings, or pass "
                "--allow-changes ", names, " to proceed anyway (e.g. a different node count: grid.data)");
  }
}

}  // namespace spvit::train
