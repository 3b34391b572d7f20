// PNG decoding: every colour type and bit depth libpng can hand us, made at test time with
// libpng's writer, checked pixel for pixel; then the ways a PNG can be broken.
#include <png.h>
#include <zlib.h>

#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/image/image_fixtures.h"
#include "worker/image/image_io.h"

namespace likeness::image {
namespace {

using ::likeness::image::testing::IsCleanDecodeError;
using ::likeness::image::testing::PngSpec;
using ::likeness::image::testing::WritePng;
using ::testing::HasSubstr;

constexpr int kWidth = 13;  // odd sizes catch row-stride mistakes
constexpr int kHeight = 7;

PngSpec Rgb8Spec(int width = kWidth, int height = kHeight) {
  PngSpec spec;
  spec.width = width;
  spec.height = height;
  spec.color_type = PNG_COLOR_TYPE_RGB;
  const Image gradient = testing::GradientImage(width, height, 3);
  spec.rows = gradient.pixels;
  return spec;
}

absl::StatusOr<Image> Decode(const std::string& bytes, const DecodeOptions& options = {}) {
  return DecodeImage(bytes, "fixture.png", options);
}

TEST(PngDecodeTest, Rgb8IsExact) {
  const PngSpec spec = Rgb8Spec();
  absl::StatusOr<Image> image = Decode(WritePng(spec));
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->width, kWidth);
  EXPECT_EQ(image->height, kHeight);
  EXPECT_EQ(image->channels, 3);
  EXPECT_EQ(image->bit_depth, 8);
  EXPECT_EQ(image->pixels, spec.rows);
  EXPECT_TRUE(image->text.empty());
}

TEST(PngDecodeTest, InterlacedMatchesNonInterlaced) {
  PngSpec spec = Rgb8Spec(37, 29);  // Adam7 passes of every size, including partial ones
  spec.interlaced = true;
  absl::StatusOr<Image> image = Decode(WritePng(spec));
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->pixels, spec.rows);
}

TEST(PngDecodeTest, RgbaKeepsAlpha) {
  PngSpec spec;
  spec.width = kWidth;
  spec.height = kHeight;
  spec.color_type = PNG_COLOR_TYPE_RGB_ALPHA;
  spec.rows = testing::GradientImage(kWidth, kHeight, 4).pixels;
  absl::StatusOr<Image> image = Decode(WritePng(spec));
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->channels, 4);
  EXPECT_EQ(image->pixels, spec.rows);
}

TEST(PngDecodeTest, GrayAndGrayAlpha) {
  for (const int color_type : {PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA}) {
    const int channels = color_type == PNG_COLOR_TYPE_GRAY ? 1 : 2;
    PngSpec spec;
    spec.width = kWidth;
    spec.height = kHeight;
    spec.color_type = color_type;
    spec.rows = testing::GradientImage(kWidth, kHeight, channels).pixels;
    absl::StatusOr<Image> image = Decode(WritePng(spec));
    ASSERT_TRUE(image.ok()) << image.status();
    EXPECT_EQ(image->channels, channels);
    EXPECT_EQ(image->pixels, spec.rows);
  }
}

TEST(PngDecodeTest, OneBitGrayExpandsToFullRange) {
  PngSpec spec;
  spec.width = 10;
  spec.height = 2;
  spec.color_type = PNG_COLOR_TYPE_GRAY;
  spec.bit_depth = 1;
  // Row 0: 1010101010, row 1: 0000000001; two bytes per row, MSB first.
  spec.rows = {0b10101010, 0b10000000, 0b00000000, 0b01000000};
  absl::StatusOr<Image> image = Decode(WritePng(spec));
  ASSERT_TRUE(image.ok()) << image.status();
  ASSERT_EQ(image->channels, 1);
  for (int x = 0; x < 10; ++x) {
    EXPECT_EQ(image->Sample(x, 0, 0), x % 2 == 0 ? 255u : 0u) << x;
    EXPECT_EQ(image->Sample(x, 1, 0), x == 9 ? 255u : 0u) << x;
  }
}

