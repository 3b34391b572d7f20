#include "tests/cli/run_program.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cerrno>
#include <thread>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/test_data.h"

extern char** environ;

namespace likeness::testing {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

constexpr std::chrono::milliseconds kPollInterval(20);

std::vector<std::string> Environment(const EnvChanges& env) {
  std::vector<std::string> entries;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    const std::string name = entry.substr(0, entry.find('='));
    if (env.count(name) == 0) entries.push_back(entry);
  }
  for (const auto& [name, value] : env) {
    if (value) entries.push_back(name + "=" + *value);
  }
  return entries;
}

// Spawns `binary args...` with stdout/stderr sent to files; returns the pid or -1 with `error`.
pid_t Spawn(const std::string& binary, const std::vector<std::string>& args, const EnvChanges& env,
            const std::string& out_path, const std::string& err_path, std::string* error) {
  std::vector<std::string> argv_strings = {binary};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& arg : argv_strings) argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_strings = Environment(env);
  std::vector<char*> envp;
  for (std::string& entry : env_strings) envp.push_back(entry.data());
  envp.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = 0;
  const int spawn_error = posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (spawn_error != 0) {
    *error = "posix_spawn " + binary + ": " + std::strerror(spawn_error);
    return -1;
  }
  return pid;
}

std::pair<std::string, std::string> NextOutputPaths() {
  static const std::string* const dir = new std::string(MakeTestTempDir("run_program"));
  static int run_count = 0;
  const std::string run = *dir + "/" + std::to_string(run_count++);
  return {run + ".stdout", run + ".stderr"};
}

}  // namespace

ProcessResult RunProgram(const std::string& binary, const std::vector<std::string>& args,
                         const EnvChanges& env) {
  const auto [out_path, err_path] = NextOutputPaths();
  ProcessResult result;
  const pid_t pid = Spawn(binary, args, env, out_path, err_path, &result.err);
  if (pid < 0) return result;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  result.out = ReadFile(out_path);
  result.err = ReadFile(err_path);
  return result;
}

BackgroundProcess::BackgroundProcess(const std::string& binary, const std::vector<std::string>& args) {
  const auto paths = NextOutputPaths();
  out_path_ = paths.first;
  std::string error;
  pid_ = Spawn(binary, args, {}, paths.first, paths.second, &error);
}

BackgroundProcess::~BackgroundProcess() {
  if (pid_ > 0) Stop(SIGKILL, std::chrono::seconds(5));
}

std::optional<std::string> BackgroundProcess::WaitForOutput(const std::string& needle,
                                                            std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    std::string out = ReadFile(out_path_);
    if (out.find(needle) != std::string::npos) return out;
    std::this_thread::sleep_for(kPollInterval);
  }
  return std::nullopt;
}

int BackgroundProcess::Stop(int signal, std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, signal);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    const pid_t done = waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  ::kill(pid_, SIGKILL);
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return -1;
}

}  // namespace likeness::testing
