// Colours of class ids in the pictures and files spvit draws (`spvit eval` and `spvit infer` overlays, GeoJSON and
// ASAP class colours), so a class looks the same everywhere. RGB.
//
// A slide-trained model draws its classes in the colours its annotations gave them (QuPath's classification colour,
// ASAP's Color) or data.class_colors names: training writes them into the configuration its checkpoints store, so
// `spvit infer` reproduces them. Other classes take the fixed palette below (ids past its end wrap around).
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "spvit/core/config.h"

namespace spvit::data {
class Dataset;
}

namespace spvit::train {

inline constexpr std::array<std::array<uint8_t, 3>, 8> kClassColoursRgb{{{0, 0, 0},
                                                                         {60, 180, 75},
                                                                         {230, 25, 75},
                                                                         {0, 130, 200},
                                                                         {245, 130, 48},
                                                                         {145, 30, 180},
                                                                         {70, 240, 240},
                                                                         {240, 50, 230}}};

inline const std::array<uint8_t, 3>& class_colour_rgb(int64_t class_id) {
  const auto n = static_cast<int64_t>(kClassColoursRgb.size());
  return kClassColoursRgb[static_cast<size_t>(((class_id % n) + n) % n)];
}

// The colour of each class id 0..classes-1: data.class_colors' colour of the name the id is called by (its first
// name in data.classes, data::class_names_by_id), else the palette. Throws ConfigError for a data.class_colors entry that is not
// "#rrggbb" or names a class data.classes does not.
std::vector<std::array<uint8_t, 3>> class_colour_table(const DataConfig& data, int64_t classes);

// Adds to data.class_colors the colours `train`'s annotations give the classes data.classes names and
// data.class_colors does not (Dataset::class_colours), so that checkpoints remember them.
void adopt_annotation_colours(DataConfig& data, const data::Dataset& train);

}  // namespace spvit::train
