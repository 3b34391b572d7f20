#include "worker/image/image.h"

#include <cstring>

namespace likeness::image {

absl::string_view ImageFormatName(ImageFormat format) {
  switch (format) {
    case ImageFormat::kJpeg:
      return "JPEG";
    case ImageFormat::kPng:
      return "PNG";
    case ImageFormat::kWebp:
      return "WebP";
  }
  return "unknown";
}

uint32_t Image::Sample(int x, int y, int c) const {
  const size_t offset = static_cast<size_t>(y) * RowBytes() +
                        static_cast<size_t>(x) * BytesPerPixel() +
                        static_cast<size_t>(c) * BytesPerSample();
  if (bit_depth == 8) return pixels[offset];
  uint16_t value;
  std::memcpy(&value, &pixels[offset], sizeof(value));
  return value;
}

Image MakeImage(int width, int height, int channels, int bit_depth) {
  Image image;
  image.width = width;
  image.height = height;
  image.channels = channels;
  image.bit_depth = bit_depth;
  image.pixels.assign(image.SizeBytes(), 0);
  return image;
}

}  // namespace likeness::image
