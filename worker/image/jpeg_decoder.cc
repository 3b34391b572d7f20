// JPEG through libjpeg-turbo.
//
// libjpeg reports errors by calling err->error_exit, whose default prints and calls exit().
// We install one that longjmps back instead. Rules that keep setjmp/longjmp well-defined here:
//   - every setjmp sits at the top of a small function (ReadHeader, ReadPixels) whose own
//     locals are all trivially destructible, so a longjmp never skips a C++ destructor;
//   - the C++ objects (the output vectors, the exif string) live in DecodeJpeg, the caller,
//     which the longjmp never crosses; the helpers only see raw pointers into them;
//   - everything a jump must carry out (the message, the kind of failure) is written into the
//     JpegContext through a pointer, i.e. to memory, never to a register-held local.
//
// libjpeg treats missing data as a warning: the memory source inserts a fake EOI marker and
// the decoder pads the rest of the image with gray. For training data a gray-padded photo is
// worse than no photo, so the warnings that mean "pixels are missing or garbage" become errors
// (IsDataLossWarning); the harmless ones (extraneous bytes between markers, unknown JFIF
// revision, bad ICC marker) stay warnings and are ignored, as every browser does.

#include <csetjmp>
#include <cstdint>
#include <string>
#include <vector>

// jpeglib.h uses FILE and size_t without including their headers, and jerror.h tests macros
// that jpeglib.h defines (through jconfig.h): the order matters.
// clang-format off
#include <cstdio>
#include <jpeglib.h>
#include <jerror.h>
// clang-format on

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "worker/image/codec_internal.h"

namespace likeness::image::internal {
namespace {

// APP1 holds EXIF (and XMP); 0xFFFF is the most a marker segment can carry.
constexpr unsigned kMaxSavedMarkerBytes = 0xFFFF;
constexpr char kExifSignature[] = "Exif\0\0";
constexpr size_t kExifSignatureSize = 6;
constexpr int kMaxSampleValue = 255;

enum class JpegFailure { kNone, kCorrupt, kTruncated, kTooManyScans };

// Plain data only: it is written from inside libjpeg callbacks and read after a longjmp.
struct JpegContext {
  jpeg_error_mgr error_manager;
  jpeg_progress_mgr progress_manager;
  jmp_buf jump;
  JpegFailure failure;
  char message[JMSG_LENGTH_MAX];
};

JpegContext* ContextOf(j_common_ptr cinfo) { return static_cast<JpegContext*>(cinfo->client_data); }

[[noreturn]] void Fail(j_common_ptr cinfo, JpegFailure failure) {
  JpegContext* context = ContextOf(cinfo);
  context->failure = failure;
  (*cinfo->err->format_message)(cinfo, context->message);
  std::longjmp(context->jump, 1);
}

void OnError(j_common_ptr cinfo) { Fail(cinfo, JpegFailure::kCorrupt); }

// Warnings after which the decoded pixels would be wrong (see the file comment).
bool IsDataLossWarning(int code) {
  switch (code) {
    case JWRN_JPEG_EOF:
    case JWRN_HIT_MARKER:
    case JWRN_MUST_RESYNC:
    case JWRN_HUFF_BAD_CODE:
    case JWRN_NOT_SEQUENTIAL:
    case JWRN_BOGUS_PROGRESSION:
#if JPEG_LIB_VERSION >= 70 || defined(C_ARITH_CODING_SUPPORTED) || defined(D_ARITH_CODING_SUPPORTED)
    case JWRN_ARITH_BAD_CODE:
#endif
      return true;
    default:
      return false;
  }
}

// msg_level -1 is a warning; 0 and up are trace messages, which we never print.
void OnMessage(j_common_ptr cinfo, int msg_level) {
  if (msg_level >= 0) return;
  const int code = cinfo->err->msg_code;
  if (!IsDataLossWarning(code)) return;
  Fail(cinfo, code == JWRN_JPEG_EOF ? JpegFailure::kTruncated : JpegFailure::kCorrupt);
}

void OnProgress(j_common_ptr cinfo) {
  if (!cinfo->is_decompressor) return;
  if (reinterpret_cast<j_decompress_ptr>(cinfo)->input_scan_number <= kMaxJpegScans) return;
  JpegContext* context = ContextOf(cinfo);
  context->failure = JpegFailure::kTooManyScans;
  context->message[0] = '\0';
  std::longjmp(context->jump, 1);
}

// Creates the decompressor and reads everything up to the first scan. False after a longjmp.
bool ReadHeader(JpegContext* context, j_decompress_ptr cinfo, const unsigned char* data,
                size_t size) {
  if (setjmp(context->jump)) return false;
  jpeg_create_decompress(cinfo);
  cinfo->progress = &context->progress_manager;
  jpeg_mem_src(cinfo, data, static_cast<unsigned long>(size));
  jpeg_save_markers(cinfo, JPEG_APP0 + 1, kMaxSavedMarkerBytes);
  jpeg_read_header(cinfo, /*require_image=*/TRUE);
  return true;
}

// Inverted (Adobe) CMYK: the file stores 255 - ink, so R = C' * K' / 255. Plain CMYK stores the
// ink itself: R = (255 - C) * (255 - K) / 255. No ICC profile is applied; print-oriented
// profiles make this approximation a little too saturated, which does not matter for training.
void CmykRowToRgb(const unsigned char* cmyk, int width, bool inverted, unsigned char* rgb) {
  for (int x = 0; x < width; ++x, cmyk += 4, rgb += 3) {
    const int k = inverted ? cmyk[3] : kMaxSampleValue - cmyk[3];
    for (int c = 0; c < 3; ++c) {
      const int ink = inverted ? cmyk[c] : kMaxSampleValue - cmyk[c];
      rgb[c] = static_cast<unsigned char>((ink * k + kMaxSampleValue / 2) / kMaxSampleValue);
    }
  }
}

// Decodes every scanline into `out` (rows of `row_bytes`). CMYK rows go through `cmyk_row`.
bool ReadPixels(JpegContext* context, j_decompress_ptr cinfo, unsigned char* out, size_t row_bytes,
                unsigned char* cmyk_row) {
  if (setjmp(context->jump)) return false;
  jpeg_start_decompress(cinfo);
  const bool cmyk = cinfo->out_color_space == JCS_CMYK;
  const int expected_components = cmyk ? 4 : cinfo->out_color_space == JCS_GRAYSCALE ? 1 : 3;
  if (cinfo->output_components != expected_components) ERREXIT(cinfo, JERR_BAD_J_COLORSPACE);
  const bool inverted = cinfo->saw_Adobe_marker;
  while (cinfo->output_scanline < cinfo->output_height) {
    unsigned char* row = out + static_cast<size_t>(cinfo->output_scanline) * row_bytes;
    JSAMPROW target = cmyk ? cmyk_row : row;
    if (jpeg_read_scanlines(cinfo, &target, 1) != 1) {
      // Only a suspending source returns 0 rows; the memory source never suspends.
      ERREXIT(cinfo, JERR_INPUT_EMPTY);
    }
    if (cmyk) CmykRowToRgb(cmyk_row, static_cast<int>(cinfo->output_width), inverted, row);
  }
  // Reads up to EOI, so a file cut after the last scan is still caught as truncated.
  jpeg_finish_decompress(cinfo);
  return true;
}

// Destroys the decompressor on every path (safe on a zeroed, never-created struct too).
class DecompressGuard {
 public:
  explicit DecompressGuard(j_decompress_ptr cinfo) : cinfo_(cinfo) {}
  DecompressGuard(const DecompressGuard&) = delete;
  DecompressGuard& operator=(const DecompressGuard&) = delete;
  ~DecompressGuard() { jpeg_destroy_decompress(cinfo_); }

