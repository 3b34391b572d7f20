// A small subcommand framework for `likeness` (git-style: `likeness tokenize --encoder 2 TEXT`).
// Each subcommand declares its options as data, so `likeness help CMD` and `likeness CMD
// --help` are generated from the same table the parser uses and can never drift from it.
// ABSL_FLAG stays reserved for the single-purpose daemons' main.cc files (STYLE.md §6).
#ifndef LIKENESS_WORKER_CLI_COMMAND_H_
#define LIKENESS_WORKER_CLI_COMMAND_H_

#include <functional>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace likeness::cli {

// Process exit codes shared by every subcommand.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // The command ran and failed (bad file, bad data).
inline constexpr int kExitUsage = 2;    // The command line itself was wrong.

struct Option {
  std::string name;           // Without dashes: "vocab" is given as --vocab PATH or --vocab=PATH.
  std::string value_name;     // "PATH"; empty for a switch that takes no value.
  std::string help;
  std::string default_value;  // Shown in help; returned by Args::Get when not given.
  bool repeated = false;      // May be given several times; read with Args::GetAll.
};

class Args {
 public:
  const std::string& Get(const std::string& name) const;
  bool Given(const std::string& name) const { return given_.count(name) > 0; }
  bool Switch(const std::string& name) const { return Given(name); }
  // Every value of a repeated option, in command-line order (empty when not given).
  std::vector<std::string> GetAll(const std::string& name) const;
  // Parses the value as an integer; the error names the option and the value.
  absl::StatusOr<long long> GetInt(const std::string& name) const;
  absl::StatusOr<double> GetDouble(const std::string& name) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  friend absl::StatusOr<Args> ParseArgs(const struct Command&, const std::vector<std::string>&);
  std::map<std::string, std::string> values_;
  std::map<std::string, bool> given_;
  std::map<std::string, std::vector<std::string>> all_;
  std::vector<std::string> positional_;
};

struct Command {
  std::string name;
  std::string summary;     // One line for `likeness --help`.
  std::string usage_args;  // "[options] TEXT..."
  std::string description; // Paragraphs for `likeness CMD --help`.
  std::vector<Option> options;
  int min_positional = 0;
  int max_positional = -1;  // -1: unbounded.
  // Returns a process exit code; prints its own results to `out` and errors to `err`.
  std::function<int(const Args&, std::ostream& out, std::ostream& err)> run;
};

// Parses everything after the subcommand name. `--` ends option parsing.
absl::StatusOr<Args> ParseArgs(const Command& command, const std::vector<std::string>& argv);

std::string CommandHelp(const std::string& program, const Command& command);
std::string ProgramHelp(const std::string& program, const std::string& about,
                        const std::vector<Command>& commands);

// Dispatches argv[1] to a command; handles --help, -h, `help CMD` and unknown commands.
int RunCommandLine(const std::string& about, const std::vector<Command>& commands,
                   const std::vector<std::string>& argv, std::ostream& out, std::ostream& err);

}  // namespace likeness::cli

#endif  // LIKENESS_WORKER_CLI_COMMAND_H_
