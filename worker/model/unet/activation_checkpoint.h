// Gradient (activation) checkpointing for libtorch C++, which has no torch.utils.checkpoint.
//
// How a checkpointed call works (CheckpointedCall):
//   1. Forward runs `fn(inputs)` under NoGradGuard inside a custom autograd Function, so none of
//      the block's intermediate activations are kept; only `inputs` are saved.
//   2. The block's parameters that require grad are passed to the Function as extra inputs. They
//      are not used by the forward pass (fn reads them from the module); they give the Function's
//      node an edge to each parameter, so parameter gradients flow through the ordinary graph to
//      their AccumulateGrad nodes (and any hooks there, e.g. the data-parallel reducer's), and a
//      block with frozen inputs but trainable parameters (LoRA) still gets gradients.
//   3. Backward re-runs `fn` on detached copies of the inputs with grad enabled and differentiates
//      the recomputation with torch::autograd::grad w.r.t. the inputs that require grad and those
//      parameters.
// Double backward (create_graph) through a checkpointed block is not supported.
// `fn` must be deterministic (the UNet has no dropout) and must only use parameters registered
// under `module`.
#ifndef LIKENESS_WORKER_MODEL_UNET_ACTIVATION_CHECKPOINT_H_
#define LIKENESS_WORKER_MODEL_UNET_ACTIVATION_CHECKPOINT_H_

#include <torch/torch.h>

#include <functional>
#include <vector>

namespace likeness::model::unet {

using CheckpointedFn = std::function<torch::Tensor(const std::vector<torch::Tensor>& inputs)>;

// fn(inputs), checkpointed when grad mode is on and an input or a parameter of `module` requires
// grad; otherwise a plain call. All inputs must be defined.
torch::Tensor CheckpointedCall(torch::nn::Module& module, const std::vector<torch::Tensor>& inputs,
                               const CheckpointedFn& fn);

}  // namespace likeness::model::unet

#endif  // LIKENESS_WORKER_MODEL_UNET_ACTIVATION_CHECKPOINT_H_
