#include "worker/cli/command.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace likeness::cli {
namespace {

constexpr int kHelpColumn = 28;

const Option* FindOption(const Command& command, const std::string& name) {
  for (const Option& option : command.options) {
    if (option.name == name) return &option;
  }
  return nullptr;
}

bool IsHelp(const std::string& arg) { return arg == "--help" || arg == "-h"; }

}  // namespace

const std::string& Args::Get(const std::string& name) const {
  static const std::string* const kEmpty = new std::string();
  auto it = values_.find(name);
  return it == values_.end() ? *kEmpty : it->second;
}

std::vector<std::string> Args::GetAll(const std::string& name) const {
  auto it = all_.find(name);
  return it == all_.end() ? std::vector<std::string>{} : it->second;
}

absl::StatusOr<long long> Args::GetInt(const std::string& name) const {
  long long value = 0;
  if (!absl::SimpleAtoi(Get(name), &value)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, " wants an integer, got '", Get(name), "'"));
  }
  return value;
}

absl::StatusOr<double> Args::GetDouble(const std::string& name) const {
  double value = 0;
  if (!absl::SimpleAtod(Get(name), &value)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, " wants a number, got '", Get(name), "'"));
  }
  return value;
}

absl::StatusOr<Args> ParseArgs(const Command& command, const std::vector<std::string>& argv) {
  Args args;
  for (const Option& option : command.options) args.values_[option.name] = option.default_value;
  bool options_done = false;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    if (options_done || arg.size() < 2 || arg.compare(0, 2, "--") != 0) {
      args.positional_.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    std::string name = arg.substr(2);
    std::string value;
    bool has_inline_value = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_inline_value = true;
    }
    const Option* option = FindOption(command, name);
    if (option == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown option --", name, " for '", command.name, "'"));
    }
    if (option->value_name.empty()) {
      if (has_inline_value) {
        return absl::InvalidArgumentError(absl::StrCat("--", name, " takes no value"));
      }
      value = "true";
    } else if (!has_inline_value) {
      if (i + 1 >= argv.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", name, " needs a value (", option->value_name, ")"));
      }
      value = argv[++i];
    }
    if (args.given_.count(name) > 0 && !option->repeated) {
      return absl::InvalidArgumentError(absl::StrCat("--", name, " given twice"));
    }
    args.values_[name] = value;
    args.given_[name] = true;
    args.all_[name].push_back(value);
  }
  const int count = static_cast<int>(args.positional_.size());
  if (count < command.min_positional) {
    return absl::InvalidArgumentError(absl::StrCat("'", command.name, "' needs at least ",
                                                   command.min_positional, " argument(s)"));
  }
  if (command.max_positional >= 0 && count > command.max_positional) {
    return absl::InvalidArgumentError(absl::StrCat("'", command.name, "' takes at most ",
                                                   command.max_positional, " argument(s)"));
  }
  return args;
}

std::string CommandHelp(const std::string& program, const Command& command) {
  std::ostringstream out;
  out << "Usage: " << program << " " << command.name << " " << command.usage_args << "\n\n"
      << command.summary << "\n";
  if (!command.description.empty()) out << "\n" << command.description << "\n";
  if (!command.options.empty()) out << "\nOptions:\n";
  for (const Option& option : command.options) {
    std::string left = "  --" + option.name;
    if (!option.value_name.empty()) left += " " + option.value_name;
    if (option.repeated) left += " ...";
    out << left;
    if (left.size() + 2 > static_cast<size_t>(kHelpColumn)) {
      out << "\n" << std::string(kHelpColumn, ' ');
    } else {
      out << std::string(kHelpColumn - left.size(), ' ');
    }
    out << option.help;
    if (!option.default_value.empty() && !option.value_name.empty()) {
      out << " (default: " << option.default_value << ")";
    }
    out << "\n";
  }
  out << "  --help" << std::string(kHelpColumn - 8, ' ') << "show this help\n";
  return out.str();
}

std::string ProgramHelp(const std::string& program, const std::string& about,
                        const std::vector<Command>& commands) {
  std::ostringstream out;
  out << "Usage: " << program << " <command> [options] [args]\n\n" << about << "\n\nCommands:\n";
  for (const Command& command : commands) {
    std::string left = "  " + command.name;
    out << left << std::string(std::max<size_t>(2, kHelpColumn - left.size()), ' ')
        << command.summary << "\n";
  }
  out << "\nRun '" << program << " <command> --help' for a command's options.\n";
  return out.str();
}

int RunCommandLine(const std::string& about, const std::vector<Command>& commands,
                   const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  std::string program = argv.empty() ? "likeness" : argv[0];
  if (size_t slash = program.rfind('/'); slash != std::string::npos) program = program.substr(slash + 1);
  if (argv.size() < 2) {
    err << ProgramHelp(program, about, commands);
    return kExitUsage;
  }
  std::string name = argv[1];
  std::vector<std::string> rest(argv.begin() + 2, argv.end());
  if (IsHelp(name)) {
    out << ProgramHelp(program, about, commands);
    return kExitOk;
  }
  if (name == "help") {
    if (rest.empty()) {
      out << ProgramHelp(program, about, commands);
      return kExitOk;
    }
    name = rest[0];
    rest = {"--help"};
  }
  auto it = std::find_if(commands.begin(), commands.end(),
                         [&](const Command& c) { return c.name == name; });
  if (it == commands.end()) {
    err << program << ": unknown command '" << name << "'\n\n" << ProgramHelp(program, about, commands);
    return kExitUsage;
  }
  if (std::any_of(rest.begin(), rest.end(), IsHelp)) {
    // --help after `--` is an argument, not a request for help.
    auto dashdash = std::find(rest.begin(), rest.end(), "--");
    if (std::any_of(rest.begin(), dashdash, IsHelp)) {
      out << CommandHelp(program, *it);
      return kExitOk;
    }
  }
  absl::StatusOr<Args> args = ParseArgs(*it, rest);
  if (!args.ok()) {
    err << program << " " << name << ": " << args.status().message() << "\n"
        << "Run '" << program << " " << name << " --help' for usage.\n";
    return kExitUsage;
  }
  return it->run(*args, out, err);
}

}  // namespace likeness::cli
