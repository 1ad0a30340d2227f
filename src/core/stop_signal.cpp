#include "spvit/core/stop_signal.h"

#include <csignal>

namespace spvit {
namespace {

volatile std::sig_atomic_t g_received = 0;

extern "C" void record_stop_signal(int signal) {
  if (g_received != 0 && signal == SIGINT) {
    // Second Ctrl-C: the user does not want to wait for the checkpoint.
    std::signal(SIGINT, SIG_DFL);
    std::raise(SIGINT);
    return;
  }
  if (g_received == 0) g_received = signal;
}

}  // namespace

void install_stop_signal_handlers() {
  struct sigaction action {};
  action.sa_handler = record_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // a read or wait interrupted by the signal resumes instead of failing with EINTR
  for (const int s : {SIGTERM, SIGINT, SIGUSR1}) sigaction(s, &action, nullptr);
}

int stop_signal_received() { return g_received; }

void reset_stop_signal() { g_received = 0; }

const char* stop_signal_name(int signal) {
  switch (signal) {
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGUSR1: return "SIGUSR1";
    default: return "a stop signal";
  }
}

}  // namespace spvit
