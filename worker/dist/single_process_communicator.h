// A world of one: every collective is the identity and completes at once. Used when a job runs
// on one process, so the trainer and the reducer have a single code path.
#ifndef LIKENESS_WORKER_DIST_SINGLE_PROCESS_COMMUNICATOR_H_
#define LIKENESS_WORKER_DIST_SINGLE_PROCESS_COMMUNICATOR_H_

#include <memory>
#include <string>
#include <vector>

#include "worker/dist/communicator.h"

namespace likeness::dist {

class SingleProcessCommunicator : public Communicator {
 public:
  explicit SingleProcessCommunicator(torch::Device device = torch::kCPU) : device_(device) {}

  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  std::string backend() const override { return "single"; }
  torch::Device device() const override { return device_; }

  absl::StatusOr<std::unique_ptr<Work>> StartAllReduce(torch::Tensor flat, ReduceOp op,
                                                       absl::string_view what) override;
  absl::StatusOr<std::unique_ptr<Work>> StartBroadcast(torch::Tensor bytes, int root,
                                                       absl::string_view what) override;
  absl::Status Barrier(absl::string_view what) override { return absl::OkStatus(); }
  absl::StatusOr<std::vector<int64_t>> AllGather(int64_t value, absl::string_view what) override {
    return std::vector<int64_t>{value};
  }
  [[noreturn]] void Abort(int exit_code) override;

 private:
  torch::Device device_;
};

}  // namespace likeness::dist

#endif  // LIKENESS_WORKER_DIST_SINGLE_PROCESS_COMMUNICATOR_H_
