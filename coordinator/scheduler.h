// Scheduling: which queued job a worker gets. Pure: no I/O, no clock.
//
// Order: higher priority first, then submission order (FIFO), then job id. A worker asking for
// work gets the first job in that order that fits it (backfill: a big job at the head does not
// idle a node that could run a small one), except that multi-node jobs gather a gang:
//   1. An idle worker that fits a multi-node job at the head of what it could run is reserved
//      for that job and gets nothing meanwhile.
//   2. When `nodes` workers are reserved, the job is leased to all of them at once, rank 0
//      first in reservation order.
// Reservations are dropped when a member is lost or the job leaves the queue.
#ifndef LIKENESS_COORDINATOR_SCHEDULER_H_
#define LIKENESS_COORDINATOR_SCHEDULER_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "protos/likeness.pb.h"

namespace likeness::coordinator {

// Devices a node offers: its GPUs, or its CPU slots (at least one) when it has none.
int TotalDevices(const v1::WorkerInfo& worker);

// Devices `request` takes on `worker` (all of them for whole-node and multi-node jobs).
int DevicesNeeded(const v1::ResourceRequest& request, const v1::WorkerInfo& worker);

// Whether the worker's kind of hardware can ever run the request (model, memory, GPU).
bool HardwareMatches(const v1::ResourceRequest& request, const v1::WorkerInfo& worker);

// Whether the request fits the worker now, with `free_devices` unused.
bool Fits(const v1::ResourceRequest& request, const v1::WorkerInfo& worker, int free_devices);

// What the scheduler needs to know of a worker.
struct WorkerView {
  std::string id;
  v1::WorkerInfo info;
  int free_devices = 0;
};

// A decision: lease `job_id` to `workers` (rank order); one worker unless a gang formed.
struct Assignment {
  std::string job_id;
  std::vector<std::string> workers;
};

class Scheduler {
 public:
  // The queue: jobs in state QUEUED.
  void Enqueue(const v1::Job& job);
  void Remove(const std::string& job_id);
  bool Contains(const std::string& job_id) const { return keys_.count(job_id) > 0; }
  size_t size() const { return queue_.size(); }

  // What `worker` should run now, if anything. `job_request` looks up a queued job's request.
  // A gang reservation may be made (then nullopt is returned until the gang is complete).
  template <typename RequestOf>
  std::optional<Assignment> Pick(const WorkerView& worker, const RequestOf& request_of);

  // Drops `worker_id` from any gang it was reserved for (it was lost or re-registered).
  void ReleaseWorker(const std::string& worker_id);
  // The job a worker is reserved for, or "".
  std::string ReservedFor(const std::string& worker_id) const;

 private:
  using Key = std::tuple<int64_t, int64_t, std::string>;  // (-priority, sequence, id)
  std::set<Key> queue_;
  std::map<std::string, Key> keys_;
  std::map<std::string, std::vector<std::string>> gangs_;  // job id -> reserved workers
  std::map<std::string, std::string> reserved_;             // worker id -> job id
};

template <typename RequestOf>
std::optional<Assignment> Scheduler::Pick(const WorkerView& worker, const RequestOf& request_of) {
  const std::string reserved = ReservedFor(worker.id);
  if (!reserved.empty()) return std::nullopt;  // waiting for its gang to fill
  for (const Key& key : queue_) {
    const std::string& job_id = std::get<2>(key);
    const v1::ResourceRequest& request = request_of(job_id);
    if (!Fits(request, worker.info, worker.free_devices)) continue;
    if (request.nodes() <= 1) return Assignment{job_id, {worker.id}};
    std::vector<std::string>& gang = gangs_[job_id];
    gang.push_back(worker.id);
    reserved_[worker.id] = job_id;
    if (static_cast<int>(gang.size()) < request.nodes()) return std::nullopt;
    Assignment assignment{job_id, gang};
    for (const std::string& member : gang) reserved_.erase(member);
    gangs_.erase(job_id);
    return assignment;
  }
  return std::nullopt;
}

}  // namespace likeness::coordinator

#endif  // LIKENESS_COORDINATOR_SCHEDULER_H_
