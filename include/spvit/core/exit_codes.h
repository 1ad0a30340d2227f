// The process exit codes of `spvit` (docs/cluster.md has the table users and job scripts read). One place, so
// main(), the tests and the docs cannot disagree.
#pragma once

namespace spvit::exit_code {

constexpr int kOk = 0;
constexpr int kUsage = 1;             // bad command line (CLI11 prints the reason)
constexpr int kConfigError = 2;       // bad configuration: reported before any work, identical on every rank
constexpr int kUnexpected = 3;        // an unexpected error on one rank: the whole job is aborted (MPI_Abort)
constexpr int kTrainingStopped = 4;   // too many non-finite steps in a row; the last good checkpoint is kept
constexpr int kWriteFailed = 5;       // an output could not be written (disk full, quota, permissions); every rank
                                      // exits with it, the previous checkpoint is intact
constexpr int kPreempted = 75;        // SIGTERM/SIGINT/SIGUSR1: a checkpoint was written; resume with --resume
                                      // (75 = EX_TEMPFAIL of sysexits.h: "try again later")

}  // namespace spvit::exit_code
