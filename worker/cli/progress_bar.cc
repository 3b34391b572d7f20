#include "worker/cli/progress_bar.h"

#include <unistd.h>

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace likeness::cli {

ProgressBar::ProgressBar(std::ostream& out, bool interactive)
    : out_(out), interactive_(interactive) {}

void ProgressBar::Start(const std::string& label, int64_t total) {
  if (open_) Finish();
  label_ = label;
  total_ = total;
  last_percent_printed_ = -1;
  open_ = true;
  start_ = std::chrono::steady_clock::now();
  last_draw_ = start_ - kRedrawInterval;
}

std::string ProgressBar::FormatDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const int64_t s = std::llround(seconds);
  if (s < 60) return absl::StrCat(s, "s");
  if (s < 3600) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  return absl::StrFormat("%dh%02dm", s / 3600, (s % 3600) / 60);
}

std::string ProgressBar::Line(int64_t done, const std::string& detail) const {
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = elapsed > 0 ? done / elapsed : 0;
  const double eta = rate > 0 ? (total_ - done) / rate : NAN;
  std::string line = label_.empty() ? "" : label_ + " ";
  if (interactive_) {
    const int filled = total_ > 0 ? static_cast<int>(kBarWidth * done / total_) : 0;
    for (int i = 0; i < kBarWidth; ++i) line += i < filled ? "\u2588" : "\u2591";
    absl::StrAppend(&line, "  ", done, "/", total_);
  } else {
    absl::StrAppend(&line, done, "/", total_, " (", total_ > 0 ? 100 * done / total_ : 0, "%)");
  }
  absl::StrAppend(&line, absl::StrFormat("  %.2f it/s", rate));
  absl::StrAppend(&line, "  ", done < total_ ? "ETA " + FormatDuration(eta)
                                             : "in " + FormatDuration(elapsed));
  if (!detail.empty()) absl::StrAppend(&line, "  ", detail);
  return line;
}

void ProgressBar::Update(int64_t done, const std::string& detail) {
  const auto now = std::chrono::steady_clock::now();
  if (interactive_) {
    if (done < total_ && now - last_draw_ < kRedrawInterval) return;
    last_draw_ = now;
    out_ << "\r\033[K" << Line(done, detail) << std::flush;
    return;
  }
  const int percent = total_ > 0 ? static_cast<int>(100 * done / total_) : 100;
  const int bucket = percent / kLinePercentStep;
  if (bucket == last_percent_printed_ && done < total_) return;
  last_percent_printed_ = bucket;
  out_ << Line(done, detail) << "\n" << std::flush;
}

void ProgressBar::Finish() {
  if (!open_) return;
  open_ = false;
  if (interactive_) out_ << "\n" << std::flush;
}

bool StderrIsTerminal() { return isatty(STDERR_FILENO) == 1; }

}  // namespace likeness::cli
