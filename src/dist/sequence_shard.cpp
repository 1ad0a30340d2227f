#include "spvit/dist/sequence_shard.h"

#include "spvit/core/error.h"
#include "spvit/core/even_split.h"

namespace spvit::dist {

SequenceShard SequenceShard::even(int64_t length, int num_ranks, int rank) {
  SPVIT_CHECK(length >= 0, "sequence length must be non-negative, got ", length);
  SPVIT_CHECK(num_ranks >= 1 && rank >= 0 && rank < num_ranks, "sequence rank ", rank, " of ", num_ranks);
  SequenceShard s;
  s.length = length;
  s.rank = rank;
  s.counts = even_split(length, num_ranks);
  return s;
}

SequenceContext SequenceShard::context(const CommPtr& comm, torch::Tensor key_valid) const {
  return SequenceContext{num_ranks() > 1 ? comm : nullptr, *this, std::move(key_valid)};
}

int64_t SequenceShard::offset_of(int r) const {
  int64_t offset = 0;
  for (int i = 0; i < r; ++i) offset += counts.at(static_cast<size_t>(i));
  return offset;
}

}  // namespace spvit::dist
