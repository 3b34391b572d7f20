// The configuration of a CLIP text encoder, as transformers' CLIPTextConfig writes it to
// `config.json` (a diffusers SDXL folder's text_encoder/ and text_encoder_2/).
//
// FromJson follows transformers: a key that is absent takes CLIPTextConfig's default (what
// from_pretrained would use); a key that is present must have the right type and a sensible
// value, else INVALID_ARGUMENT naming the key. A full CLIPConfig ("model_type": "clip") is read
// through its "text_config". A non-zero "attention_dropout" is refused (not implemented; SDXL's
// encoders use 0).
#ifndef LIKENESS_WORKER_MODEL_TEXT_CLIP_TEXT_CONFIG_H_
#define LIKENESS_WORKER_MODEL_TEXT_CLIP_TEXT_CONFIG_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json_fwd.hpp"

namespace likeness::model {

// transformers' ACT2FN names the CLIP text encoders use.
enum class ClipActivation {
  kQuickGelu,  // "quick_gelu": x * sigmoid(1.702 x), OpenAI CLIP ViT-L (SDXL encoder 1)
  kGelu,       // "gelu": exact erf GELU, OpenCLIP ViT-bigG (SDXL encoder 2)
  kGeluTanh,   // "gelu_new" / "gelu_pytorch_tanh": the tanh approximation
};

// The transformers name of `activation` ("quick_gelu", "gelu", "gelu_pytorch_tanh").
absl::string_view ClipActivationName(ClipActivation activation);

// The `eos_token_id` that transformers (PR #24773, kept through v4.35 and later) treats as the
// legacy value: the pooled output is then read at argmax(input_ids), the position of the
// largest id, instead of at the first eos_token_id.
inline constexpr int64_t kLegacyEosTokenId = 2;

struct ClipTextConfig {
  // Defaults are transformers' CLIPTextConfig defaults.
  int64_t vocab_size = 49408;
  int64_t hidden_size = 512;
  int64_t intermediate_size = 2048;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 8;
  int64_t max_position_embeddings = 77;
  ClipActivation hidden_act = ClipActivation::kQuickGelu;
  double layer_norm_eps = 1e-5;
  // Output width of text_projection (CLIPTextModelWithProjection only).
  int64_t projection_dim = 512;
  int64_t bos_token_id = 49406;
  int64_t eos_token_id = 49407;
  int64_t pad_token_id = 1;

  int64_t head_dim() const { return hidden_size / num_attention_heads; }

  // SDXL base's text_encoder/config.json: OpenAI CLIP ViT-L/14 (123,060,480 parameters).
  static ClipTextConfig SdxlClipL();
  // SDXL base's text_encoder_2/config.json: OpenCLIP ViT-bigG/14 (694,659,840 parameters with
  // text_projection).
  static ClipTextConfig SdxlBigG();

  // From a parsed config.json object.
  static absl::StatusOr<ClipTextConfig> FromJson(const nlohmann::json& json);
  // From config.json's text; a parse error is INVALID_ARGUMENT with its position.
  static absl::StatusOr<ClipTextConfig> FromJsonText(absl::string_view text);

  // INVALID_ARGUMENT naming the first field with an impossible value (sizes < 1, hidden_size not
  // a multiple of num_attention_heads, layer_norm_eps <= 0).
  absl::Status Validate() const;
};

}  // namespace likeness::model

#endif  // LIKENESS_WORKER_MODEL_TEXT_CLIP_TEXT_CONFIG_H_
