// The data-parallel GradientReducer: gradients averaged over the ranks in buckets, each
// bucket's all-reduce started from autograd hooks as soon as its last gradient is ready, so
// communication overlaps the rest of backward (PyTorch DDP's design, on our Communicator).
//
// One optimizer step, on every rank:
//   1. PrepareBackward(last_micro_step) before each micro-step's backward. Only the last one
//      arms the hooks (gradient accumulation reduces once, the sum of the micro-steps); it
//      counts, per bucket, the tensors that require a gradient now (a frozen pivotal-tuning
//      embedding does not, and every rank freezes it at the same step).
//   2. During that backward, each trainable tensor's AccumulateGrad post hook marks it ready.
//      When a bucket's count reaches zero it is marked full, and every full bucket whose lower
//      numbered buckets are all started is copied into its flat buffer and its all-reduce
//      (average) started: buckets start in bucket_plan.h's order on every rank, whatever order
//      the hooks fire in, so the collectives match.
//   3. ReduceGradients: starts, in order, the buckets still unstarted (tensors that got no
//      gradient count as zeros and stay undefined), waits for every bucket within the
//      collective timeout, and copies the averages back into the gradients.
//   4. AnyNonFinite / AnyRank: one all-reduce (max) of a flag; AverageScalar: one all-reduce.
// SyncParameters broadcasts the trainable tensors from rank 0 (start and after resume) and
// checks with an all-gather that every rank is at the same step.
// Errors inside a hook (which cannot return one) are kept and returned by ReduceGradients.
#ifndef LIKENESS_WORKER_DIST_BUCKETED_REDUCER_H_
#define LIKENESS_WORKER_DIST_BUCKETED_REDUCER_H_

#include <torch/torch.h>

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "worker/dist/bucket_plan.h"
#include "worker/dist/communicator.h"
#include "worker/train/gradient_reducer.h"

namespace likeness::dist {

// How long ranks wait for rank 0's checkpoint, validation images or metrics
// (ShareRankZeroStatus): writing a full SDXL checkpoint to a network filesystem takes minutes.
inline constexpr absl::Duration kRankZeroWorkTimeout = absl::Minutes(30);

struct BucketedReducerOptions {
  int64_t bucket_bytes = kDefaultBucketBytes;
};

// kBucketBytesEnv if set and positive, else kDefaultBucketBytes.
int64_t BucketBytesFromEnvironment();

class BucketedGradientReducer : public train::GradientReducer {
 public:
  // `comm` is not owned and must outlive the reducer.
  BucketedGradientReducer(Communicator* comm, BucketedReducerOptions options = {});
  ~BucketedGradientReducer() override;

  absl::Status ReduceGradients(std::vector<torch::Tensor>& grads) override;
  absl::StatusOr<bool> AnyNonFinite(bool local_non_finite) override;
  int rank() const override { return comm_->rank(); }
  int world_size() const override { return comm_->size(); }
  absl::Status SyncParameters(const std::vector<torch::Tensor>& params, int64_t step) override;
  void PrepareBackward(bool last_micro_step) override;
  absl::StatusOr<double> AverageScalar(double local) override;
  absl::StatusOr<bool> AnyRank(bool local) override;
  absl::Status ShareRankZeroStatus(const absl::Status& status) override;

  const std::vector<BucketSpec>& buckets() const;
  // How many buckets the hooks started during the last backward (the rest started in
  // ReduceGradients): the overlap a test or a benchmark can observe.
  int buckets_started_by_hooks() const;

 private:
  struct State;  // shared with the hooks, which hold it weakly
  absl::Status Attach(const std::vector<torch::Tensor>& params);

  Communicator* comm_;
  BucketedReducerOptions options_;
  std::shared_ptr<State> state_;
};

}  // namespace likeness::dist

#endif  // LIKENESS_WORKER_DIST_BUCKETED_REDUCER_H_
