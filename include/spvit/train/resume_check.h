// What may change between a checkpoint and the run that resumes it. `spvit train --resume` continues bit-exactly only
// with the same model, data, optimisation and grid; a resume that silently changed one of them would train a
// different model than the log says. So every setting must match except those that only say how long, how often or
// where (the list in resume_check.cpp), unless the user names it in --allow-changes (e.g. grid.data,grid.seq to
// resume on a different node count, losing bit-exactness; the run then warns).
#pragma once
#include <string>
#include <vector>

#include "spvit/core/config.h"
#include "spvit/train/checkpoint.h"

namespace spvit::train {

struct ConfigChange {
  std::string key, saved, now;  // "grid.seq", "2", "4" ("(absent)" for a key one side does not have)
};

// Every key whose value differs between two configurations (as YAML, flattened to dotted keys).
std::vector<ConfigChange> config_changes(const std::string& saved_yaml, const std::string& now_yaml);

// Throws ConfigError naming each key that differs and is neither free to change nor allowed (`allow` holds keys or
// section names); logs a warning for each allowed one. `saved` is the checkpoint's information, `now` the
// configuration of this run and `world_size` its ranks (grid.data = 0 resolves to world size / grid.seq on both sides).
void check_resume(const std::string& checkpoint, const CheckpointInfo& saved, const Config& now, int world_size,
                  const std::vector<std::string>& allow);

}  // namespace spvit::train
