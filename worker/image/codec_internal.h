// Shared by the decoders; not part of the public API (include image_io.h instead).
#ifndef LIKENESS_WORKER_IMAGE_CODEC_INTERNAL_H_
#define LIKENESS_WORKER_IMAGE_CODEC_INTERNAL_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "worker/image/image.h"
#include "worker/image/image_io.h"

namespace likeness::image::internal {

// 16-bit samples are native-endian in Image; PNG stores them big-endian.
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
inline constexpr bool kHostIsLittleEndian = false;
#else
inline constexpr bool kHostIsLittleEndian = true;
#endif

// What a decoder hands back: the pixels in stored order and the EXIF block, if the file has
// one (a TIFF structure, maybe behind "Exif\0\0"); image_io.cc applies the orientation.
struct DecodedImage {
  Image image;
  std::string exif;
};

absl::StatusOr<DecodedImage> DecodeJpeg(absl::string_view bytes, absl::string_view name,
                                        const DecodeOptions& options);
absl::StatusOr<DecodedImage> DecodePng(absl::string_view bytes, absl::string_view name,
                                       const DecodeOptions& options);
absl::StatusOr<DecodedImage> DecodeWebp(absl::string_view bytes, absl::string_view name,
                                        const DecodeOptions& options);

// RESOURCE_EXHAUSTED unless 0 < width, height and width * height <= options.max_pixels.
// (Zero or negative sizes are DATA_LOSS: a header that says so is corrupt.) Called with the
// header's numbers before the decoder allocates anything for the pixels.
absl::Status CheckImageSize(int64_t width, int64_t height, const DecodeOptions& options,
                            absl::string_view name, ImageFormat format);

// "<name>: <format>: <what>" as DATA_LOSS, the shape of every corrupt-data error.
absl::Status CorruptError(absl::string_view name, ImageFormat format, absl::string_view what);

}  // namespace likeness::image::internal

#endif  // LIKENESS_WORKER_IMAGE_CODEC_INTERNAL_H_
