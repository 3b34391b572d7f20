#include "worker/image/image_tensor.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"

namespace likeness::image {
namespace {

constexpr float kMax8Bit = 255.0f;
constexpr float kMax16Bit = 65535.0f;
constexpr int64_t kLow16BitsMask = 0xFFFF;

absl::Status CheckImage(const Image& image) {
  if (image.width <= 0 || image.height <= 0 || image.channels < 1 || image.channels > 4 ||
      (image.bit_depth != 8 && image.bit_depth != 16) || image.pixels.size() != image.SizeBytes()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "malformed image: ", image.width, "x", image.height, "x", image.channels, " at ",
        image.bit_depth, " bits with ", image.pixels.size(), " bytes of pixels"));
  }
  return absl::OkStatus();
}

// [H, W, C] float in [0, 1] from the image's samples.
torch::Tensor SamplesAsFloat(const Image& image) {
  // from_blob does not copy; the .to() that follows does, so the tensor never outlives `image`.
  void* data = const_cast<uint8_t*>(image.pixels.data());
  if (image.bit_depth == 8) {
    return torch::from_blob(data, {image.height, image.width, image.channels}, torch::kUInt8)
        .to(torch::kFloat32)
        .div_(kMax8Bit);
  }
  // libtorch 1.13 has no uint16: read as int16 and undo the sign extension.
  return torch::from_blob(data, {image.height, image.width, image.channels}, torch::kInt16)
      .to(torch::kInt32)
      .bitwise_and_(kLow16BitsMask)
      .to(torch::kFloat32)
      .div_(kMax16Bit);
}

}  // namespace

absl::StatusOr<torch::Tensor> ImageToTensor(const Image& image, const ToTensorOptions& options) {
  if (absl::Status status = CheckImage(image); !status.ok()) return status;
  try {
    torch::NoGradGuard no_grad;
    const torch::Tensor chw = SamplesAsFloat(image).permute({2, 0, 1});  // [H, W, C] -> [C, H, W]
    const int64_t color_channels = image.channels <= 2 ? 1 : 3;
    torch::Tensor rgb = chw.slice(0, 0, color_channels).expand({3, image.height, image.width});
    if (image.HasAlpha()) {
      const torch::Tensor alpha = chw.slice(0, image.channels - 1, image.channels);  // [1, H, W]
      const torch::Tensor background =
          torch::tensor({options.background[0], options.background[1], options.background[2]})
              .view({3, 1, 1});
      rgb = rgb * alpha + background * (1.0f - alpha);
    }
    return rgb.contiguous();
  } catch (const c10::Error& error) {
    return absl::InternalError(absl::StrCat("image to tensor: ", error.what_without_backtrace()));
  }
}

absl::StatusOr<Image> TensorToImage(const torch::Tensor& chw, TensorRange range) {
  if (!chw.defined() || chw.dim() != 3 || chw.size(1) <= 0 || chw.size(2) <= 0 ||
      (chw.size(0) != 1 && chw.size(0) != 3 && chw.size(0) != 4)) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor to image needs [C, H, W] with C = 1, 3 or 4, got ",
                     chw.defined() ? c10::str(chw.sizes()) : "an undefined tensor"));
  }
  try {
    torch::NoGradGuard no_grad;
    torch::Tensor values = chw.detach().to(torch::kCPU, torch::kFloat32);
    if (range == TensorRange::kMinusOneToOne) values = (values + 1.0f) * 0.5f;
    const torch::Tensor hwc = torch::nan_to_num(values, /*nan=*/0.0)
                                  .clamp(0.0f, 1.0f)
                                  .mul(kMax8Bit)
                                  .round()
                                  .to(torch::kUInt8)
                                  .permute({1, 2, 0})  // [C, H, W] -> [H, W, C]
                                  .contiguous();
    Image image;
    image.channels = static_cast<int>(chw.size(0));
    image.height = static_cast<int>(chw.size(1));
    image.width = static_cast<int>(chw.size(2));
    image.bit_depth = 8;
    image.pixels.resize(image.SizeBytes());
    std::memcpy(image.pixels.data(), hwc.data_ptr<uint8_t>(), image.pixels.size());
    return image;
  } catch (const c10::Error& error) {
    return absl::InternalError(absl::StrCat("tensor to image: ", error.what_without_backtrace()));
  }
}

absl::StatusOr<SquareCrop> ResizeAndCenterCrop(const torch::Tensor& chw, int size) {
  if (!chw.defined() || chw.dim() != 3 || chw.size(1) <= 0 || chw.size(2) <= 0 || size <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("resize and crop needs a [C, H, W] tensor and a positive size, got ",
                     chw.defined() ? c10::str(chw.sizes()) : "an undefined tensor", " and ", size));
  }
  SquareCrop crop;
  crop.original_height = static_cast<int>(chw.size(1));
  crop.original_width = static_cast<int>(chw.size(2));
  // torchvision's Resize(int): the short side becomes `size`, the long side
  // int(size * long / short), truncated; diffusers' SDXL scripts use exactly that.
  const int64_t short_side = std::min(chw.size(1), chw.size(2));
  const auto scaled = [&](int64_t side) {
    return side == short_side ? size : size * side / short_side;
  };
  const int64_t new_height = scaled(chw.size(1));
  const int64_t new_width = scaled(chw.size(2));
  // CenterCrop: Python's round() of the half margin, which rounds halves to even; nearbyint
  // in the default rounding mode does the same.
  crop.crop_top = static_cast<int>(std::nearbyint((new_height - size) / 2.0));
  crop.crop_left = static_cast<int>(std::nearbyint((new_width - size) / 2.0));
  try {
    torch::NoGradGuard no_grad;
    namespace F = torch::nn::functional;
    const torch::Tensor resized =
        F::interpolate(chw.unsqueeze(0).to(torch::kFloat32),  // [C, H, W] -> [1, C, H, W]
                       F::InterpolateFuncOptions()
                           .size(std::vector<int64_t>{new_height, new_width})
                           .mode(torch::kBilinear)
                           .align_corners(false)
                           .antialias(true))
            .squeeze(0);  // [1, C, h, w] -> [C, h, w]
    crop.pixels = resized.slice(1, crop.crop_top, crop.crop_top + size)
                      .slice(2, crop.crop_left, crop.crop_left + size)
                      .contiguous();
    return crop;
  } catch (const c10::Error& error) {
    return absl::InternalError(absl::StrCat("resize and crop: ", error.what_without_backtrace()));
  }
}

}  // namespace likeness::image
