// The image preprocessing of the two metrics' encoders, reproducing their reference pipelines:
//
// CLIP (transformers' CLIPImageProcessor, what openai/clip-vit-large-patch14 ships):
//   1. convert to RGB;
//   2. resize so the short side is S, the long side int(S * long / short) (truncated), with
//      Pillow's bicubic resize on the uint8 image (pillow_resize.h);
//   3. center crop S x S: top = (H - S) // 2, left = (W - S) // 2 (floor);
//   4. rescale: float32(u8 * 0.00392156862745098), the product in float64 (numpy's uint8 *
//      Python float);
//   5. normalize in float32: (x - mean) / std with OpenAI's mean/std;
//   6. HWC -> CHW.
// S is the model's image_size (224 for ViT-L/14). OpenAI's own clip.load() preprocessing uses
// torchvision instead (as DINO below): its crop rounds differently for odd margins and it
// rescales in float32; the two agree to an ulp or a one-pixel crop shift.
//
// DINO (torchvision, as DINO's eval_linear.py and the DreamBooth metric use it):
//   Resize(256, BICUBIC) -> CenterCrop(224) -> ToTensor() -> Normalize(ImageNet mean, std), i.e.
//   1. convert to RGB;
//   2. resize the short side to R = int(S * 256 / 224) (256 for S = 224), the long side
//      int(R * long / short): torchvision's Resize on a PIL image calls the same Pillow resize;
//   3. center crop S x S: top = int(round((H - S) / 2.0)) with Python's round, which rounds
//      halves to even (so a margin of 35 gives 18, not 17);
//   4. ToTensor: float32(u8) / 255 in float32;
//   5. Normalize: (x - mean) / std in float32, ImageNet mean/std;
// with S the model's image_size. facebook/dino-vits16's own ViTImageProcessor instead resizes
// straight to 224 x 224 (bilinear, no crop), squashing the aspect ratio; the torchvision pipeline
// is what DINO was evaluated with.
//
// Alpha: transparent pixels are composited onto white (image_tensor.h's project-wide choice);
// Pillow's convert("RGB") would drop alpha and expose whatever colour lies under it. Gray is
// repeated to three channels, as convert("RGB") does.
#ifndef LIKENESS_WORKER_EVAL_PREPROCESS_H_
#define LIKENESS_WORKER_EVAL_PREPROCESS_H_

#include <torch/torch.h>

#include <array>

#include "absl/status/statusor.h"
#include "worker/eval/pillow_resize.h"
#include "worker/image/image.h"

namespace likeness::eval {

// OpenAI CLIP's normalisation (clip/clip.py, CLIPImageProcessor's OPENAI_CLIP_MEAN/STD).
inline constexpr std::array<double, 3> kOpenAiClipMean = {0.48145466, 0.4578275, 0.40821073};
inline constexpr std::array<double, 3> kOpenAiClipStd = {0.26862954, 0.26130258, 0.27577711};
// ImageNet's, which DINO was trained and evaluated with.
inline constexpr std::array<double, 3> kImageNetMean = {0.485, 0.456, 0.406};
inline constexpr std::array<double, 3> kImageNetStd = {0.229, 0.224, 0.225};
// CLIPImageProcessor's rescale_factor 0.00392156862745098, which is the double nearest 1/255.
inline constexpr double kRescaleFactor = 1.0 / 255.0;
// DINO's evaluation resizes to 256 before cropping 224; other model sizes keep the ratio.
inline constexpr int kDinoResizeSize = 256;
inline constexpr int kDinoCropSize = 224;

enum class CropRounding {
  kFloor,             // transformers: (H - h) // 2
  kRoundHalfToEven,   // torchvision: int(round((H - h) / 2.0))
};

enum class RescaleArithmetic {
  kFloat64Product,  // transformers: float32(u8 * kRescaleFactor) with the product in float64
  kFloat32Divide,   // torchvision: float32(u8) / 255.0f
};

struct PreprocessSpec {
  int resize_shortest_edge = 0;
  int crop_height = 0;
  int crop_width = 0;
  PillowFilter filter = PillowFilter::kBicubic;
  CropRounding crop_rounding = CropRounding::kFloor;
  RescaleArithmetic rescale = RescaleArithmetic::kFloat64Product;
  std::array<double, 3> mean{};  // used as float32, as both references cast them
  std::array<double, 3> std{};

  // CLIPImageProcessor for a model of `image_size`: shortest_edge = crop = image_size.
  static PreprocessSpec Clip(int image_size);
  // torchvision's Resize(image_size * 256 / 224) + CenterCrop(image_size) for DINO.
  static PreprocessSpec Dino(int image_size);
};

// Any Image (gray, gray+alpha, RGB, RGBA; 8 or 16 bit) -> 8-bit RGB (see the file comment).
absl::StatusOr<image::Image> ToRgb8(const image::Image& image);

// The (width, height) a short-side resize to `shortest_edge` gives: the long side is
// int(shortest_edge * long / short), truncated, as transformers and torchvision compute it.
std::pair<int, int> ShortestEdgeSize(int width, int height, int shortest_edge);

// (top, left) of a crop_height x crop_width center crop of a height x width image.
std::pair<int, int> CenterCropOrigin(int height, int width, int crop_height, int crop_width,
                                     CropRounding rounding);

// Step 2 alone: the uint8 image after the resize.
absl::StatusOr<image::Image> ResizeShortestEdge(const image::Image& rgb8, int shortest_edge,
                                                PillowFilter filter);

// Steps 1-6: [3, crop_height, crop_width] float32. INVALID_ARGUMENT when the crop is larger than
// the resized image (neither spec above produces that).
absl::StatusOr<torch::Tensor> Preprocess(const image::Image& image, const PreprocessSpec& spec);

}  // namespace likeness::eval

#endif  // LIKENESS_WORKER_EVAL_PREPROCESS_H_
