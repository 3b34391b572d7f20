// The in-memory image every decoder produces and the PNG encoder consumes. Torch-free on
// purpose: the CLI, the evaluator's grids and the tests use it without paying for libtorch;
// conversions to tensors live in image_tensor.h.
//
// Pixel layout: interleaved HWC, rows top to bottom, no padding between rows.
//   channels 1: gray, 2: gray + alpha, 3: RGB, 4: RGBA (alpha straight, not premultiplied).
//   bit_depth 8: one byte per sample.
//   bit_depth 16: two bytes per sample, a uint16 in the machine's native byte order (PNG stores
//     big-endian; the decoder swaps). Only PNG produces 16-bit images and only when
//     DecodeOptions::keep_16_bit is set; by default 16-bit PNGs are scaled to 8 bits.
// Colour: samples are what the file holds (sRGB in practice). ICC profiles and gAMA are not
// applied; CMYK JPEGs are converted to RGB with the naive formula (see jpeg_decoder.cc).
#ifndef LIKENESS_WORKER_IMAGE_IMAGE_H_
#define LIKENESS_WORKER_IMAGE_IMAGE_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace likeness::image {

enum class ImageFormat { kJpeg, kPng, kWebp };

// "JPEG", "PNG", "WebP": for messages.
absl::string_view ImageFormatName(ImageFormat format);

struct Image {
  int width = 0;
  int height = 0;
  int channels = 0;   // 1, 2, 3 or 4 (see the layout above)
  int bit_depth = 8;  // 8 or 16
  std::vector<uint8_t> pixels;
  // PNG text chunks (tEXt, zTXt, iTXt): keyword -> value, both UTF-8 (Latin-1 tEXt is
  // converted). A keyword that appears twice keeps its last value, as Pillow does. Empty for
  // JPEG and WebP. The generator's settings live under "parameters" (AUTOMATIC1111's key).
  std::map<std::string, std::string> text;

  int BytesPerSample() const { return bit_depth / 8; }
  size_t BytesPerPixel() const { return static_cast<size_t>(channels) * BytesPerSample(); }
  size_t RowBytes() const { return static_cast<size_t>(width) * BytesPerPixel(); }
  size_t SizeBytes() const { return RowBytes() * static_cast<size_t>(height); }
  int64_t PixelCount() const { return static_cast<int64_t>(width) * height; }
  bool HasAlpha() const { return channels == 2 || channels == 4; }

  // The sample at (x, y, c), widened; 16-bit samples are read without alignment assumptions.
  uint32_t Sample(int x, int y, int c) const;
};

// An image of the given shape with zeroed pixels.
Image MakeImage(int width, int height, int channels, int bit_depth = 8);

}  // namespace likeness::image

#endif  // LIKENESS_WORKER_IMAGE_IMAGE_H_
