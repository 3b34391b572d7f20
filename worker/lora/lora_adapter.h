// One LoRA on one Linear or Conv2d layer (model::LayerAdapter, worker/model/layers.h):
//
//   y' = y + scale * multiplier * up(down(dropout(x)))       scale = alpha / rank
//
// Linear: down [rank, in], up [out, rank], applied as x @ down^T @ up^T.
// Conv2d (kohya's LoCon): down [rank, in, k, k] is a convolution with the base layer's kernel,
// stride and padding; up [out, rank, 1, 1] is a 1x1 convolution. Both have no bias.
//
// `down` and `up` are this adapter's own tensors, never registered on the model, so the model's
// state dict stays the base model's. `multiplier` (the user's LoRA strength) is read on every
// call: changing it never touches a base weight. Dropout applies only while the base layer is in
// training mode (torch::nn::Module::train(); modules start in training mode, so call eval() for
// inference with a dropout > 0).
//
// Precision: the low-rank path is computed in the dtype of the base layer's output (a float32
// adapter on a bf16 layer is cast per call, differentiably, so training keeps float32 master
// weights). The merged delta (DeltaWeight) is always computed in float32.
#ifndef LIKENESS_WORKER_LORA_LORA_ADAPTER_H_
#define LIKENESS_WORKER_LORA_LORA_ADAPTER_H_

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "worker/model/layers.h"

namespace likeness::lora {

// kaiming_uniform_(a = sqrt(5)) as the LoRA paper's reference code (microsoft/LoRA), kohya's
// LoRAModule and PEFT initialise `down`: with gain sqrt(2 / (1 + a^2)) the bound
// gain * sqrt(3 / fan_in) is exactly 1 / sqrt(fan_in).
inline constexpr double kKaimingA = 2.2360679774997896964;  // sqrt(5)

enum class LoraLayerKind { kLinear, kConv2d };

// The geometry of the base layer a LoRA attaches to.
struct LoraLayerShape {
  LoraLayerKind kind = LoraLayerKind::kLinear;
  int64_t in = 0, out = 0;                      // features or channels
  int64_t kernel = 1, stride = 1, padding = 0;  // Conv2d only

  static LoraLayerShape Of(const model::LinearImpl& layer);
  static LoraLayerShape Of(const model::Conv2dImpl& layer);
  // [rank, in] or [rank, in, k, k]
  std::vector<int64_t> DownShape(int64_t rank) const;
  // [out, rank] or [out, rank, 1, 1]
  std::vector<int64_t> UpShape(int64_t rank) const;
  // The base weight's shape: [out, in] or [out, in, k, k].
  std::vector<int64_t> WeightShape() const;
};

class LoraAdapter : public model::LayerAdapter {
 public:
  // `base`: the layer this adapter will sit on (only its training flag is read, in Apply).
  // `down`/`up` must have DownShape/UpShape of `shape` for one rank (the network and the file
  // readers check; here it is an invariant).
  LoraAdapter(const torch::nn::Module* base, LoraLayerShape shape, torch::Tensor down,
              torch::Tensor up, double alpha, double dropout = 0.0);

  torch::Tensor Apply(const torch::Tensor& x, const torch::Tensor& y) override;

  // {down, up}: what activation checkpointing takes gradients for (layers.h).
  std::vector<torch::Tensor> TrainableTensors() const override { return {down_, up_}; }

  // scale * multiplier * up @ down in float32 on the tensors' device, with the base weight's
  // shape: what Merge adds to the base weight.
  torch::Tensor DeltaWeight() const;

  int64_t rank() const { return down_.size(0); }
  double alpha() const { return alpha_; }
  double scale() const { return alpha_ / static_cast<double>(rank()); }
  double dropout() const { return dropout_; }
  const LoraLayerShape& shape() const { return shape_; }
  const torch::Tensor& down() const { return down_; }
  const torch::Tensor& up() const { return up_; }

  double multiplier() const { return multiplier_; }
  void set_multiplier(double multiplier) { multiplier_ = multiplier; }
  // While merged, Apply returns y unchanged: the base weight already holds the delta.
  bool merged() const { return merged_; }
  void set_merged(bool merged) { merged_ = merged; }

 private:
  const torch::nn::Module* base_;
  LoraLayerShape shape_;
  torch::Tensor down_, up_;
  double alpha_;
  double dropout_;
  double multiplier_ = 1.0;
  bool merged_ = false;
};

// A fresh trainable pair for `shape` and `rank`: down ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))
// (kaiming-uniform with a = sqrt(5), fan_in = in * k * k) drawn in float32 on the CPU from
// `generator`, so one seed gives the same values on every device and dtype; up = 0. Both are
// leaf tensors with `options` and requires_grad = true.
struct LoraPair {
  torch::Tensor down, up;
};
LoraPair InitLoraPair(const LoraLayerShape& shape, int64_t rank, torch::Generator& generator,
                      const torch::TensorOptions& options);

}  // namespace likeness::lora

#endif  // LIKENESS_WORKER_LORA_LORA_ADAPTER_H_
