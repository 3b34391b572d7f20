// The leaderboard of a sweep: one row per evaluated point (subject, the swept values, every
// metric), sorted by any metric. Pure: the CLI (`likeness results`) and the dashboard both
// build it from ListJobs.
#ifndef LIKENESS_COORDINATOR_LEADERBOARD_H_
#define LIKENESS_COORDINATOR_LEADERBOARD_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "protos/likeness.pb.h"

namespace likeness::coordinator {

struct LeaderboardRow {
  std::string job_id;
  std::string subject;
  std::map<std::string, std::string> values;   // axis field -> value
  std::map<std::string, double> metrics;
};

struct Leaderboard {
  std::vector<std::string> fields;   // swept fields, in the order the points name them
  std::vector<std::string> metrics;  // every metric any row has, sorted
  std::vector<LeaderboardRow> rows;  // sorted
  std::string sorted_by;
};

// Rows from the succeeded evaluate jobs among `jobs`. `sort_metric` empty: the first metric;
// rows without it go last. INVALID_ARGUMENT when `sort_metric` is no row's metric.
absl::StatusOr<Leaderboard> BuildLeaderboard(const std::vector<v1::Job>& jobs,
                                             const std::string& sort_metric, bool ascending);

// A plain-text table: rank, subject, fields, metrics (4 decimals).
std::string FormatLeaderboard(const Leaderboard& board);

}  // namespace likeness::coordinator

#endif  // LIKENESS_COORDINATOR_LEADERBOARD_H_
