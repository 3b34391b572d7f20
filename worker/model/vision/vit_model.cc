#include "worker/model/vision/vit_model.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "worker/model/state_dict.h"
#include "worker/model/text/clip_text_layers.h"

namespace likeness::model {
namespace {

bool IsIgnorableKey(const std::string& name) {
  return std::any_of(std::begin(kViTIgnorableKeys), std::end(kViTIgnorableKeys),
                     [&](const char* key) { return name == key; });
}

}  // namespace

ViTPatchEmbeddingsImpl::ViTPatchEmbeddingsImpl(const ViTConfig& config) {
  projection = register_module(
      "projection", Conv2d(config.num_channels, config.hidden_size, config.patch_size,
                           /*stride=*/config.patch_size, /*padding=*/0, /*bias=*/true));
}

torch::Tensor ViTPatchEmbeddingsImpl::forward(const torch::Tensor& pixel_values) {
  // The bias is added after the convolution rather than fused into it: the same sum, but the
  // reference (PyTorch 1.13 on CPU) rounds it this way, so the golden case matches bit for bit
  // instead of within an ulp.
  torch::Tensor y = torch::conv2d(pixel_values, projection->weight, /*bias=*/{},
                                  {projection->stride, projection->stride}) +
                    projection->bias.view({1, -1, 1, 1});  // [hidden] -> [1, hidden, 1, 1]
  for (const auto& adapter : projection->adapters) y = adapter->Apply(pixel_values, y);
  // [B, hidden, g, g] -> [B, hidden, g*g] -> [B, g*g, hidden]
  return y.flatten(2).transpose(1, 2);
}

ViTEmbeddingsImpl::ViTEmbeddingsImpl(const ViTConfig& config)
    : image_size_(config.image_size), num_channels_(config.num_channels) {
  cls_token = NewParameter(*this, "cls_token", {1, 1, config.hidden_size});
  position_embeddings =
      NewParameter(*this, "position_embeddings", {1, config.num_positions(), config.hidden_size});
  patch_embeddings = register_module("patch_embeddings", ViTPatchEmbeddings(config));
}

torch::Tensor ViTEmbeddingsImpl::forward(const torch::Tensor& pixel_values) {
  TORCH_CHECK(pixel_values.dim() == 4 && pixel_values.size(1) == num_channels_ &&
                  pixel_values.size(2) == image_size_ && pixel_values.size(3) == image_size_,
              "ViT: pixel_values must be [B, ", num_channels_, ", ", image_size_, ", ",
              image_size_, "] (the position embeddings are for that size), got ",
              pixel_values.sizes());
  const int64_t batch = pixel_values.size(0);
  const torch::Tensor patches =
      patch_embeddings(pixel_values.to(cls_token.scalar_type()));  // [B, g*g, hidden]
  // [1, 1, hidden] -> [B, 1, hidden]; cat -> [B, positions, hidden]; + [1, positions, hidden]
  return torch::cat({cls_token.expand({batch, -1, -1}), patches}, 1) + position_embeddings;
}

ViTSelfAttentionImpl::ViTSelfAttentionImpl(const ViTConfig& config)
    : num_heads_(config.num_attention_heads), head_dim_(config.head_dim()) {
  const int64_t hidden = config.hidden_size;
  query = register_module("query", Linear(hidden, hidden, config.qkv_bias));
  key = register_module("key", Linear(hidden, hidden, config.qkv_bias));
  value = register_module("value", Linear(hidden, hidden, config.qkv_bias));
}

torch::Tensor ViTSelfAttentionImpl::forward(const torch::Tensor& x,
                                            const AttentionOptions& attention) {
  const int64_t batch = x.size(0), length = x.size(1), hidden = x.size(2);
  const auto split_heads = [&](const torch::Tensor& t) {
    // [B, N, hidden] -> [B, N, heads, head_dim] -> [B, heads, N, head_dim]
    return t.view({batch, length, num_heads_, head_dim_}).transpose(1, 2);
  };
  // Softmax scale: the default 1/sqrt(head_dim), as transformers' ViTSelfAttention.
  torch::Tensor out =
      Attention(split_heads(query(x)), split_heads(key(x)), split_heads(value(x)), attention);
  // [B, heads, N, head_dim] -> [B, N, heads, head_dim] -> [B, N, hidden]
  return out.transpose(1, 2).reshape({batch, length, hidden});
}

ViTSelfOutputImpl::ViTSelfOutputImpl(const ViTConfig& config) {
  dense = register_module("dense", Linear(config.hidden_size, config.hidden_size));
}

ViTAttentionImpl::ViTAttentionImpl(const ViTConfig& config) {
  attention = register_module("attention", ViTSelfAttention(config));
  output = register_module("output", ViTSelfOutput(config));
}

ViTIntermediateImpl::ViTIntermediateImpl(const ViTConfig& config)
    : activation_(config.hidden_act) {
  dense = register_module("dense", Linear(config.hidden_size, config.intermediate_size));
}

torch::Tensor ViTIntermediateImpl::forward(const torch::Tensor& x) {
  return ApplyClipActivation(dense(x), activation_);
}

ViTOutputImpl::ViTOutputImpl(const ViTConfig& config) {
  dense = register_module("dense", Linear(config.intermediate_size, config.hidden_size));
}

ViTLayerImpl::ViTLayerImpl(const ViTConfig& config) {
  attention = register_module("attention", ViTAttention(config));
  intermediate = register_module("intermediate", ViTIntermediate(config));
  output = register_module("output", ViTOutput(config));
  layernorm_before =
      register_module("layernorm_before", LayerNorm(config.hidden_size, config.layer_norm_eps));
  layernorm_after =
      register_module("layernorm_after", LayerNorm(config.hidden_size, config.layer_norm_eps));
}

torch::Tensor ViTLayerImpl::forward(const torch::Tensor& x, const AttentionOptions& options) {
  const torch::Tensor h = x + attention(layernorm_before(x), options);
  return output(intermediate(layernorm_after(h)), h);
}

ViTEncoderImpl::ViTEncoderImpl(const ViTConfig& config) {
  layer = register_module("layer", torch::nn::ModuleList());
  layers_.reserve(config.num_hidden_layers);
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    layers_.push_back(ViTLayer(config));
    layer->push_back(layers_.back());
  }
}

