// Pillow's 8-bit resize (libImaging/Resample.c, unchanged from Pillow 7 through 11), reproduced
// bit for bit, because the reference preprocessing of both metrics' encoders runs through it:
// transformers' CLIPImageProcessor and torchvision's Resize both call PIL's Image.resize on the
// uint8 image. A float resize differs by up to 8 levels in one pass and 1-2 levels in two
// (golden README section 6), about 0.015 per level in CLIP's normalised pixels.
//
// The algorithm, for each axis that changes size (in to out pixels):
//   1. scale = in / out; the filter is widened by max(scale, 1) (antialiasing when shrinking):
//      support = filter.support * max(scale, 1).
//   2. For output pixel x: center = (x + 0.5) * scale; the taps run over input pixels
//      [int(center - support + 0.5), int(center + support + 0.5)) clipped to the image, each
//      weighted filter((i - center + 0.5) / max(scale, 1)), then divided by their sum (double).
//   3. The weights become fixed point: round-half-away(w * 2^22) (PRECISION_BITS = 32 - 8 - 2,
//      leaving two bits for the filter's negative lobes to overshoot without overflow).
//   4. Each output sample = clamp((2^21 + sum(sample * weight)) >> 22, 0, 255): rounded, then
//      clamped to uint8.
// The horizontal pass runs first (on the rows the vertical pass needs), then the vertical pass on
// its uint8 result. An axis whose size does not change is not resampled at all.
#ifndef LIKENESS_WORKER_EVAL_PILLOW_RESIZE_H_
#define LIKENESS_WORKER_EVAL_PILLOW_RESIZE_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/image/image.h"

namespace likeness::eval {

// Pillow's Image.Resampling values for the filters implemented here.
enum class PillowFilter {
  kBilinear,  // Image.BILINEAR (2): triangle, support 1
  kBicubic,   // Image.BICUBIC (3): Keys cubic with a = -0.5, support 2
};

// Fixed-point precision of Pillow's 8-bit resampler.
inline constexpr int kPillowPrecisionBits = 32 - 8 - 2;

// One output pixel's taps: input pixels [first, first + weights.size()).
struct ResampleTaps {
  int first = 0;
  std::vector<int32_t> weights;  // fixed point, kPillowPrecisionBits
};

// Step 1-3 for one axis: `out_size` output pixels from `in_size` input pixels.
std::vector<ResampleTaps> PillowResampleTaps(int in_size, int out_size, PillowFilter filter);

// Resizes an 8-bit image of any channel count (interleaved, image.h) to width x height as
// Pillow's Image.resize(size, filter) does (no box, no reducing_gap). INVALID_ARGUMENT for a
// 16-bit or empty image or a size below 1.
absl::StatusOr<image::Image> PillowResize(const image::Image& in, int width, int height,
                                          PillowFilter filter = PillowFilter::kBicubic);

}  // namespace likeness::eval

#endif  // LIKENESS_WORKER_EVAL_PILLOW_RESIZE_H_
