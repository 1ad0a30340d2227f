// What a layer needs to know about how the current sample's token sequence is sharded: dist::SequenceContext,
// built by dist::SequenceShard::context.
#pragma once
#include "spvit/dist/sequence_shard.h"

namespace spvit::model {

using SequenceContext = dist::SequenceContext;

}  // namespace spvit::model
