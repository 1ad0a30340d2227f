// How one sample's L tokens are split into contiguous segments over the N_s ranks of a sequence group, and the
// context a layer gets from it. The split itself is core's even_split (the one sharding rule).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "spvit/dist/communicator.h"

namespace spvit::dist {

struct SequenceContext;

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
  // What a layer needs to run this rank's segment: the group's communicator (dropped when this shard has one rank)
  // and the key mask of empty adaptive slots (undefined: all tokens are keys).
  SequenceContext context(const CommPtr& comm, torch::Tensor key_valid = {}) const;
};

// What a layer needs to know about how the current sample's token sequence is sharded. Built by
// SequenceShard::context (or whole()), never field by field.
struct SequenceContext {
  CommPtr comm;               // the sequence group's communicator; null when one rank holds the whole sequence
  SequenceShard shard;        // which tokens this rank holds
  torch::Tensor key_valid;    // [L] bool: false for empty (size-0) adaptive slots, masked out as keys; undefined = all

  // The whole sequence on this rank.
  static SequenceContext whole(int64_t length) { return SequenceShard::whole(length).context(nullptr); }
  bool sharded() const { return comm != nullptr && shard.num_ranks() > 1; }
};

}  // namespace spvit::dist