TEST(PngDecodeTest, PaletteBecomesRgb) {
  PngSpec spec;
  spec.width = 4;
  spec.height = 1;
  spec.color_type = PNG_COLOR_TYPE_PALETTE;
  spec.palette = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {10, 20, 30}};
  spec.rows = {3, 2, 1, 0};
  absl::StatusOr<Image> image = Decode(WritePng(spec));
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->channels, 3);
  EXPECT_EQ(image->pixels, (std::vector<uint8_t>{10, 20, 30, 0, 0, 255, 0, 255, 0, 255, 0, 0}));
}

TEST(PngDecodeTest, FourBitPaletteWithTransparencyBecomesRgba) {
  PngSpec spec;
  spec.width = 3;
  spec.height = 1;
  spec.color_type = PNG_COLOR_TYPE_PALETTE;
  spec.bit_depth = 4;
  spec.palette = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
  spec.palette_alpha = {0, 128};  // entry 2 has no alpha: opaque
  spec.rows = {0x01, 0x20};       // indices 0, 1, 2
  absl::StatusOr<Image> image = Decode(WritePng(spec));
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->channels, 4);
  EXPECT_EQ(image->pixels, (std::vector<uint8_t>{255, 0, 0, 0, 0, 255, 0, 128, 0, 0, 255, 255}));
}

TEST(PngDecodeTest, RgbColorKeyBecomesAlpha) {
  PngSpec spec;
  spec.width = 2;
  spec.height = 1;
  spec.color_type = PNG_COLOR_TYPE_RGB;
  spec.transparent_color = png_color_16{0, 1, 2, 3, 0};
  spec.rows = {1, 2, 3, 4, 5, 6};
  absl::StatusOr<Image> image = Decode(WritePng(spec));
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->channels, 4);
  EXPECT_EQ(image->pixels, (std::vector<uint8_t>{1, 2, 3, 0, 4, 5, 6, 255}));
}

TEST(PngDecodeTest, GrayColorKeyBecomesGrayAlpha) {
  PngSpec spec;
  spec.width = 2;
  spec.height = 1;
  spec.color_type = PNG_COLOR_TYPE_GRAY;
  spec.transparent_color = png_color_16{0, 0, 0, 0, 7};
  spec.rows = {7, 8};
  absl::StatusOr<Image> image = Decode(WritePng(spec));
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->channels, 2);
  EXPECT_EQ(image->pixels, (std::vector<uint8_t>{7, 0, 8, 255}));
}

// 16-bit samples v * 257 are exactly representable at 8 bits as v, so scaling is checkable
// without arguing about rounding.
PngSpec Rgb16Spec(std::vector<uint16_t>* samples) {
  PngSpec spec;
  spec.width = 5;
  spec.height = 3;
  spec.color_type = PNG_COLOR_TYPE_RGB;
  spec.bit_depth = 16;
  for (int i = 0; i < spec.width * spec.height * 3; ++i) {
    const uint16_t value = static_cast<uint16_t>((i * 37 % 256) * 257);
    samples->push_back(value);
    spec.rows.push_back(static_cast<uint8_t>(value >> 8));  // PNG is big-endian
    spec.rows.push_back(static_cast<uint8_t>(value & 0xFF));
  }
  return spec;
}

TEST(PngDecodeTest, SixteenBitScalesToEightByDefault) {
  std::vector<uint16_t> samples;
  const PngSpec spec = Rgb16Spec(&samples);
  absl::StatusOr<Image> image = Decode(WritePng(spec));
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->bit_depth, 8);
  ASSERT_EQ(image->pixels.size(), samples.size());
  for (size_t i = 0; i < samples.size(); ++i) EXPECT_EQ(image->pixels[i], samples[i] / 257) << i;
}

