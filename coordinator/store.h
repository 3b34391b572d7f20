// The coordinator's journal in SQLite (WAL, synchronous=FULL): the current snapshot of every
// sweep, job and worker, and one row per job transition with its attempt. The coordinator
// applies each Mutation in one transaction before answering the RPC that caused it, so a
// restarted coordinator (Load + CoordinatorState::Restore) loses nothing that was answered.
//
// Tables:
//   sweeps(id, proto)                      Sweep snapshots
//   jobs(id, sweep_id, state, attempt, proto)  Job snapshots (state/attempt for queries)
//   workers(id, proto)                     Worker snapshots
//   job_transitions(seq, job_id, attempt, from_state, to_state, worker_id, reason, time_ms)
#ifndef LIKENESS_COORDINATOR_STORE_H_
#define LIKENESS_COORDINATOR_STORE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "coordinator/coordinator_state.h"
#include "coordinator/mutation.h"

struct sqlite3;

namespace likeness::coordinator {

// Named crash point (STYLE.md §7): armed, Apply writes every row and then returns ABORTED
// without committing, as a coordinator killed just before COMMIT would.
inline constexpr char kCrashBeforeCommit[] = "store.before_commit";

class Store {
 public:
  // Opens or creates the database at `path` (":memory:" for tests that need no file).
  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::string& path);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Writes the mutation in one transaction (all of it or none).
  absl::Status Apply(const Mutation& mutation);
  // Everything the journal holds.
  absl::StatusOr<Snapshot> Load();
  // The transitions of one job, oldest first.
  absl::StatusOr<std::vector<Transition>> Transitions(const std::string& job_id);

  void ArmCrashPoint(const std::string& name) { armed_crash_point_ = name; }

 private:
  explicit Store(sqlite3* db) : db_(db) {}
  absl::Status Exec(const char* sql);
  absl::Status Error(const std::string& what) const;
  absl::Status ApplyRows(const Mutation& mutation);

  sqlite3* db_;
  std::string armed_crash_point_;
};

}  // namespace likeness::coordinator

#endif  // LIKENESS_COORDINATOR_STORE_H_
