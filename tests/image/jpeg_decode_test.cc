// JPEG decoding: colour spaces (gray, RGB, CMYK, Adobe-inverted CMYK, YCCK), progressive
// files, and every way a file can be cut, flipped or inflated.
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/image/image_fixtures.h"
#include "worker/image/image_io.h"

namespace likeness::image {
namespace {

using ::likeness::image::testing::IsCleanDecodeError;
using ::likeness::image::testing::JpegSpec;
using ::likeness::image::testing::WriteJpeg;
using ::testing::HasSubstr;

// At quality 95 a smooth image comes back within a few levels per sample.
constexpr double kMaxMeanAbsError = 3.0;
constexpr int kMaxBlockCenterError = 12;

// Smooth content, so JPEG's error stays small and comparable.
std::vector<uint8_t> SmoothPixels(int width, int height, int channels) {
  std::vector<uint8_t> pixels;
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      for (int c = 0; c < channels; ++c) {
        pixels.push_back(static_cast<uint8_t>((x * 3 + y * 2 + c * 50) % 256 / 2 + 40));
      }
    }
  }
  return pixels;
}

JpegSpec SmoothSpec(int width, int height, J_COLOR_SPACE space = JCS_RGB) {
  JpegSpec spec;
  spec.width = width;
  spec.height = height;
  spec.in_color_space = space;
  spec.pixels = SmoothPixels(width, height, space == JCS_GRAYSCALE ? 1 : 3);
  return spec;
}

double MeanAbsError(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  EXPECT_EQ(a.size(), b.size());
  double sum = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) sum += std::abs(int{a[i]} - int{b[i]});
  return a.empty() ? 0 : sum / a.size();
}

TEST(JpegDecodeTest, RgbBaselineAndProgressive) {
  for (const bool progressive : {false, true}) {
    JpegSpec spec = SmoothSpec(67, 45);
    spec.progressive = progressive;
    absl::StatusOr<Image> image = DecodeImage(WriteJpeg(spec), "smooth.jpg");
    ASSERT_TRUE(image.ok()) << image.status();
    EXPECT_EQ(image->width, 67);
    EXPECT_EQ(image->height, 45);
    EXPECT_EQ(image->channels, 3);
    EXPECT_EQ(image->bit_depth, 8);
    EXPECT_LT(MeanAbsError(image->pixels, spec.pixels), kMaxMeanAbsError)
        << "progressive " << progressive;
  }
}

TEST(JpegDecodeTest, GrayscaleStaysOneChannel) {
  const JpegSpec spec = SmoothSpec(33, 20, JCS_GRAYSCALE);
  absl::StatusOr<Image> image = DecodeImage(WriteJpeg(spec), "gray.jpg");
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->channels, 1);
  EXPECT_LT(MeanAbsError(image->pixels, spec.pixels), kMaxMeanAbsError);
}

// Four 16x16 blocks of pure inks; the RGB they should print as.
struct InkBlock {
  uint8_t cmyk[4];
  uint8_t rgb[3];
};
constexpr InkBlock kInkBlocks[] = {
    {{0, 255, 255, 0}, {255, 0, 0}},  // magenta + yellow = red
    {{255, 0, 255, 0}, {0, 255, 0}},  // cyan + yellow = green
    {{0, 0, 0, 0}, {255, 255, 255}},  // no ink = paper white
    {{0, 0, 0, 255}, {0, 0, 0}},      // black
};
constexpr int kBlock = 16;

JpegSpec CmykSpec(bool inverted) {
  JpegSpec spec;
  spec.width = kBlock * 4;
  spec.height = kBlock;
  spec.in_color_space = JCS_CMYK;
  for (int y = 0; y < kBlock; ++y) {
    for (const InkBlock& block : kInkBlocks) {
      for (int x = 0; x < kBlock; ++x) {
        for (const uint8_t ink : block.cmyk) spec.pixels.push_back(inverted ? 255 - ink : ink);
      }
    }
  }
  return spec;
}

void ExpectInkBlocks(const absl::StatusOr<Image>& image) {
  ASSERT_TRUE(image.ok()) << image.status();
  ASSERT_EQ(image->channels, 3);
  for (int b = 0; b < 4; ++b) {
    for (int c = 0; c < 3; ++c) {
      const int got = static_cast<int>(image->Sample(b * kBlock + kBlock / 2, kBlock / 2, c));
      EXPECT_NEAR(got, kInkBlocks[b].rgb[c], kMaxBlockCenterError)
          << "block " << b << " channel " << c;
    }
  }
}

TEST(JpegDecodeTest, AdobeInvertedCmykAsPhotoshopWritesIt) {
  ExpectInkBlocks(DecodeImage(WriteJpeg(CmykSpec(/*inverted=*/true)), "cmyk.jpg"));
}

TEST(JpegDecodeTest, AdobeInvertedYcck) {
  JpegSpec spec = CmykSpec(/*inverted=*/true);
  spec.jpeg_color_space = JCS_YCCK;
  ExpectInkBlocks(DecodeImage(WriteJpeg(spec), "ycck.jpg"));
}

TEST(JpegDecodeTest, PlainCmykWithoutAdobeMarker) {
  JpegSpec spec = CmykSpec(/*inverted=*/false);
  spec.write_adobe_marker = false;
  ExpectInkBlocks(DecodeImage(WriteJpeg(spec), "plain_cmyk.jpg"));
}

