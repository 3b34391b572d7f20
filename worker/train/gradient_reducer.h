// The seam between backward and the optimizer step where a data-parallel run (issue 6)
// averages gradients over its ranks. The trainer calls it once per optimizer step, after the
// last accumulation micro-step's backward and before the NaN/Inf check, clipping and the
// update, with the gradients of every trainable tensor in the optimizer's fixed order
// (AdamW::AllParams(): groups in order, each group in its documented order). Undefined
// entries are tensors that got no gradient this step (a frozen pivotal-tuning embedding);
// every rank sees the same pattern because the order and the freezing depend only on the
// settings and the step.
#ifndef LIKENESS_WORKER_TRAIN_GRADIENT_REDUCER_H_
#define LIKENESS_WORKER_TRAIN_GRADIENT_REDUCER_H_

#include <torch/torch.h>

#include <vector>

#include "absl/status/status.h"

namespace likeness::train {

class GradientReducer {
 public:
  virtual ~GradientReducer() = default;
  // Replaces each defined gradient in place by its average over the ranks. UNAVAILABLE or
  // ABORTED when a peer is gone (the run then stops and is requeued from its checkpoint).
  virtual absl::Status ReduceGradients(std::vector<torch::Tensor>& grads) = 0;
  // Whether any rank saw a non-finite loss or gradient: the skip decision every rank must
  // share. Single process: the local flag.
  virtual absl::StatusOr<bool> AnyNonFinite(bool local_non_finite) { return local_non_finite; }

  // Data parallelism (issue 6; the defaults are one process's answers).
  // This rank and the number of ranks: rank r of R runs micro-batches r*A .. r*A+A-1 of the
  // R*A a step consumes (A = gradient_accumulation_steps), so the global batch is the sum of
  // the ranks' batches.
  virtual int rank() const { return 0; }
  virtual int world_size() const { return 1; }
  // Called once the trainable tensors are final (end of Trainer::Create) and after every
  // Resume, with the tensors in AllParams order and the step: makes every rank's tensors equal
  // to rank 0's, checks that every rank is at the same step, and (first call) prepares
  // whatever ReduceGradients needs (buckets, autograd hooks).
  virtual absl::Status SyncParameters(const std::vector<torch::Tensor>& params, int64_t step) {
    return absl::OkStatus();
  }
  // Called before each micro-step's backward: gradients are reduced only after the last
  // micro-step of a step (a reducer that overlaps communication with backward starts then).
  virtual void PrepareBackward(bool last_micro_step) {}
  // The mean over ranks of a per-rank scalar (the loss that metrics report).
  virtual absl::StatusOr<double> AverageScalar(double local) { return local; }
  // Whether any rank's flag is set (a preemption signal reached some ranks first).
  virtual absl::StatusOr<bool> AnyRank(bool local) { return local; }
  // Every rank calls this after work that rank 0 did alone (checkpoint, validation, metrics)
  // with that work's status (OK on other ranks); all ranks return rank 0's verdict. Waits as
  // long as such work may take, not a collective timeout.
  virtual absl::Status ShareRankZeroStatus(const absl::Status& status) { return status; }
};

// One process: the local gradients are already the average.
class SingleProcessReducer : public GradientReducer {
 public:
  absl::Status ReduceGradients(std::vector<torch::Tensor>& grads) override {
    return absl::OkStatus();
  }
};

}  // namespace likeness::train

#endif  // LIKENESS_WORKER_TRAIN_GRADIENT_REDUCER_H_
