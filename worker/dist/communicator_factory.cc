#include "worker/dist/communicator_factory.h"

#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "worker/dist/mpi_communicator.h"
#include "worker/dist/nccl_communicator.h"
#include "worker/dist/single_process_communicator.h"

namespace likeness::dist {

absl::StatusOr<std::unique_ptr<Communicator>> CreateCommunicator(
    const DistEnvironment& env, const CommunicatorOptions& options) {
  std::string backend = options.backend;
  if (backend == "auto") {
    if (const char* value = std::getenv(kBackendEnv); value != nullptr && *value != '\0') {
      backend = value;
    }
  }
  const bool cuda = absl::StartsWith(options.device, "cuda");
  if (backend == "auto") {
    backend = !env.distributed() ? "single" : (cuda && HaveNccl() ? "nccl" : "mpi");
  }
  MpiOptions mpi_options;
  mpi_options.abort_on_error = options.abort_on_error;
  mpi_options.timeout = CollectiveTimeoutFromEnvironment();
  if (backend == "single") {
    if (env.distributed()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "dist: backend single, but the environment (", env.source, ") says ", env.size,
          " ranks"));
    }
    std::unique_ptr<Communicator> comm = std::make_unique<SingleProcessCommunicator>(
        cuda ? torch::Device(options.device) : torch::Device(torch::kCPU));
    return comm;
  }
  if (backend == "mpi") {
    if (cuda) {
      return absl::InvalidArgumentError(
          "dist: the MPI communicator reduces CPU tensors; use nccl for a CUDA device");
    }
    return CreateMpiCommunicator(env, mpi_options);
  }
  if (backend == "nccl") {
    absl::StatusOr<std::unique_ptr<Communicator>> mpi = CreateMpiCommunicator(env, mpi_options);
    if (!mpi.ok()) return mpi.status();
    return CreateNcclCommunicator(env, *std::move(mpi), mpi_options);
  }
  return absl::InvalidArgumentError(absl::StrCat(kBackendEnv, "=", backend,
                                                 ": expected auto, single, mpi or nccl"));
}

absl::StatusOr<std::unique_ptr<Communicator>> CommunicatorFromEnvironment(
    const CommunicatorOptions& options) {
  absl::StatusOr<DistEnvironment> env = ReadDistEnvironment();
  if (!env.ok()) return env.status();
  return CreateCommunicator(*env, options);
}

}  // namespace likeness::dist
