#include "spvit/train/progress.h"

#include <cstdio>

namespace spvit::train {

std::string training_progress_details(double loss, double lr, double tokens_per_s) {
  char buf[128];
  std::snprintf(buf, sizeof(buf), "loss %.5f | lr %.2e | %s tok/s", loss, lr, human_rate(tokens_per_s).c_str());
  return buf;
}

std::string format_progress(const ProgressState& st, int bar) {
  return format_progress_line("step", st.step, st.total, training_progress_details(st.loss, st.lr, st.tokens_per_s),
                              st.eta_s, bar);
}

}  // namespace spvit::train
