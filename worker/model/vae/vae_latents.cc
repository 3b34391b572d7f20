#include "worker/model/vae/vae_latents.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace likeness::model {
namespace {

// Per-channel statistics [C] -> [1, C, 1, 1], to broadcast over [B, C, h, w].
torch::Tensor ChannelVector(const std::vector<double>& values, const torch::Tensor& like) {
  return torch::tensor(values, torch::TensorOptions().dtype(torch::kFloat64))
      .to(like.device(), like.scalar_type())
      // [C] -> [1, C, 1, 1]
      .view({1, static_cast<int64_t>(values.size()), 1, 1});
}

absl::Status CheckShape(const torch::Tensor& t, const char* what, int64_t channels,
                        int64_t multiple_of) {
  if (!t.defined() || t.dim() != 4 || t.size(1) != channels || t.size(2) % multiple_of != 0 ||
      t.size(3) % multiple_of != 0 || t.size(2) == 0 || t.size(3) == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("VAE: ", what, " must be [B, ", channels,
                     ", H, W] with H and W positive multiples of ", multiple_of, ", got ",
                     t.defined() ? absl::StrCat("[", absl::StrJoin(t.sizes(), ", "), "]")
                                 : "an undefined tensor"));
  }
  return absl::OkStatus();
}

absl::Status FromTorchError(const char* what, const c10::Error& error) {
  const std::string message = absl::StrCat("VAE ", what, ": ", error.what_without_backtrace());
  if (dynamic_cast<const c10::OutOfMemoryError*>(&error) != nullptr)
    return absl::ResourceExhaustedError(message);
  return absl::InternalError(message);
}

torch::TensorOptions VaeTensorOptions(AutoencoderKLImpl& vae) {
  return vae.decoder->conv_in->weight.options();
}

}  // namespace

torch::Dtype VaeParameterDtype(const VaeConfig& config, torch::Dtype model_dtype) {
  const bool half = model_dtype == torch::kHalf || model_dtype == torch::kBFloat16;
  return config.force_upcast && half ? torch::kFloat32 : model_dtype;
}

torch::Tensor ScaleLatents(const VaeConfig& config, const torch::Tensor& z) {
  if (config.latents_mean.has_value()) {
    return (z - ChannelVector(*config.latents_mean, z)) * config.scaling_factor /
           ChannelVector(*config.latents_std, z);
  }
  return (z - config.shift_factor.value_or(0.0)) * config.scaling_factor;
}

torch::Tensor UnscaleLatents(const VaeConfig& config, const torch::Tensor& latents) {
  if (config.latents_mean.has_value()) {
    return latents * ChannelVector(*config.latents_std, latents) / config.scaling_factor +
           ChannelVector(*config.latents_mean, latents);
  }
  return latents / config.scaling_factor + config.shift_factor.value_or(0.0);
}

absl::StatusOr<torch::Tensor> EncodeToLatents(AutoencoderKL& vae, const torch::Tensor& image,
                                              std::optional<torch::Generator> generator) {
  const VaeConfig& config = vae->config();
  if (absl::Status shape =
          CheckShape(image, "image", config.in_channels, config.DownsampleFactor());
      !shape.ok()) {
    return shape;
  }
  try {
    torch::NoGradGuard no_grad;
    const torch::TensorOptions options = VaeTensorOptions(*vae);
    const DiagonalGaussianDistribution posterior =
        vae->Encode(image.to(options.device(), options.dtype().toScalarType()));
    return ScaleLatents(config, posterior.Sample(std::move(generator)))
        .to(image.device(), image.scalar_type());
  } catch (const c10::Error& error) {
    return FromTorchError("encode", error);
  }
}

absl::StatusOr<torch::Tensor> DecodeLatents(AutoencoderKL& vae, const torch::Tensor& latents,
                                            std::optional<VaeTilingOptions> tiling) {
  const VaeConfig& config = vae->config();
  if (absl::Status shape = CheckShape(latents, "latents", config.latent_channels, 1); !shape.ok())
    return shape;
  if (tiling.has_value()) {
    if (absl::Status valid = ValidateTiling(config, *tiling); !valid.ok()) return valid;
  }
  try {
    torch::NoGradGuard no_grad;
    const torch::TensorOptions options = VaeTensorOptions(*vae);
    const torch::Tensor z =
        UnscaleLatents(config, latents.to(options.device(), options.dtype().toScalarType()));
    const int64_t tile = tiling.has_value() ? TileLatentSize(config, *tiling) : 0;
    if (tiling.has_value() && (z.size(2) > tile || z.size(3) > tile))
      return TiledDecode(*vae, z, *tiling);
    return vae->Decode(z);
  } catch (const c10::Error& error) {
    return FromTorchError("decode", error);
  }
}

}  // namespace likeness::model
