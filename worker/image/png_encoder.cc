// PNG encoding through libpng 1.6, into memory. Text chunks are written before IDAT, where
// Pillow (and so AUTOMATIC1111) puts them, so tools that stop reading at the first IDAT still
// find "parameters". setjmp rules as in jpeg_decoder.cc: WriteRows has only trivially
// destructible locals; the strings and vectors live in EncodePng.

#include <png.h>

#include <csetjmp>
#include <cstdio>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "worker/image/codec_internal.h"
#include "worker/image/image_io.h"
#include "worker/image/png_text.h"

namespace likeness::image {
namespace {

constexpr size_t kMaxMessageBytes = 256;

struct PngWriteContext {
  std::string* out;
  char message[kMaxMessageBytes];
};

[[noreturn]] void OnError(png_structp png, png_const_charp message) {
  auto* context = static_cast<PngWriteContext*>(png_get_error_ptr(png));
  std::snprintf(context->message, sizeof(context->message), "%s", message);
  png_longjmp(png, 1);
}

void OnWarning(png_structp, png_const_charp) {}

void WriteToString(png_structp png, png_bytep data, size_t length) {
  auto* context = static_cast<PngWriteContext*>(png_get_io_ptr(png));
  bool out_of_memory = false;
  try {
    context->out->append(reinterpret_cast<const char*>(data), length);
  } catch (const std::bad_alloc&) {
    out_of_memory = true;  // no exception may cross libpng's C frames; report it as a png_error
  }
  if (out_of_memory) png_error(png, "out of memory while encoding");
}

void Flush(png_structp) {}

int ColorType(int channels) {
  switch (channels) {
    case 1:
      return PNG_COLOR_TYPE_GRAY;
    case 2:
      return PNG_COLOR_TYPE_GRAY_ALPHA;
    case 3:
      return PNG_COLOR_TYPE_RGB;
    default:
      return PNG_COLOR_TYPE_RGBA;
  }
}

bool WriteRows(png_structp png, png_infop info, const Image& image, png_textp text, int text_count,
               png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_IHDR(png, info, static_cast<png_uint_32>(image.width),
               static_cast<png_uint_32>(image.height), image.bit_depth, ColorType(image.channels),
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_set_compression_level(png, kPngCompressionLevel);
  if (text_count > 0) png_set_text(png, info, text, text_count);
  png_write_info(png, info);
  if (image.bit_depth == 16 && internal::kHostIsLittleEndian) png_set_swap(png);
  png_write_image(png, rows);
  png_write_end(png, nullptr);
  return true;
}

class WriteStructGuard {
 public:
  WriteStructGuard(png_structp* png, png_infop* info) : png_(png), info_(info) {}
  WriteStructGuard(const WriteStructGuard&) = delete;
  WriteStructGuard& operator=(const WriteStructGuard&) = delete;
  ~WriteStructGuard() { png_destroy_write_struct(png_, info_); }

 private:
  png_structp* png_;
  png_infop* info_;
};

absl::Status CheckEncodable(const Image& image) {
  if (image.width <= 0 || image.height <= 0 || image.channels < 1 || image.channels > 4 ||
      (image.bit_depth != 8 && image.bit_depth != 16)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot encode a ", image.width, "x", image.height, " image with ", image.channels,
        " channels of ", image.bit_depth, " bits as PNG (need 1-4 channels of 8 or 16 bits)"));
  }
  if (image.pixels.size() != image.SizeBytes()) {
    return absl::InvalidArgumentError(
        absl::StrCat("image holds ", image.pixels.size(), " bytes of pixels, its ", image.width,
                     "x", image.height, "x", image.channels, " shape needs ", image.SizeBytes()));
  }
  return absl::OkStatus();
}

// The keywords and values in the bytes PNG stores them as, kept alive for png_set_text.
struct EncodedText {
  std::string keyword;
  std::string value;
  bool utf8;  // iTXt rather than tEXt
};

absl::StatusOr<std::vector<EncodedText>> EncodeText(const PngText& text) {
  std::vector<EncodedText> encoded;
  encoded.reserve(text.size());
  for (const auto& [keyword, value] : text) {
    EncodedText entry;
    LIKENESS_RETURN_IF_ERROR(internal::CheckPngKeyword(keyword, &entry.keyword));
    if (value.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("PNG text '", keyword, "' has a NUL byte in its value"));
    }
    if (!internal::IsValidUtf8(value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("PNG text '", keyword, "' value is not valid UTF-8"));
    }
    std::optional<std::string> latin1 = internal::Utf8ToLatin1(value);
    entry.utf8 = !latin1.has_value();
    entry.value = entry.utf8 ? value : *std::move(latin1);
    encoded.push_back(std::move(entry));
  }
  return encoded;
}

}  // namespace

absl::StatusOr<std::string> EncodePng(const Image& image, const PngText& text) {
  LIKENESS_RETURN_IF_ERROR(CheckEncodable(image));
  LIKENESS_ASSIGN_OR_RETURN(std::vector<EncodedText> encoded_text, EncodeText(text));
  std::vector<png_text> chunks(encoded_text.size());
  for (size_t i = 0; i < encoded_text.size(); ++i) {
    EncodedText& entry = encoded_text[i];
    png_text& chunk = chunks[i];
    chunk.compression = entry.utf8 ? PNG_ITXT_COMPRESSION_NONE : PNG_TEXT_COMPRESSION_NONE;
    chunk.key = entry.keyword.data();
    chunk.text = entry.value.data();
    chunk.text_length = entry.value.size();
  }
  std::vector<png_bytep> rows(image.height);
  for (int y = 0; y < image.height; ++y) {
    // libpng's row type is non-const but png_write_image only reads.
    rows[y] =
        const_cast<png_bytep>(image.pixels.data() + static_cast<size_t>(y) * image.RowBytes());
  }

  std::string out;
  PngWriteContext context{};
  context.out = &out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &context, OnError, OnWarning);
  png_infop info = png == nullptr ? nullptr : png_create_info_struct(png);
  WriteStructGuard guard(&png, &info);
  if (png == nullptr || info == nullptr) {
    return absl::ResourceExhaustedError("cannot create the libpng writer");
  }
  png_set_write_fn(png, &context, WriteToString, Flush);
  if (!WriteRows(png, info, image, chunks.data(), static_cast<int>(chunks.size()), rows.data())) {
    return absl::InternalError(absl::StrCat("libpng failed to encode: ", context.message));
  }
  return out;
}

}  // namespace likeness::image
