// The running coordinator: the state machine behind one lock, its journal, the lease-expiry
// thread and the wake-ups of Watch streams. The gRPC services (sweep_service.h,
// worker_service.h) are thin adapters over it, so tests and benchmarks drive it directly too.
//
// Every change runs as: lock; state change -> Mutation; journal the Mutation (one SQLite
// transaction); unlock; answer. When the journal refuses a write, the in-memory state is
// rebuilt from the journal (so memory never runs ahead of disk) and the call answers
// UNAVAILABLE, which clients retry.
#ifndef LIKENESS_COORDINATOR_COORDINATOR_H_
#define LIKENESS_COORDINATOR_COORDINATOR_H_

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "coordinator/clock.h"
#include "coordinator/coordinator_state.h"
#include "coordinator/store.h"

namespace likeness::coordinator {

struct CoordinatorOptions {
  StateOptions state;
  std::string journal_path;          // SQLite file
  bool expire_leases_in_background = true;  // tests with a FakeClock call ExpireLeasesNow
};

class Coordinator {
 public:
  // Opens the journal, restores what it holds and starts the lease-expiry thread.
  static absl::StatusOr<std::unique_ptr<Coordinator>> Open(const Clock* clock,
                                                           CoordinatorOptions options);
  ~Coordinator();

  // Runs `change` under the lock and journals what it changed before returning its result.
  template <typename T>
  absl::StatusOr<T> Change(
      const std::function<absl::StatusOr<T>(CoordinatorState&, Mutation*)>& change);
  absl::Status ChangeStatus(
      const std::function<absl::Status(CoordinatorState&, Mutation*)>& change);

  // Runs `read` under the lock.
  template <typename F>
  auto Read(F read) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return read(*state_);
  }

  // Blocks until some job of `sweep_id` ("" for all) changed after `*version` or `timeout_ms`
  // passed; returns those jobs and advances `*version`.
  std::vector<v1::Job> WaitForChanges(int64_t* version, const std::string& sweep_id,
                                      int64_t timeout_ms);

  // One pass of lease expiry (the background thread runs it every kLeaseScanIntervalMs).
  absl::Status ExpireLeasesNow();

  Store& store() { return *store_; }
  const CoordinatorOptions& options() const { return options_; }

 private:
  Coordinator(const Clock* clock, CoordinatorOptions options, std::unique_ptr<Store> store);
  absl::Status Reload();                    // rebuilds state_ from the journal; mutex_ held
  absl::Status Journal(const Mutation& m);  // mutex_ held
  void ExpiryLoop();

  const Clock* clock_;
  CoordinatorOptions options_;
  std::unique_ptr<Store> store_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::unique_ptr<CoordinatorState> state_;
  bool stopping_ = false;
  std::condition_variable stop_;
  std::thread expiry_thread_;
};

template <typename T>
absl::StatusOr<T> Coordinator::Change(
    const std::function<absl::StatusOr<T>(CoordinatorState&, Mutation*)>& change) {
  std::unique_lock<std::mutex> lock(mutex_);
  Mutation mutation;
  absl::StatusOr<T> result = change(*state_, &mutation);
  absl::Status journaled = Journal(mutation);
  lock.unlock();
  changed_.notify_all();
  if (!journaled.ok()) return journaled;
  return result;
}

}  // namespace likeness::coordinator

#endif  // LIKENESS_COORDINATOR_COORDINATOR_H_
