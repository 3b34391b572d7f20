#include "worker/dist/data_parallel.h"

#include "absl/strings/str_cat.h"
#include "worker/dist/communicator_factory.h"
#include "worker/dist/environment.h"
#include "worker/dist/requeue.h"

namespace likeness::dist {

absl::StatusOr<DataParallel> SetUpDataParallel(const std::string& device) {
  absl::StatusOr<DistEnvironment> env = ReadDistEnvironment();
  if (!env.ok()) return env.status();
  DataParallel dp;
  dp.device = device;
  // One GPU per rank: a bare "cuda" becomes the local rank's GPU (explicit indices are kept).
  // A launcher that gives each task only its own GPU (srun --gpus-per-task) leaves one
  // visible device: hence the modulo.
  if (env->distributed() && device == "cuda") {
    const int visible = static_cast<int>(torch::cuda::device_count());
    dp.device = absl::StrCat("cuda:", visible > 0 ? env->local_rank % visible : env->local_rank);
  }
  CommunicatorOptions options;
  options.device = dp.device;
  absl::StatusOr<std::unique_ptr<Communicator>> comm = CreateCommunicator(*env, options);
  if (!comm.ok()) return comm.status();
  dp.comm = *std::move(comm);
  dp.reducer = std::make_unique<BucketedGradientReducer>(
      dp.comm.get(), BucketedReducerOptions{BucketBytesFromEnvironment()});
  InstallPreemptHandler();
  return dp;
}

}  // namespace likeness::dist
