#include "worker/eval/preprocess.h"

#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "worker/image/image_tensor.h"

namespace likeness::eval {
namespace {

constexpr int kRgbChannels = 3;
constexpr float kMaxSample = 255.0f;

}  // namespace

PreprocessSpec PreprocessSpec::Clip(int image_size) {
  PreprocessSpec spec;
  spec.resize_shortest_edge = image_size;
  spec.crop_height = spec.crop_width = image_size;
  spec.filter = PillowFilter::kBicubic;
  spec.crop_rounding = CropRounding::kFloor;
  spec.rescale = RescaleArithmetic::kFloat64Product;
  spec.mean = kOpenAiClipMean;
  spec.std = kOpenAiClipStd;
  return spec;
}

PreprocessSpec PreprocessSpec::Dino(int image_size) {
  PreprocessSpec spec;
  spec.resize_shortest_edge = image_size * kDinoResizeSize / kDinoCropSize;
  spec.crop_height = spec.crop_width = image_size;
  spec.filter = PillowFilter::kBicubic;
  spec.crop_rounding = CropRounding::kRoundHalfToEven;
  spec.rescale = RescaleArithmetic::kFloat32Divide;
  spec.mean = kImageNetMean;
  spec.std = kImageNetStd;
  return spec;
}

absl::StatusOr<image::Image> ToRgb8(const image::Image& image) {
  if (image.channels == kRgbChannels && image.bit_depth == 8) {
    if (image.pixels.size() != image.SizeBytes() || image.width < 1 || image.height < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("malformed image ", image.width, "x", image.height));
    }
    image::Image rgb = image::MakeImage(image.width, image.height, kRgbChannels);
    rgb.pixels = image.pixels;
    return rgb;
  }
  // Gray, alpha and 16-bit samples through the project's one conversion (image_tensor.h), then
  // back to the nearest 8-bit value; exact for 8-bit gray.
  absl::StatusOr<torch::Tensor> chw = image::ImageToTensor(image);
  if (!chw.ok()) return chw.status();
  // [3, H, W] in [0, 1] -> [H, W, 3] uint8
  const torch::Tensor hwc = chw->mul(kMaxSample)
                                .round()
                                .clamp(0, kMaxSample)
                                .to(torch::kUInt8)
                                .permute({1, 2, 0})
                                .contiguous();
  image::Image rgb = image::MakeImage(image.width, image.height, kRgbChannels);
  std::memcpy(rgb.pixels.data(), hwc.data_ptr<uint8_t>(), rgb.pixels.size());
  return rgb;
}

std::pair<int, int> ShortestEdgeSize(int width, int height, int shortest_edge) {
  const bool width_is_short = width <= height;
  const int short_side = width_is_short ? width : height;
  const int long_side = width_is_short ? height : width;
  // Python's int(s * long / short): a float64 quotient, truncated.
  const int new_long = static_cast<int>(static_cast<double>(shortest_edge) * long_side / short_side);
  return width_is_short ? std::make_pair(shortest_edge, new_long)
                        : std::make_pair(new_long, shortest_edge);
}

std::pair<int, int> CenterCropOrigin(int height, int width, int crop_height, int crop_width,
                                     CropRounding rounding) {
  const auto offset = [rounding](int size, int crop) {
    if (rounding == CropRounding::kFloor) return (size - crop) / 2;
    // round((size - crop) / 2.0) with halves to even, as Python 3's round().
    return static_cast<int>(std::nearbyint((size - crop) / 2.0));
  };
  return {offset(height, crop_height), offset(width, crop_width)};
}

absl::StatusOr<image::Image> ResizeShortestEdge(const image::Image& rgb8, int shortest_edge,
                                                PillowFilter filter) {
  const auto [width, height] = ShortestEdgeSize(rgb8.width, rgb8.height, shortest_edge);
  return PillowResize(rgb8, width, height, filter);
}

absl::StatusOr<torch::Tensor> Preprocess(const image::Image& image, const PreprocessSpec& spec) {
  absl::StatusOr<image::Image> rgb = ToRgb8(image);
  if (!rgb.ok()) return rgb.status();
  absl::StatusOr<image::Image> resized =
      ResizeShortestEdge(*rgb, spec.resize_shortest_edge, spec.filter);
  if (!resized.ok()) return resized.status();
  if (spec.crop_height > resized->height || spec.crop_width > resized->width) {
    return absl::InvalidArgumentError(absl::StrCat(
        "center crop ", spec.crop_width, "x", spec.crop_height, " is larger than the resized ",
        resized->width, "x", resized->height, " image"));
  }
  const auto [top, left] = CenterCropOrigin(resized->height, resized->width, spec.crop_height,
                                            spec.crop_width, spec.crop_rounding);
  std::array<float, kRgbChannels> mean, std;
  for (int c = 0; c < kRgbChannels; ++c) {
    mean[c] = static_cast<float>(spec.mean[c]);
    std[c] = static_cast<float>(spec.std[c]);
  }
  torch::Tensor out = torch::empty({kRgbChannels, spec.crop_height, spec.crop_width}, torch::kFloat32);
  float* data = out.data_ptr<float>();
  const size_t plane = static_cast<size_t>(spec.crop_height) * spec.crop_width;
  for (int y = 0; y < spec.crop_height; ++y) {
    const uint8_t* row = resized->pixels.data() + (top + y) * resized->RowBytes() +
                         static_cast<size_t>(left) * kRgbChannels;
    for (int x = 0; x < spec.crop_width; ++x) {
      for (int c = 0; c < kRgbChannels; ++c) {
        const uint8_t sample = row[x * kRgbChannels + c];
        const float scaled = spec.rescale == RescaleArithmetic::kFloat64Product
                                 ? static_cast<float>(sample * kRescaleFactor)
                                 : static_cast<float>(sample) / kMaxSample;
        // HWC -> CHW; the subtraction and division in float32, as numpy and torch do them.
        data[c * plane + static_cast<size_t>(y) * spec.crop_width + x] = (scaled - mean[c]) / std[c];
      }
    }
  }
  return out;
}

}  // namespace likeness::eval
