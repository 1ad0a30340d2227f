// The small vocabulary config sections use in visit(): Range<T> bounds for a field's value.
#pragma once
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace spvit {

// Inclusive bounds for a numeric config field (defaults: the whole type). bool fields use Range<bool>{}.
template <typename T>
struct Range {
  T min = std::numeric_limits<T>::lowest();
  T max = std::numeric_limits<T>::max();
  bool contains(const T& value) const {
    if constexpr (std::is_same_v<T, bool>) return true;
    else return value >= min && value <= max;
  }
};

// Strings have no range: any value is accepted (paths, names checked elsewhere).
template <>
struct Range<std::string> {
  std::string min, max;
  bool contains(const std::string&) const { return true; }
};

// A mapping field's value: (name, value text) pairs in the order written (data.classes).
using NamedValues = std::vector<std::pair<std::string, std::string>>;

}  // namespace spvit
