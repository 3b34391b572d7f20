// Decoding JPEG, PNG and WebP files into an Image, and encoding PNG with text chunks.
//
// Decoding:
//   1. the format comes from the leading magic bytes, never from the file name;
//   2. the header is read and width x height checked against DecodeOptions::max_pixels BEFORE
//      any pixel memory is allocated, so a decompression bomb costs a few microseconds;
//   3. the pixels are decoded; truncated or corrupt data is an error, never a padded image;
//   4. the EXIF orientation (JPEG APP1, PNG eXIf, WebP EXIF) is applied so the image stands the
//      way the camera held it (image_orientation.h).
// Errors name the file (or `name_for_errors`) and what is wrong:
//   NOT_FOUND          the file does not exist,
//   INVALID_ARGUMENT   not a JPEG/PNG/WebP, or a feature this decoder refuses (animated WebP),
//   DATA_LOSS          truncated or corrupt data (the codec's own message is included), and
//                      files shorter than the signature they begin,
//   RESOURCE_EXHAUSTED more pixels than DecodeOptions::max_pixels.
//
// Output channels follow the file: gray JPEG/PNG -> 1, gray+alpha PNG -> 2, RGB -> 3, anything
// with alpha (including palette/gray/RGB PNG with tRNS) -> 4 (2 for gray), CMYK/YCCK JPEG -> 3.
// image_tensor.h turns any of these into RGB.
//
// Every function here is thread-safe and keeps no state between calls, so a data loader may
// decode on many threads at once.
#ifndef LIKENESS_WORKER_IMAGE_IMAGE_IO_H_
#define LIKENESS_WORKER_IMAGE_IMAGE_IO_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "worker/image/image.h"

namespace likeness::image {

// 64 Mi pixels: an 8-bit RGBA image of this size is 256 MiB. Above every photo a phone takes in
// its default mode (12-50 MP) and far below what a crafted header can claim (65500^2 for JPEG,
// 2^31^2 for PNG). Raise it per call through DecodeOptions::max_pixels.
inline constexpr int64_t kDefaultMaxPixels = int64_t{64} << 20;

// Progressive JPEGs may hold any number of scans, each a full pass over the coefficients; a
// crafted file with tens of thousands of tiny scans takes minutes to decode. Real encoders
// write about 10; libjpeg-turbo's own tools suggest a limit of 500.
inline constexpr int kMaxJpegScans = 500;

struct DecodeOptions {
  // Images with more pixels than this are refused with RESOURCE_EXHAUSTED before allocation.
  int64_t max_pixels = kDefaultMaxPixels;
  // Rotate/flip by the EXIF orientation tag. Off gives the pixels in stored order.
  bool apply_exif_orientation = true;
  // 16-bit PNGs: true keeps 16 bits per sample (Image::bit_depth 16); false (the default)
  // scales to 8 bits with rounding, which is all the model and the encoders consume.
  bool keep_16_bit = false;
};

// The format from the first bytes, or INVALID_ARGUMENT naming `name_for_errors`.
absl::StatusOr<ImageFormat> DetectImageFormat(absl::string_view bytes,
                                              absl::string_view name_for_errors);

absl::StatusOr<Image> DecodeImageFile(const std::string& path, const DecodeOptions& options = {});
absl::StatusOr<Image> DecodeImage(absl::string_view bytes, absl::string_view name_for_errors,
                                  const DecodeOptions& options = {});

// Keyword -> value pairs, written in this order. Keywords are 1-79 Latin-1 characters (no
// leading, trailing or double spaces, as PNG requires); values are UTF-8. A value that fits in
// Latin-1 goes into a tEXt chunk, any other into an uncompressed iTXt chunk, the same choice
// Pillow (and therefore AUTOMATIC1111's "parameters") makes.
using PngText = std::vector<std::pair<std::string, std::string>>;

// zlib level for PNG: 6 is zlib's and Pillow's default; higher levels cost ~3x the time for ~2%.
inline constexpr int kPngCompressionLevel = 6;

// Encodes any Image (1-4 channels, 8 or 16 bit) as PNG. Image::text is ignored; pass `text`.
absl::StatusOr<std::string> EncodePng(const Image& image, const PngText& text = {});
// EncodePng, then WriteFileAtomically: a crash never leaves a half-written PNG under `path`.
absl::Status WritePngFile(const std::string& path, const Image& image, const PngText& text = {});

}  // namespace likeness::image

#endif  // LIKENESS_WORKER_IMAGE_IMAGE_IO_H_
