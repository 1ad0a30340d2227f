#include "spvit/dist/sequence_shard.h"

#include "spvit/core/error.h"

namespace spvit::dist {

SequenceShard SequenceShard::even(int64_t length, int num_ranks, int rank) {
  SPVIT_CHECK(length >= 0, "sequence length must be non-negative, got ", length);
  SPVIT_CHECK(num_ranks >= 1 && rank >= 0 && rank < num_ranks, "sequence rank ", rank, " of ", num_ranks);
  SequenceShard s;
  s.length = length;
  s.rank = rank;
  s.counts.resize(static_cast<size_t>(num_ranks));
  for (int r = 0; r < num_ranks; ++r) s.counts[r] = length / num_ranks + (r < length % num_ranks ? 1 : 0);
  return s;
}

int64_t SequenceShard::offset_of(int r) const {
  int64_t offset = 0;
  for (int i = 0; i < r; ++i) offset += counts.at(static_cast<size_t>(i));
  return offset;
}

}  // namespace spvit::dist
