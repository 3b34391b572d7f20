// The configuration of diffusers' `AutoencoderKL`, read from its `config.json`.
//
// Field names and defaults are diffusers' (AutoencoderKL.__init__), so a missing key means what
// it means to diffusers. Every size of the model comes from here; nothing is hard-coded for SDXL.
#ifndef LIKENESS_WORKER_MODEL_VAE_VAE_CONFIG_H_
#define LIKENESS_WORKER_MODEL_VAE_VAE_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json_fwd.hpp"

namespace likeness::model {

// The only block types AutoencoderKL uses.
inline constexpr char kVaeDownBlockType[] = "DownEncoderBlock2D";
inline constexpr char kVaeUpBlockType[] = "UpDecoderBlock2D";
// The only activation implemented (every SD/SDXL VAE uses it).
inline constexpr char kVaeActivation[] = "silu";

struct VaeConfig {
  int64_t in_channels = 3;
  int64_t out_channels = 3;
  std::vector<std::string> down_block_types = {kVaeDownBlockType};
  std::vector<std::string> up_block_types = {kVaeUpBlockType};
  std::vector<int64_t> block_out_channels = {64};
  int64_t layers_per_block = 1;
  std::string act_fn = kVaeActivation;
  int64_t latent_channels = 4;
  int64_t norm_num_groups = 32;
  int64_t sample_size = 32;
  // latents the UNet sees = (posterior sample - shift) * scaling_factor (see autoencoder_kl.h).
  double scaling_factor = 0.18215;
  std::optional<double> shift_factor;               // SD3/Flux VAEs; null for SDXL
  std::optional<std::vector<double>> latents_mean;  // Playground v2.5; null for SDXL
  std::optional<std::vector<double>> latents_std;
  // Run the VAE in float32 even when the rest of the model stack is fp16/bf16: SDXL's VAE
  // overflows in fp16 (diffusers' `force_upcast`). See VaeParameterDtype().
  bool force_upcast = true;
  bool use_quant_conv = true;  // diffusers >= 0.28 may write false
  bool use_post_quant_conv = true;
  bool mid_block_add_attention = true;

  // Keys of the JSON that this struct does not know (other than "_class_name" and the like),
  // for the caller to report; diffusers ignores them with a warning too.
  std::vector<std::string> unrecognized_keys;

  // SDXL base 1.0's vae/config.json: 83,653,863 parameters.
  static VaeConfig SdxlBase();

  // Parses a diffusers config.json object. INVALID_ARGUMENT naming the field and the value for a
  // wrong type or a value the model cannot be built with (Validate()).
  static absl::StatusOr<VaeConfig> FromJson(const nlohmann::json& json);
  static absl::StatusOr<VaeConfig> FromJsonText(absl::string_view text);

  // OK when a model can be built from this config, else INVALID_ARGUMENT naming the field.
  absl::Status Validate() const;

  // Image pixels per latent pixel along each side: 2^(number of levels - 1) (8 for SDXL).
  int64_t DownsampleFactor() const;
};

}  // namespace likeness::model

#endif  // LIKENESS_WORKER_MODEL_VAE_VAE_CONFIG_H_
