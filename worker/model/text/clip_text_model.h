// transformers' CLIPTextModel (SDXL's text_encoder, OpenAI CLIP ViT-L) and
// CLIPTextModelWithProjection (text_encoder_2, OpenCLIP ViT-bigG), with the state-dict names of
// a diffusers folder's text_encoder*/model.safetensors:
//
//   text_model.embeddings.token_embedding.weight          [vocab, hidden]
//   text_model.embeddings.position_embedding.weight       [max_positions, hidden]
//   text_model.encoder.layers.{i}.self_attn.{q,k,v,out}_proj.{weight,bias}
//   text_model.encoder.layers.{i}.layer_norm{1,2}.{weight,bias}
//   text_model.encoder.layers.{i}.mlp.fc{1,2}.{weight,bias}
//   text_model.final_layer_norm.{weight,bias}
//   text_projection.weight                                [projection_dim, hidden], no bias
//
// The two model classes keep transformers' spelling (CLIPTextModel), so the class a checkpoint
// or golden sidecar names is the class found here.
//
// Forward follows modeling_clip.py at v4.35: causal mask only (SDXL gives no padding mask), the
// pooled output read at ClipPoolingPositions. Forward throws c10::Error on bad input, as every
// torch module does; loading returns absl::Status.
#ifndef LIKENESS_WORKER_MODEL_TEXT_CLIP_TEXT_MODEL_H_
#define LIKENESS_WORKER_MODEL_TEXT_CLIP_TEXT_MODEL_H_

#include <torch/torch.h>

#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "worker/model/attention.h"
#include "worker/model/state_dict.h"
#include "worker/model/text/clip_text_config.h"
#include "worker/model/text/clip_text_layers.h"

namespace likeness::model {

// Tensors a CLIP text checkpoint may hold that are no part of the model: transformers before
// v4.31 saved `position_ids` as a persistent buffer. LoadClipTextStateDict drops them from
// LoadReport::unexpected.
inline constexpr const char* kClipTextIgnorableKeys[] = {"text_model.embeddings.position_ids"};

struct ClipTextForwardOptions {
  // Fill ClipTextOutput::hidden_states (transformers' output_hidden_states=True).
  bool output_hidden_states = false;
  // Stop after layer num_hidden_layers - 1: only penultimate_hidden_state (and hidden_states up
  // to it) are set. SDXL needs nothing else from encoder 1. Encoder 2's pooled output needs the
  // last layer and final_layer_norm, so it must run in full.
  bool stop_at_penultimate = false;
  AttentionBackend attention_backend = AttentionBackend::kAuto;
};

struct ClipTextOutput {
  torch::Tensor last_hidden_state;         // [B, N, hidden], after final_layer_norm
  torch::Tensor pooler_output;             // [B, hidden], last_hidden_state at the pooling position
  torch::Tensor text_embeds;               // [B, projection_dim] = text_projection(pooler_output)
  torch::Tensor penultimate_hidden_state;  // [B, N, hidden] = hidden_states[-2], what SDXL uses
  // With output_hidden_states: the embedding output, then each layer's output (no final norm),
  // num_hidden_layers + 1 tensors of [B, N, hidden] (fewer when stopped early).
  std::vector<torch::Tensor> hidden_states;
};

// int64 ids [B, N] -> int64 [B]: where transformers v4.35 reads the pooled output. With
// eos_token_id == kLegacyEosTokenId (SDXL's configs), the first position of the largest id (the
// first 49407 for CLIP-tokenized input); otherwise the first position equal to eos_token_id (0
// when a row has none).
torch::Tensor ClipPoolingPositions(const torch::Tensor& input_ids, int64_t eos_token_id);

class ClipEncoderImpl : public torch::nn::Module {
 public:
  explicit ClipEncoderImpl(const ClipTextConfig& config);
  int64_t size() const { return static_cast<int64_t>(layers_.size()); }
  ClipEncoderLayer& layer(int64_t i) { return layers_.at(i); }

  torch::nn::ModuleList layers{nullptr};  // registered as "layers": layers.{i}.*

 private:
  std::vector<ClipEncoderLayer> layers_;  // The same modules, typed.
};
TORCH_MODULE(ClipEncoder);

// transformers' CLIPTextTransformer: the `text_model` of both models.
class ClipTextTransformerImpl : public torch::nn::Module {
 public:
  explicit ClipTextTransformerImpl(const ClipTextConfig& config);
  // int64 ids [B, N] -> everything but text_embeds.
  ClipTextOutput forward(const torch::Tensor& input_ids,
                         const ClipTextForwardOptions& options = {});

  const ClipTextConfig& config() const { return config_; }

  ClipTextEmbeddings embeddings{nullptr};
  ClipEncoder encoder{nullptr};
  LayerNorm final_layer_norm{nullptr};

 private:
  ClipTextConfig config_;
};
TORCH_MODULE(ClipTextTransformer);

class CLIPTextModelImpl : public torch::nn::Module {
 public:
  explicit CLIPTextModelImpl(const ClipTextConfig& config);
  ClipTextOutput forward(const torch::Tensor& input_ids,
                         const ClipTextForwardOptions& options = {});
  const ClipTextConfig& config() const { return text_model->config(); }

  ClipTextTransformer text_model{nullptr};
};
TORCH_MODULE(CLIPTextModel);

class CLIPTextModelWithProjectionImpl : public torch::nn::Module {
 public:
  explicit CLIPTextModelWithProjectionImpl(const ClipTextConfig& config);
  // As CLIPTextModel, plus text_embeds (unless stopped at the penultimate layer).
  ClipTextOutput forward(const torch::Tensor& input_ids,
                         const ClipTextForwardOptions& options = {});
  const ClipTextConfig& config() const { return text_model->config(); }

  ClipTextTransformer text_model{nullptr};
  Linear text_projection{nullptr};  // hidden -> projection_dim, no bias
};
TORCH_MODULE(CLIPTextModelWithProjection);

// LoadStateDict (strict: every tensor the model needs, shapes checked) with the keys of
// kClipTextIgnorableKeys removed from the report's `unexpected`. Any other unexpected tensor is
// left in the report for the caller to report.
absl::StatusOr<LoadReport> LoadClipTextStateDict(torch::nn::Module& model, const StateDict& source,
                                                 absl::string_view source_name,
                                                 const AfterCopy& after_copy = nullptr);

}  // namespace likeness::model

#endif  // LIKENESS_WORKER_MODEL_TEXT_CLIP_TEXT_MODEL_H_
