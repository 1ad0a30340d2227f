// The subcommands of `spvit bench` that live in their own files (cmd_bench.cpp adds them under `bench`).
#pragma once
#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <string>

#include "app_context.h"

namespace spvit::app {

// `spvit bench collectives` (cmd_bench_collectives.cpp).
void add_bench_collectives_command(CLI::App& bench, AppContext& ctx);

// Seconds per call of one collective (`op` as bench collectives names it) of `bytes` on `comm`, float32, after
// checking its result: the mean of `iters` waited calls on the slowest rank. Used by `spvit plan --calibrate`.
double measure_collective_seconds(dist::Communicator& comm, const std::string& op, int64_t bytes,
                                  const torch::Device& device, int warmup, int iters);
// "2026-12-03T06:00:00Z" and this host's name: the provenance of measured rows and calibrated machine files.
std::string utc_now();
std::string host_name();

}  // namespace spvit::app
