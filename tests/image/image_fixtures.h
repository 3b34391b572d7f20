// Test fixtures made at test time with the codec libraries' own encoders, so no binary file
// is committed and every special case (palette, tRNS, 16 bit, Adam7, CMYK, EXIF) is exact and
// visible in the test that uses it.
#ifndef LIKENESS_TESTS_IMAGE_IMAGE_FIXTURES_H_
#define LIKENESS_TESTS_IMAGE_IMAGE_FIXTURES_H_

#include <png.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

// jpeglib.h uses FILE and size_t without including their headers.
// clang-format off
#include <cstdio>
#include <jpeglib.h>
// clang-format on

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "worker/image/image.h"

namespace likeness::image::testing {

struct PngTextChunk {
  std::string key;
  std::string value;
  int compression = PNG_TEXT_COMPRESSION_NONE;  // or _zTXt, PNG_ITXT_COMPRESSION_NONE/_zTXt
  bool after_image = false;                     // written after IDAT
};

struct PngSpec {
  int width = 0;
  int height = 0;
  int color_type = PNG_COLOR_TYPE_RGB;
  int bit_depth = 8;
  bool interlaced = false;
  std::vector<png_color> palette;
  std::vector<uint8_t> palette_alpha;             // tRNS of a palette image
  std::optional<png_color_16> transparent_color;  // tRNS of a gray or RGB image
  // Rows exactly as PNG stores them: sub-byte samples packed MSB first, 16-bit big-endian.
  std::vector<uint8_t> rows;
  std::string exif;  // eXIf payload: a bare TIFF structure
  std::vector<PngTextChunk> text;
};

// Encodes with libpng's write API (aborts on a libpng error: that is a bug in the test).
std::string WritePng(const PngSpec& spec);

struct JpegSpec {
  int width = 0;
  int height = 0;
  J_COLOR_SPACE in_color_space = JCS_RGB;  // JCS_GRAYSCALE, JCS_RGB or JCS_CMYK
  // What the file stores, when not libjpeg's default for in_color_space (e.g. JCS_YCCK).
  std::optional<J_COLOR_SPACE> jpeg_color_space;
  bool write_adobe_marker = true;  // only CMYK/YCCK files carry it; false: plain CMYK
  bool progressive = false;
  std::vector<jpeg_scan_info> scan_script;  // custom progressive scans, if not empty
  int quality = 95;
  std::string app1;             // an APP1 payload, e.g. ExifApp1(6)
  std::vector<uint8_t> pixels;  // interleaved, width * height * components
};

std::string WriteJpeg(const JpegSpec& spec);

// A minimal TIFF structure (the EXIF block) whose IFD0 holds one tag: Orientation.
std::string ExifTiff(int orientation, bool big_endian = false);
// The same behind JPEG's "Exif\0\0" APP1 signature.
std::string ExifApp1(int orientation, bool big_endian = false);

// An extended (VP8X) WebP with the image chunk of `simple_webp` and an EXIF chunk.
std::string WebpWithExif(const std::string& simple_webp, int width, int height,
                         const std::string& tiff);

// A width x height RGB (or 1-4 channel) 8-bit image whose pixel (x, y) is a deterministic
// function of its position, so any misplaced pixel shows.
Image GradientImage(int width, int height, int channels);

// The bytes of `path`, or an empty string when it cannot be read.
std::string ReadFileOrEmpty(const std::string& path);

// For corruption tests: OK when `status` is a decode error that names `name` and has one of the
// codes bad data may give (DATA_LOSS, INVALID_ARGUMENT, RESOURCE_EXHAUSTED).
bool IsCleanDecodeError(const absl::Status& status, absl::string_view name);

}  // namespace likeness::image::testing

#endif  // LIKENESS_TESTS_IMAGE_IMAGE_FIXTURES_H_
