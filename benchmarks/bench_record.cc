#include "benchmarks/bench_record.h"

#include <fcntl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "benchmarks/bench_switches.h"

namespace likeness::bench {
namespace {

// nvidia-smi answers in well under a second; a hung driver must not hang the benchmark.
constexpr char kNvidiaSmiQuery[] =
    "timeout 10 nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null";
constexpr char kNvidiaSmiBanner[] = "timeout 10 nvidia-smi 2>/dev/null";

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? "" : value;
}

// First line of a command's standard output, trimmed; empty when it fails.
std::string FirstLine(const char* command) {
  FILE* pipe = popen(command, "r");
  if (pipe == nullptr) return "";
  char buffer[512] = {};
  std::string line = fgets(buffer, sizeof(buffer), pipe) == nullptr ? "" : buffer;
  pclose(pipe);
  return std::string(absl::StripAsciiWhitespace(line));
}

bool OnPath(const std::string& program) {
  for (absl::string_view dir : absl::StrSplit(Env("PATH"), ':', absl::SkipEmpty())) {
    if (access(absl::StrCat(dir, "/", program).c_str(), X_OK) == 0) return true;
  }
  return false;
}

// "| NVIDIA-SMI 580.159.04   Driver Version: 580.159.04   CUDA Version: 13.0 |" -> "13.0".
std::string DriverCudaVersion() {
  FILE* pipe = popen(kNvidiaSmiBanner, "r");
  if (pipe == nullptr) return "";
  char buffer[512];
  std::string version;
  constexpr char kKey[] = "CUDA Version:";
  while (version.empty() && fgets(buffer, sizeof(buffer), pipe) != nullptr) {
    const char* at = std::strstr(buffer, kKey);
    if (at == nullptr) continue;
    std::string rest(at + sizeof(kKey) - 1);
    rest = std::string(absl::StripAsciiWhitespace(rest));
    version = rest.substr(0, rest.find_first_of(" |"));
  }
  pclose(pipe);
  return version;
}

std::string Compiler() {
#if defined(__clang__)
  return absl::StrCat("Clang ", __clang_major__, ".", __clang_minor__, ".", __clang_patchlevel__);
#elif defined(__GNUC__)
  return absl::StrCat("GCC ", __GNUC__, ".", __GNUC_MINOR__, ".", __GNUC_PATCHLEVEL__);
#else
  return "unknown";
#endif
}

std::string UtcNow() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

absl::Status Missing(const std::string& field) {
  return absl::InvalidArgumentError(absl::StrCat("benchmark record: no valid '", field, "'"));
}

}  // namespace

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown";
}

double UpperMedian(std::vector<double> samples) {
  std::sort(samples.begin(), samples.end());
  return samples.empty() ? 0 : samples[samples.size() / 2];
}


const char* BetterName(Better better) { return better == Better::kLower ? "lower" : "higher"; }

Figure SummarizeRepeats(std::string name, std::string unit, Better better,
                        std::vector<double> samples) {
  Figure figure;
  figure.name = std::move(name);
  figure.unit = std::move(unit);
  figure.better = better;
  figure.repeats = static_cast<int>(samples.size());
  if (samples.empty()) return figure;
  std::sort(samples.begin(), samples.end());
  const size_t n = samples.size();
  figure.median = n % 2 == 1 ? samples[n / 2] : (samples[n / 2 - 1] + samples[n / 2]) / 2;
  figure.min = samples.front();
  figure.max = samples.back();
  return figure;
}

MachineInfo DetectMachine() {
  MachineInfo machine;
  machine.id = Env(kMachineIdEnv);
  if (machine.id.empty()) {
    char host[256] = {};
    gethostname(host, sizeof(host) - 1);
    machine.id = host;
  }
  machine.cpu = CpuModel();
  machine.cores = static_cast<int>(std::thread::hardware_concurrency());
  if (OnPath("nvidia-smi")) {
    const std::string line = FirstLine(kNvidiaSmiQuery);  // "NVIDIA H100 80GB HBM3, 580.159.04"
    std::vector<std::string> parts = absl::StrSplit(line, ", ");
    if (parts.size() == 2) {
      machine.gpu = parts[0];
      machine.driver = parts[1];
      machine.cuda = DriverCudaVersion();
    }
  }
  machine.compiler = Compiler();
  utsname name{};
  if (uname(&name) == 0) machine.kernel = name.release;
  return machine;
}

