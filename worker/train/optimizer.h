// The optimizer pieces of a training step, on plain tensors so their state is explicit, saved
// and restored bit for bit, and the parameter order is the caller's (the data-parallel reducer
// and the checkpoint both depend on it):
//   * AdamW with torch.optim.AdamW's single-tensor semantics (decoupled weight decay, bias
//     correction, per-parameter step counts, moments created lazily at a parameter's first
//     update, parameters without a gradient skipped);
//   * gradient-norm clipping as torch.nn.utils.clip_grad_norm_ (2-norm of the per-tensor norms,
//     coefficient max_norm / (norm + 1e-6) clamped to 1);
//   * an EMA of the trained tensors as diffusers' EMAModel (decay warmed up as
//     min(decay, (1 + n) / (10 + n)) over the n-th update).
#ifndef LIKENESS_WORKER_TRAIN_OPTIMIZER_H_
#define LIKENESS_WORKER_TRAIN_OPTIMIZER_H_

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "common/safetensors/writer.h"

namespace likeness::train {

// clip_grad_norm_'s guard against dividing by a zero norm.
inline constexpr double kClipNormEpsilon = 1e-6;

struct ParamGroup {
  std::string name;                   // "unet", "text_encoders", "embeddings"
  std::vector<torch::Tensor> params;  // leaves, in the group's fixed order
  double base_lr = 0.0;               // times the schedule's factor each step
  double weight_decay = 0.0;
  bool frozen = false;                // pivotal tuning's embedding after its phase
};

struct AdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double epsilon = 1e-8;
};

class AdamW {
 public:
  AdamW(std::vector<ParamGroup> groups, AdamWOptions options);

  // One update of every non-frozen group's parameters that have a gradient, at
  // base_lr * lr_factor. Runs without autograd.
  void Step(double lr_factor);
  // Drops every gradient (set to undefined, as zero_grad(set_to_none=True)).
  void ZeroGrad();

  std::vector<ParamGroup>& groups() { return groups_; }
  const std::vector<ParamGroup>& groups() const { return groups_; }
  // Every parameter, groups in order: the order of gradients, state and checkpoints.
  std::vector<torch::Tensor> AllParams() const;

  // "adamw.<i>.exp_avg", "adamw.<i>.exp_avg_sq", "adamw.<i>.step" (int64 [1]) for each
  // parameter i of AllParams() that has been updated.
  safetensors::NamedTensors StateTensors() const;
  // Restores what StateTensors wrote (copies, on each parameter's device). INVALID_ARGUMENT
  // naming the tensor when a shape differs or a parameter's state is half present.
  absl::Status LoadStateTensors(const std::map<std::string, torch::Tensor>& tensors);

 private:
  struct State {
    int64_t step = 0;
    torch::Tensor exp_avg, exp_avg_sq;
  };
  std::vector<ParamGroup> groups_;
  AdamWOptions options_;
  std::vector<State> state_;  // parallel to AllParams()
};

// Total 2-norm of `grads` (undefined ones skipped), as float64; scales them in place by
// min(1, max_norm / (norm + kClipNormEpsilon)) when max_norm > 0. A non-finite norm is
// returned without scaling (the caller skips the step).
double ClipGradNorm(std::vector<torch::Tensor>& grads, double max_norm);

class Ema {
 public:
  Ema() = default;
  Ema(const std::vector<torch::Tensor>& params, double decay);

  bool enabled() const { return decay_ > 0.0; }
  void Update(const std::vector<torch::Tensor>& params);
  const std::vector<torch::Tensor>& shadow() const { return shadow_; }
  int64_t num_updates() const { return num_updates_; }

  safetensors::NamedTensors StateTensors() const;  // "ema.<i>", "ema.num_updates"
  absl::Status LoadStateTensors(const std::map<std::string, torch::Tensor>& tensors);

 private:
  double decay_ = 0.0;
  int64_t num_updates_ = 0;
  std::vector<torch::Tensor> shadow_;
};

}  // namespace likeness::train

#endif  // LIKENESS_WORKER_TRAIN_OPTIMIZER_H_
