// What a layer needs to know about how the current sample's token sequence is sharded.
#pragma once
#include <torch/torch.h>

#include "spvit/dist/communicator.h"
#include "spvit/dist/sequence_shard.h"

namespace spvit::model {

struct SequenceContext {
  dist::CommPtr comm;          // the sequence group's communicator; null when one rank holds the whole sequence
  dist::SequenceShard shard;   // which tokens this rank holds
  torch::Tensor key_valid;     // [L] bool: false for empty (size-0) adaptive slots, masked out as keys; undefined = all

  // The whole sequence on this rank.
  static SequenceContext whole(int64_t length) { return {nullptr, dist::SequenceShard::whole(length), {}}; }
  bool sharded() const { return comm != nullptr && shard.num_ranks() > 1; }
};

}  // namespace spvit::model