 private:
  j_decompress_ptr cinfo_;
};

absl::Status FailureStatus(const JpegContext& context, absl::string_view name) {
  switch (context.failure) {
    case JpegFailure::kTruncated:
      return absl::DataLossError(
          absl::StrCat(name, ": truncated JPEG (libjpeg: ", context.message, ")"));
    case JpegFailure::kTooManyScans:
      return absl::ResourceExhaustedError(
          absl::StrCat(name, ": JPEG has more than ", kMaxJpegScans,
                       " progressive scans (kMaxJpegScans); refused"));
    default:
      return CorruptError(name, ImageFormat::kJpeg, absl::StrCat("libjpeg: ", context.message));
  }
}

std::string FindExif(const jpeg_decompress_struct& cinfo) {
  for (jpeg_saved_marker_ptr marker = cinfo.marker_list; marker != nullptr; marker = marker->next) {
    if (marker->marker != JPEG_APP0 + 1 || marker->data_length < kExifSignatureSize) continue;
    const std::string data(reinterpret_cast<const char*>(marker->data), marker->data_length);
    if (data.compare(0, kExifSignatureSize, kExifSignature, kExifSignatureSize) == 0) return data;
  }
  return "";
}

}  // namespace

absl::StatusOr<DecodedImage> DecodeJpeg(absl::string_view bytes, absl::string_view name,
                                        const DecodeOptions& options) {
  JpegContext context{};
  jpeg_decompress_struct cinfo{};
  cinfo.err = jpeg_std_error(&context.error_manager);
  context.error_manager.error_exit = OnError;
  context.error_manager.emit_message = OnMessage;
  context.progress_manager.progress_monitor = OnProgress;
  cinfo.client_data = &context;
  DecompressGuard guard(&cinfo);

  if (!ReadHeader(&context, &cinfo, reinterpret_cast<const unsigned char*>(bytes.data()),
                  bytes.size())) {
    return FailureStatus(context, name);
  }
  LIKENESS_RETURN_IF_ERROR(
      CheckImageSize(cinfo.image_width, cinfo.image_height, options, name, ImageFormat::kJpeg));

  DecodedImage decoded;
  decoded.exif = FindExif(cinfo);
  int channels = 3;
  switch (cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE:
      cinfo.out_color_space = JCS_GRAYSCALE;
      channels = 1;
      break;
    case JCS_CMYK:
    case JCS_YCCK:
      // libjpeg turns YCCK into CMYK; CmykRowToRgb does the rest.
      cinfo.out_color_space = JCS_CMYK;
      break;
    default:
      cinfo.out_color_space = JCS_RGB;
      break;
  }
  Image& image = decoded.image;
  image.width = static_cast<int>(cinfo.image_width);
  image.height = static_cast<int>(cinfo.image_height);
  image.channels = channels;
  image.bit_depth = 8;
  image.pixels.resize(image.SizeBytes());
  std::vector<unsigned char> cmyk_row;
  if (cinfo.out_color_space == JCS_CMYK) cmyk_row.resize(static_cast<size_t>(image.width) * 4);

  if (!ReadPixels(&context, &cinfo, image.pixels.data(), image.RowBytes(), cmyk_row.data())) {
    return FailureStatus(context, name);
  }
  if (cinfo.output_width != cinfo.image_width || cinfo.output_height != cinfo.image_height) {
    return CorruptError(name, ImageFormat::kJpeg, "decoded size differs from the header's");
  }
  return decoded;
}

}  // namespace likeness::image::internal
