// Colours of class ids in the pictures spvit draws (`spvit eval` and `spvit infer` overlays, GeoJSON class colours),
// so a class looks the same everywhere. RGB; ids past the end of the table wrap around.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>

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

}  // namespace spvit::train
