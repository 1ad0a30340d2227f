// Class colours (class_colours.h).
#include "spvit/train/class_colours.h"

#include <algorithm>

#include "spvit/core/error.h"
#include "spvit/data/annotations.h"
#include "spvit/data/dataset.h"
#include "spvit/data/sources.h"

namespace spvit::train {
namespace {

bool names_class(const DataConfig& d, const std::string& name) {
  return std::any_of(d.classes.begin(), d.classes.end(), [&](const auto& c) { return c.first == name; });
}

}  // namespace

std::vector<std::array<uint8_t, 3>> class_colour_table(const DataConfig& d, int64_t classes) {
  std::vector<std::array<uint8_t, 3>> table;
  for (int64_t k = 0; k < classes; ++k) table.push_back(class_colour_rgb(k));
  std::vector<std::pair<std::string, std::array<uint8_t, 3>>> given;
  for (const auto& [name, text] : d.class_colors) {
    std::array<uint8_t, 3> rgb{};
    if (!data::parse_colour(text, rgb)) {
      SPVIT_THROW(ConfigError, "config key 'data.class_colors." + name + "' = '", text, "' is not a colour \"#rrggbb\"");
    }
    if (!names_class(d, name)) {
      SPVIT_THROW(ConfigError, "config key 'data.class_colors' names '", name, "', which 'data.classes' does not");
    }
    given.emplace_back(name, rgb);
  }
  // An id is drawn in the colour of the name it is called by (data::class_names_by_id).
  const auto names = data::class_names_by_id(d, classes);
  for (int64_t id = 1; id < classes; ++id) {
    const auto& name = names[static_cast<size_t>(id)];
    const auto it = std::find_if(given.begin(), given.end(), [&](const auto& g) { return g.first == name; });
    if (!name.empty() && it != given.end()) table[static_cast<size_t>(id)] = it->second;
  }
  return table;
}

void adopt_annotation_colours(DataConfig& d, const data::Dataset& train) {
  for (const auto& [name, colour] : train.class_colours()) {
    const bool given = std::any_of(d.class_colors.begin(), d.class_colors.end(),
                                   [&](const auto& c) { return c.first == name; });
    if (!given && names_class(d, name)) d.class_colors.emplace_back(name, colour);
  }
}

}  // namespace spvit::train
