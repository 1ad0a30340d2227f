// The subcommands of `spvit bench` that live in their own files (cmd_bench.cpp adds them under `bench`).
#pragma once
#include <CLI/CLI.hpp>

#include "app_context.h"

namespace spvit::app {

// `spvit bench collectives` (cmd_bench_collectives.cpp).
void add_bench_collectives_command(CLI::App& bench, AppContext& ctx);

}  // namespace spvit::app
