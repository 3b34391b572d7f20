#include "coordinator/leaderboard.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace likeness::coordinator {

absl::StatusOr<Leaderboard> BuildLeaderboard(const std::vector<v1::Job>& jobs,
                                             const std::string& sort_metric, bool ascending) {
  Leaderboard board;
  std::set<std::string> metrics;
  for (const v1::Job& job : jobs) {
    if (job.spec().kind() != v1::JOB_KIND_EVALUATE || job.state() != v1::JOB_STATE_SUCCEEDED) {
      continue;
    }
    LeaderboardRow row;
    row.job_id = job.id();
    row.subject = job.spec().subject();
    for (const v1::AxisValue& value : job.spec().point()) {
      if (std::find(board.fields.begin(), board.fields.end(), value.field()) == board.fields.end()) {
        board.fields.push_back(value.field());
      }
      row.values[value.field()] = value.value();
    }
    for (const auto& [name, value] : job.metrics()) {
      row.metrics[name] = value;
      metrics.insert(name);
    }
    board.rows.push_back(std::move(row));
  }
  board.metrics.assign(metrics.begin(), metrics.end());
  board.sorted_by = sort_metric.empty() && !board.metrics.empty() ? board.metrics.front() : sort_metric;
  if (!sort_metric.empty() && metrics.count(sort_metric) == 0 && !board.rows.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("no metric '", sort_metric, "' (metrics: ",
                                                   absl::StrJoin(board.metrics, ", "), ")"));
  }
  const std::string& key = board.sorted_by;
  std::stable_sort(board.rows.begin(), board.rows.end(),
                   [&key, ascending](const LeaderboardRow& a, const LeaderboardRow& b) {
                     auto x = a.metrics.find(key), y = b.metrics.find(key);
                     if (x == a.metrics.end() || y == b.metrics.end()) {
                       return x != a.metrics.end() && y == b.metrics.end();
                     }
                     return ascending ? x->second < y->second : x->second > y->second;
                   });
  return board;
}

std::string FormatLeaderboard(const Leaderboard& board) {
  std::vector<std::string> header = {"#", "subject"};
  header.insert(header.end(), board.fields.begin(), board.fields.end());
  header.insert(header.end(), board.metrics.begin(), board.metrics.end());
  std::vector<std::vector<std::string>> cells = {header};
  for (size_t i = 0; i < board.rows.size(); ++i) {
    const LeaderboardRow& row = board.rows[i];
    std::vector<std::string> line = {absl::StrCat(i + 1), row.subject};
    for (const std::string& field : board.fields) {
      auto it = row.values.find(field);
      line.push_back(it == row.values.end() ? "-" : it->second);
    }
    for (const std::string& metric : board.metrics) {
      auto it = row.metrics.find(metric);
      line.push_back(it == row.metrics.end() ? "-" : absl::StrFormat("%.4f", it->second));
    }
    cells.push_back(std::move(line));
  }
  std::vector<size_t> widths(header.size(), 0);
  for (const auto& line : cells) {
    for (size_t c = 0; c < line.size(); ++c) widths[c] = std::max(widths[c], line[c].size());
  }
  std::string text;
  for (const auto& line : cells) {
    for (size_t c = 0; c < line.size(); ++c) {
      absl::StrAppend(&text, line[c], std::string(widths[c] - line[c].size(), ' '),
                      c + 1 == line.size() ? "\n" : "  ");
    }
  }
  if (board.rows.empty()) absl::StrAppend(&text, "(no evaluated points yet)\n");
  return text;
}

}  // namespace likeness::coordinator
