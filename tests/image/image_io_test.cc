// Format detection and file handling, independent of any one codec.
#include "worker/image/image_io.h"

#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/image/image_fixtures.h"
#include "tests/test_data.h"

namespace likeness::image {
namespace {

using ::testing::HasSubstr;

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

TEST(ImageIoTest, DetectsFormatByMagicNotName) {
  const std::string dir = likeness::testing::MakeTestTempDir("image_io");
  const Image source = testing::GradientImage(5, 4, 3);
  absl::StatusOr<std::string> png = EncodePng(source);
  ASSERT_TRUE(png.ok());
  EXPECT_EQ(*DetectImageFormat(*png, "x"), ImageFormat::kPng);
  // A PNG saved under a .jpg name, as downloads often are.
  WriteFile(dir + "/really_a_png.jpg", *png);
  absl::StatusOr<Image> image = DecodeImageFile(dir + "/really_a_png.jpg");
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->pixels, source.pixels);

  testing::JpegSpec jpeg;
  jpeg.width = 8;
  jpeg.height = 8;
  jpeg.pixels.assign(8 * 8 * 3, 90);
  EXPECT_EQ(*DetectImageFormat(testing::WriteJpeg(jpeg), "x"), ImageFormat::kJpeg);
  EXPECT_EQ(*DetectImageFormat(std::string("RIFF\0\0\0\0WEBPVP8L", 16), "x"), ImageFormat::kWebp);
}

TEST(ImageIoTest, MissingFileIsNotFound) {
  const std::string path = likeness::testing::MakeTestTempDir("image_io_missing") + "/nope.png";
  const absl::StatusOr<Image> image = DecodeImageFile(path);
  EXPECT_EQ(image.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(image.status().message(), HasSubstr(path));
}

TEST(ImageIoTest, UnknownFormatsAreInvalidArgument) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "empty"},
      {"GIF89a\x01\x00\x01\x00", "not a JPEG, PNG or WebP"},
      {"hello, world", "hello, world"},
      {std::string("RIFF\0\0\0\0WAVEfmt ", 16), "not a JPEG, PNG or WebP"},
  };
  for (const auto& [bytes, message] : cases) {
    const absl::StatusOr<Image> image = DecodeImage(bytes, "mystery.bin");
    EXPECT_EQ(image.status().code(), absl::StatusCode::kInvalidArgument) << bytes;
    EXPECT_THAT(image.status().message(), HasSubstr("mystery.bin"));
    EXPECT_THAT(image.status().message(), HasSubstr(message));
  }
}

TEST(ImageIoTest, ACutOffSignatureIsTruncation) {
  for (const std::string bytes : {"\xFF", "\xFF\xD8", "\x89PNG", "RIF", "RIFF\x10\x00"}) {
    const absl::StatusOr<Image> image = DecodeImage(bytes, "short.bin");
    EXPECT_EQ(image.status().code(), absl::StatusCode::kDataLoss) << bytes;
    EXPECT_THAT(image.status().message(), HasSubstr("short.bin: truncated image"));
  }
}

TEST(ImageIoTest, FormatNames) {
  EXPECT_EQ(ImageFormatName(ImageFormat::kJpeg), "JPEG");
  EXPECT_EQ(ImageFormatName(ImageFormat::kPng), "PNG");
  EXPECT_EQ(ImageFormatName(ImageFormat::kWebp), "WebP");
}

}  // namespace
}  // namespace likeness::image
