// diffusers' AutoencoderKL: the SDXL VAE (image <-> latent), under diffusers' state-dict names
// (encoder.*, decoder.*, quant_conv.*, post_quant_conv.*), built from a VaeConfig.
//
//   Encode(image [-1, 1], [B, in_channels, H, W]) -> posterior over [B, latent_channels, H/f, W/f]
//   Decode(latent)                                 -> image [B, out_channels, H, W]
//   forward(image, sample_posterior)               -> Decode(posterior sample or mode)
// with f = config.DownsampleFactor() (8 for SDXL). These are raw torch modules: they throw
// c10::Error on bad input and record autograd like any module. The pipeline helpers in
// vae_latents.h add the latent scaling, the float32 upcast and absl::Status.
#ifndef LIKENESS_WORKER_MODEL_VAE_AUTOENCODER_KL_H_
#define LIKENESS_WORKER_MODEL_VAE_AUTOENCODER_KL_H_

#include <torch/torch.h>

#include <optional>

#include "absl/status/statusor.h"
#include "worker/model/layers.h"
#include "worker/model/vae/diagonal_gaussian.h"
#include "worker/model/vae/vae_coders.h"
#include "worker/model/vae/vae_config.h"

namespace likeness::model {

class AutoencoderKLImpl : public torch::nn::Module {
 public:
  // Parameters are uninitialised, with CurrentParameterOptions() (layers.h). An invalid config
  // throws c10::Error; CreateAutoencoderKL() returns a Status instead.
  explicit AutoencoderKLImpl(VaeConfig config);

  // [B, in_channels, H, W] in [-1, 1] -> posterior over [B, latent_channels, H/f, W/f].
  DiagonalGaussianDistribution Encode(const torch::Tensor& image);
  // [B, latent_channels, h, w] (unscaled, as the posterior gives it) -> [B, out_channels, h*f,
  // w*f].
  torch::Tensor Decode(const torch::Tensor& latent);
  // Decode(posterior sample) if sample_posterior, else Decode(posterior mode): a reconstruction.
  torch::Tensor forward(const torch::Tensor& image, bool sample_posterior = false,
                        std::optional<torch::Generator> generator = std::nullopt);

  const VaeConfig& config() const { return config_; }

  VaeEncoder encoder{nullptr};
  VaeDecoder decoder{nullptr};
  Conv2d quant_conv{nullptr};       // null when !config.use_quant_conv
  Conv2d post_quant_conv{nullptr};  // null when !config.use_post_quant_conv

 private:
  VaeConfig config_;
};
TORCH_MODULE(AutoencoderKL);

// Validates `config` and builds the model (parameters uninitialised, CurrentParameterOptions());
// INVALID_ARGUMENT naming the config field, RESOURCE_EXHAUSTED when memory runs out.
absl::StatusOr<AutoencoderKL> CreateAutoencoderKL(const VaeConfig& config);

}  // namespace likeness::model

#endif  // LIKENESS_WORKER_MODEL_VAE_AUTOENCODER_KL_H_
