#include "benchmarks/report/history.h"

#include <algorithm>
#include <fstream>
#include <map>

#include "absl/strings/str_cat.h"

namespace likeness::bench {
namespace {

double MedianOfValues(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// The latest run's machine, field by field: not every record knows everything (a program
// without torch has no libtorch version; a record the nightly driver writes for a crashed
// benchmark knows only the machine id), so a field is taken from any record of that run.
void MergeMachine(const MachineInfo& from, int run, int* machine_run, MachineInfo* into) {
  if (run != *machine_run) {
    *into = MachineInfo();
    *machine_run = run;
  }
  const auto take = [](const std::string& value, std::string* field) {
    if (!value.empty()) *field = value;
  };
  take(from.id, &into->id);
  take(from.cpu, &into->cpu);
  if (from.cores > 0) into->cores = from.cores;
  take(from.gpu, &into->gpu);
  take(from.driver, &into->driver);
  take(from.cuda, &into->cuda);
  take(from.libtorch, &into->libtorch);
  take(from.compiler, &into->compiler);
  take(from.kernel, &into->kernel);
}

}  // namespace

std::string SeriesKey(const std::string& benchmark, const nlohmann::json& config,
                      const std::string& figure) {
  // nlohmann::json objects are std::map-backed: dump() sorts keys, so equal configs match.
  return absl::StrCat(benchmark, " | ", config.dump(), " | ", figure);
}

History BuildHistory(const std::vector<BenchRecord>& records) {
  History history;
  std::map<std::string, int> run_index;
  // Per series, per run: the records' figures, merged at the end.
  std::map<std::string, Series> series;
  std::map<std::string, std::map<int, std::vector<Figure>>> values;
  std::map<std::string, std::map<int, int>> delays;
  int machine_run = -1;
  for (size_t i = 0; i < records.size(); ++i) {
    const BenchRecord& record = records[i];
    const std::string id = record.run_id.empty() ? absl::StrCat("record-", i) : record.run_id;
    auto [it, inserted] = run_index.emplace(id, static_cast<int>(history.runs.size()));
    if (inserted) history.runs.push_back({id, record.time, record.git});
    const int run = it->second;
    MergeMachine(record.machine, run, &machine_run, &history.latest_machine);
    if (record.status != "ok") {
      history.statuses.push_back({run, record.benchmark, record.config, record.status});
      continue;
    }
    const int delay = record.extra.value("injected_delay_ms", 0);
    for (const Figure& figure : record.figures) {
      const std::string key = SeriesKey(record.benchmark, record.config, figure.name);
      Series& s = series[key];
      if (s.key.empty()) {
        s.key = key;
        s.benchmark = record.benchmark;
        s.config = record.config;
        s.figure = figure.name;
      }
      // The newest record's unit and direction win, should a benchmark ever change them.
      s.unit = figure.unit;
      s.better = figure.better;
      values[key][run].push_back(figure);
      delays[key][run] = std::max(delays[key][run], delay);
    }
  }
  for (auto& [key, s] : series) {
    for (const auto& [run, figures] : values[key]) {
      Point point;
      point.run = run;
      std::vector<double> medians;
      point.min = figures.front().min;
      point.max = figures.front().max;
      for (const Figure& f : figures) {
        medians.push_back(f.median);
        point.min = std::min(point.min, f.min);
        point.max = std::max(point.max, f.max);
        point.repeats += f.repeats;
      }
      point.median = MedianOfValues(medians);
      point.injected_delay_ms = delays[key][run];
      s.points.push_back(point);
    }
    history.series.push_back(std::move(s));
  }
  return history;
}

absl::StatusOr<History> LoadHistory(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("no history file at ", path));
  std::vector<BenchRecord> records;
  int unreadable = 0;
  std::string line;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const nlohmann::json json = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    absl::StatusOr<BenchRecord> record =
        json.is_discarded() ? absl::InvalidArgumentError("not JSON") : RecordFromJson(json);
    if (!record.ok()) {
      ++unreadable;  // a line cut by a crash, or a future schema: the rest still counts
      continue;
    }
    records.push_back(std::move(*record));
  }
  History history = BuildHistory(records);
  history.unreadable_lines = unreadable;
  return history;
}

}  // namespace likeness::bench
