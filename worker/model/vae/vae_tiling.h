// Decoding large latents in overlapping tiles, as diffusers' AutoencoderKL.tiled_decode
// (enable_vae_tiling()), so peak memory follows the tile size, not the image size:
//   1. cut the latent into tiles of T = tile_sample_size / f latent pixels, starting every
//      int(T * (1 - overlap_factor)) pixels along each side (edge tiles are smaller);
//   2. decode each tile on its own (post_quant_conv, decoder);
//   3. blend every tile with the one above and the one to its left over
//      E = int(tile_sample_size * overlap_factor) image pixels with linear weights, in place and
//      in row-major order (so a tile's neighbours are already blended, exactly as diffusers);
//   4. keep the first tile_sample_size - E pixels of each tile along each side and concatenate.
// The result matches diffusers' tiled_decode for the same settings. It differs from an untiled
// Decode (each tile's GroupNorm and mid-block attention see only that tile), as in diffusers.
#ifndef LIKENESS_WORKER_MODEL_VAE_VAE_TILING_H_
#define LIKENESS_WORKER_MODEL_VAE_VAE_TILING_H_

#include <torch/torch.h>

#include <cstdint>

#include "absl/status/status.h"
#include "worker/model/vae/autoencoder_kl.h"

namespace likeness::model {

// diffusers' default tile_overlap_factor.
inline constexpr double kDefaultVaeTileOverlap = 0.25;

struct VaeTilingOptions {
  // Tile side in image pixels (diffusers' tile_sample_min_size); 0 takes config.sample_size.
  // Must be a multiple of config.DownsampleFactor().
  int64_t tile_sample_size = 0;
  // Fraction of a tile shared with its neighbour, in [0, 1).
  double overlap_factor = kDefaultVaeTileOverlap;
};

// INVALID_ARGUMENT naming the option when `options` cannot tile a latent of `config`.
absl::Status ValidateTiling(const VaeConfig& config, const VaeTilingOptions& options);

// The tile side in latent pixels for `options` (diffusers' tile_latent_min_size).
int64_t TileLatentSize(const VaeConfig& config, const VaeTilingOptions& options);

// Raw latent [B, latent_channels, h, w] (as AutoencoderKL::Decode) -> [B, out_channels, h*f, w*f],
// decoded in tiles (steps above) whatever the latent's size. `options` must be valid
// (ValidateTiling); throws c10::Error otherwise.
torch::Tensor TiledDecode(AutoencoderKLImpl& vae, const torch::Tensor& latent,
                          const VaeTilingOptions& options);

}  // namespace likeness::model

#endif  // LIKENESS_WORKER_MODEL_VAE_VAE_TILING_H_
