// PNG through libpng 1.6.
//
// libpng reports errors by longjmp to png_jmpbuf(png). The setjmp rules are the ones in
// jpeg_decoder.cc: each setjmp opens a small function (ReadInfo, SetUpTransforms, ReadRows)
// with only trivially destructible locals; the vectors live in DecodePng, which no jump crosses;
// messages go through the PngContext pointer.
//
// What the decoder makes of each PNG kind (see image_io.h for the channel rule):
//   palette -> RGB, or RGBA when it has tRNS;   gray 1/2/4 bit -> 8 bit;
//   gray/RGB with tRNS -> gray+alpha/RGBA;      16 bit -> 8 bit (rounded, png_set_scale_16)
//   unless DecodeOptions::keep_16_bit, then native-endian uint16 samples;
//   interlaced (Adam7) -> deinterlaced by libpng.
// gAMA, cHRM, sRGB and iCCP are not applied: every PNG we meet is sRGB in practice.
// CRC errors in any chunk, critical or ancillary, are errors (libpng's default only warns
// for ancillary chunks): a bad CRC means the bytes changed, and the text chunks we read back
// (the generator's parameters) are ancillary.

#include <png.h>

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "worker/image/codec_internal.h"
#include "worker/image/png_text.h"

namespace likeness::image::internal {
namespace {

constexpr size_t kMaxMessageBytes = 256;

// Plain data only: written from libpng callbacks, read after a longjmp.
struct PngContext {
  const unsigned char* data;
  size_t size;
  size_t offset;
  bool truncated;
  char message[kMaxMessageBytes];
};

PngContext* ContextOf(png_structp png) { return static_cast<PngContext*>(png_get_error_ptr(png)); }

[[noreturn]] void OnError(png_structp png, png_const_charp message) {
  PngContext* context = ContextOf(png);
  std::snprintf(context->message, sizeof(context->message), "%s", message);
  png_longjmp(png, 1);
}

// Warnings are benign by construction (libpng raises real problems as errors, and CRC
// errors are made errors above); printing them to stderr would only be noise.
void OnWarning(png_structp, png_const_charp) {}

void ReadFromMemory(png_structp png, png_bytep out, size_t length) {
  auto* context = static_cast<PngContext*>(png_get_io_ptr(png));
  if (length > context->size - context->offset) {
    context->truncated = true;
    png_error(png, "unexpected end of data");
  }
  std::memcpy(out, context->data + context->offset, length);
  context->offset += length;
}

struct PngHeader {
  png_uint_32 width;
  png_uint_32 height;
};

bool ReadInfo(png_structp png, png_infop info, PngHeader* header) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_crc_action(png, PNG_CRC_ERROR_QUIT, PNG_CRC_ERROR_QUIT);
  png_read_info(png, info);
  header->width = png_get_image_width(png, info);
  header->height = png_get_image_height(png, info);
  return true;
}

struct PngLayout {
  int channels;
  int bit_depth;
  size_t row_bytes;
};

bool SetUpTransforms(png_structp png, png_infop info, bool keep_16_bit, PngLayout* layout) {
  if (setjmp(png_jmpbuf(png))) return false;
  const int color_type = png_get_color_type(png, info);
  const int bit_depth = png_get_bit_depth(png, info);
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
  if (bit_depth == 16) {
    if (!keep_16_bit) {
      png_set_scale_16(png);
    } else if (kHostIsLittleEndian) {
      png_set_swap(png);  // PNG stores big-endian; Image holds native-endian uint16
    }
  }
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  layout->channels = png_get_channels(png, info);
  layout->bit_depth = png_get_bit_depth(png, info);
  layout->row_bytes = png_get_rowbytes(png, info);
  return true;
}

// Reads all rows (every Adam7 pass for interlaced files) and then the chunks after IDAT, so
// text after the image is seen and a file cut anywhere before IEND is an error.
bool ReadRows(png_structp png, png_infop info, png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_image(png, rows);
  png_read_end(png, info);
  return true;
}

class ReadStructGuard {
 public:
  ReadStructGuard(png_structp* png, png_infop* info) : png_(png), info_(info) {}
  ReadStructGuard(const ReadStructGuard&) = delete;
  ReadStructGuard& operator=(const ReadStructGuard&) = delete;
  ~ReadStructGuard() { png_destroy_read_struct(png_, info_, nullptr); }

