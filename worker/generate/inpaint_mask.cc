#include "worker/generate/inpaint_mask.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "worker/image/image_tensor.h"

namespace likeness::generate {
namespace {

namespace F = torch::nn::functional;

// ITU-R BT.601 luma, as Pillow's convert("L") weighs RGB.
constexpr double kLumaR = 0.299, kLumaG = 0.587, kLumaB = 0.114;

// [1, 1, H, W] blurred separably with a normalised Gaussian of std `sigma`, edges replicated.
torch::Tensor GaussianBlur(const torch::Tensor& x, double sigma) {
  const int64_t radius = static_cast<int64_t>(std::ceil(kBlurKernelSigmas * sigma));
  torch::Tensor offsets = torch::arange(-radius, radius + 1, torch::kFloat64);
  torch::Tensor kernel = torch::exp(-(offsets * offsets) / (2.0 * sigma * sigma));
  kernel = (kernel / kernel.sum()).to(torch::kFloat32);
  torch::Tensor padded = F::pad(x, F::PadFuncOptions({radius, radius, radius, radius})
                                       .mode(torch::kReplicate));
  torch::Tensor y = torch::conv2d(padded, kernel.view({1, 1, 1, -1}));  // along W
  y = torch::conv2d(y, kernel.view({1, 1, -1, 1}));                      // along H
  // Values a float sum leaves at 1e-8 must stay 0 so paste-back keeps those pixels exactly.
  return torch::where(y < 1e-6, torch::zeros_like(y), y.clamp_max(1.0));
}

}  // namespace

absl::StatusOr<torch::Tensor> MaskLuminance(const image::Image& mask) {
  image::ToTensorOptions to_tensor;
  to_tensor.background = {0.0f, 0.0f, 0.0f};  // transparent = keep
  absl::StatusOr<torch::Tensor> rgb = image::ImageToTensor(mask, to_tensor);
  if (!rgb.ok()) return rgb.status();
  return (rgb->select(0, 0) * kLumaR + rgb->select(0, 1) * kLumaG + rgb->select(0, 2) * kLumaB)
      .view({1, 1, mask.height, mask.width});
}

absl::StatusOr<InpaintMask> PrepareInpaintMask(const torch::Tensor& luma, int latent_factor,
                                               const MaskOptions& options) {
  if (options.dilate_px < 0 || options.dilate_px > kMaxMaskRadiusPx) {
    return absl::InvalidArgumentError(absl::StrCat("mask dilation ", options.dilate_px,
                                                   " px is outside [0, ", kMaxMaskRadiusPx, "]"));
  }
  if (options.blur_px < 0 || options.blur_px > kMaxMaskRadiusPx) {
    return absl::InvalidArgumentError(absl::StrCat("mask blur ", options.blur_px,
                                                   " px is outside [0, ", kMaxMaskRadiusPx, "]"));
  }
  const int64_t height = luma.size(-2), width = luma.size(-1);
  if (latent_factor <= 0 || height % latent_factor != 0 || width % latent_factor != 0) {
    return absl::InvalidArgumentError(absl::StrCat("mask size ", width, "x", height,
                                                   " is not a multiple of ", latent_factor));
  }
  InpaintMask out;
  out.binary = (luma >= kMaskThreshold).to(torch::kFloat32);
  if (out.binary.max().item<float>() == 0.0f) {
    return absl::InvalidArgumentError(
        "the mask is black everywhere: nothing to repaint (white marks the area to repaint)");
  }
  if (options.dilate_px > 0) {
    const int64_t k = 2 * options.dilate_px + 1;
    out.binary = F::max_pool2d(out.binary, F::MaxPool2dFuncOptions(k).stride(1).padding(
                                               options.dilate_px));
  }
  out.soft = options.blur_px > 0 ? GaussianBlur(out.binary, options.blur_px) : out.binary.clone();
  out.latent = F::avg_pool2d(out.soft, F::AvgPool2dFuncOptions(latent_factor));
  return out;
}

absl::StatusOr<image::Image> PasteBack(const image::Image& original, const image::Image& generated,
                                       const torch::Tensor& alpha) {
  const int64_t h = alpha.size(-2), w = alpha.size(-1);
  for (const image::Image* image : {&original, &generated}) {
    if (image->channels != 3 || image->bit_depth != 8 || image->height != h ||
        image->width != w) {
      return absl::InvalidArgumentError(absl::StrCat(
          "paste-back needs 8-bit RGB images of the mask's size ", w, "x", h, "; got ",
          image->width, "x", image->height, " with ", image->channels, " channels"));
    }
  }
  const torch::Tensor a = alpha.reshape({h, w}).to(torch::kFloat32).contiguous();
  const float* weights = a.data_ptr<float>();
  image::Image out = generated;
  for (int64_t i = 0; i < h * w; ++i) {
    const float t = weights[i];
    for (int c = 0; c < 3; ++c) {
      const size_t index = static_cast<size_t>(i) * 3 + c;
      if (t <= 0.0f) {
        out.pixels[index] = original.pixels[index];
      } else if (t < 1.0f) {
        const float v = original.pixels[index] * (1.0f - t) + generated.pixels[index] * t;
        out.pixels[index] = static_cast<uint8_t>(std::lround(std::clamp(v, 0.0f, 255.0f)));
      }
    }
  }
  return out;
}

}  // namespace likeness::generate
