// WebP through libwebp's advanced decoding API, which reports why it failed and decodes into
// memory we allocate (after the size check). Animated WebP is refused: which frame to train on
// is a question for the caller, not a decoder default. The EXIF chunk is found by walking the
// RIFF chunks here, which costs a loop rather than a link to libwebpdemux.

#include <webp/decode.h>

#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "worker/image/codec_internal.h"

namespace likeness::image::internal {
namespace {

// RIFF layout: "RIFF", u32 size, "WEBP", then chunks of fourcc, u32 size, payload padded to
// an even length.
constexpr size_t kRiffHeaderBytes = 12;
constexpr size_t kChunkHeaderBytes = 8;
constexpr char kExifFourcc[] = "EXIF";

uint32_t ReadLittleEndian32(const char* p) {
  const auto* b = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint32_t>(b[0]) | static_cast<uint32_t>(b[1]) << 8 |
         static_cast<uint32_t>(b[2]) << 16 | static_cast<uint32_t>(b[3]) << 24;
}

std::string FindExifChunk(absl::string_view bytes) {
  size_t offset = kRiffHeaderBytes;
  while (offset + kChunkHeaderBytes <= bytes.size()) {
    const absl::string_view fourcc = bytes.substr(offset, 4);
    const size_t size = ReadLittleEndian32(bytes.data() + offset + 4);
    const size_t payload = offset + kChunkHeaderBytes;
    if (size > bytes.size() - payload) return "";
    if (fourcc == kExifFourcc) return std::string(bytes.substr(payload, size));
    offset = payload + size + (size & 1);
  }
  return "";
}

const char* StatusName(VP8StatusCode status) {
  switch (status) {
    case VP8_STATUS_OK:
      return "ok";
    case VP8_STATUS_OUT_OF_MEMORY:
      return "out of memory";
    case VP8_STATUS_INVALID_PARAM:
      return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR:
      return "bitstream error";
    case VP8_STATUS_UNSUPPORTED_FEATURE:
      return "unsupported feature";
    case VP8_STATUS_SUSPENDED:
      return "suspended";
    case VP8_STATUS_USER_ABORT:
      return "user abort";
    case VP8_STATUS_NOT_ENOUGH_DATA:
      return "not enough data";
  }
  return "unknown status";
}

absl::Status FailureStatus(VP8StatusCode status, absl::string_view name) {
  if (status == VP8_STATUS_NOT_ENOUGH_DATA) {
    return absl::DataLossError(absl::StrCat(name, ": truncated WebP (libwebp: not enough data)"));
  }
  if (status == VP8_STATUS_OUT_OF_MEMORY) {
    return absl::ResourceExhaustedError(absl::StrCat(name, ": out of memory decoding WebP"));
  }
  return CorruptError(name, ImageFormat::kWebp, absl::StrCat("libwebp: ", StatusName(status)));
}

}  // namespace

absl::StatusOr<DecodedImage> DecodeWebp(absl::string_view bytes, absl::string_view name,
                                        const DecodeOptions& options) {
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  WebPDecoderConfig config;
  if (!WebPInitDecoderConfig(&config)) {
    return absl::InternalError(absl::StrCat(name, ": libwebp version mismatch"));
  }
  VP8StatusCode status = WebPGetFeatures(data, bytes.size(), &config.input);
  if (status != VP8_STATUS_OK) return FailureStatus(status, name);
  if (config.input.has_animation) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": animated WebP is not supported; extract a frame first"));
  }
  LIKENESS_RETURN_IF_ERROR(
      CheckImageSize(config.input.width, config.input.height, options, name, ImageFormat::kWebp));

  DecodedImage decoded;
  Image& image = decoded.image;
  image.width = config.input.width;
  image.height = config.input.height;
  image.channels = config.input.has_alpha ? 4 : 3;
  image.bit_depth = 8;
  image.pixels.resize(image.SizeBytes());
  config.output.colorspace = config.input.has_alpha ? MODE_RGBA : MODE_RGB;
  config.output.is_external_memory = 1;
  config.output.u.RGBA.rgba = image.pixels.data();
  config.output.u.RGBA.stride = static_cast<int>(image.RowBytes());
  config.output.u.RGBA.size = image.pixels.size();
  status = WebPDecode(data, bytes.size(), &config);
  WebPFreeDecBuffer(&config.output);  // frees nothing for external memory; kept for symmetry
  if (status != VP8_STATUS_OK) return FailureStatus(status, name);
  decoded.exif = FindExifChunk(bytes);
  return decoded;
}

}  // namespace likeness::image::internal
