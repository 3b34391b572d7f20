#include "worker/model/vae/autoencoder_kl.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace likeness::model {
namespace {

// quant_conv / post_quant_conv are 1x1 convolutions.
constexpr int64_t kQuantKernel = 1;
// quant_conv acts on the encoder's mean and logvar together.
constexpr int64_t kPosteriorParts = 2;

}  // namespace

AutoencoderKLImpl::AutoencoderKLImpl(VaeConfig config) : config_(std::move(config)) {
  const absl::Status valid = config_.Validate();
  TORCH_CHECK(valid.ok(), std::string(valid.message()));
  encoder = register_module("encoder", VaeEncoder(config_));
  decoder = register_module("decoder", VaeDecoder(config_));
  const int64_t moments = kPosteriorParts * config_.latent_channels;
  if (config_.use_quant_conv) {
    quant_conv = register_module("quant_conv", Conv2d(moments, moments, kQuantKernel));
  }
  if (config_.use_post_quant_conv) {
    post_quant_conv = register_module(
        "post_quant_conv", Conv2d(config_.latent_channels, config_.latent_channels, kQuantKernel));
  }
}

DiagonalGaussianDistribution AutoencoderKLImpl::Encode(const torch::Tensor& image) {
  TORCH_CHECK(image.dim() == 4 && image.size(1) == config_.in_channels,
              "AutoencoderKL::Encode wants [B, ", config_.in_channels, ", H, W], got ",
              image.sizes());
  torch::Tensor moments = encoder(image);
  if (quant_conv) moments = quant_conv(moments);
  return DiagonalGaussianDistribution(moments);
}

torch::Tensor AutoencoderKLImpl::Decode(const torch::Tensor& latent) {
  TORCH_CHECK(latent.dim() == 4 && latent.size(1) == config_.latent_channels,
              "AutoencoderKL::Decode wants [B, ", config_.latent_channels, ", h, w], got ",
              latent.sizes());
  return decoder(post_quant_conv ? post_quant_conv(latent) : latent);
}

torch::Tensor AutoencoderKLImpl::forward(const torch::Tensor& image, bool sample_posterior,
                                         std::optional<torch::Generator> generator) {
  const DiagonalGaussianDistribution posterior = Encode(image);
  return Decode(sample_posterior ? posterior.Sample(std::move(generator)) : posterior.Mode());
}

absl::StatusOr<AutoencoderKL> CreateAutoencoderKL(const VaeConfig& config) {
  if (absl::Status valid = config.Validate(); !valid.ok()) return valid;
  try {
    return AutoencoderKL(config);
  } catch (const c10::OutOfMemoryError& error) {
    return absl::ResourceExhaustedError(
        absl::StrCat("building AutoencoderKL: ", error.what_without_backtrace()));
  } catch (const c10::Error& error) {
    return absl::InternalError(
        absl::StrCat("building AutoencoderKL: ", error.what_without_backtrace()));
  }
}

}  // namespace likeness::model
