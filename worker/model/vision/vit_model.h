// transformers' ViTModel (modeling_vit.py at v4.35) built with add_pooling_layer=False, as
// facebook/dino-vits16 is: the DINO image encoder whose [CLS] token the DINO metric compares.
// State-dict names (dino_rename_table.h maps the original DINO names onto these):
//
//   embeddings.cls_token                                       [1, 1, hidden]
//   embeddings.position_embeddings                             [1, 1 + (S/p)^2, hidden]
//   embeddings.patch_embeddings.projection.{weight,bias}       [hidden, C, p, p], [hidden]
//   encoder.layer.{i}.layernorm_before.{weight,bias}
//   encoder.layer.{i}.attention.attention.{query,key,value}.{weight,bias}
//   encoder.layer.{i}.attention.output.dense.{weight,bias}
//   encoder.layer.{i}.layernorm_after.{weight,bias}
//   encoder.layer.{i}.intermediate.dense.{weight,bias}
//   encoder.layer.{i}.output.dense.{weight,bias}
//   layernorm.{weight,bias}
//
// Each layer is pre-norm:
//   h = x + attention.output.dense(SelfAttention(layernorm_before(x)))
//   y = h + output.dense(act(intermediate.dense(layernorm_after(h))))
// hidden_states[0] is the embeddings (no norm), hidden_states[i + 1] layer i's output, and
// last_hidden_state = layernorm(hidden_states[-1]). The position embeddings fit image_size only
// (transformers' interpolate_pos_encoding is not implemented; the preprocessing crops to it).
#ifndef LIKENESS_WORKER_MODEL_VISION_VIT_MODEL_H_
#define LIKENESS_WORKER_MODEL_VISION_VIT_MODEL_H_

#include <torch/torch.h>

#include <vector>

#include "absl/status/statusor.h"
#include "worker/model/attention.h"
#include "worker/model/layers.h"
#include "worker/model/state_dict.h"
#include "worker/model/vision/vision_config.h"

namespace likeness::model {

// Tensors a ViT checkpoint may carry that ViTModel(add_pooling_layer=False) does not use: the
// pooler of a model saved with one, and the mask token of ViTForMaskedImageModeling-style
// models. LoadViTStateDict drops them from LoadReport::unexpected.
inline constexpr const char* kViTIgnorableKeys[] = {"pooler.dense.weight", "pooler.dense.bias",
                                                    "embeddings.mask_token"};

struct ViTForwardOptions {
  bool output_hidden_states = false;
  AttentionBackend attention_backend = AttentionBackend::kAuto;
};

struct ViTModelOutput {
  torch::Tensor last_hidden_state;  // [B, positions, hidden], after the final layernorm
  torch::Tensor cls_embedding;      // [B, hidden] = last_hidden_state[:, 0], DINO's feature
  std::vector<torch::Tensor> hidden_states;
};

class ViTPatchEmbeddingsImpl : public torch::nn::Module {
 public:
  explicit ViTPatchEmbeddingsImpl(const ViTConfig& config);
  // [B, C, S, S] -> [B, (S/p)^2, hidden]
  torch::Tensor forward(const torch::Tensor& pixel_values);
  Conv2d projection{nullptr};
};
TORCH_MODULE(ViTPatchEmbeddings);

class ViTEmbeddingsImpl : public torch::nn::Module {
 public:
  explicit ViTEmbeddingsImpl(const ViTConfig& config);
  // [B, C, S, S] with S = image_size -> [B, positions, hidden]
  torch::Tensor forward(const torch::Tensor& pixel_values);

  torch::Tensor cls_token;            // [1, 1, hidden]
  torch::Tensor position_embeddings;  // [1, positions, hidden]
  ViTPatchEmbeddings patch_embeddings{nullptr};

 private:
  int64_t image_size_;
  int64_t num_channels_;
};
TORCH_MODULE(ViTEmbeddings);

// query/key/value projections and the attention itself (through model::Attention).
class ViTSelfAttentionImpl : public torch::nn::Module {
 public:
  explicit ViTSelfAttentionImpl(const ViTConfig& config);
  // [B, N, hidden] -> [B, N, hidden] (heads merged, before attention.output.dense)
  torch::Tensor forward(const torch::Tensor& x, const AttentionOptions& attention);
  Linear query{nullptr}, key{nullptr}, value{nullptr};