 private:
  png_structp* png_;
  png_infop* info_;
};

absl::Status FailureStatus(const PngContext& context, absl::string_view name) {
  if (context.truncated) {
    return absl::DataLossError(absl::StrCat(name, ": truncated PNG (the data ends after ",
                                            context.size, " bytes, before the IEND chunk)"));
  }
  return CorruptError(name, ImageFormat::kPng, absl::StrCat("libpng: ", context.message));
}

void CopyText(png_structp png, png_infop info, Image* image) {
  png_textp text = nullptr;
  int count = 0;
  png_get_text(png, info, &text, &count);
  for (int i = 0; i < count; ++i) {
    const bool itxt = text[i].compression == PNG_ITXT_COMPRESSION_NONE ||
                      text[i].compression == PNG_ITXT_COMPRESSION_zTXt;
    const absl::string_view key(text[i].key);
    const absl::string_view value(text[i].text, itxt ? text[i].itxt_length : text[i].text_length);
    // Invalid UTF-8 in an iTXt value is kept as Latin-1 rather than passed on malformed.
    image->text[Latin1ToUtf8(key)] =
        itxt && IsValidUtf8(value) ? std::string(value) : Latin1ToUtf8(value);
  }
}

std::string CopyExif(png_structp png, png_infop info) {
  png_uint_32 size = 0;
  png_bytep exif = nullptr;
  if (png_get_eXIf_1(png, info, &size, &exif) == 0 || exif == nullptr) return "";
  return std::string(reinterpret_cast<const char*>(exif), size);
}

}  // namespace

absl::StatusOr<DecodedImage> DecodePng(absl::string_view bytes, absl::string_view name,
                                       const DecodeOptions& options) {
  PngContext context{};
  context.data = reinterpret_cast<const unsigned char*>(bytes.data());
  context.size = bytes.size();
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &context, OnError, OnWarning);
  png_infop info = png == nullptr ? nullptr : png_create_info_struct(png);
  ReadStructGuard guard(&png, &info);
  if (png == nullptr || info == nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat(name, ": cannot create the libpng reader"));
  }
  png_set_read_fn(png, &context, ReadFromMemory);

  PngHeader header{};
  if (!ReadInfo(png, info, &header)) return FailureStatus(context, name);
  LIKENESS_RETURN_IF_ERROR(
      CheckImageSize(header.width, header.height, options, name, ImageFormat::kPng));
  PngLayout layout{};
  if (!SetUpTransforms(png, info, options.keep_16_bit, &layout)) {
    return FailureStatus(context, name);
  }

  DecodedImage decoded;
  Image& image = decoded.image;
  image.width = static_cast<int>(header.width);
  image.height = static_cast<int>(header.height);
  image.channels = layout.channels;
  image.bit_depth = layout.bit_depth;
  if (image.channels < 1 || image.channels > 4 || (image.bit_depth != 8 && image.bit_depth != 16) ||
      layout.row_bytes != image.RowBytes()) {
    return absl::InternalError(absl::StrCat(
        name, ": libpng produced an unexpected layout: ", layout.channels, " channels, ",
        layout.bit_depth, " bits, ", layout.row_bytes, " bytes per row"));
  }
  image.pixels.resize(image.SizeBytes());
  std::vector<png_bytep> rows(image.height);
  for (int y = 0; y < image.height; ++y) {
    rows[y] = image.pixels.data() + static_cast<size_t>(y) * image.RowBytes();
  }
  if (!ReadRows(png, info, rows.data())) return FailureStatus(context, name);

  CopyText(png, info, &image);
  decoded.exif = CopyExif(png, info);
  return decoded;
}

}  // namespace likeness::image::internal
