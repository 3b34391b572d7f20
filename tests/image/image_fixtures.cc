#include "tests/image/image_fixtures.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace likeness::image::testing {
namespace {

constexpr uint16_t kOrientationTag = 0x0112;
constexpr uint16_t kTiffShort = 3;
constexpr uint16_t kTiffMagic = 42;
constexpr uint32_t kIfd0Offset = 8;
constexpr uint8_t kVp8xExifFlag = 0x08;
constexpr size_t kVp8xPayloadBytes = 10;
constexpr size_t kRiffHeaderBytes = 12;

void AppendToString(png_structp png, png_bytep data, size_t length) {
  static_cast<std::string*>(png_get_io_ptr(png))
      ->append(reinterpret_cast<const char*>(data), length);
}

void NoFlush(png_structp) {}

size_t ChannelsOf(int color_type) {
  switch (color_type) {
    case PNG_COLOR_TYPE_GRAY:
    case PNG_COLOR_TYPE_PALETTE:
      return 1;
    case PNG_COLOR_TYPE_GRAY_ALPHA:
      return 2;
    case PNG_COLOR_TYPE_RGB:
      return 3;
    default:
      return 4;
  }
}

std::vector<png_text> TextChunks(const std::vector<PngTextChunk>& text, bool after_image) {
  std::vector<png_text> chunks;
  for (const PngTextChunk& entry : text) {
    if (entry.after_image != after_image) continue;
    png_text chunk{};
    chunk.compression = entry.compression;
    chunk.key = const_cast<char*>(entry.key.c_str());
    chunk.text = const_cast<char*>(entry.value.c_str());
    chunk.text_length = entry.value.size();
    chunks.push_back(chunk);
  }
  return chunks;
}

void Put16(std::string* out, uint16_t value, bool big_endian) {
  const char hi = static_cast<char>(value >> 8);
  const char lo = static_cast<char>(value & 0xFF);
  out->push_back(big_endian ? hi : lo);
  out->push_back(big_endian ? lo : hi);
}

void Put32(std::string* out, uint32_t value, bool big_endian) {
  Put16(out, static_cast<uint16_t>(big_endian ? value >> 16 : value & 0xFFFF), big_endian);
  Put16(out, static_cast<uint16_t>(big_endian ? value & 0xFFFF : value >> 16), big_endian);
}

void Put24LittleEndian(std::string* out, uint32_t value) {
  for (int i = 0; i < 3; ++i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

}  // namespace

std::string WritePng(const PngSpec& spec) {
  std::string out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (png == nullptr || info == nullptr) std::abort();
  png_set_write_fn(png, &out, AppendToString, NoFlush);
  png_set_IHDR(png, info, spec.width, spec.height, spec.bit_depth, spec.color_type,
               spec.interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (!spec.palette.empty()) {
    png_set_PLTE(png, info, spec.palette.data(), static_cast<int>(spec.palette.size()));
  }
  if (!spec.palette_alpha.empty() || spec.transparent_color.has_value()) {
    png_color_16 color = spec.transparent_color.value_or(png_color_16{});
    png_set_tRNS(png, info, spec.palette_alpha.empty() ? nullptr : spec.palette_alpha.data(),
                 static_cast<int>(spec.palette_alpha.size()),
                 spec.transparent_color.has_value() ? &color : nullptr);
  }
  if (!spec.exif.empty()) {
    png_set_eXIf_1(png, info, static_cast<png_uint_32>(spec.exif.size()),
                   reinterpret_cast<png_bytep>(const_cast<char*>(spec.exif.data())));
  }
  std::vector<png_text> before = TextChunks(spec.text, false);
  if (!before.empty()) png_set_text(png, info, before.data(), static_cast<int>(before.size()));
  png_write_info(png, info);
  const size_t row_bytes =
      (static_cast<size_t>(spec.width) * ChannelsOf(spec.color_type) * spec.bit_depth + 7) / 8;
  std::vector<png_bytep> rows(spec.height);
  for (int y = 0; y < spec.height; ++y) {
    rows[y] = const_cast<png_bytep>(spec.rows.data() + y * row_bytes);
  }
  png_write_image(png, rows.data());
  png_infop end_info = png_create_info_struct(png);
  std::vector<png_text> after = TextChunks(spec.text, true);
  if (!after.empty()) png_set_text(png, end_info, after.data(), static_cast<int>(after.size()));
  png_write_end(png, end_info);
  png_destroy_info_struct(png, &end_info);
  png_destroy_write_struct(&png, &info);
  return out;
}

std::string WriteJpeg(const JpegSpec& spec) {
  jpeg_compress_struct cinfo{};
  jpeg_error_mgr error_manager{};
  cinfo.err = jpeg_std_error(&error_manager);  // exits on error: a bug in the test
  jpeg_create_compress(&cinfo);
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &buffer, &size);
  cinfo.image_width = spec.width;
  cinfo.image_height = spec.height;
  cinfo.in_color_space = spec.in_color_space;
  cinfo.input_components = spec.in_color_space == JCS_GRAYSCALE ? 1
                           : spec.in_color_space == JCS_CMYK    ? 4
                                                                : 3;
  jpeg_set_defaults(&cinfo);
  if (spec.jpeg_color_space.has_value()) jpeg_set_colorspace(&cinfo, *spec.jpeg_color_space);
  cinfo.write_Adobe_marker = spec.write_adobe_marker && cinfo.write_Adobe_marker;
  jpeg_set_quality(&cinfo, spec.quality, TRUE);
  if (!spec.scan_script.empty()) {
    cinfo.scan_info = spec.scan_script.data();
    cinfo.num_scans = static_cast<int>(spec.scan_script.size());
  } else if (spec.progressive) {
    jpeg_simple_progression(&cinfo);
  }
  jpeg_start_compress(&cinfo, TRUE);
  if (!spec.app1.empty()) {
    jpeg_write_marker(&cinfo, JPEG_APP0 + 1, reinterpret_cast<const JOCTET*>(spec.app1.data()),
                      static_cast<unsigned int>(spec.app1.size()));
  }
  const size_t row_bytes = static_cast<size_t>(spec.width) * cinfo.input_components;
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(spec.pixels.data() + cinfo.next_scanline * row_bytes);
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  std::string out(reinterpret_cast<const char*>(buffer), size);
  std::free(buffer);
  return out;
}

std::string ExifTiff(int orientation, bool big_endian) {
  std::string tiff = big_endian ? "MM" : "II";
  Put16(&tiff, kTiffMagic, big_endian);
  Put32(&tiff, kIfd0Offset, big_endian);
  Put16(&tiff, 1, big_endian);  // one entry
  Put16(&tiff, kOrientationTag, big_endian);
  Put16(&tiff, kTiffShort, big_endian);
  Put32(&tiff, 1, big_endian);  // one value, stored in the entry's 4-byte value field
  Put16(&tiff, static_cast<uint16_t>(orientation), big_endian);
  Put16(&tiff, 0, big_endian);
  Put32(&tiff, 0, big_endian);  // no next IFD
  return tiff;
}

std::string ExifApp1(int orientation, bool big_endian) {
  return std::string("Exif\0\0", 6) + ExifTiff(orientation, big_endian);
}

std::string WebpWithExif(const std::string& simple_webp, int width, int height,
                         const std::string& tiff) {
  std::string body = "VP8X";
  Put32(&body, kVp8xPayloadBytes, false);
  body.push_back(static_cast<char>(kVp8xExifFlag));
  body.append(3, '\0');
  Put24LittleEndian(&body, width - 1);
  Put24LittleEndian(&body, height - 1);
  body += simple_webp.substr(kRiffHeaderBytes);  // the VP8/VP8L chunk
  body += "EXIF";
  Put32(&body, static_cast<uint32_t>(tiff.size()), false);
  body += tiff;
  if (tiff.size() % 2 == 1) body.push_back('\0');
  std::string riff = "RIFF";
  Put32(&riff, static_cast<uint32_t>(4 + body.size()), false);
  return riff + "WEBP" + body;
}

Image GradientImage(int width, int height, int channels) {
  Image image = MakeImage(width, height, channels);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      for (int c = 0; c < channels; ++c) {
        image.pixels[(static_cast<size_t>(y) * width + x) * channels + c] =
            static_cast<uint8_t>((x * 7 + y * 13 + c * 61) & 0xFF);
      }
    }
  }
  return image;
}

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

bool IsCleanDecodeError(const absl::Status& status, absl::string_view name) {
  const bool expected_code = status.code() == absl::StatusCode::kDataLoss ||
                             status.code() == absl::StatusCode::kInvalidArgument ||
                             status.code() == absl::StatusCode::kResourceExhausted;
  return !status.ok() && expected_code &&
         absl::string_view(status.message()).find(name) != absl::string_view::npos;
}

}  // namespace likeness::image::testing
