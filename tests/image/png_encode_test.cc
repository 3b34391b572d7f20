// PNG encoding and text chunks: what the generator writes (its parameters, the way
// AUTOMATIC1111 does) must come back byte for byte, in the chunk type other tools expect.
#include <png.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/image/image_fixtures.h"
#include "tests/test_data.h"
#include "worker/image/image_io.h"

namespace likeness::image {
namespace {

using ::likeness::image::testing::PngSpec;
using ::likeness::image::testing::WritePng;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

// An AUTOMATIC1111-style parameters block: prompt, negative prompt, settings line.
constexpr char kParameters[] =
    "a photo of sks dog on the beach, (masterpiece:1.2)\n"
    "Negative prompt: blurry, lowres\n"
    "Steps: 30, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 1234, Size: 1024x1024, "
    "Model: sd_xl_base_1.0, Lora hashes: \"sks: 0123abcd\"";

// The chunk types of a PNG in file order.
std::vector<std::string> ChunkTypes(const std::string& png) {
  std::vector<std::string> types;
  for (size_t at = 8; at + 8 <= png.size();) {
    const uint32_t length =
        static_cast<uint8_t>(png[at]) << 24 | static_cast<uint8_t>(png[at + 1]) << 16 |
        static_cast<uint8_t>(png[at + 2]) << 8 | static_cast<uint8_t>(png[at + 3]);
    types.push_back(png.substr(at + 4, 4));
    at += 12 + length;
  }
  return types;
}

TEST(PngEncodeTest, RoundTripsEveryShape) {
  for (const int channels : {1, 2, 3, 4}) {
    for (const int bit_depth : {8, 16}) {
      Image image = MakeImage(11, 6, channels, bit_depth);
      for (size_t i = 0; i < image.pixels.size(); ++i) {
        image.pixels[i] = static_cast<uint8_t>(i * 29 + 3);
      }
      absl::StatusOr<std::string> png = EncodePng(image);
      ASSERT_TRUE(png.ok()) << png.status();
      DecodeOptions options;
      options.keep_16_bit = true;
      absl::StatusOr<Image> decoded = DecodeImage(*png, "round_trip.png", options);
      ASSERT_TRUE(decoded.ok()) << decoded.status();
      EXPECT_EQ(decoded->channels, channels);
      EXPECT_EQ(decoded->bit_depth, bit_depth);
      EXPECT_EQ(decoded->pixels, image.pixels) << channels << " channels, " << bit_depth << " bits";
    }
  }
}

TEST(PngEncodeTest, TextRoundTripsAndPicksTheChunkType) {
  const PngText text = {
      {"parameters", kParameters},
      {"Künstler", "Zoë, café crème"},        // Latin-1 key and value: tEXt
      {"prompt_ja", "犬の写真, 🎨 スタイル"},  // beyond Latin-1: iTXt
      {"empty", ""},
  };
  absl::StatusOr<std::string> png = EncodePng(testing::GradientImage(8, 8, 3), text);
  ASSERT_TRUE(png.ok()) << png.status();

  const std::vector<std::string> types = ChunkTypes(*png);
  EXPECT_EQ(std::count(types.begin(), types.end(), "tEXt"), 3);
  EXPECT_EQ(std::count(types.begin(), types.end(), "iTXt"), 1);
  // Text precedes the image data, where Pillow writes it.
  const auto first_idat = std::find(types.begin(), types.end(), "IDAT");
  EXPECT_EQ(
      std::count(types.begin(), first_idat, "tEXt") + std::count(types.begin(), first_idat, "iTXt"),
      4);
  // The tEXt value is stored as Latin-1, one byte per character.
  EXPECT_NE(png->find("Zo\xEB, caf\xE9 cr\xE8me"), std::string::npos);

  absl::StatusOr<Image> decoded = DecodeImage(*png, "text.png");
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_THAT(
      decoded->text,
      UnorderedElementsAre(Pair("parameters", kParameters), Pair("Künstler", "Zoë, café crème"),
                           Pair("prompt_ja", "犬の写真, 🎨 スタイル"), Pair("empty", "")));
}

TEST(PngEncodeTest, ReadsCompressedAndLateTextWrittenByOtherTools) {
  PngSpec spec;
  spec.width = 4;
  spec.height = 4;
  spec.color_type = PNG_COLOR_TYPE_GRAY;
  spec.rows.assign(16, 100);
  spec.text = {
      {"ztxt", std::string(5000, 'z'), PNG_TEXT_COMPRESSION_zTXt},
      {"itxt_z", "ünïcödé 🎨", PNG_ITXT_COMPRESSION_zTXt},
      {"latin1", "caf\xE9", PNG_TEXT_COMPRESSION_NONE},  // raw Latin-1 bytes
      {"dup", "first", PNG_TEXT_COMPRESSION_NONE},
      {"dup", "last", PNG_TEXT_COMPRESSION_NONE, /*after_image=*/true},
      {"late", "after IDAT", PNG_ITXT_COMPRESSION_NONE, /*after_image=*/true},
  };
  absl::StatusOr<Image> decoded = DecodeImage(WritePng(spec), "tools.png");
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_THAT(decoded->text,
              UnorderedElementsAre(Pair("ztxt", std::string(5000, 'z')),
                                   Pair("itxt_z", "ünïcödé 🎨"), Pair("latin1", "café"),
                                   Pair("dup", "last"), Pair("late", "after IDAT")));
}

TEST(PngEncodeTest, RefusesBadKeywordsAndValues) {
  const Image image = testing::GradientImage(2, 2, 3);
  const std::vector<std::string> bad_keys = {
      "", std::string(80, 'k'), " lead", "trail ", "dou  ble", "tab\t", "日本", "nbsp\xC2\xA0"};
  for (const std::string& key : bad_keys) {
    const absl::StatusOr<std::string> png = EncodePng(image, {{key, "v"}});
    EXPECT_EQ(png.status().code(), absl::StatusCode::kInvalidArgument) << "'" << key << "'";
  }
  EXPECT_TRUE(EncodePng(image, {{std::string(79, 'k'), "v"}}).ok());
  EXPECT_EQ(EncodePng(image, {{"k", "\xFF\xFE"}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodePng(image, {{"k", std::string("a\0b", 3)}}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(PngEncodeTest, RefusesMalformedImages) {
  Image image = testing::GradientImage(3, 3, 3);
  image.pixels.pop_back();
  EXPECT_EQ(EncodePng(image).status().code(), absl::StatusCode::kInvalidArgument);
  Image five = MakeImage(2, 2, 4);
  five.channels = 5;
  EXPECT_EQ(EncodePng(five).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodePng(Image{}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(PngEncodeTest, WritePngFileWritesAtomically) {
  namespace fs = std::filesystem;
  const std::string dir = likeness::testing::MakeTestTempDir("png_encode");
  const std::string path = dir + "/out.png";
  const Image image = testing::GradientImage(16, 9, 4);
  ASSERT_TRUE(WritePngFile(path, image, {{"parameters", kParameters}}).ok());
  // Only the final file: the temp file was renamed over it.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
  absl::StatusOr<Image> decoded = DecodeImageFile(path);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->pixels, image.pixels);
  EXPECT_EQ(decoded->text.at("parameters"), kParameters);

  const std::string missing_dir = dir + "/no/such/dir/out.png";
  const absl::Status status = WritePngFile(missing_dir, image);
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr(missing_dir));
}

}  // namespace
}  // namespace likeness::image
