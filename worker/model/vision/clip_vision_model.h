// transformers' CLIPVisionModelWithProjection (modeling_clip.py at v4.35): CLIP's image tower,
// used for CLIP-I and CLIP-T (OpenAI ViT-L/14) and as the IP-Adapter image encoder. State-dict
// names, as model.safetensors and the vision half of a full CLIPModel name them:
//
//   vision_model.embeddings.class_embedding                   [hidden]
//   vision_model.embeddings.patch_embedding.weight            [hidden, C, p, p], no bias
//   vision_model.embeddings.position_embedding.weight         [1 + (S/p)^2, hidden]
//   vision_model.pre_layrnorm.{weight,bias}                   (transformers' spelling)
//   vision_model.encoder.layers.{i}.self_attn.{q,k,v,out}_proj.{weight,bias}
//   vision_model.encoder.layers.{i}.layer_norm{1,2}.{weight,bias}
//   vision_model.encoder.layers.{i}.mlp.fc{1,2}.{weight,bias}
//   vision_model.post_layernorm.{weight,bias}
//   visual_projection.weight                                  [projection_dim, hidden], no bias
//
// The encoder layers are the text tower's (clip_text_layers.h): the same pre-norm block under
// the same names; here they run without a mask (every patch sees every patch).
//
// Forward:
//   embeddings = cat(class_embedding, patch_embedding(pixels) as tokens) + position_embedding
//   h = pre_layrnorm(embeddings)                      hidden_states[0]
//   h = layer_i(h)                                    hidden_states[i + 1], last_hidden_state
//   pooler_output = post_layernorm(h[:, 0])           (the class token only)
//   image_embeds = visual_projection(pooler_output)
// Forward throws c10::Error on bad input, as every torch module does; loading returns a Status.
#ifndef LIKENESS_WORKER_MODEL_VISION_CLIP_VISION_MODEL_H_
#define LIKENESS_WORKER_MODEL_VISION_CLIP_VISION_MODEL_H_

#include <torch/torch.h>

#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "worker/model/attention.h"
#include "worker/model/layers.h"
#include "worker/model/state_dict.h"
#include "worker/model/text/clip_text_model.h"
#include "worker/model/vision/vision_config.h"

namespace likeness::model {

// Tensors a CLIP vision checkpoint may hold that are no part of the model: transformers before
// v4.31 saved `position_ids` as a persistent buffer. LoadClipVisionStateDict drops them from
// LoadReport::unexpected.
inline constexpr const char* kClipVisionIgnorableKeys[] = {"vision_model.embeddings.position_ids"};

struct ClipVisionForwardOptions {
  // Fill ClipVisionOutput::hidden_states (transformers' output_hidden_states=True).
  bool output_hidden_states = false;
  AttentionBackend attention_backend = AttentionBackend::kAuto;
};

struct ClipVisionOutput {
  torch::Tensor last_hidden_state;         // [B, positions, hidden], NOT post-layernormed
  torch::Tensor pooler_output;             // [B, hidden] = post_layernorm(last_hidden_state[:, 0])
  torch::Tensor image_embeds;              // [B, projection_dim]
  torch::Tensor penultimate_hidden_state;  // hidden_states[-2] (IP-Adapter Plus's features)
  // With output_hidden_states: pre_layrnorm(embeddings), then each layer's output.
  std::vector<torch::Tensor> hidden_states;
};

class ClipVisionEmbeddingsImpl : public torch::nn::Module {
 public:
  explicit ClipVisionEmbeddingsImpl(const ClipVisionConfig& config);
  // [B, C, S, S] with S = image_size -> [B, positions, hidden]
  torch::Tensor forward(const torch::Tensor& pixel_values);

  torch::Tensor class_embedding;          // [hidden]
  Conv2d patch_embedding{nullptr};        // C -> hidden, kernel = stride = patch_size, no bias
  Embedding position_embedding{nullptr};  // [positions, hidden]

 private:
  int64_t image_size_;
};
TORCH_MODULE(ClipVisionEmbeddings);

// transformers' CLIPVisionTransformer: the `vision_model` of CLIPVisionModel(WithProjection) and
// of CLIPModel.
class ClipVisionTransformerImpl : public torch::nn::Module {
 public:
  explicit ClipVisionTransformerImpl(const ClipVisionConfig& config);
  // Everything but image_embeds.
  ClipVisionOutput forward(const torch::Tensor& pixel_values,
                           const ClipVisionForwardOptions& options = {});

  const ClipVisionConfig& config() const { return config_; }

  ClipVisionEmbeddings embeddings{nullptr};
  LayerNorm pre_layrnorm{nullptr};
  ClipEncoder encoder{nullptr};
  LayerNorm post_layernorm{nullptr};

 private:
  ClipVisionConfig config_;
};
TORCH_MODULE(ClipVisionTransformer);

class CLIPVisionModelWithProjectionImpl : public torch::nn::Module {
 public:
  explicit CLIPVisionModelWithProjectionImpl(const ClipVisionConfig& config);
  ClipVisionOutput forward(const torch::Tensor& pixel_values,
                           const ClipVisionForwardOptions& options = {});
  const ClipVisionConfig& config() const { return vision_model->config(); }

  ClipVisionTransformer vision_model{nullptr};
  Linear visual_projection{nullptr};  // hidden -> projection_dim, no bias
};
TORCH_MODULE(CLIPVisionModelWithProjection);

// Validates `config` and builds the model (parameters uninitialised, CurrentParameterOptions());
// INVALID_ARGUMENT naming the config field, RESOURCE_EXHAUSTED when memory runs out.
absl::StatusOr<CLIPVisionModelWithProjection> CreateClipVisionModel(const ClipVisionConfig& config);

// LoadStateDict (strict) with kClipVisionIgnorableKeys removed from the report's `unexpected`.
absl::StatusOr<LoadReport> LoadClipVisionStateDict(torch::nn::Module& model,
                                                   const StateDict& source,
                                                   absl::string_view source_name,
                                                   const AfterCopy& after_copy = nullptr);

}  // namespace likeness::model

#endif  // LIKENESS_WORKER_MODEL_VISION_CLIP_VISION_MODEL_H_
