// The building blocks every model module uses instead of torch::nn's Linear, Conv2d, norms
// and Embedding. The difference: parameters are created EMPTY (never initialised) with the
// options of the innermost ScopedParameterOptions. So
//   * loading a checkpoint costs one copy per tensor, not a random init that is overwritten;
//   * `likeness inspect --arch sdxl-base` builds full SDXL (3.5 B parameters) in virtual memory
//     only: untouched pages are never backed, so it needs no 14 GB of RAM;
//   * a model can be built directly in bf16 or on a GPU.
// Call InitializeRandomly() for a model that is trained from scratch or for tests.
// Parameter names match torch::nn's (weight, bias), hence diffusers' state-dict names.
#ifndef LIKENESS_WORKER_MODEL_LAYERS_H_
#define LIKENESS_WORKER_MODEL_LAYERS_H_

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace likeness::model {

// The options new parameters get while a guard lives (default: float32 on CPU). Guards nest.
class ScopedParameterOptions {
 public:
  explicit ScopedParameterOptions(torch::TensorOptions options);
  ~ScopedParameterOptions();
  ScopedParameterOptions(const ScopedParameterOptions&) = delete;
  ScopedParameterOptions& operator=(const ScopedParameterOptions&) = delete;

 private:
  torch::TensorOptions previous_;
};

torch::TensorOptions CurrentParameterOptions();

// An uninitialised parameter of `shape` registered on `module` under `name`.
torch::Tensor NewParameter(torch::nn::Module& module, const std::string& name, std::vector<int64_t> shape);

// Adapters change what a layer computes without touching its weights: LoRA (worker/lora) adds a
// low-rank term to a Linear or Conv2d output, textual inversion (worker/embeddings) gives an
// Embedding extra token rows. They are not submodules, so the model's state dict and
// parameters() stay the base model's (a checkpoint still loads strictly, and changing a LoRA's
// scale never copies a base weight); each adapter owns its tensors and exposes them itself when
// it trains.
class LayerAdapter {
 public:
  virtual ~LayerAdapter() = default;
  // x: the layer's input; y: the output so far (the base output, plus earlier adapters').
  virtual torch::Tensor Apply(const torch::Tensor& x, const torch::Tensor& y) = 0;
  // The tensors this adapter trains. Activation checkpointing must take gradients for them
  // too, since they are not the module's registered parameters.
  virtual std::vector<torch::Tensor> TrainableTensors() const { return {}; }
};

// Replaces an Embedding's lookup, for ids beyond the base table (added tokens).
class EmbeddingAdapter {
 public:
  virtual ~EmbeddingAdapter() = default;
  // ids int64 [...], base_weight [num, dim] -> [..., dim]
  virtual torch::Tensor Lookup(const torch::Tensor& ids, const torch::Tensor& base_weight) = 0;
  virtual std::vector<torch::Tensor> TrainableTensors() const { return {}; }
};

// What `module` trains (recursively): its parameters that require grad, then the trainable
// tensors of the adapters on its layers, in module order.
std::vector<torch::Tensor> TrainableTensorsOf(torch::nn::Module& module);

class LinearImpl : public torch::nn::Module {
 public:
  LinearImpl(int64_t in_features, int64_t out_features, bool bias = true);
  // [..., in] -> [..., out], then each adapter in order.
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;  // [out, in], [out] or undefined
  std::vector<std::shared_ptr<LayerAdapter>> adapters;
};
TORCH_MODULE(Linear);

class Conv2dImpl : public torch::nn::Module {
 public:
  Conv2dImpl(int64_t in_channels, int64_t out_channels, int64_t kernel_size, int64_t stride = 1,
             int64_t padding = 0, bool bias = true);
  // [B, Cin, H, W] -> [B, Cout, H', W'], then each adapter in order.
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;  // [out, in, k, k], [out]
  int64_t stride, padding;
  std::vector<std::shared_ptr<LayerAdapter>> adapters;
};
TORCH_MODULE(Conv2d);

class GroupNormImpl : public torch::nn::Module {
 public:
  GroupNormImpl(int64_t num_groups, int64_t num_channels, double eps = 1e-5, bool affine = true);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;
  int64_t num_groups;
  double eps;
};
TORCH_MODULE(GroupNorm);

class LayerNormImpl : public torch::nn::Module {
 public:
  explicit LayerNormImpl(int64_t dim, double eps = 1e-5, bool affine = true);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;
  int64_t dim;
  double eps;
};
TORCH_MODULE(LayerNorm);

class EmbeddingImpl : public torch::nn::Module {
 public:
  EmbeddingImpl(int64_t num_embeddings, int64_t dim);
  // int64 ids [...] -> [..., dim]; through `adapter` when one is set.
  torch::Tensor forward(const torch::Tensor& ids);
  torch::Tensor weight;  // [num, dim]
  std::shared_ptr<EmbeddingAdapter> adapter;
};
TORCH_MODULE(Embedding);

// Fills every parameter of `module` (recursively) deterministically from `seed`: weights with
// N(0, 1/sqrt(fan_in)) (fan_in = numel / shape[0]), 1-D weights of norms with 1, biases with 0.
void InitializeRandomly(torch::nn::Module& module, uint64_t seed);

// Parameter count of a module (recursively), without touching the values.
int64_t CountParameters(const torch::nn::Module& module);

}  // namespace likeness::model

#endif  // LIKENESS_WORKER_MODEL_LAYERS_H_
