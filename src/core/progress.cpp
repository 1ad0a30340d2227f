#include "spvit/core/progress.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <utility>

namespace spvit {
namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string format(const char* fmt, double a) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), fmt, a);
  return buf;
}

}  // namespace

std::string human_rate(double v) {
  if (v >= 1e6) return format("%.1fM", v / 1e6);
  if (v >= 1e3) return format("%.1fk", v / 1e3);
  return format("%.0f", v);
}

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

std::string format_progress_line(const std::string& label, int64_t done, int64_t total, const std::string& details,
                                 double eta_s, int bar) {
  const double fraction = total > 0 ? std::min(1.0, static_cast<double>(done) / static_cast<double>(total)) : 0.0;
  const int filled = static_cast<int>(fraction * bar);
  std::string cells(static_cast<size_t>(bar), ' ');
  for (int i = 0; i < filled; ++i) cells[static_cast<size_t>(i)] = '=';
  if (filled < bar && done > 0) cells[static_cast<size_t>(filled)] = '>';
  const int digits = static_cast<int>(std::to_string(total).size());
  char head[160];
  std::snprintf(head, sizeof(head), "%s %*lld/%lld [%s] %3d%%", label.c_str(), digits, static_cast<long long>(done),
                static_cast<long long>(total), cells.c_str(), static_cast<int>(fraction * 100));
  std::string line = head;
  if (!details.empty()) line += " | " + details;
  return line + " | ETA " + (eta_s < 0 ? std::string("?") : format_duration(eta_s));
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

ProgressBar::ProgressBar(std::string label, int64_t total, int64_t first, bool enabled)
    : label_(std::move(label)), total_(total), first_(first), enabled_(enabled), start_s_(now_s()) {}

double ProgressBar::elapsed_s() const { return now_s() - start_s_; }

double ProgressBar::eta_s(int64_t done) const {
  const int64_t this_run = done - first_;
  return this_run > 0 ? elapsed_s() / static_cast<double>(this_run) * static_cast<double>(total_ - done) : -1;
}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::update(int64_t done, const std::string& details) {
  if (!enabled_) return;
  const std::string line = format_progress_line(label_, done, total_, details, eta_s(done));
  // \r + erase-line: redraw in place (a shorter line leaves no leftovers).
  std::fprintf(stderr, "\r\033[K%s", line.c_str());
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

}  // namespace spvit
