// Progress for long commands (generate, train): a redrawn bar on a terminal, plain lines in
// logs and pipes so a CI log or a coordinator job log stays readable.
//
//   terminal: "\r[prompt 1/2] ██████████░░░░░░░░░░  12/30  3.1 it/s  ETA 6s"
//   pipe:     "[prompt 1/2] 12/30 (40%) 3.1 it/s ETA 6s"   every kLinePercentStep percent
#ifndef LIKENESS_WORKER_CLI_PROGRESS_BAR_H_
#define LIKENESS_WORKER_CLI_PROGRESS_BAR_H_

#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>

namespace likeness::cli {

inline constexpr int kBarWidth = 24;
inline constexpr int kLinePercentStep = 25;
// A terminal is redrawn at most this often, so a fast loop does not spend its time printing.
inline constexpr std::chrono::milliseconds kRedrawInterval{100};

class ProgressBar {
 public:
  // `interactive`: redraw in place (a terminal); otherwise print lines.
  ProgressBar(std::ostream& out, bool interactive);

  // Starts a new bar of `total` units under `label` ("[prompt 1/2]").
  void Start(const std::string& label, int64_t total);
  // `done` of total; `detail` is appended ("loss 0.123").
  void Update(int64_t done, const std::string& detail = "");
  // Ends the bar's line.
  void Finish();

  // "4s", "2m05s", "1h02m".
  static std::string FormatDuration(double seconds);

 private:
  std::string Line(int64_t done, const std::string& detail) const;

  std::ostream& out_;
  bool interactive_;
  std::string label_;
  int64_t total_ = 0;
  int last_percent_printed_ = -1;
  bool open_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

// Whether standard error is a terminal (progress goes to stderr, results to stdout).
bool StderrIsTerminal();

}  // namespace likeness::cli

#endif  // LIKENESS_WORKER_CLI_PROGRESS_BAR_H_
