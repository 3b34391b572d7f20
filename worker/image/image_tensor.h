// Conversions between Image (torch-free, image.h) and float tensors, plus the resize and
// center crop that turns a photo into a square training input with SDXL's micro-conditioning.
//
// Tensors are [C, H, W] float32 on the CPU, channels R, G, B, values in [0, 1] unless a
// TensorRange says otherwise.
#ifndef LIKENESS_WORKER_IMAGE_IMAGE_TENSOR_H_
#define LIKENESS_WORKER_IMAGE_IMAGE_TENSOR_H_

#include <torch/torch.h>

#include <array>

#include "absl/status/statusor.h"
#include "worker/image/image.h"

namespace likeness::image {

// Transparent pixels are composited onto this colour (RGB in [0, 1]). White, because the
// transparent parts of product shots and stickers are meant to be seen on a page; black would
// turn dark outlines into blobs. Dropping the alpha channel instead would expose whatever
// colour the encoder left under alpha 0, often garbage.
inline constexpr std::array<float, 3> kWhiteBackground = {1.0f, 1.0f, 1.0f};
inline constexpr std::array<float, 3> kDefaultAlphaBackground = kWhiteBackground;

struct ToTensorOptions {
  // Alpha is composited as out = alpha * pixel + (1 - alpha) * background, in the file's sRGB
  // values (as browsers and Pillow's alpha_composite do).
  std::array<float, 3> background = kDefaultAlphaBackground;
};

// [3, H, W] float32 RGB in [0, 1]: gray is repeated to three channels, alpha composited
// (ToTensorOptions), 16-bit samples divided by 65535. INVALID_ARGUMENT for a malformed Image.
absl::StatusOr<torch::Tensor> ImageToTensor(const Image& image,
                                            const ToTensorOptions& options = {});

enum class TensorRange {
  kZeroToOne,      // what ImageToTensor gives
  kMinusOneToOne,  // what the VAE decodes to
};

// [C, H, W] (C = 1 gray, 3 RGB or 4 RGBA) float tensor of any dtype and device -> an 8-bit
// Image: mapped from `range` to [0, 255], clamped, rounded to nearest; NaN becomes 0.
absl::StatusOr<Image> TensorToImage(const torch::Tensor& chw,
                                    TensorRange range = TensorRange::kZeroToOne);

// A square training input, and the numbers SDXL's micro-conditioning ("text_time") needs:
// original_size is the photo's size before anything, crop_top_left where the square was taken
// from the resized photo (in resized pixels), exactly as diffusers' SDXL training scripts
// compute them.
struct SquareCrop {
  torch::Tensor pixels;  // [C, size, size]
  int original_height = 0;
  int original_width = 0;
  int crop_top = 0;
  int crop_left = 0;
};

// Resizes [C, H, W] so its short side is `size` (bilinear, antialiased when shrinking, so
// downscaled photos keep fine detail without aliasing), then cuts the centered size x size
// square. Values stay in the input's range.
absl::StatusOr<SquareCrop> ResizeAndCenterCrop(const torch::Tensor& chw, int size);

}  // namespace likeness::image

#endif  // LIKENESS_WORKER_IMAGE_IMAGE_TENSOR_H_
