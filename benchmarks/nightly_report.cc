// Reads a machine's benchmark history (JSON lines of bench_record.h), compares the latest run
// of every figure with the previous runs, and writes the report directory (index.html with a
// plot per figure, summary.json). benchmarks/nightly runs it after the benchmarks.
//
//   nightly_report --history FILE --out DIR [--notes FILE]
//     [--fail_on_regression true|false] [--min_history N] [--window N]
//     [--relative_floor F] [--mad_multiplier F] [--spread_fraction F]
//
// Exit status: 0 nothing flagged (or --fail_on_regression false); 1 a regression or a failed
// benchmark in the latest run; 2 bad arguments or unreadable files. The noise rule is in
// benchmarks/report/regression.h.
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <type_traits>

#include "absl/strings/numbers.h"
#include "benchmarks/report/html_report.h"
#include "common/atomic_file.h"

namespace {

using namespace likeness::bench;

constexpr int kExitFlagged = 1;
constexpr int kExitUsage = 2;

constexpr char kUsage[] =
    "usage: nightly_report --history FILE --out DIR [--notes FILE]\n"
    "         [--fail_on_regression true|false] [--min_history N] [--window N]\n"
    "         [--relative_floor F] [--mad_multiplier F] [--spread_fraction F]\n"
    "Compares the latest run in FILE with the previous ones and writes DIR/index.html and\n"
    "DIR/summary.json. Exit 1 when a regression or a failed benchmark is flagged.\n";

bool ParseArgs(int argc, char** argv, std::map<std::string, std::string>* flags) {
  static const char* const kKnown[] = {"history",        "out",          "notes",
                                       "fail_on_regression", "min_history", "window",
                                       "relative_floor", "mad_multiplier", "spread_fraction"};
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) return false;
    arg = arg.substr(2);
    std::string value;
    const size_t eq = arg.find('=');
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return false;
    }
    bool known = false;
    for (const char* k : kKnown) known = known || arg == k;
    if (!known) {
      std::cerr << "nightly_report: unknown flag --" << arg << "\n";
      return false;
    }
    (*flags)[arg] = value;
  }
  return flags->count("history") && flags->count("out");
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--help") return std::cout << kUsage, 0;
  }
  std::map<std::string, std::string> flags;
  if (!ParseArgs(argc, argv, &flags)) return std::cerr << kUsage, kExitUsage;
  NoiseRule rule;
  bool fail_on_regression = true;
  const auto number = [&](const char* name, auto* out) {
    if (!flags.count(name)) return true;
    bool ok = false;
    if constexpr (std::is_same_v<std::remove_pointer_t<decltype(out)>, int>) {
      ok = absl::SimpleAtoi(flags[name], out);
    } else {
      ok = absl::SimpleAtod(flags[name], out);
    }
    if (!ok) std::cerr << "nightly_report: --" << name << " wants a number\n";
    return ok;
  };
  if (!number("min_history", &rule.min_previous_runs) || !number("window", &rule.window) ||
      !number("relative_floor", &rule.relative_floor) ||
      !number("mad_multiplier", &rule.mad_multiplier) ||
      !number("spread_fraction", &rule.spread_fraction)) {
    return kExitUsage;
  }
  if (flags.count("fail_on_regression")) {
    const std::string v = flags["fail_on_regression"];
    if (v != "true" && v != "false") return std::cerr << kUsage, kExitUsage;
    fail_on_regression = v == "true";
  }

  absl::StatusOr<History> history = LoadHistory(flags["history"]);
  if (!history.ok()) return std::cerr << "nightly_report: " << history.status() << "\n", kExitUsage;
  const Analysis analysis = Analyze(*history, rule);
  ReportInputs inputs;
  inputs.history = &*history;
  inputs.analysis = &analysis;
  inputs.rule = rule;
  inputs.history_path = flags["history"];
  if (flags.count("notes")) {
    absl::StatusOr<std::string> notes = likeness::ReadFileToString(flags["notes"]);
    if (notes.ok()) inputs.notes = *notes;  // notes are optional: a run with none still reports
  }
  const absl::Status written = WriteReport(flags["out"], inputs);
  if (!written.ok()) return std::cerr << "nightly_report: " << written << "\n", kExitUsage;

  std::cout << "nightly_report: " << history->runs.size() << " runs, " << history->series.size()
            << " figures; " << analysis.regressions << " regression(s), " << analysis.failures
            << " failure(s)\n";
  for (const ReportFlag& f : analysis.flags) {
    std::cout << "  " << FlagKindName(f.kind) << ": " << f.what << ": " << f.detail << "\n";
  }
  std::cout << "report: " << flags["out"] << "/index.html\n";
  const bool flagged = analysis.regressions > 0 || analysis.failures > 0;
  return flagged && fail_on_regression ? kExitFlagged : 0;
}