TEST(PngDecodeTest, SixteenBitKeptNativeEndian) {
  std::vector<uint16_t> samples;
  PngSpec spec = Rgb16Spec(&samples);
  samples[0] = 0x1234;  // an asymmetric value shows a byte-order mistake
  spec.rows[0] = 0x12;
  spec.rows[1] = 0x34;
  DecodeOptions options;
  options.keep_16_bit = true;
  absl::StatusOr<Image> image = Decode(WritePng(spec), options);
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->bit_depth, 16);
  ASSERT_EQ(image->SizeBytes(), samples.size() * 2);
  for (int i = 0; i < static_cast<int>(samples.size()); ++i) {
    EXPECT_EQ(image->Sample(i / 3 % spec.width, i / 3 / spec.width, i % 3), samples[i]) << i;
  }
}

TEST(PngDecodeTest, SixteenBitGrayAlphaWithInterlace) {
  PngSpec spec;
  spec.width = 9;
  spec.height = 9;
  spec.color_type = PNG_COLOR_TYPE_GRAY_ALPHA;
  spec.bit_depth = 16;
  spec.interlaced = true;
  for (int i = 0; i < 9 * 9 * 2; ++i) {
    spec.rows.push_back(static_cast<uint8_t>(i));
    spec.rows.push_back(0);
  }
  absl::StatusOr<Image> image = Decode(WritePng(spec));
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->channels, 2);
  EXPECT_EQ(image->bit_depth, 8);
  for (int i = 0; i < 9 * 9 * 2; ++i) {
    EXPECT_EQ(image->pixels[i], (i * 256 * 255 + 32767) / 65535) << i;
  }
}

uint32_t ChunkLength(const std::string& png, size_t type_at) {
  uint32_t length = 0;
  for (int b = 0; b < 4; ++b) length = length << 8 | static_cast<uint8_t>(png[type_at - 4 + b]);
  return length;
}

// Flips one bit of the named chunk's stored CRC; its data stay intact, so only the CRC check
// can notice.
std::string CorruptCrc(std::string png, const std::string& chunk_type) {
  const size_t at = png.find(chunk_type);
  EXPECT_NE(at, std::string::npos) << chunk_type;
  png[at + 4 + ChunkLength(png, at)] ^= 0x01;
  return png;
}

TEST(PngDecodeTest, CrcErrorsAreErrorsInEveryChunk) {
  PngSpec spec = Rgb8Spec();
  spec.text = {{"parameters", "a photo of sks dog"}};
  const std::string png = WritePng(spec);
  // IDAT is critical (libpng's default already refuses it); tEXt is ancillary, which libpng
  // would only warn about and drop.
  for (const std::string chunk : {"IHDR", "IDAT", "tEXt", "IEND"}) {
    const absl::StatusOr<Image> image = Decode(CorruptCrc(png, chunk));
    ASSERT_FALSE(image.ok()) << chunk;
    EXPECT_EQ(image.status().code(), absl::StatusCode::kDataLoss) << chunk;
    EXPECT_THAT(image.status().message(), HasSubstr("fixture.png"));
    EXPECT_THAT(image.status().message(), HasSubstr("CRC")) << chunk;
  }
}

TEST(PngDecodeTest, CorruptCompressedDataIsAnError) {
  std::string png = WritePng(Rgb8Spec(40, 30));
  const size_t idat = png.find("IDAT");
  ASSERT_NE(idat, std::string::npos);
  png[idat + 4 + 2] ^= 0x40;  // inside the zlib stream, just after its 2-byte header
  const absl::StatusOr<Image> image = Decode(png);
  ASSERT_FALSE(image.ok());
  EXPECT_EQ(image.status().code(), absl::StatusCode::kDataLoss) << image.status();
  EXPECT_THAT(image.status().message(), HasSubstr("fixture.png: corrupt PNG"));
}

