// What a training entry point (`likeness train`, the worker agent's train job) adds to become
// data-parallel when a launcher started it as one of several ranks:
//
//   absl::StatusOr<dist::DataParallel> dp = dist::SetUpDataParallel(settings.device);
//   settings.device = dp->device;               // cuda -> cuda:<local rank>
//   hooks.reducer = dp->reducer.get();
//   hooks.stop_requested = dist::PreemptRequested;
//   ... status = RunTraining(settings, hooks) ...
//   exit code: dist::ExitCodeFor(status, kExitFailure)  // kRequeueExitCode for requeue
//
// Without a launcher (or a world of one) the communicator is the single-process one and the
// reducer costs nothing, so callers need no branch.
#ifndef LIKENESS_WORKER_DIST_DATA_PARALLEL_H_
#define LIKENESS_WORKER_DIST_DATA_PARALLEL_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "worker/dist/bucketed_reducer.h"
#include "worker/dist/communicator.h"

namespace likeness::dist {

struct DataParallel {
  std::unique_ptr<Communicator> comm;
  std::unique_ptr<BucketedGradientReducer> reducer;  // uses comm; declared after it
  std::string device;  // the device this rank trains on
  int rank() const { return comm->rank(); }
  int size() const { return comm->size(); }
};

// Reads the launcher's environment (environment.h), builds the communicator
// (communicator_factory.h; kCollectiveTimeoutEnv, kBackendEnv) and the reducer
// (kBucketBytesEnv), maps "cuda" to this rank's GPU, and installs the preemption handler.
absl::StatusOr<DataParallel> SetUpDataParallel(const std::string& device);

}  // namespace likeness::dist

#endif  // LIKENESS_WORKER_DIST_DATA_PARALLEL_H_
