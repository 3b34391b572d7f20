#include "worker/model/vision/clip_vision_model.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace likeness::model {
namespace {

bool IsIgnorableKey(const std::string& name) {
  return std::any_of(std::begin(kClipVisionIgnorableKeys), std::end(kClipVisionIgnorableKeys),
                     [&](const char* key) { return name == key; });
}

}  // namespace

ClipVisionEmbeddingsImpl::ClipVisionEmbeddingsImpl(const ClipVisionConfig& config)
    : image_size_(config.image_size) {
  class_embedding = NewParameter(*this, "class_embedding", {config.hidden_size});
  patch_embedding = register_module(
      "patch_embedding", Conv2d(config.num_channels, config.hidden_size, config.patch_size,
                                /*stride=*/config.patch_size, /*padding=*/0, /*bias=*/false));
  position_embedding = register_module(
      "position_embedding", Embedding(config.num_positions(), config.hidden_size));
}

torch::Tensor ClipVisionEmbeddingsImpl::forward(const torch::Tensor& pixel_values) {
  TORCH_CHECK(pixel_values.dim() == 4 && pixel_values.size(2) == image_size_ &&
                  pixel_values.size(3) == image_size_,
              "CLIP vision encoder: pixel_values must be [B, C, ", image_size_, ", ", image_size_,
              "] (the position embeddings are for that size), got ", pixel_values.sizes());
  const int64_t batch = pixel_values.size(0);
  const torch::Tensor weight = patch_embedding->weight;
  // [B, C, S, S] -> [B, hidden, g, g] -> [B, hidden, g*g] -> [B, g*g, hidden]
  const torch::Tensor patches =
      patch_embedding(pixel_values.to(weight.scalar_type())).flatten(2).transpose(1, 2);
  // [hidden] -> [B, 1, hidden]
  const torch::Tensor cls = class_embedding.view({1, 1, -1}).expand({batch, 1, -1});
  // [B, 1 + g*g, hidden] + [positions, hidden] (broadcast over the batch)
  return torch::cat({cls, patches}, 1) + position_embedding->weight;
}

ClipVisionTransformerImpl::ClipVisionTransformerImpl(const ClipVisionConfig& config)
    : config_(config) {
  embeddings = register_module("embeddings", ClipVisionEmbeddings(config));
  pre_layrnorm =
      register_module("pre_layrnorm", LayerNorm(config.hidden_size, config.layer_norm_eps));
  encoder = register_module("encoder", ClipEncoder(config.EncoderLayerConfig()));
  post_layernorm =
      register_module("post_layernorm", LayerNorm(config.hidden_size, config.layer_norm_eps));
}

ClipVisionOutput ClipVisionTransformerImpl::forward(const torch::Tensor& pixel_values,
                                                    const ClipVisionForwardOptions& options) {
  ClipVisionOutput out;
  torch::Tensor h = pre_layrnorm(embeddings(pixel_values));  // [B, positions, hidden]
  AttentionOptions attention;  // no mask: every position attends to every position
  attention.backend = options.attention_backend;
  const int64_t num_layers = encoder->size();
  if (options.output_hidden_states) out.hidden_states.reserve(num_layers + 1);
  for (int64_t i = 0;; ++i) {
    // h is hidden_states[i] here.
    if (options.output_hidden_states) out.hidden_states.push_back(h);
    if (i == num_layers - 1) out.penultimate_hidden_state = h;
    if (i == num_layers) break;
    h = encoder->layer(i)(h, attention);
  }
  out.last_hidden_state = h;
  // [B, positions, hidden] -> the class token [B, hidden]
  out.pooler_output = post_layernorm(h.select(1, 0));
  return out;
}

CLIPVisionModelWithProjectionImpl::CLIPVisionModelWithProjectionImpl(
    const ClipVisionConfig& config) {
  vision_model = register_module("vision_model", ClipVisionTransformer(config));
  visual_projection = register_module(
      "visual_projection", Linear(config.hidden_size, config.projection_dim, /*bias=*/false));
}

ClipVisionOutput CLIPVisionModelWithProjectionImpl::forward(
    const torch::Tensor& pixel_values, const ClipVisionForwardOptions& options) {
  ClipVisionOutput out = vision_model(pixel_values, options);
  out.image_embeds = visual_projection(out.pooler_output);
  return out;
}

absl::StatusOr<CLIPVisionModelWithProjection> CreateClipVisionModel(
    const ClipVisionConfig& config) {
  LIKENESS_RETURN_IF_ERROR(config.Validate());
  try {
    return CLIPVisionModelWithProjection(config);
  } catch (const c10::OutOfMemoryError& error) {
    return absl::ResourceExhaustedError(
        absl::StrCat("building CLIPVisionModelWithProjection: ", error.what_without_backtrace()));
  } catch (const c10::Error& error) {
    return absl::InternalError(
        absl::StrCat("building CLIPVisionModelWithProjection: ", error.what_without_backtrace()));
  }
}

absl::StatusOr<LoadReport> LoadClipVisionStateDict(torch::nn::Module& model,
                                                   const StateDict& source,
                                                   absl::string_view source_name,
                                                   const AfterCopy& after_copy) {
  LIKENESS_ASSIGN_OR_RETURN(LoadReport report,
                            LoadStateDict(model, source, source_name, after_copy));
  report.unexpected.erase(
      std::remove_if(report.unexpected.begin(), report.unexpected.end(), IsIgnorableKey),
      report.unexpected.end());
  return report;
}

}  // namespace likeness::model