ViTModelImpl::ViTModelImpl(const ViTConfig& config) : config_(config) {
  embeddings = register_module("embeddings", ViTEmbeddings(config));
  encoder = register_module("encoder", ViTEncoder(config));
  layernorm = register_module("layernorm", LayerNorm(config.hidden_size, config.layer_norm_eps));
}

ViTModelOutput ViTModelImpl::forward(const torch::Tensor& pixel_values,
                                const ViTForwardOptions& options) {
  ViTModelOutput out;
  torch::Tensor h = embeddings(pixel_values);  // [B, positions, hidden]
  AttentionOptions attention;                  // no mask
  attention.backend = options.attention_backend;
  const int64_t num_layers = encoder->size();
  if (options.output_hidden_states) out.hidden_states.reserve(num_layers + 1);
  for (int64_t i = 0;; ++i) {
    // h is hidden_states[i] here.
    if (options.output_hidden_states) out.hidden_states.push_back(h);
    if (i == num_layers) break;
    h = encoder->at(i)(h, attention);
  }
  out.last_hidden_state = layernorm(h);
  out.cls_embedding = out.last_hidden_state.select(1, 0);  // [B, hidden]
  return out;
}

absl::StatusOr<ViTModel> CreateViTModel(const ViTConfig& config) {
  LIKENESS_RETURN_IF_ERROR(config.Validate());
  try {
    return ViTModel(config);
  } catch (const c10::OutOfMemoryError& error) {
    return absl::ResourceExhaustedError(
        absl::StrCat("building ViTModel: ", error.what_without_backtrace()));
  } catch (const c10::Error& error) {
    return absl::InternalError(absl::StrCat("building ViTModel: ", error.what_without_backtrace()));
  }
}

absl::StatusOr<LoadReport> LoadViTStateDict(torch::nn::Module& model, const StateDict& source,
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
