// What the SDXL pipeline and the trainer call: image <-> the latents the UNet sees.
//
//   latents = (z - shift) * scaling_factor                     (SDXL: shift 0, scaling 0.13025)
//   latents = (z - latents_mean) * scaling_factor / latents_std (per channel, when the config has
//   them) z       = the inverse, before Decode
// with z the posterior sample (EncodeToLatents) or the decoder's input (DecodeLatents), as
// diffusers' training scripts and StableDiffusionXLPipeline do.
//
// force_upcast: SDXL's VAE overflows in fp16 (its activations pass 65504), so diffusers keeps it
// in float32 while the UNet and text encoders run in fp16/bf16. Here that means:
//   1. build the VAE with parameters of VaeParameterDtype(config, model_dtype) (float32 when
//      config.force_upcast and model_dtype is fp16/bf16; model_dtype otherwise);
//   2. the helpers cast their input to the VAE's parameter dtype and device, whatever the
//      caller's dtype, so a bf16 pipeline can hand over bf16 latents;
//   3. EncodeToLatents returns the image's dtype (the trainer's working dtype); DecodeLatents
//      returns the VAE's dtype (float32 under force_upcast), so the conversion to 8-bit pixels
//      does not lose precision.
// The helpers run without autograd (the VAE is frozen in this project); call
// AutoencoderKL::Encode/Decode directly to backpropagate through it.
#ifndef LIKENESS_WORKER_MODEL_VAE_VAE_LATENTS_H_
#define LIKENESS_WORKER_MODEL_VAE_VAE_LATENTS_H_

#include <torch/torch.h>

#include <optional>

#include "absl/status/statusor.h"
#include "worker/model/vae/autoencoder_kl.h"
#include "worker/model/vae/vae_config.h"
#include "worker/model/vae/vae_tiling.h"

namespace likeness::model {

// The dtype to build the VAE's parameters in when the rest of the model runs in `model_dtype`.
torch::Dtype VaeParameterDtype(const VaeConfig& config, torch::Dtype model_dtype);

// z [B, latent_channels, h, w] -> latents, and back (formulas above). Computed in z's dtype.
torch::Tensor ScaleLatents(const VaeConfig& config, const torch::Tensor& z);
torch::Tensor UnscaleLatents(const VaeConfig& config, const torch::Tensor& latents);

// image [B, in_channels, H, W] in [-1, 1], H and W multiples of config.DownsampleFactor() ->
// ScaleLatents(posterior.Sample(generator)) [B, latent_channels, H/f, W/f] in image's dtype.
// INVALID_ARGUMENT for a wrong shape; RESOURCE_EXHAUSTED when memory runs out.
absl::StatusOr<torch::Tensor> EncodeToLatents(
    AutoencoderKL& vae, const torch::Tensor& image,
    std::optional<torch::Generator> generator = std::nullopt);

// latents [B, latent_channels, h, w] -> Decode(UnscaleLatents(latents)) [B, out_channels, h*f, w*f]
// in the VAE's dtype, values about [-1, 1] (not clamped). With `tiling`, decodes in tiles when the
// latents are larger than one tile (diffusers' enable_vae_tiling(); vae_tiling.h).
absl::StatusOr<torch::Tensor> DecodeLatents(AutoencoderKL& vae, const torch::Tensor& latents,
                                            std::optional<VaeTilingOptions> tiling = std::nullopt);

}  // namespace likeness::model

#endif  // LIKENESS_WORKER_MODEL_VAE_VAE_LATENTS_H_