BenchRecord NewRecord(const std::string& benchmark) {
  BenchRecord record;
  record.benchmark = benchmark;
  record.machine = DetectMachine();
  record.run_id = Env(kRunIdEnv);
  record.git = Env(kGitEnv);
  record.time = UtcNow();
  if (InjectedDelayMs() > 0) record.extra["injected_delay_ms"] = InjectedDelayMs();
  return record;
}

nlohmann::json ToJson(const BenchRecord& record) {
  nlohmann::json figures = nlohmann::json::array();
  for (const Figure& f : record.figures) {
    figures.push_back({{"name", f.name},     {"unit", f.unit}, {"better", BetterName(f.better)},
                       {"median", f.median}, {"min", f.min},   {"max", f.max},
                       {"repeats", f.repeats}});
  }
  const MachineInfo& m = record.machine;
  return {{"schema", kRecordSchema},
          {"benchmark", record.benchmark},
          {"status", record.status},
          {"config", record.config},
          {"figures", figures},
          {"machine",
           {{"id", m.id},
            {"cpu", m.cpu},
            {"cores", m.cores},
            {"gpu", m.gpu},
            {"driver", m.driver},
            {"cuda", m.cuda},
            {"libtorch", m.libtorch},
            {"compiler", m.compiler},
            {"kernel", m.kernel}}},
          {"run_id", record.run_id},
          {"time", record.time},
          {"git", record.git},
          {"extra", record.extra}};
}

absl::StatusOr<BenchRecord> RecordFromJson(const nlohmann::json& json) {
  if (!json.is_object()) return absl::InvalidArgumentError("benchmark record: not a JSON object");
  if (json.value("schema", 0) != kRecordSchema) return Missing("schema");
  BenchRecord record;
  if (!json.contains("benchmark") || !json["benchmark"].is_string()) return Missing("benchmark");
  record.benchmark = json["benchmark"].get<std::string>();
  record.status = json.value("status", std::string("ok"));
  record.config = json.value("config", nlohmann::json::object());
  if (!record.config.is_object()) return Missing("config");
  record.run_id = json.value("run_id", std::string());
  record.time = json.value("time", std::string());
  record.git = json.value("git", std::string());
  record.extra = json.value("extra", nlohmann::json::object());
  const nlohmann::json machine = json.value("machine", nlohmann::json::object());
  if (!machine.is_object()) return Missing("machine");
  MachineInfo& m = record.machine;
  m.id = machine.value("id", "");
  m.cpu = machine.value("cpu", "");
  m.cores = machine.value("cores", 0);
  m.gpu = machine.value("gpu", "");
  m.driver = machine.value("driver", "");
  m.cuda = machine.value("cuda", "");
  m.libtorch = machine.value("libtorch", "");
  m.compiler = machine.value("compiler", "");
  m.kernel = machine.value("kernel", "");
  const nlohmann::json figures = json.value("figures", nlohmann::json::array());
  if (!figures.is_array()) return Missing("figures");
  for (const nlohmann::json& f : figures) {
    if (!f.is_object() || !f.contains("name") || !f.contains("median") ||
        !f["median"].is_number()) {
      return Missing("figures[].name/median");
    }
    Figure figure;
    figure.name = f["name"].get<std::string>();
    figure.unit = f.value("unit", "");
    const std::string better = f.value("better", "lower");
    if (better != "lower" && better != "higher") return Missing("figures[].better");
    figure.better = better == "lower" ? Better::kLower : Better::kHigher;
    figure.median = f["median"].get<double>();
    figure.min = f.value("min", figure.median);
    figure.max = f.value("max", figure.median);
    figure.repeats = f.value("repeats", 1);
    record.figures.push_back(std::move(figure));
  }
  return record;
}

absl::Status AppendRecord(const std::string& path, const BenchRecord& record) {
  const std::string line = ToJson(record).dump() + "\n";
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat("open ", path, ": ", std::strerror(errno)));
  }
  const ssize_t written = write(fd, line.data(), line.size());
  const int write_errno = errno;
  close(fd);
  if (written != static_cast<ssize_t>(line.size())) {
    return absl::UnavailableError(
        absl::StrCat("append to ", path, ": ", written < 0 ? std::strerror(write_errno) : "short write"));
  }
  return absl::OkStatus();
}

}  // namespace likeness::bench
