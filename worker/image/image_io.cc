#include "worker/image/image_io.h"

#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/status_macros.h"
#include "worker/image/codec_internal.h"
#include "worker/image/exif_orientation.h"

namespace likeness::image {
namespace {

constexpr absl::string_view kJpegMagic("\xFF\xD8\xFF", 3);
constexpr absl::string_view kPngMagic("\x89PNG\r\n\x1A\n", 8);
constexpr absl::string_view kRiffMagic("RIFF", 4);
constexpr absl::string_view kWebpMagic("WEBP", 4);
// "RIFF", 4-byte size, "WEBP".
constexpr size_t kWebpMagicOffset = 8;
// How many leading bytes an unrecognized-format error shows.
constexpr size_t kMagicBytesShown = 12;

bool HasBytesAt(absl::string_view bytes, size_t offset, absl::string_view magic) {
  return bytes.size() >= offset + magic.size() && bytes.substr(offset, magic.size()) == magic;
}

// True when `bytes` is shorter than a signature it begins: a cut-off image, not an unknown format.
bool IsCutOffSignature(absl::string_view bytes) {
  for (const absl::string_view signature : {kJpegMagic, kPngMagic, kRiffMagic}) {
    if (bytes.size() < signature.size() && signature.substr(0, bytes.size()) == bytes) return true;
  }
  return bytes.size() < kWebpMagicOffset + kWebpMagic.size() && HasBytesAt(bytes, 0, kRiffMagic);
}

}  // namespace

absl::StatusOr<ImageFormat> DetectImageFormat(absl::string_view bytes,
                                              absl::string_view name_for_errors) {
  if (HasBytesAt(bytes, 0, kJpegMagic)) return ImageFormat::kJpeg;
  if (HasBytesAt(bytes, 0, kPngMagic)) return ImageFormat::kPng;
  if (HasBytesAt(bytes, 0, kRiffMagic) && HasBytesAt(bytes, kWebpMagicOffset, kWebpMagic)) {
    return ImageFormat::kWebp;
  }
  if (bytes.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(name_for_errors, ": empty file, not an image"));
  }
  if (IsCutOffSignature(bytes)) {
    return absl::DataLossError(absl::StrCat(name_for_errors, ": truncated image: only ",
                                            bytes.size(),
                                            " bytes, the start of a JPEG, PNG or WebP signature"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat(name_for_errors, ": not a JPEG, PNG or WebP image (starts with \"",
                   absl::CHexEscape(bytes.substr(0, kMagicBytesShown)), "\")"));
}

absl::StatusOr<Image> DecodeImage(absl::string_view bytes, absl::string_view name_for_errors,
                                  const DecodeOptions& options) {
  LIKENESS_ASSIGN_OR_RETURN(const ImageFormat format, DetectImageFormat(bytes, name_for_errors));
  absl::StatusOr<internal::DecodedImage> decoded;
  switch (format) {
    case ImageFormat::kJpeg:
      decoded = internal::DecodeJpeg(bytes, name_for_errors, options);
      break;
    case ImageFormat::kPng:
      decoded = internal::DecodePng(bytes, name_for_errors, options);
      break;
    case ImageFormat::kWebp:
      decoded = internal::DecodeWebp(bytes, name_for_errors, options);
      break;
  }
  if (!decoded.ok()) return decoded.status();
  if (options.apply_exif_orientation && !decoded->exif.empty()) {
    ApplyExifOrientation(ReadExifOrientation(decoded->exif), &decoded->image);
  }
  return std::move(decoded->image);
}

absl::StatusOr<Image> DecodeImageFile(const std::string& path, const DecodeOptions& options) {
  LIKENESS_ASSIGN_OR_RETURN(const std::string bytes, ReadFileToString(path));
  return DecodeImage(bytes, path, options);
}

absl::Status WritePngFile(const std::string& path, const Image& image, const PngText& text) {
  absl::StatusOr<std::string> png = EncodePng(image, text);
  if (!png.ok()) {
    return absl::Status(png.status().code(), absl::StrCat(path, ": ", png.status().message()));
  }
  return WriteFileAtomically(path, *png);
}

namespace internal {

absl::Status CheckImageSize(int64_t width, int64_t height, const DecodeOptions& options,
                            absl::string_view name, ImageFormat format) {
  if (width <= 0 || height <= 0) {
    return CorruptError(name, format,
                        absl::StrCat("header gives an empty size ", width, "x", height));
  }
  // Both fit in 32 bits in every format we read, so the product cannot overflow int64.
  const int64_t pixels = width * height;
  if (pixels > options.max_pixels) {
    return absl::ResourceExhaustedError(
        absl::StrCat(name, ": ", ImageFormatName(format), " image is ", width, "x", height, " = ",
                     pixels, " pixels, over the limit of ", options.max_pixels,
                     " pixels (DecodeOptions::max_pixels; refused before decoding as a possible "
                     "decompression bomb)"));
  }
  return absl::OkStatus();
}

absl::Status CorruptError(absl::string_view name, ImageFormat format, absl::string_view what) {
  return absl::DataLossError(absl::StrCat(name, ": corrupt ", ImageFormatName(format), ": ", what));
}

}  // namespace internal
}  // namespace likeness::image
