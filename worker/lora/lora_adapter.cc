#include "worker/lora/lora_adapter.h"

#include <cmath>
#include <utility>

namespace likeness::lora {

LoraLayerShape LoraLayerShape::Of(const model::LinearImpl& layer) {
  LoraLayerShape s;
  s.kind = LoraLayerKind::kLinear;
  s.out = layer.weight.size(0);
  s.in = layer.weight.size(1);
  return s;
}

LoraLayerShape LoraLayerShape::Of(const model::Conv2dImpl& layer) {
  LoraLayerShape s;
  s.kind = LoraLayerKind::kConv2d;
  s.out = layer.weight.size(0);
  s.in = layer.weight.size(1);
  s.kernel = layer.weight.size(2);
  s.stride = layer.stride;
  s.padding = layer.padding;
  return s;
}

std::vector<int64_t> LoraLayerShape::DownShape(int64_t rank) const {
  if (kind == LoraLayerKind::kLinear) return {rank, in};
  return {rank, in, kernel, kernel};
}

std::vector<int64_t> LoraLayerShape::UpShape(int64_t rank) const {
  if (kind == LoraLayerKind::kLinear) return {out, rank};
  return {out, rank, 1, 1};
}

std::vector<int64_t> LoraLayerShape::WeightShape() const {
  if (kind == LoraLayerKind::kLinear) return {out, in};
  return {out, in, kernel, kernel};
}

LoraAdapter::LoraAdapter(const torch::nn::Module* base, LoraLayerShape shape, torch::Tensor down,
                         torch::Tensor up, double alpha, double dropout)
    : base_(base),
      shape_(shape),
      down_(std::move(down)),
      up_(std::move(up)),
      alpha_(alpha),
      dropout_(dropout) {
  TORCH_CHECK(down_.sizes() == c10::IntArrayRef(shape_.DownShape(down_.size(0))) &&
                  up_.sizes() == c10::IntArrayRef(shape_.UpShape(down_.size(0))),
              "LoRA down ", down_.sizes(), " / up ", up_.sizes(), " do not fit the layer");
}

torch::Tensor LoraAdapter::Apply(const torch::Tensor& x, const torch::Tensor& y) {
  // Merged: the base weight holds the delta. Multiplier 0: skip the work, and keep the output
  // bit-identical to the base (0 * inf would otherwise be NaN).
  if (merged_ || multiplier_ == 0.0) return y;
  torch::Tensor h = x;
  if (dropout_ > 0.0 && base_ != nullptr && base_->is_training()) {
    h = torch::dropout(h, dropout_, /*train=*/true);
  }
  // Compute in the base output's dtype: a float32 adapter on a bf16 layer is cast per call, and
  // autograd carries the gradient back to the float32 leaf.
  const c10::ScalarType dtype = y.scalar_type();
  const torch::Tensor down = down_.scalar_type() == dtype ? down_ : down_.to(dtype);
  const torch::Tensor up = up_.scalar_type() == dtype ? up_ : up_.to(dtype);
  if (h.scalar_type() != dtype) h = h.to(dtype);
  torch::Tensor delta;
  if (shape_.kind == LoraLayerKind::kLinear) {
    // [..., in] -> [..., rank] -> [..., out]
    delta = torch::linear(torch::linear(h, down), up);
  } else {
    // [B, in, H, W] -> [B, rank, H', W'] (the base kernel, stride, padding) -> [B, out, H', W']
    delta = torch::conv2d(torch::conv2d(h, down, {}, {shape_.stride, shape_.stride},
                                        {shape_.padding, shape_.padding}),
                          up);
  }
  return y + delta * (scale() * multiplier_);
}

torch::Tensor LoraAdapter::DeltaWeight() const {
  torch::NoGradGuard no_grad;
  const int64_t r = rank();
  // [out, rank] @ [rank, in * k * k] -> [out, in * k * k] -> the weight's shape. For a conv,
  // a 1x1 `up` after a k x k `down` composes into one k x k kernel: sum over the rank.
  const torch::Tensor up = up_.to(torch::kFloat32).reshape({shape_.out, r});
  const torch::Tensor down = down_.to(torch::kFloat32).reshape({r, -1});
  return torch::matmul(up, down).mul_(scale() * multiplier_).reshape(shape_.WeightShape());
}

LoraPair InitLoraPair(const LoraLayerShape& shape, int64_t rank, torch::Generator& generator,
                      const torch::TensorOptions& options) {
  torch::NoGradGuard no_grad;
  const std::vector<int64_t> down_shape = shape.DownShape(rank);
  int64_t fan_in = 1;
  for (size_t i = 1; i < down_shape.size(); ++i) fan_in *= down_shape[i];
  // kaiming_uniform_: bound = gain * sqrt(3 / fan_in), gain = sqrt(2 / (1 + a^2)).
  const double gain = std::sqrt(2.0 / (1.0 + kKaimingA * kKaimingA));
  const double bound = gain * std::sqrt(3.0 / static_cast<double>(fan_in));
  torch::Tensor down = torch::empty(down_shape, torch::TensorOptions().dtype(torch::kFloat32));
  down.uniform_(-bound, bound, generator);
  LoraPair pair;
  pair.down = down.to(options).detach().requires_grad_(true);
  pair.up = torch::zeros(shape.UpShape(rank), options).detach().requires_grad_(true);
  return pair;
}

}  // namespace likeness::lora
