// Runs the built binaries (`likeness`, the daemons) as child processes, as a user would, and
// captures what they print. No shell is involved, so arguments pass unchanged.
#ifndef LIKENESS_TESTS_CLI_RUN_PROGRAM_H_
#define LIKENESS_TESTS_CLI_RUN_PROGRAM_H_

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace likeness::testing {

inline constexpr char kLikenessBinary[] = LIKENESS_BINARY_DIR "/bin/likeness";
inline constexpr char kCoordinatorBinary[] = LIKENESS_BINARY_DIR "/bin/likeness-coordinator";
inline constexpr char kWorkerBinary[] = LIKENESS_BINARY_DIR "/bin/likeness-worker";

struct ProcessResult {
  int exit_code = -1;  // -1 when it did not exit normally (signal, spawn failure).
  std::string out;
  std::string err;
};

using EnvChanges = std::map<std::string, std::optional<std::string>>;

// Runs `binary args...` to completion with the test's environment, where each entry of `env`
// sets (a value) or removes (std::nullopt) a variable.
ProcessResult RunProgram(const std::string& binary, const std::vector<std::string>& args,
                         const EnvChanges& env = {});

inline ProcessResult RunLikeness(const std::vector<std::string>& args, const EnvChanges& env = {}) {
  return RunProgram(kLikenessBinary, args, env);
}

// A long-running child (a daemon). Its stdout goes to a file that WaitForOutput polls; the
// destructor sends SIGKILL if it is still running, so a failing test never leaves it behind.
class BackgroundProcess {
 public:
  BackgroundProcess(const std::string& binary, const std::vector<std::string>& args);
  ~BackgroundProcess();
  BackgroundProcess(const BackgroundProcess&) = delete;
  BackgroundProcess& operator=(const BackgroundProcess&) = delete;

  bool started() const { return pid_ > 0; }
  // Polls stdout until it contains `needle` or `timeout` passes; returns stdout so far.
  std::optional<std::string> WaitForOutput(const std::string& needle, std::chrono::milliseconds timeout);
  // Sends `signal` and waits up to `timeout` for the exit; the exit code, or -1.
  int Stop(int signal, std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
  std::string out_path_;
};

}  // namespace likeness::testing

#endif  // LIKENESS_TESTS_CLI_RUN_PROGRAM_H_
