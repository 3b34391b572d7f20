// Shared command-line handling for the daemons' main.cc files (ABSL_FLAG lives only there).
// `--help` prints the usage and the flags defined in *_main.cc files (not the hundreds that
// libraries register) and exits 0; abseil 20220623 would exit 1, which scripts read as failure.
#ifndef LIKENESS_COMMON_FLAGS_USAGE_H_
#define LIKENESS_COMMON_FLAGS_USAGE_H_

#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"

namespace likeness {

inline bool IsMainFile(absl::string_view file) { return absl::EndsWith(file, "_main.cc"); }

inline void PrintMainFlagsHelp(std::ostream& out, const std::string& usage) {
  out << usage << "\n\nFlags:\n";
  std::map<std::string, const absl::CommandLineFlag*> sorted;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (IsMainFile(flag->Filename())) sorted[std::string(name)] = flag;
  }
  for (const auto& [name, flag] : sorted) {
    out << "  --" << name << "  " << flag->Help() << " (default: " << flag->DefaultValue() << ")\n";
  }
  out << "  --help  show this help\n  --version  print the version\n";
}

// Parses flags, handling --help/-h and --version with exit code 0. Returns positional args.
inline std::vector<char*> ParseMainFlags(int argc, char** argv, const std::string& usage,
                                         const std::string& version) {
  absl::SetProgramUsageMessage(usage);
  absl::FlagsUsageConfig config;
  config.contains_help_flags = IsMainFile;
  config.contains_helpshort_flags = IsMainFile;
  config.version_string = [version]() { return version + "\n"; };
  absl::SetFlagsUsageConfig(config);
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") break;
    if (arg == "--help" || arg == "-h" || arg == "--helpshort") {
      PrintMainFlagsHelp(std::cout, usage);
      std::exit(0);
    }
  }
  return absl::ParseCommandLine(argc, argv);
}

}  // namespace likeness

#endif  // LIKENESS_COMMON_FLAGS_USAGE_H_
