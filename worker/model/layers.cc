#include "worker/model/layers.h"

#include <cmath>

#include "absl/strings/match.h"

namespace likeness::model {
namespace {

torch::TensorOptions& ThreadParameterOptions() {
  thread_local torch::TensorOptions options = torch::TensorOptions().dtype(torch::kFloat32);
  return options;
}

}  // namespace

ScopedParameterOptions::ScopedParameterOptions(torch::TensorOptions options)
    : previous_(ThreadParameterOptions()) {
  ThreadParameterOptions() = options;
}

ScopedParameterOptions::~ScopedParameterOptions() { ThreadParameterOptions() = previous_; }

torch::TensorOptions CurrentParameterOptions() { return ThreadParameterOptions(); }

torch::Tensor NewParameter(torch::nn::Module& module, const std::string& name, std::vector<int64_t> shape) {
  return module.register_parameter(name, torch::empty(shape, CurrentParameterOptions()));
}

LinearImpl::LinearImpl(int64_t in_features, int64_t out_features, bool with_bias) {
  weight = NewParameter(*this, "weight", {out_features, in_features});
  if (with_bias) bias = NewParameter(*this, "bias", {out_features});
}

torch::Tensor LinearImpl::forward(const torch::Tensor& x) {
  torch::Tensor y = torch::linear(x, weight, bias);
  for (const auto& adapter : adapters) y = adapter->Apply(x, y);
  return y;
}

Conv2dImpl::Conv2dImpl(int64_t in_channels, int64_t out_channels, int64_t kernel_size, int64_t stride_,
                       int64_t padding_, bool with_bias)
    : stride(stride_), padding(padding_) {
  weight = NewParameter(*this, "weight", {out_channels, in_channels, kernel_size, kernel_size});
  if (with_bias) bias = NewParameter(*this, "bias", {out_channels});
}

torch::Tensor Conv2dImpl::forward(const torch::Tensor& x) {
  torch::Tensor y = torch::conv2d(x, weight, bias, {stride, stride}, {padding, padding});
  for (const auto& adapter : adapters) y = adapter->Apply(x, y);
  return y;
}

GroupNormImpl::GroupNormImpl(int64_t num_groups_, int64_t num_channels, double eps_, bool affine)
    : num_groups(num_groups_), eps(eps_) {
  if (affine) {
    weight = NewParameter(*this, "weight", {num_channels});
    bias = NewParameter(*this, "bias", {num_channels});
  }
}

torch::Tensor GroupNormImpl::forward(const torch::Tensor& x) {
  return torch::group_norm(x, num_groups, weight, bias, eps);
}

LayerNormImpl::LayerNormImpl(int64_t dim_, double eps_, bool affine) : dim(dim_), eps(eps_) {
  if (affine) {
    weight = NewParameter(*this, "weight", {dim});
    bias = NewParameter(*this, "bias", {dim});
  }
}

torch::Tensor LayerNormImpl::forward(const torch::Tensor& x) {
  return torch::layer_norm(x, {dim}, weight, bias, eps);
}

EmbeddingImpl::EmbeddingImpl(int64_t num_embeddings, int64_t dim) {
  weight = NewParameter(*this, "weight", {num_embeddings, dim});
}

torch::Tensor EmbeddingImpl::forward(const torch::Tensor& ids) {
  if (adapter) return adapter->Lookup(ids, weight);
  return torch::embedding(weight, ids);
}

std::vector<torch::Tensor> TrainableTensorsOf(torch::nn::Module& module) {
  std::vector<torch::Tensor> out;
  for (const torch::Tensor& p : module.parameters(/*recurse=*/true)) {
    if (p.requires_grad()) out.push_back(p);
  }
  auto add = [&out](const std::vector<torch::Tensor>& tensors) {
    for (const torch::Tensor& t : tensors) {
      if (t.requires_grad()) out.push_back(t);
    }
  };
  for (const std::shared_ptr<torch::nn::Module>& child : module.modules(/*include_self=*/true)) {
    if (auto* linear = dynamic_cast<LinearImpl*>(child.get())) {
      for (const auto& adapter : linear->adapters) add(adapter->TrainableTensors());
    } else if (auto* conv = dynamic_cast<Conv2dImpl*>(child.get())) {
      for (const auto& adapter : conv->adapters) add(adapter->TrainableTensors());
    } else if (auto* embedding = dynamic_cast<EmbeddingImpl*>(child.get())) {
      if (embedding->adapter) add(embedding->adapter->TrainableTensors());
    }
  }
  return out;
}

void InitializeRandomly(torch::nn::Module& module, uint64_t seed) {
  torch::NoGradGuard no_grad;
  torch::Generator generator = at::detail::createCPUGenerator(seed);
  for (auto& item : module.named_parameters(/*recurse=*/true)) {
    torch::Tensor p = item.value();
    const std::string& name = item.key();
    // Draw on the CPU in float32 so the same seed gives the same model on any device/dtype.
    torch::Tensor values;
    if (absl::EndsWith(name, "bias")) {
      values = torch::zeros(p.sizes());
    } else if (p.dim() == 1) {
      values = torch::ones(p.sizes());
    } else {
      const double fan_in = static_cast<double>(p.numel() / p.size(0));
      values = at::normal(0.0, 1.0 / std::sqrt(fan_in), p.sizes(), generator);
    }
    p.copy_(values);
  }
}

int64_t CountParameters(const torch::nn::Module& module) {
  int64_t count = 0;
  for (const auto& p : module.parameters(/*recurse=*/true)) count += p.numel();
  return count;
}

}  // namespace likeness::model
