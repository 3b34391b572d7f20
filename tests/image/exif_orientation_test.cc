// EXIF orientation: all eight values, in both TIFF byte orders, through JPEG APP1, PNG eXIf
// and WebP EXIF. The expected placements are written out as a table here rather than derived
// from the implementation's formula.
#include "worker/image/exif_orientation.h"

#include <png.h>
#include <webp/encode.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/image/image_fixtures.h"
#include "worker/image/image_io.h"

namespace likeness::image {
namespace {

using ::likeness::image::testing::ExifApp1;
using ::likeness::image::testing::ExifTiff;
using ::likeness::image::testing::JpegSpec;
using ::likeness::image::testing::WriteJpeg;

enum Corner { kTopLeft, kTopRight, kBottomLeft, kBottomRight };

// Stored image: 48 wide, 32 high, gray, with a 16x16 block of a distinct colour in each corner.
constexpr int kStoredWidth = 48;
constexpr int kStoredHeight = 32;
constexpr int kBlock = 16;
constexpr std::array<std::array<uint8_t, 3>, 4> kCornerColors = {{
    {255, 0, 0},      // top-left: red
    {0, 255, 0},      // top-right: green
    {0, 0, 255},      // bottom-left: blue
    {255, 255, 255},  // bottom-right: white
}};
constexpr int kColorTolerance = 40;

// Which stored corner shows at the displayed top-left, top-right, bottom-left, bottom-right,
// per orientation (index 0 unused). E.g. 6 (rotate 90 clockwise): the stored left column
// becomes the top row, bottom-left first.
constexpr std::array<std::array<Corner, 4>, 9> kDisplayedCorners = {{
    {},
    {kTopLeft, kTopRight, kBottomLeft, kBottomRight},
    {kTopRight, kTopLeft, kBottomRight, kBottomLeft},
    {kBottomRight, kBottomLeft, kTopRight, kTopLeft},
    {kBottomLeft, kBottomRight, kTopLeft, kTopRight},
    {kTopLeft, kBottomLeft, kTopRight, kBottomRight},
    {kBottomLeft, kTopLeft, kBottomRight, kTopRight},
    {kBottomRight, kTopRight, kBottomLeft, kTopLeft},
    {kTopRight, kBottomRight, kTopLeft, kBottomLeft},
}};

std::vector<uint8_t> CornerBlockPixels() {
  std::vector<uint8_t> pixels;
  for (int y = 0; y < kStoredHeight; ++y) {
    for (int x = 0; x < kStoredWidth; ++x) {
      const bool left = x < kBlock;
      const bool right = x >= kStoredWidth - kBlock;
      const bool top = y < kBlock;
      const int corner = left && top    ? kTopLeft
                         : right && top ? kTopRight
                         : left         ? kBottomLeft
                                        : kBottomRight;
      const bool in_corner = left || right;
      for (int c = 0; c < 3; ++c) pixels.push_back(in_corner ? kCornerColors[corner][c] : 128);
    }
  }
  return pixels;
}

void ExpectCorners(const Image& image, int orientation) {
  const bool swapped = orientation >= 5;
  ASSERT_EQ(image.width, swapped ? kStoredHeight : kStoredWidth) << "orientation " << orientation;
  ASSERT_EQ(image.height, swapped ? kStoredWidth : kStoredHeight) << "orientation " << orientation;
  const int near = kBlock / 2;
  const std::array<std::array<int, 2>, 4> probes = {
      {{near, near},
       {image.width - 1 - near, near},
       {near, image.height - 1 - near},
       {image.width - 1 - near, image.height - 1 - near}}};
  for (int displayed = 0; displayed < 4; ++displayed) {
    const auto& expected = kCornerColors[kDisplayedCorners[orientation][displayed]];
    for (int c = 0; c < 3; ++c) {
      EXPECT_NEAR(static_cast<int>(image.Sample(probes[displayed][0], probes[displayed][1], c)),
                  expected[c], kColorTolerance)
          << "orientation " << orientation << ", displayed corner " << displayed << ", channel "
          << c;
    }
  }
}

JpegSpec CornerJpeg(const std::string& app1) {
  JpegSpec spec;
  spec.width = kStoredWidth;
  spec.height = kStoredHeight;
  spec.pixels = CornerBlockPixels();
  spec.app1 = app1;
  return spec;
}

TEST(ExifOrientationTest, JpegAllEightOrientationsBothByteOrders) {
  for (const bool big_endian : {false, true}) {
    for (int orientation = 1; orientation <= 8; ++orientation) {
      SCOPED_TRACE(big_endian ? "big-endian TIFF" : "little-endian TIFF");
      const std::string jpeg = WriteJpeg(CornerJpeg(ExifApp1(orientation, big_endian)));
      absl::StatusOr<Image> image = DecodeImage(jpeg, "oriented.jpg");
      ASSERT_TRUE(image.ok()) << image.status();
      ExpectCorners(*image, orientation);

      DecodeOptions raw;
      raw.apply_exif_orientation = false;
      absl::StatusOr<Image> stored = DecodeImage(jpeg, "oriented.jpg", raw);
      ASSERT_TRUE(stored.ok()) << stored.status();
      ExpectCorners(*stored, 1);
    }
  }
}

TEST(ExifOrientationTest, BrokenOrOutOfRangeTagsLeaveThePhotoAlone) {
  std::mt19937 random(7);
  std::vector<std::string> blocks = {ExifApp1(0), ExifApp1(9), ExifApp1(0xFFFF),
                                     std::string("Exif\0\0", 6), std::string("Exif\0\0MM", 8)};
  const std::string good = ExifApp1(6);
  for (int trial = 0; trial < 200; ++trial) {  // random flips of a valid block, and pure noise
    std::string block = good;
    block[std::uniform_int_distribution<size_t>(6, block.size() - 1)(random)] ^= 0x41;
    blocks.push_back(block);
    std::string noise = "Exif" + std::string(2, '\0');
    for (int i = 0; i < 64; ++i) noise.push_back(static_cast<char>(random()));
    blocks.push_back(noise);
  }
  for (const std::string& block : blocks) {
    absl::StatusOr<Image> image = DecodeImage(WriteJpeg(CornerJpeg(block)), "odd_exif.jpg");
    ASSERT_TRUE(image.ok()) << image.status();
    EXPECT_EQ(image->width * image->height, kStoredWidth * kStoredHeight);
  }
  EXPECT_EQ(ReadExifOrientation(ExifApp1(9)), 1);
  EXPECT_EQ(ReadExifOrientation(""), 1);
}

TEST(ExifOrientationTest, ReadsWithAndWithoutTheExifSignature) {
  for (int orientation = 1; orientation <= 8; ++orientation) {
    EXPECT_EQ(ReadExifOrientation(ExifApp1(orientation, false)), orientation);
    EXPECT_EQ(ReadExifOrientation(ExifTiff(orientation, true)), orientation);
  }
}

// The exact permutation, on a 16-bit two-channel image whose every sample is unique.
TEST(ExifOrientationTest, ApplyMovesEveryPixelForAnyLayout) {
  constexpr int kW = 3;
  constexpr int kH = 2;
  Image stored = MakeImage(kW, kH, 2, 16);
  for (size_t i = 0; i < stored.pixels.size(); ++i) stored.pixels[i] = static_cast<uint8_t>(i + 1);
  // Where stored (x, y) must land, per orientation (TIFF/EXIF definitions).
  const auto destination = [](int orientation, int x, int y) -> std::array<int, 2> {
    switch (orientation) {
      case 2:
        return {kW - 1 - x, y};
      case 3:
        return {kW - 1 - x, kH - 1 - y};
      case 4:
        return {x, kH - 1 - y};
      case 5:
        return {y, x};
      case 6:
        return {kH - 1 - y, x};
      case 7:
        return {kH - 1 - y, kW - 1 - x};
      case 8:
        return {y, kW - 1 - x};
      default:
        return {x, y};
    }
  };
  for (int orientation = 1; orientation <= 8; ++orientation) {
    Image image = stored;
    ApplyExifOrientation(orientation, &image);
    ASSERT_EQ(image.pixels.size(), stored.pixels.size());
    for (int y = 0; y < kH; ++y) {
      for (int x = 0; x < kW; ++x) {
        const auto [dx, dy] = destination(orientation, x, y);
        for (int c = 0; c < 2; ++c) {
          EXPECT_EQ(image.Sample(dx, dy, c), stored.Sample(x, y, c))
              << orientation << " " << x << "," << y;
        }
      }
    }
  }
}

TEST(ExifOrientationTest, PngExifChunk) {
  testing::PngSpec spec;
  spec.width = kStoredWidth;
  spec.height = kStoredHeight;
  spec.rows = CornerBlockPixels();
  spec.exif = ExifTiff(8, /*big_endian=*/true);
  absl::StatusOr<Image> image = DecodeImage(testing::WritePng(spec), "oriented.png");
  ASSERT_TRUE(image.ok()) << image.status();
  ExpectCorners(*image, 8);
}

TEST(ExifOrientationTest, WebpExifChunk) {
  const std::vector<uint8_t> pixels = CornerBlockPixels();
  uint8_t* encoded = nullptr;
  const size_t size =
      WebPEncodeLosslessRGB(pixels.data(), kStoredWidth, kStoredHeight, kStoredWidth * 3, &encoded);
  ASSERT_GT(size, 0u);
  const std::string simple(reinterpret_cast<const char*>(encoded), size);
  WebPFree(encoded);
  const std::string webp = testing::WebpWithExif(simple, kStoredWidth, kStoredHeight, ExifTiff(6));
  absl::StatusOr<Image> image = DecodeImage(webp, "oriented.webp");
  ASSERT_TRUE(image.ok()) << image.status();
  ExpectCorners(*image, 6);
}

}  // namespace
}  // namespace likeness::image
