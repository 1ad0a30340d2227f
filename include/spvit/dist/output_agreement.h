// Outputs are written by one rank (world rank 0), but a failure to write must end every rank the same way: with the
// same exit code, no MPI abort banner and no peer left waiting in a collective. The writer catches its WriteError,
// one all-reduce tells every rank whether a write failed, and every rank throws.
#pragma once
#include <functional>
#include <memory>

#include "spvit/core/error.h"
#include "spvit/dist/communicator.h"

namespace spvit::dist {

// Thrown on the ranks that did not write when the writing rank failed (it throws the WriteError itself, with the
// path and the OS reason). main() reports the writer's message once and exits with exit_code::kWriteFailed.
class PeerWriteError : public WriteError {
  using WriteError::WriteError;
};

// Runs `write` on the ranks where `writes` is true, then agrees over `world` (nullptr or size 1: no collective) on
// whether any write failed; if one did, throws everywhere: the writer's WriteError on the writer, PeerWriteError on
// the others. Every rank of `world` must call it. (Other exceptions from `write` are not agreed on: they propagate
// at once, and main() ends the job as for any unexpected error.)
void write_on_one_rank(const std::shared_ptr<Communicator>& world, bool writes, const std::function<void()>& write);

// Agrees on an already recorded failure: `local_error` is this rank's WriteError message ("" = none). Throws as
// write_on_one_rank does when any rank has one. Every rank of `world` must call it.
void agree_on_write_errors(const std::shared_ptr<Communicator>& world, const std::string& local_error);

}  // namespace spvit::dist
