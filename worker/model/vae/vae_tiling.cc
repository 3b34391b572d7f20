#include "worker/model/vae/vae_tiling.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace likeness::model {
namespace {

constexpr int kHeightDim = 2;
constexpr int kWidthDim = 3;

int64_t TileSampleSize(const VaeConfig& config, const VaeTilingOptions& options) {
  return options.tile_sample_size > 0 ? options.tile_sample_size : config.sample_size;
}

// Blends the last `extent` rows (dim kHeightDim) or columns (kWidthDim) of `a` into the first
// ones of `b`, in place in `b`: b[y] = a[-extent + y] * (1 - y/extent) + b[y] * (y/extent),
// diffusers' blend_v / blend_h. The weights are computed in double and rounded to b's dtype, as
// Python scalars are.
void Blend(const torch::Tensor& a, torch::Tensor& b, int dim, int64_t extent) {
  extent = std::min({a.size(dim), b.size(dim), extent});
  if (extent <= 0) return;
  std::vector<int64_t> weight_shape(b.dim(), 1);
  weight_shape[dim] = extent;
  const torch::Tensor ramp =
      torch::arange(extent, torch::TensorOptions().dtype(torch::kFloat64)) / extent;
  // [extent] -> [1, 1, extent, 1] or [1, 1, 1, extent]
  const torch::Tensor w = ramp.to(b.scalar_type()).to(b.device()).view(weight_shape);
  // [extent] -> the same shape as w
  const torch::Tensor one_minus_w =
      (1.0 - ramp).to(b.scalar_type()).to(b.device()).view(weight_shape);
  torch::Tensor head = b.narrow(dim, 0, extent);
  head.copy_(a.narrow(dim, a.size(dim) - extent, extent) * one_minus_w + head * w);
}

}  // namespace

int64_t TileLatentSize(const VaeConfig& config, const VaeTilingOptions& options) {
  return TileSampleSize(config, options) / config.DownsampleFactor();
}

absl::Status ValidateTiling(const VaeConfig& config, const VaeTilingOptions& options) {
  const int64_t sample = TileSampleSize(config, options);
  const int64_t factor = config.DownsampleFactor();
  if (sample <= 0 || sample % factor != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("VAE tiling: tile_sample_size ", sample,
                     " must be a positive multiple of the downsampling factor ", factor));
  }
  if (!(options.overlap_factor >= 0.0 && options.overlap_factor < 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("VAE tiling: overlap_factor ", options.overlap_factor, " must be in [0, 1)"));
  }
  const int64_t stride =
      static_cast<int64_t>(TileLatentSize(config, options) * (1.0 - options.overlap_factor));
  if (stride < 1) {
    return absl::InvalidArgumentError(absl::StrCat("VAE tiling: tiles of ", sample,
                                                   " pixels with overlap ", options.overlap_factor,
                                                   " do not advance"));
  }
  return absl::OkStatus();
}

torch::Tensor TiledDecode(AutoencoderKLImpl& vae, const torch::Tensor& latent,
                          const VaeTilingOptions& options) {
  const VaeConfig& config = vae.config();
  const absl::Status valid = ValidateTiling(config, options);
  TORCH_CHECK(valid.ok(), std::string(valid.message()));
  TORCH_CHECK(latent.dim() == 4 && latent.size(1) == config.latent_channels,
              "TiledDecode wants [B, ", config.latent_channels, ", h, w], got ", latent.sizes());
  const int64_t tile_sample = TileSampleSize(config, options);
  const int64_t tile_latent = TileLatentSize(config, options);
  const int64_t stride = static_cast<int64_t>(tile_latent * (1.0 - options.overlap_factor));
  const int64_t blend_extent = static_cast<int64_t>(tile_sample * options.overlap_factor);
  const int64_t keep = tile_sample - blend_extent;

  std::vector<std::vector<torch::Tensor>> rows;
  for (int64_t i = 0; i < latent.size(kHeightDim); i += stride) {
    std::vector<torch::Tensor>& row = rows.emplace_back();
    for (int64_t j = 0; j < latent.size(kWidthDim); j += stride) {
      // Slices past the end are clamped, so edge tiles are smaller.
      const torch::Tensor tile =
          latent.slice(kHeightDim, i, i + tile_latent).slice(kWidthDim, j, j + tile_latent);
      row.push_back(vae.Decode(tile));
    }
  }
  std::vector<torch::Tensor> out_rows;
  for (size_t i = 0; i < rows.size(); ++i) {
    std::vector<torch::Tensor> out_row;
    for (size_t j = 0; j < rows[i].size(); ++j) {
      torch::Tensor& tile = rows[i][j];
      if (i > 0) Blend(rows[i - 1][j], tile, kHeightDim, blend_extent);
      if (j > 0) Blend(rows[i][j - 1], tile, kWidthDim, blend_extent);
      out_row.push_back(tile.slice(kHeightDim, 0, keep).slice(kWidthDim, 0, keep));
    }
    out_rows.push_back(torch::cat(out_row, kWidthDim));
  }
  return torch::cat(out_rows, kHeightDim);
}

}  // namespace likeness::model