TEST(PngDecodeTest, EveryTruncationIsAnError) {
  PngSpec spec = Rgb8Spec(40, 30);
  spec.text = {{"after", "text after the image", PNG_TEXT_COMPRESSION_NONE, /*after_image=*/true}};
  const std::string png = WritePng(spec);
  for (size_t size = 0; size < png.size(); ++size) {
    const absl::StatusOr<Image> image =
        DecodeImage(absl::string_view(png).substr(0, size), "cut.png");
    ASSERT_FALSE(image.ok()) << "cut at " << size << " of " << png.size();
    EXPECT_TRUE(IsCleanDecodeError(image.status(), "cut.png")) << image.status();
    if (size > 0) {
      EXPECT_EQ(image.status().code(), absl::StatusCode::kDataLoss) << image.status();
    }
  }
  const absl::StatusOr<Image> cut =
      DecodeImage(absl::string_view(png).substr(0, png.size() - 4), "cut.png");
  EXPECT_THAT(cut.status().message(), HasSubstr("truncated PNG"));
}

TEST(PngDecodeTest, RandomByteFlipsNeverCrash) {
  const std::string png = WritePng(Rgb8Spec(24, 16));
  std::mt19937 random(1234);
  for (int trial = 0; trial < 2000; ++trial) {
    std::string broken = png;
    const int flips = 1 + trial % 4;
    for (int i = 0; i < flips; ++i) {
      broken[std::uniform_int_distribution<size_t>(8, broken.size() - 1)(random)] ^=
          static_cast<char>(std::uniform_int_distribution<int>(1, 255)(random));
    }
    const absl::StatusOr<Image> image = DecodeImage(broken, "flipped.png");
    if (image.ok()) {
      EXPECT_EQ(image->pixels.size(), image->SizeBytes());
    } else {
      EXPECT_TRUE(IsCleanDecodeError(image.status(), "flipped.png")) << image.status();
    }
  }
}

// An IHDR that claims 100000 x 100000 (10 gigapixels, ~30 GB as RGB) with valid CRCs.
TEST(PngDecodeTest, DecompressionBombIsRefusedBeforeAllocating) {
  PngSpec spec = Rgb8Spec(1, 1);
  std::string png = WritePng(spec);
  const size_t ihdr = png.find("IHDR");
  ASSERT_NE(ihdr, std::string::npos);
  for (int i = 0; i < 2; ++i) {  // width, then height: 100000 big-endian
    const uint32_t value = 100000;
    for (int b = 0; b < 4; ++b) {
      png[ihdr + 4 + 4 * i + b] = static_cast<char>(value >> (24 - 8 * b));
    }
  }
  const uint32_t crc =
      crc32(crc32(0, nullptr, 0), reinterpret_cast<const Bytef*>(png.data() + ihdr), 4 + 13);
  for (int b = 0; b < 4; ++b) png[ihdr + 4 + 13 + b] = static_cast<char>(crc >> (24 - 8 * b));

  const auto start = std::chrono::steady_clock::now();
  const absl::StatusOr<Image> image = DecodeImage(png, "bomb.png");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_FALSE(image.ok());
  EXPECT_EQ(image.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(image.status().message(), HasSubstr("bomb.png"));
  EXPECT_THAT(image.status().message(), HasSubstr("100000x100000"));
  EXPECT_THAT(image.status().message(), HasSubstr(absl::StrCat(kDefaultMaxPixels)));
  EXPECT_LT(seconds, 0.1);  // allocating and zeroing 30 GB would take seconds, or fail
}

TEST(PngDecodeTest, PixelLimitIsAnOption) {
  const std::string png = WritePng(Rgb8Spec(10, 10));
  DecodeOptions options;
  options.max_pixels = 99;
  EXPECT_EQ(DecodeImage(png, "a.png", options).status().code(),
            absl::StatusCode::kResourceExhausted);
  options.max_pixels = 100;
  EXPECT_TRUE(DecodeImage(png, "a.png", options).ok());
}

}  // namespace
}  // namespace likeness::image
