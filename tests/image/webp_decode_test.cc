// WebP decoding: lossless (exact), lossy (close), alpha, and broken files.
#include <webp/encode.h>

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
using ::testing::HasSubstr;

constexpr double kMaxLossyMeanAbsError = 4.0;

std::string Take(uint8_t* encoded, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(encoded), size);
  WebPFree(encoded);
  return bytes;
}

std::string LosslessRgb(const Image& image) {
  uint8_t* out = nullptr;
  const size_t size = WebPEncodeLosslessRGB(image.pixels.data(), image.width, image.height,
                                            static_cast<int>(image.RowBytes()), &out);
  return Take(out, size);
}

TEST(WebpDecodeTest, LosslessRgbIsExact) {
  const Image source = testing::GradientImage(23, 17, 3);
  absl::StatusOr<Image> image = DecodeImage(LosslessRgb(source), "lossless.webp");
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->channels, 3);
  EXPECT_EQ(image->width, 23);
  EXPECT_EQ(image->height, 17);
  EXPECT_EQ(image->pixels, source.pixels);
}

TEST(WebpDecodeTest, LosslessRgbaKeepsAlpha) {
  Image source = testing::GradientImage(9, 5, 4);
  // libwebp may rewrite the colour under alpha 0 unless told to be exact; keep alpha nonzero.
  for (size_t i = 3; i < source.pixels.size(); i += 4) source.pixels[i] |= 1;
  uint8_t* out = nullptr;
  const size_t size = WebPEncodeLosslessRGBA(source.pixels.data(), 9, 5, 9 * 4, &out);
  absl::StatusOr<Image> image = DecodeImage(Take(out, size), "alpha.webp");
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->channels, 4);
  EXPECT_EQ(image->pixels, source.pixels);
}

TEST(WebpDecodeTest, LossyIsClose) {
  Image source = MakeImage(40, 30, 3);
  for (size_t i = 0; i < source.pixels.size(); ++i) {
    source.pixels[i] = static_cast<uint8_t>(60 + i / 3 % 40);
  }
  uint8_t* out = nullptr;
  const size_t size =
      WebPEncodeRGB(source.pixels.data(), 40, 30, 40 * 3, /*quality_factor=*/95, &out);
  absl::StatusOr<Image> image = DecodeImage(Take(out, size), "lossy.webp");
  ASSERT_TRUE(image.ok()) << image.status();
  double sum = 0;
  for (size_t i = 0; i < source.pixels.size(); ++i) {
    sum += std::abs(int{image->pixels[i]} - int{source.pixels[i]});
  }
  EXPECT_LT(sum / source.pixels.size(), kMaxLossyMeanAbsError);
}

TEST(WebpDecodeTest, EveryTruncationIsAnError) {
  Image source = MakeImage(32, 32, 3);
  for (size_t i = 0; i < source.pixels.size(); ++i) {
    source.pixels[i] = static_cast<uint8_t>(i * 7 / 3);
  }
  uint8_t* out = nullptr;
  const size_t lossy_size = WebPEncodeRGB(source.pixels.data(), 32, 32, 32 * 3, 80, &out);
  for (const std::string& webp : {LosslessRgb(source), Take(out, lossy_size)}) {
    for (size_t size = 0; size < webp.size(); ++size) {
      const absl::StatusOr<Image> image =
          DecodeImage(absl::string_view(webp).substr(0, size), "cut.webp");
      ASSERT_FALSE(image.ok()) << "cut at " << size << " of " << webp.size();
      EXPECT_TRUE(IsCleanDecodeError(image.status(), "cut.webp")) << image.status();
      if (size > 0) {
        EXPECT_EQ(image.status().code(), absl::StatusCode::kDataLoss) << image.status();
      }
    }
  }
}

TEST(WebpDecodeTest, RandomByteFlipsNeverCrash) {
  const std::string webp = LosslessRgb(testing::GradientImage(24, 24, 3));
  std::mt19937 random(2024);
  for (int trial = 0; trial < 2000; ++trial) {
    std::string broken = webp;
    for (int i = 0; i <= trial % 3; ++i) {
      broken[std::uniform_int_distribution<size_t>(12, broken.size() - 1)(random)] ^=
          static_cast<char>(std::uniform_int_distribution<int>(1, 255)(random));
    }
    const absl::StatusOr<Image> image = DecodeImage(broken, "flipped.webp");
    if (image.ok()) {
      EXPECT_EQ(image->pixels.size(), image->SizeBytes());
    } else {
      EXPECT_TRUE(IsCleanDecodeError(image.status(), "flipped.webp")) << image.status();
    }
  }
}

// A RIFF header and a 5-byte VP8L header that claims 16384 x 16384 (268 megapixels).
std::string VP8LHeaderOnly(uint32_t width, uint32_t height, uint8_t vp8x_flags = 0) {
  const auto le32 = [](uint32_t v) {
    return std::string{static_cast<char>(v), static_cast<char>(v >> 8), static_cast<char>(v >> 16),
                       static_cast<char>(v >> 24)};
  };
  const uint32_t bits = (width - 1) | (height - 1) << 14;  // 14 bits each, then alpha and version
  std::string vp8l = "VP8L" + le32(8) + "\x2F" + le32(bits) + std::string(3, '\0');
  std::string body = vp8l;
  if (vp8x_flags != 0) {
    std::string vp8x =
        "VP8X" + le32(10) + std::string(1, static_cast<char>(vp8x_flags)) + std::string(3, '\0');
    for (const uint32_t side : {width - 1, height - 1}) vp8x += le32(side).substr(0, 3);
    body = vp8x + vp8l;
  }
  return "RIFF" + le32(static_cast<uint32_t>(4 + body.size())) + "WEBP" + body;
}

TEST(WebpDecodeTest, DecompressionBombIsRefusedBeforeAllocating) {
  const auto start = std::chrono::steady_clock::now();
  const absl::StatusOr<Image> image = DecodeImage(VP8LHeaderOnly(16384, 16384), "bomb.webp");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_FALSE(image.ok());
  EXPECT_EQ(image.status().code(), absl::StatusCode::kResourceExhausted) << image.status();
  EXPECT_THAT(image.status().message(), HasSubstr("16384x16384"));
  EXPECT_LT(seconds, 0.1);
}

TEST(WebpDecodeTest, AnimationIsRefused) {
  constexpr uint8_t kAnimationFlag = 0x02;
  const absl::StatusOr<Image> image =
      DecodeImage(VP8LHeaderOnly(4, 4, kAnimationFlag), "anim.webp");
  ASSERT_FALSE(image.ok());
  EXPECT_EQ(image.status().code(), absl::StatusCode::kInvalidArgument) << image.status();
  EXPECT_THAT(image.status().message(), HasSubstr("animated"));
}

}  // namespace
}  // namespace likeness::image
