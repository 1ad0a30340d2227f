#include <gtest/gtest.h>

#include <numeric>

#include "spvit/core/error.h"
#include "spvit/dist/process_grid.h"
#include "spvit/dist/sequence_shard.h"

namespace spvit::dist {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(GridShape, Parses) {
  auto g = GridShape::parse("2x4");
  EXPECT_EQ(g.data, 2);
  EXPECT_EQ(g.seq, 4);
  EXPECT_EQ(GridShape::parse(" 1X3 ").seq, 3);
  EXPECT_NE(error_of([] { GridShape::parse("2x"); }).find("must be DATAxSEQ"), std::string::npos);
  EXPECT_NE(error_of([] { GridShape::parse("1x0"); }).find("at least 1"), std::string::npos);
}

TEST(GridShape, ResolvesAgainstWorldSize) {
  auto g = resolve_grid({0, 2}, 8);
  EXPECT_EQ(g.data, 4);
  EXPECT_EQ(g.seq, 2);
  EXPECT_NE(error_of([] { resolve_grid({2, 2}, 2); }).find("needs 4 ranks but this run has 2"), std::string::npos);
  EXPECT_NE(error_of([] { resolve_grid({0, 3}, 4); }).find("does not divide the world size 4"), std::string::npos);
}

TEST(SequenceShard, EvenSplitsDifferByAtMostOne) {
  for (int64_t L : {1, 7, 96, 97, 1001}) {
    for (int n = 1; n <= 5 && n <= L; ++n) {
      int64_t expected_offset = 0;
      for (int r = 0; r < n; ++r) {
        auto s = SequenceShard::even(L, n, r);
        EXPECT_EQ(std::accumulate(s.counts.begin(), s.counts.end(), int64_t{0}), L);
        auto [lo, hi] = std::minmax_element(s.counts.begin(), s.counts.end());
        EXPECT_LE(*hi - *lo, 1);
        EXPECT_EQ(s.offset(), expected_offset);
        expected_offset += s.local_length();
      }
    }
  }
  EXPECT_THROW(SequenceShard::even(10, 2, 2), Error);
}

}  // namespace
}  // namespace spvit::dist
