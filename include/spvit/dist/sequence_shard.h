// How one sample's L tokens are split into contiguous segments over the N_s ranks of a sequence group.
#pragma once
#include <cstdint>
#include <vector>

namespace spvit::dist {

struct SequenceShard {
  int64_t length = 0;           // L, the whole sequence
  std::vector<int64_t> counts;  // tokens held by each sequence rank; sums to L
  int rank = 0;                 // this rank's index s in the sequence group

  // Segments whose sizes differ by at most one: the first L % N_s ranks hold one token more.
  static SequenceShard even(int64_t length, int num_ranks, int rank);
  // The whole sequence on one rank (no sequence parallelism).
  static SequenceShard whole(int64_t length) { return even(length, 1, 0); }

  int num_ranks() const { return static_cast<int>(counts.size()); }
  int64_t offset_of(int r) const;  // first token index of rank r
  int64_t offset() const { return offset_of(rank); }
  int64_t local_length() const { return counts.at(rank); }
};

}  // namespace spvit::dist