 private:
  int64_t num_heads_;
  int64_t head_dim_;
};
TORCH_MODULE(ViTSelfAttention);

// transformers' ViTSelfOutput: the output projection (the residual is added by ViTLayer).
class ViTSelfOutputImpl : public torch::nn::Module {
 public:
  explicit ViTSelfOutputImpl(const ViTConfig& config);
  torch::Tensor forward(const torch::Tensor& x) { return dense(x); }
  Linear dense{nullptr};
};
TORCH_MODULE(ViTSelfOutput);

class ViTAttentionImpl : public torch::nn::Module {
 public:
  explicit ViTAttentionImpl(const ViTConfig& config);
  torch::Tensor forward(const torch::Tensor& x, const AttentionOptions& options) {
    return output(attention(x, options));
  }
  ViTSelfAttention attention{nullptr};
  ViTSelfOutput output{nullptr};
};
TORCH_MODULE(ViTAttention);

class ViTIntermediateImpl : public torch::nn::Module {
 public:
  explicit ViTIntermediateImpl(const ViTConfig& config);
  // [B, N, hidden] -> [B, N, intermediate], activation applied
  torch::Tensor forward(const torch::Tensor& x);
  Linear dense{nullptr};

 private:
  ClipActivation activation_;
};
TORCH_MODULE(ViTIntermediate);

// transformers' ViTOutput: the MLP's second projection plus the residual.
class ViTOutputImpl : public torch::nn::Module {
 public:
  explicit ViTOutputImpl(const ViTConfig& config);
  // [B, N, intermediate], residual [B, N, hidden] -> [B, N, hidden]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& residual) {
    return dense(x) + residual;
  }
  Linear dense{nullptr};
};
TORCH_MODULE(ViTOutput);

class ViTLayerImpl : public torch::nn::Module {
 public:
  explicit ViTLayerImpl(const ViTConfig& config);
  // [B, N, hidden] -> [B, N, hidden]
  torch::Tensor forward(const torch::Tensor& x, const AttentionOptions& attention);

  ViTAttention attention{nullptr};
  ViTIntermediate intermediate{nullptr};
  ViTOutput output{nullptr};
  LayerNorm layernorm_before{nullptr};
  LayerNorm layernorm_after{nullptr};
};
TORCH_MODULE(ViTLayer);

class ViTEncoderImpl : public torch::nn::Module {
 public:
  explicit ViTEncoderImpl(const ViTConfig& config);
  int64_t size() const { return static_cast<int64_t>(layers_.size()); }
  ViTLayer& at(int64_t i) { return layers_.at(i); }

  torch::nn::ModuleList layer{nullptr};  // registered as "layer": layer.{i}.*

 private:
  std::vector<ViTLayer> layers_;  // The same modules, typed.
};
TORCH_MODULE(ViTEncoder);

class ViTModelImpl : public torch::nn::Module {
 public:
  explicit ViTModelImpl(const ViTConfig& config);
  ViTModelOutput forward(const torch::Tensor& pixel_values, const ViTForwardOptions& options = {});
  const ViTConfig& config() const { return config_; }

  ViTEmbeddings embeddings{nullptr};
  ViTEncoder encoder{nullptr};
  LayerNorm layernorm{nullptr};

 private:
  ViTConfig config_;
};
TORCH_MODULE(ViTModel);

// Validates `config` and builds the model (parameters uninitialised); INVALID_ARGUMENT naming
// the config field, RESOURCE_EXHAUSTED when memory runs out.
absl::StatusOr<ViTModel> CreateViTModel(const ViTConfig& config);

// LoadStateDict (strict) with kViTIgnorableKeys removed from `unexpected`.
absl::StatusOr<LoadReport> LoadViTStateDict(torch::nn::Module& model, const StateDict& source,
                                            absl::string_view source_name,
                                            const AfterCopy& after_copy = nullptr);

}  // namespace likeness::model

#endif  // LIKENESS_WORKER_MODEL_VISION_VIT_MODEL_H_
