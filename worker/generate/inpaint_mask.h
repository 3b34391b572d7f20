// Masks for inpainting: white = repaint, black = keep (A1111's and diffusers' convention).
//
// One user mask becomes three tensors, each where it belongs:
//   1. `binary`  [1, 1, H, W] in {0, 1}: thresholded at 0.5 and grown by `dilate_px` (a
//      max filter), so a tight mask still covers the object's edge. The 9-channel inpainting
//      UNet sees the image with this region blanked out, as diffusers' pipeline does.
//   2. `soft`    [1, 1, H, W] in [0, 1]: `binary` with a Gaussian blur of std `blur_px`
//      (A1111's "mask blur"; kernel radius ceil(kBlurKernelSigmas * sigma)). It is the alpha of
//      the paste-back, so the seam fades instead of showing a hard edge; pixels it leaves at
//      exactly 0 are copied from the original byte for byte.
//   3. `latent`  [1, 1, h, w]: `soft` area-averaged to the latent grid, the weight of the
//      denoised latents against the re-noised original at every step (RePaint blending).
#ifndef LIKENESS_WORKER_GENERATE_INPAINT_MASK_H_
#define LIKENESS_WORKER_GENERATE_INPAINT_MASK_H_

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "worker/image/image.h"

namespace likeness::generate {

inline constexpr double kMaskThreshold = 0.5;
// A Gaussian is cut at this many standard deviations (as OpenCV's default kernel size does).
inline constexpr double kBlurKernelSigmas = 2.5;
// Larger masks operations are refused rather than run for minutes.
inline constexpr int kMaxMaskRadiusPx = 256;

struct MaskOptions {
  int dilate_px = 0;
  int blur_px = 0;
};

struct InpaintMask {
  torch::Tensor binary;  // [1, 1, H, W] float32 {0, 1}
  torch::Tensor soft;    // [1, 1, H, W] float32 [0, 1]
  torch::Tensor latent;  // [1, 1, h, w] float32 [0, 1]
};

// The luminance of `mask` as [1, 1, H, W] float32 in [0, 1] (BT.601 weights; transparent pixels
// count as black: keep).
absl::StatusOr<torch::Tensor> MaskLuminance(const image::Image& mask);

// `luma` [1, 1, H, W] in [0, 1] -> the three masks. `latent_factor`: the VAE's downsampling
// factor. INVALID_ARGUMENT for an all-black mask (nothing to repaint), sizes that are not
// multiples of latent_factor, or radii outside [0, kMaxMaskRadiusPx].
absl::StatusOr<InpaintMask> PrepareInpaintMask(const torch::Tensor& luma, int latent_factor,
                                               const MaskOptions& options);

// out = original * (1 - alpha) + generated * alpha, in 8-bit; where alpha == 0 the original's
// bytes are copied unchanged. Both images RGB8 of alpha's size. INVALID_ARGUMENT otherwise.
absl::StatusOr<image::Image> PasteBack(const image::Image& original, const image::Image& generated,
                                       const torch::Tensor& alpha);

}  // namespace likeness::generate

#endif  // LIKENESS_WORKER_GENERATE_INPAINT_MASK_H_
