#include "spvit/train/progress.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

namespace spvit::train {
namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string format(const char* fmt, double a) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), fmt, a);
  return buf;
}

// 950 -> "950", 5300 -> "5.3k", 2.1e6 -> "2.1M".
std::string human_rate(double v) {
  if (v >= 1e6) return format("%.1fM", v / 1e6);
  if (v >= 1e3) return format("%.1fk", v / 1e3);
  return format("%.0f", v);
}

}  // namespace

std::string format_duration(double seconds) {
  const auto s = static_cast<int64_t>(std::llround(std::max(0.0, seconds)));
  char buf[32];
  if (s < 60) {
    std::snprintf(buf, sizeof(buf), "%llds", static_cast<long long>(s));
  } else if (s < 3600) {
    std::snprintf(buf, sizeof(buf), "%lldm%02llds", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  } else {
    std::snprintf(buf, sizeof(buf), "%lldh%02lldm", static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60));
  }
  return buf;
}

std::string format_progress(const ProgressState& st, int bar) {
  const double fraction =
      st.total > 0 ? std::min(1.0, static_cast<double>(st.step) / static_cast<double>(st.total)) : 0.0;
  const int filled = static_cast<int>(fraction * bar);
  std::string cells(static_cast<size_t>(bar), ' ');
  for (int i = 0; i < filled; ++i) cells[static_cast<size_t>(i)] = '=';
  if (filled < bar && st.step > 0) cells[static_cast<size_t>(filled)] = '>';
  const int digits = static_cast<int>(std::to_string(st.total).size());
  char head[96];
  std::snprintf(head, sizeof(head), "step %*lld/%lld [%s] %3d%%", digits, static_cast<long long>(st.step),
                static_cast<long long>(st.total), cells.c_str(), static_cast<int>(fraction * 100));
  char tail[128];
  std::snprintf(tail, sizeof(tail), " | loss %.5f | lr %.2e | %s tok/s | ETA %s", st.loss, st.lr,
                human_rate(st.tokens_per_s).c_str(), st.eta_s < 0 ? "?" : format_duration(st.eta_s).c_str());
  return std::string(head) + tail;
}

bool progress_wanted(const std::string& mode) {
  if (mode == "on" || mode == "off") return mode == "on";
  if (::isatty(STDERR_FILENO) == 1) return true;
  if (::isatty(STDOUT_FILENO) != 1) return false;
  const int tty = ::open("/dev/tty", O_RDONLY | O_NOCTTY);
  if (tty < 0) return false;
  ::close(tty);
  return true;
}

ProgressBar::ProgressBar(int64_t total, int64_t first_step, bool enabled)
    : total_(total), first_step_(first_step), enabled_(enabled), start_s_(now_s()) {}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::update(int64_t step, double loss, double lr, double tokens_per_s) {
  if (!enabled_) return;
  ProgressState st{step, total_, loss, lr, tokens_per_s, -1};
  const int64_t done = step - first_step_;
  if (done > 0) st.eta_s = (now_s() - start_s_) / static_cast<double>(done) * static_cast<double>(total_ - step);
  // \r + erase-line: redraw in place (a shorter line leaves no leftovers).
  std::fprintf(stderr, "\r\033[K%s", format_progress(st).c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::clear() {
  if (!enabled_ || !drawn_) return;
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
  drawn_ = false;
}

void ProgressBar::finish() {
  if (!enabled_ || !drawn_) return;
  std::fprintf(stderr, "\n");
  std::fflush(stderr);
  drawn_ = false;
}

}  // namespace spvit::train
