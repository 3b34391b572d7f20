// Builds the communicator a process should use, from the launcher's environment
// (environment.h) and kBackendEnv: the one call `likeness train` and the worker agent make.
#ifndef LIKENESS_WORKER_DIST_COMMUNICATOR_FACTORY_H_
#define LIKENESS_WORKER_DIST_COMMUNICATOR_FACTORY_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "worker/dist/communicator.h"
#include "worker/dist/environment.h"

namespace likeness::dist {

struct CommunicatorOptions {
  // "auto", "single", "mpi", "nccl"; kBackendEnv overrides "auto".
  std::string backend = "auto";
  // The training device: "auto" picks NCCL for a CUDA device when the build has it.
  std::string device = "cpu";
  // See MpiOptions: false only in tests that check the returned status.
  bool abort_on_error = true;
};

// auto: one process (no launcher, or a world of 1) -> single; a CUDA device and a build with
// NCCL -> NCCL; else MPI. The timeout comes from kCollectiveTimeoutEnv (communicator.h).
absl::StatusOr<std::unique_ptr<Communicator>> CommunicatorFromEnvironment(
    const CommunicatorOptions& options = {});
absl::StatusOr<std::unique_ptr<Communicator>> CreateCommunicator(const DistEnvironment& env,
                                                                const CommunicatorOptions& options);

}  // namespace likeness::dist

#endif  // LIKENESS_WORKER_DIST_COMMUNICATOR_FACTORY_H_
