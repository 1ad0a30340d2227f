// Parameter names across versions — the one place that knows how they changed.
//
// Checkpoints written before the decoders became modules of their own (commit 2c1f36d and earlier) store the
// decoder's parameters at the top level: "up1.weight", "stem.bias", "head.bias" (unetr), "tile_head.weight" (tile).
// Today they live under the Segmenter's "decoder" module: "decoder.up1.weight", ..., "decoder.tile_head.weight".
// Parameter order (and so the optimiser state, stored by position) is unchanged.
#pragma once
#include <string>
#include <vector>

namespace spvit::model {

// The names `name` (a parameter or buffer of today's Segmenter) may be stored under, newest first.
inline std::vector<std::string> stored_parameter_names(const std::string& name) {
  static const std::string decoder_prefix = "decoder.";
  if (name.compare(0, decoder_prefix.size(), decoder_prefix) == 0) return {name, name.substr(decoder_prefix.size())};
  return {name};
}

}  // namespace spvit::model