TEST(JpegDecodeTest, EveryTruncationIsAnError) {
  for (const bool progressive : {false, true}) {
    JpegSpec spec = SmoothSpec(40, 24);
    spec.progressive = progressive;
    const std::string jpeg = WriteJpeg(spec);
    for (size_t size = 0; size < jpeg.size(); ++size) {
      const absl::StatusOr<Image> image =
          DecodeImage(absl::string_view(jpeg).substr(0, size), "cut.jpg");
      ASSERT_FALSE(image.ok()) << "cut at " << size << " of " << jpeg.size() << ", progressive "
                               << progressive;
      EXPECT_TRUE(IsCleanDecodeError(image.status(), "cut.jpg")) << image.status();
      if (size > 0) {
        EXPECT_EQ(image.status().code(), absl::StatusCode::kDataLoss) << image.status();
      }
      if (size >= 3) {
        EXPECT_THAT(image.status().message(), HasSubstr("truncated JPEG")) << size;
      }
    }
  }
}

TEST(JpegDecodeTest, ExtraneousBytesBetweenMarkersAreTolerated) {
  std::string jpeg = WriteJpeg(SmoothSpec(16, 16));
  const size_t dqt = jpeg.find("\xFF\xDB");
  ASSERT_NE(dqt, std::string::npos);
  jpeg.insert(dqt, "junk");  // libjpeg warns "extraneous bytes before marker"; browsers accept it
  EXPECT_TRUE(DecodeImage(jpeg, "junk.jpg").ok());
}

TEST(JpegDecodeTest, RandomByteFlipsNeverCrash) {
  for (const bool progressive : {false, true}) {
    JpegSpec spec = SmoothSpec(32, 24);
    spec.progressive = progressive;
    const std::string jpeg = WriteJpeg(spec);
    std::mt19937 random(progressive ? 99 : 42);
    for (int trial = 0; trial < 1500; ++trial) {
      std::string broken = jpeg;
      for (int i = 0; i <= trial % 3; ++i) {
        broken[std::uniform_int_distribution<size_t>(3, broken.size() - 1)(random)] ^=
            static_cast<char>(std::uniform_int_distribution<int>(1, 255)(random));
      }
      const absl::StatusOr<Image> image = DecodeImage(broken, "flipped.jpg");
      if (image.ok()) {
        EXPECT_EQ(image->pixels.size(), image->SizeBytes());
      } else {
        EXPECT_TRUE(IsCleanDecodeError(image.status(), "flipped.jpg")) << image.status();
      }
    }
  }
}

// SOF0 patched to claim 60000 x 60000 (3.6 gigapixels; JPEG's own limit is 65500 per side).
TEST(JpegDecodeTest, DecompressionBombIsRefusedBeforeAllocating) {
  std::string jpeg = WriteJpeg(SmoothSpec(8, 8));
  const size_t sof = jpeg.find("\xFF\xC0");
  ASSERT_NE(sof, std::string::npos);
  constexpr uint16_t kClaimed = 60000;
  for (const size_t at : {sof + 5, sof + 7}) {  // height, then width, big-endian
    jpeg[at] = static_cast<char>(kClaimed >> 8);
    jpeg[at + 1] = static_cast<char>(kClaimed & 0xFF);
  }
  const auto start = std::chrono::steady_clock::now();
  const absl::StatusOr<Image> image = DecodeImage(jpeg, "bomb.jpg");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_FALSE(image.ok());
  EXPECT_EQ(image.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(image.status().message(), HasSubstr("bomb.jpg"));
  EXPECT_THAT(image.status().message(), HasSubstr("60000x60000"));
  EXPECT_THAT(image.status().message(), HasSubstr("limit"));
  EXPECT_LT(seconds, 0.1);
}

// A progressive file whose full-precision DC scan is repeated 600 times: legal scan by scan,
// but each repeat is another pass over the image. The decoder stops at kMaxJpegScans.
TEST(JpegDecodeTest, TooManyScansAreRefused) {
  JpegSpec spec = SmoothSpec(16, 16);
  spec.scan_script = {
      {3, {0, 1, 2, 0}, 0, 0, 0, 0},  // DC of all components, full precision
      {1, {0, 0, 0, 0}, 1, 63, 0, 0},
      {1, {1, 0, 0, 0}, 1, 63, 0, 0},
      {1, {2, 0, 0, 0}, 1, 63, 0, 0},
  };
  const std::string jpeg = WriteJpeg(spec);
  ASSERT_TRUE(DecodeImage(jpeg, "four_scans.jpg").ok());

  const size_t sos = jpeg.find("\xFF\xDA");
  ASSERT_NE(sos, std::string::npos);
  size_t end = sos + 2;  // the next marker that is not a stuffed 0xFF00 or a restart marker
  while (end + 1 < jpeg.size()) {
    const auto next = static_cast<uint8_t>(jpeg[end + 1]);
    if (static_cast<uint8_t>(jpeg[end]) == 0xFF && next != 0x00 && (next < 0xD0 || next > 0xD7)) {
      break;
    }
    ++end;
  }
  const std::string dc_scan = jpeg.substr(sos, end - sos);
  std::string repeated = jpeg.substr(0, end);
  for (int i = 0; i < kMaxJpegScans + 100; ++i) repeated += dc_scan;
  repeated += jpeg.substr(end);

  const absl::StatusOr<Image> image = DecodeImage(repeated, "scans.jpg");
  ASSERT_FALSE(image.ok());
  EXPECT_EQ(image.status().code(), absl::StatusCode::kResourceExhausted) << image.status();
  EXPECT_THAT(image.status().message(), HasSubstr("scans"));
}

}  // namespace
}  // namespace likeness::image
