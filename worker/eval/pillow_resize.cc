#include "worker/eval/pillow_resize.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace likeness::eval {
namespace {

// Keys' cubic convolution coefficient Pillow uses (bicubic_filter's `a`).
constexpr double kBicubicA = -0.5;
constexpr double kBicubicSupport = 2.0;
constexpr double kBilinearSupport = 1.0;
constexpr int64_t kPillowOne = int64_t{1} << kPillowPrecisionBits;
constexpr int64_t kPillowHalf = int64_t{1} << (kPillowPrecisionBits - 1);
constexpr int kMaxSample = 255;

double Bicubic(double x) {
  x = std::abs(x);
  if (x < 1.0) return ((kBicubicA + 2.0) * x - (kBicubicA + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * kBicubicA;
  return 0.0;
}

double Bilinear(double x) {
  x = std::abs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

// Pillow's normalize_coeffs_8bpc: round half away from zero, by truncating after adding +-0.5.
int32_t ToFixedPoint(double weight) {
  const double scaled = weight * static_cast<double>(kPillowOne);
  return static_cast<int32_t>(weight < 0 ? scaled - 0.5 : scaled + 0.5);
}

// Pillow's clip8: the accumulator (with its rounding half already added) >> precision, clamped.
uint8_t Clip8(int64_t accumulator) {
  if (accumulator < 0) return 0;
  return static_cast<uint8_t>(std::min<int64_t>(accumulator >> kPillowPrecisionBits, kMaxSample));
}

// Resamples along one axis. The image is viewed as `lines` lines of `in_size` pixels; pixel p of
// line l starts at l * line_stride + p * pixel_stride. Output uses the same layout with out sizes.
void ResampleAxis(const uint8_t* in, uint8_t* out, int lines, int channels,
                  const std::vector<ResampleTaps>& taps, size_t in_line_stride,
                  size_t in_pixel_stride, size_t out_line_stride, size_t out_pixel_stride) {
  std::vector<int64_t> sums(channels);
  for (int line = 0; line < lines; ++line) {
    const uint8_t* in_line = in + line * in_line_stride;
    uint8_t* out_line = out + line * out_line_stride;
    for (size_t x = 0; x < taps.size(); ++x) {
      const ResampleTaps& t = taps[x];
      std::fill(sums.begin(), sums.end(), kPillowHalf);
      for (size_t k = 0; k < t.weights.size(); ++k) {
        const uint8_t* pixel = in_line + (t.first + k) * in_pixel_stride;
        for (int c = 0; c < channels; ++c) sums[c] += int64_t{pixel[c]} * t.weights[k];
      }
      uint8_t* target = out_line + x * out_pixel_stride;
      for (int c = 0; c < channels; ++c) target[c] = Clip8(sums[c]);
    }
  }
}

}  // namespace

std::vector<ResampleTaps> PillowResampleTaps(int in_size, int out_size, PillowFilter filter) {
  const double support_at_1 =
      filter == PillowFilter::kBicubic ? kBicubicSupport : kBilinearSupport;
  double (*const kernel)(double) = filter == PillowFilter::kBicubic ? Bicubic : Bilinear;
  // precompute_coeffs with box (0, in_size): in0 = 0, in1 = in_size.
  const double scale = static_cast<double>(in_size) / out_size;
  const double filter_scale = std::max(scale, 1.0);
  const double support = support_at_1 * filter_scale;
  const double inverse_filter_scale = 1.0 / filter_scale;
  std::vector<ResampleTaps> taps(out_size);
  std::vector<double> weights;
  for (int x = 0; x < out_size; ++x) {
    const double center = (x + 0.5) * scale;
    // int() truncates toward zero, as Pillow's cast does; negative values then clip to 0.
    const int first = std::max(static_cast<int>(center - support + 0.5), 0);
    const int end = std::min(static_cast<int>(center + support + 0.5), in_size);
    weights.clear();
    double total = 0.0;
    for (int i = first; i < end; ++i) {
      const double w = kernel((i - center + 0.5) * inverse_filter_scale);
      weights.push_back(w);
      total += w;
    }
    ResampleTaps& t = taps[x];
    t.first = first;
    t.weights.reserve(weights.size());
    for (double w : weights) t.weights.push_back(ToFixedPoint(total != 0.0 ? w / total : w));
  }
  return taps;
}

absl::StatusOr<image::Image> PillowResize(const image::Image& in, int width, int height,
                                          PillowFilter filter) {
  if (in.bit_depth != 8) {
    return absl::InvalidArgumentError(
        absl::StrCat("PillowResize: 8-bit images only, got ", in.bit_depth, " bits"));
  }
  if (in.width < 1 || in.height < 1 || in.channels < 1 || in.pixels.size() != in.SizeBytes()) {
    return absl::InvalidArgumentError(absl::StrCat("PillowResize: malformed image ", in.width,
                                                   "x", in.height, "x", in.channels));
  }
  if (width < 1 || height < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("PillowResize: target size ", width, "x", height, " is empty"));
  }
  const int c = in.channels;
  image::Image current = in;
  current.text.clear();
  if (width != in.width) {  // horizontal pass: lines are rows
    image::Image out = image::MakeImage(width, in.height, c);
    ResampleAxis(current.pixels.data(), out.pixels.data(), in.height, c,
                 PillowResampleTaps(in.width, width, filter), current.RowBytes(), c,
                 out.RowBytes(), c);
    current = std::move(out);
  }
  if (height != in.height) {  // vertical pass: lines are columns
    image::Image out = image::MakeImage(width, height, c);
    ResampleAxis(current.pixels.data(), out.pixels.data(), width, c,
                 PillowResampleTaps(in.height, height, filter), c, current.RowBytes(), c,
                 out.RowBytes());
    current = std::move(out);
  }
  return current;
}

}  // namespace likeness::eval
