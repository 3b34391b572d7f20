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
