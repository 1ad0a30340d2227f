// The sequence-parallel strategies the MPI tests run, shared by the exactness matrix and the accounting test.
// "hybrid-X" is hybrid with dist.hybrid_outer = X. Hybrid's Ulysses groups: 2 ranks on a 4-rank sequence group (so
// both levels communicate); on 2 or 3 ranks hybrid-lss-kv uses one group of all ranks (Ulysses inside only) and
// hybrid-ring groups of one (the ring across only).
#pragma once
#include <string>
#include <vector>

#include "spvit/model/selftest.h"

namespace spvit::model::testing_cases {

inline const std::vector<std::string>& strategies() {
  static const std::vector<std::string> names = {"lss-kv", "lss-x", "ulysses", "ring", "hybrid-lss-kv", "hybrid-ring"};
  return names;
}

inline SelftestOptions with_strategy(SelftestOptions o, const std::string& name, int seq_size) {
  o.strategy = name;
  if (name.rfind("hybrid-", 0) == 0) {
    o.strategy = "hybrid";
    o.hybrid_outer = name.substr(7);
    o.ulysses_size = seq_size == 4 ? 2 : (o.hybrid_outer == "ring" ? 1 : seq_size);
  }
  return o;
}

// A gtest-friendly name: "hybrid-lss-kv" -> "hybrid_lss_kv".
inline std::string test_name(std::string name) {
  for (auto& c : name) c = c == '-' ? '_' : c;
  return name;
}

}  // namespace spvit::model::testing_cases
