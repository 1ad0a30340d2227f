// The configuration check that needs the registries of the layers above core (attention strategies, decoders,
// patchers, scorers, dataset sources): every name known, and the rules that depend on what a name stands for (a
// band decoder needs uniform grids, the local strategy one sequence rank, ...). Core's parse_config checks the rest.
// Every command that takes a configuration runs it before any rank starts work.
#pragma once
#include <string>
#include <vector>

#include "spvit/core/config.h"

namespace spvit::train {

// ConfigError naming the key for an unknown name or a combination the named pieces do not support.
void check_config(const Config& config);

// parse_config / load_config followed by check_config.
Config parse_checked_config(const std::string& yaml_text, const std::vector<std::string>& overrides = {});
Config load_checked_config(const std::string& path, const std::vector<std::string>& overrides = {});

}  // namespace spvit::train
