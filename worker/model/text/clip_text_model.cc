#include "worker/model/text/clip_text_model.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace likeness::model {
namespace {

bool IsIgnorableKey(const std::string& name) {
  return std::any_of(std::begin(kClipTextIgnorableKeys), std::end(kClipTextIgnorableKeys),
                     [&](const char* key) { return name == key; });
}

}  // namespace

torch::Tensor ClipPoolingPositions(const torch::Tensor& input_ids, int64_t eos_token_id) {
  TORCH_CHECK(input_ids.dim() == 2, "CLIP text encoder: input_ids must be [B, N], got ",
              input_ids.sizes());
  if (eos_token_id == kLegacyEosTokenId) {
    // transformers keeps this rule for configs from before PR #24773: the EOS id 49407 is the
    // largest id, and argmax returns the first maximum.
    return input_ids.argmax(-1);
  }
  // The first eos_token_id (a pad id may equal it); argmax over int, as transformers does.
  return input_ids.eq(eos_token_id).to(torch::kInt).argmax(-1);
}

ClipEncoderImpl::ClipEncoderImpl(const ClipTextConfig& config) {
  layers = register_module("layers", torch::nn::ModuleList());
  layers_.reserve(config.num_hidden_layers);
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    layers_.push_back(ClipEncoderLayer(config));
    layers->push_back(layers_.back());
  }
}

ClipTextTransformerImpl::ClipTextTransformerImpl(const ClipTextConfig& config) : config_(config) {
  embeddings = register_module("embeddings", ClipTextEmbeddings(config));
  encoder = register_module("encoder", ClipEncoder(config));
  final_layer_norm =
      register_module("final_layer_norm", LayerNorm(config.hidden_size, config.layer_norm_eps));
}

ClipTextOutput ClipTextTransformerImpl::forward(const torch::Tensor& input_ids,
                                                const ClipTextForwardOptions& options) {
  TORCH_CHECK(input_ids.dim() == 2, "CLIP text encoder: input_ids must be [B, N], got ",
              input_ids.sizes());
  TORCH_CHECK(input_ids.scalar_type() == torch::kLong,
              "CLIP text encoder: input_ids must be int64, got ", input_ids.scalar_type());
  ClipTextOutput out;
  torch::Tensor h = embeddings(input_ids);  // [B, N, hidden]

  AttentionOptions attention;
  attention.mask = CausalMask(input_ids.size(1), h.scalar_type(), h.device());  // [1, 1, N, N]
  attention.backend = options.attention_backend;

  const int64_t num_layers = encoder->size();
  const int64_t penultimate = num_layers - 1;  // index into hidden_states
  const int64_t layers_to_run = options.stop_at_penultimate ? penultimate : num_layers;
  if (options.output_hidden_states) out.hidden_states.reserve(layers_to_run + 1);
  for (int64_t i = 0;; ++i) {
    // h is hidden_states[i] here.
    if (options.output_hidden_states) out.hidden_states.push_back(h);
    if (i == penultimate) out.penultimate_hidden_state = h;
    if (i == layers_to_run) break;
    h = encoder->layer(i)(h, attention);
  }
  if (options.stop_at_penultimate) return out;

  out.last_hidden_state = final_layer_norm(h);
  const torch::Tensor positions =
      ClipPoolingPositions(input_ids, config_.eos_token_id).to(h.device());
  const torch::Tensor rows = torch::arange(input_ids.size(0), positions.options());
  // [B, N, hidden] at (row b, position p_b) -> [B, hidden]
  out.pooler_output = out.last_hidden_state.index({rows, positions});
  return out;
}

CLIPTextModelImpl::CLIPTextModelImpl(const ClipTextConfig& config) {
  text_model = register_module("text_model", ClipTextTransformer(config));
}

ClipTextOutput CLIPTextModelImpl::forward(const torch::Tensor& input_ids,
                                          const ClipTextForwardOptions& options) {
  return text_model(input_ids, options);
}

CLIPTextModelWithProjectionImpl::CLIPTextModelWithProjectionImpl(const ClipTextConfig& config) {
  text_model = register_module("text_model", ClipTextTransformer(config));
  text_projection = register_module(
      "text_projection", Linear(config.hidden_size, config.projection_dim, /*bias=*/false));
}

ClipTextOutput CLIPTextModelWithProjectionImpl::forward(const torch::Tensor& input_ids,
                                                        const ClipTextForwardOptions& options) {
  ClipTextOutput out = text_model(input_ids, options);
  if (out.pooler_output.defined()) out.text_embeds = text_projection(out.pooler_output);
  return out;
}

absl::StatusOr<LoadReport> LoadClipTextStateDict(torch::nn::Module& model, const StateDict& source,
                                                 absl::string_view source_name, const AfterCopy& after_copy) {
  LIKENESS_ASSIGN_OR_RETURN(LoadReport report, LoadStateDict(model, source, source_name, after_copy));
  report.unexpected.erase(
      std::remove_if(report.unexpected.begin(), report.unexpected.end(), IsIgnorableKey),
      report.unexpected.end());
  return report;
}

}  // namespace likeness::model
