#include "coordinator/coordinator.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace likeness::coordinator {

Coordinator::Coordinator(const Clock* clock, CoordinatorOptions options,
                         std::unique_ptr<Store> store)
    : clock_(clock), options_(std::move(options)), store_(std::move(store)) {}

absl::StatusOr<std::unique_ptr<Coordinator>> Coordinator::Open(const Clock* clock,
                                                               CoordinatorOptions options) {
  LIKENESS_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, Store::Open(options.journal_path));
  std::unique_ptr<Coordinator> coordinator(
      new Coordinator(clock, std::move(options), std::move(store)));
  {
    std::lock_guard<std::mutex> lock(coordinator->mutex_);
    LIKENESS_RETURN_IF_ERROR(coordinator->Reload());
  }
  if (coordinator->options_.expire_leases_in_background) {
    coordinator->expiry_thread_ = std::thread([c = coordinator.get()] { c->ExpiryLoop(); });
  }
  return coordinator;
}

Coordinator::~Coordinator() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  stop_.notify_all();
  changed_.notify_all();
  if (expiry_thread_.joinable()) expiry_thread_.join();
}

absl::Status Coordinator::Reload() {
  LIKENESS_ASSIGN_OR_RETURN(Snapshot snapshot, store_->Load());
  state_ = std::make_unique<CoordinatorState>(clock_, options_.state);
  Mutation mutation;
  state_->Restore(snapshot, &mutation);
  return store_->Apply(mutation);
}

absl::Status Coordinator::Journal(const Mutation& mutation) {
  absl::Status status = store_->Apply(mutation);
  if (status.ok()) return status;
  // Memory ran ahead of the journal: go back to what the journal holds.
  absl::Status reloaded = Reload();
  return absl::UnavailableError(absl::StrCat(
      "the journal refused a write (", status.message(), "); the change was rolled back",
      reloaded.ok() ? "" : absl::StrCat(" and reloading failed: ", reloaded.message())));
}

absl::Status Coordinator::ChangeStatus(
    const std::function<absl::Status(CoordinatorState&, Mutation*)>& change) {
  std::unique_lock<std::mutex> lock(mutex_);
  Mutation mutation;
  absl::Status result = change(*state_, &mutation);
  absl::Status journaled = Journal(mutation);
  lock.unlock();
  changed_.notify_all();
  return journaled.ok() ? result : journaled;
}

absl::Status Coordinator::ExpireLeasesNow() {
  return ChangeStatus([](CoordinatorState& state, Mutation* mutation) {
    state.ExpireLeases(mutation);
    return absl::OkStatus();
  });
}

void Coordinator::ExpiryLoop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    stop_.wait_for(lock, std::chrono::milliseconds(kLeaseScanIntervalMs));
    if (stopping_) break;
    lock.unlock();
    ExpireLeasesNow().IgnoreError();  // a refused write was rolled back; the next pass retries
    lock.lock();
  }
}

std::vector<v1::Job> Coordinator::WaitForChanges(int64_t* version, const std::string& sweep_id,
                                                 int64_t timeout_ms) {
  std::unique_lock<std::mutex> lock(mutex_);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::vector<v1::Job> jobs;
  while (!stopping_) {
    jobs = state_->JobsChangedSince(*version, sweep_id);
    if (!jobs.empty()) break;
    if (changed_.wait_until(lock, deadline) == std::cv_status::timeout) break;
  }
  if (!jobs.empty()) *version = jobs.back().version();
  return jobs;
}

}  // namespace likeness::coordinator
