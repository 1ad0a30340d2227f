// Graceful stops for batch schedulers: Slurm sends SIGTERM to every task at the time limit or on preemption (and
// SIGKILL KillWait seconds later), `scancel --signal=USR1` and Open MPI's mpirun forward SIGUSR1, a user presses
// Ctrl-C (SIGINT). The handler only records the signal; the training loop reads the flag once per step, agrees on it
// over all ranks inside the step's existing finiteness all-reduce, finishes the step, writes a checkpoint and exits
// with exit_code::kPreempted.
#pragma once

namespace spvit {

// Installs the handlers for SIGTERM, SIGINT and SIGUSR1. A second SIGINT ends the process at once (the default
// action), so an impatient Ctrl-C still works.
void install_stop_signal_handlers();

// The first stop signal received since installation (or the last reset), or 0.
int stop_signal_received();

// Forgets a received signal (tests).
void reset_stop_signal();

// "SIGTERM", "SIGINT", "SIGUSR1" (or "signal N").
const char* stop_signal_name(int signal);

}  // namespace spvit
