#include "coordinator/scheduler.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace likeness::coordinator {

int TotalDevices(const v1::WorkerInfo& worker) {
  if (worker.gpu_count() > 0) return worker.gpu_count();
  return std::max(worker.cpu_slots(), 1);
}

int DevicesNeeded(const v1::ResourceRequest& request, const v1::WorkerInfo& worker) {
  if (request.whole_node() || request.nodes() > 1) return TotalDevices(worker);
  return std::max(request.devices(), 1);
}

bool HardwareMatches(const v1::ResourceRequest& request, const v1::WorkerInfo& worker) {
  if (request.require_gpu() && worker.gpu_count() == 0) return false;
  if (!request.gpu_model().empty() &&
      !absl::StrContains(absl::AsciiStrToLower(worker.gpu_model()),
                         absl::AsciiStrToLower(request.gpu_model()))) {
    return false;
  }
  if (request.min_device_memory_bytes() > worker.gpu_memory_bytes()) return false;
  return DevicesNeeded(request, worker) <= TotalDevices(worker);
}

bool Fits(const v1::ResourceRequest& request, const v1::WorkerInfo& worker, int free_devices) {
  return HardwareMatches(request, worker) && DevicesNeeded(request, worker) <= free_devices;
}

void Scheduler::Enqueue(const v1::Job& job) {
  Remove(job.id());
  Key key{-static_cast<int64_t>(job.priority()), job.sequence(), job.id()};
  queue_.insert(key);
  keys_[job.id()] = key;
}

void Scheduler::Remove(const std::string& job_id) {
  auto it = keys_.find(job_id);
  if (it != keys_.end()) {
    queue_.erase(it->second);
    keys_.erase(it);
  }
  auto gang = gangs_.find(job_id);
  if (gang != gangs_.end()) {
    for (const std::string& worker : gang->second) reserved_.erase(worker);
    gangs_.erase(gang);
  }
}

void Scheduler::ReleaseWorker(const std::string& worker_id) {
  auto it = reserved_.find(worker_id);
  if (it == reserved_.end()) return;
  std::vector<std::string>& gang = gangs_[it->second];
  gang.erase(std::remove(gang.begin(), gang.end(), worker_id), gang.end());
  if (gang.empty()) gangs_.erase(it->second);
  reserved_.erase(it);
}

std::string Scheduler::ReservedFor(const std::string& worker_id) const {
  auto it = reserved_.find(worker_id);
  return it == reserved_.end() ? "" : it->second;
}

}  // namespace likeness::coordinator
