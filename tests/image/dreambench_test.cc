// Every photo under DreamBenchDir() (LIKENESS_DREAMBENCH_DIR): found recursively, whatever
// JPEG/PNG/WebP files are there, so the same test checks any photo set of the same kind.
//   - each decodes to 3-channel 8-bit of a plausible size with non-constant content;
//   - where EXIF says 5-8, decoded width/height are the stored ones swapped (the orientation is
//     read here with libexif's own file reader, independently of the decoder's path);
//   - corrupted copies (cut short, bytes flipped in the header and in the compressed data)
//     give a clean error or a valid image, never a crash; a cut copy always gives an error.
#include <libexif/exif-data.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/image/image_fixtures.h"
#include "tests/test_data.h"
#include "worker/image/image_io.h"

namespace likeness::image {
namespace {

using ::likeness::image::testing::IsCleanDecodeError;
using ::likeness::image::testing::ReadFileOrEmpty;

// A training photo is at least a thumbnail and at most a large camera frame.
constexpr int kMinPlausibleSide = 64;
constexpr int kMaxPlausibleSide = 16384;
// Cut points, as fractions of the file, plus a few bytes short of the end.
constexpr double kCutFractions[] = {0.1, 0.5, 0.9};
constexpr size_t kCutBytesFromEnd[] = {1, 2, 7};
constexpr int kFlipTrialsPerRegion = 4;
constexpr uint32_t kFlipSeed = 20240601;

std::vector<std::string> FindPhotos() {
  namespace fs = std::filesystem;
  std::vector<std::string> photos;
  const fs::path dir = likeness::testing::DreamBenchDir();
  if (!fs::is_directory(dir)) return photos;
  for (const fs::directory_entry& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::string ext = entry.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".webp") {
      photos.push_back(entry.path().string());
    }
  }
  std::sort(photos.begin(), photos.end());
  return photos;
}

class DreamBenchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    photos_ = FindPhotos();
    ASSERT_FALSE(photos_.empty()) << "no .jpg/.jpeg/.png/.webp photos under "
                                  << likeness::testing::DreamBenchDir() << " (set "
                                  << likeness::testing::kDreamBenchDirEnv << ")";
  }
  std::vector<std::string> photos_;
};

TEST_F(DreamBenchTest, EveryPhotoDecodesToRgb8) {
  for (const std::string& path : photos_) {
    const absl::StatusOr<Image> image = DecodeImageFile(path);
    ASSERT_TRUE(image.ok()) << image.status();
    EXPECT_EQ(image->channels, 3) << path;
    EXPECT_EQ(image->bit_depth, 8) << path;
    EXPECT_GE(std::min(image->width, image->height), kMinPlausibleSide) << path;
    EXPECT_LE(std::max(image->width, image->height), kMaxPlausibleSide) << path;
    ASSERT_EQ(image->pixels.size(), image->SizeBytes()) << path;
    const auto [low, high] = std::minmax_element(image->pixels.begin(), image->pixels.end());
    EXPECT_LT(*low, *high) << path << " decodes to a single colour";
  }
  std::cout << "decoded " << photos_.size() << " photos under "
            << likeness::testing::DreamBenchDir() << "\n";
}

// The EXIF orientation as libexif's file loader sees it; 1 when there is none.
int OrientationFromFile(const std::string& path) {
  ExifData* data = exif_data_new_from_file(path.c_str());
  if (data == nullptr) return 1;
  int orientation = 1;
  if (ExifEntry* entry = exif_data_get_entry(data, EXIF_TAG_ORIENTATION);
      entry != nullptr && entry->size >= 2) {
    orientation = exif_get_short(entry->data, exif_data_get_byte_order(data));
  }
  exif_data_unref(data);
  return orientation;
}

TEST_F(DreamBenchTest, ExifRotationSwapsWidthAndHeight) {
  int rotated = 0;
  int with_orientation_tag = 0;
  for (const std::string& path : photos_) {
    const int orientation = OrientationFromFile(path);
    with_orientation_tag += orientation != 1;
    DecodeOptions raw;
    raw.apply_exif_orientation = false;
    const absl::StatusOr<Image> stored = DecodeImageFile(path, raw);
    const absl::StatusOr<Image> upright = DecodeImageFile(path);
    ASSERT_TRUE(stored.ok() && upright.ok()) << path;
    if (orientation >= 5 && orientation <= 8) {
      ++rotated;
      EXPECT_EQ(upright->width, stored->height) << path << " orientation " << orientation;
      EXPECT_EQ(upright->height, stored->width) << path << " orientation " << orientation;
    } else {
      EXPECT_EQ(upright->width, stored->width) << path << " orientation " << orientation;
      EXPECT_EQ(upright->height, stored->height) << path << " orientation " << orientation;
    }
  }
  RecordProperty("photos_with_orientation", with_orientation_tag);
  RecordProperty("photos_rotated_90", rotated);
  std::cout << with_orientation_tag << " of " << photos_.size()
            << " photos carry an EXIF orientation other than 1; " << rotated
            << " of them turn by 90 degrees\n";
}

// Where the image data ends (trailing bytes after it do not count as part of the image), and
// where the header ends and the compressed data begins.
struct Layout {
  size_t header_end;
  size_t data_end;
};

Layout LayoutOf(const std::string& bytes, ImageFormat format) {
  switch (format) {
    case ImageFormat::kJpeg: {
      const size_t eoi = bytes.rfind("\xFF\xD9");
      return {bytes.find("\xFF\xDA"), eoi == std::string::npos ? bytes.size() : eoi + 2};
    }
    case ImageFormat::kPng: {
      const size_t iend = bytes.rfind("IEND");
      return {bytes.find("IDAT"), iend == std::string::npos ? bytes.size() : iend + 8};
    }
    case ImageFormat::kWebp:
      return {std::min<size_t>(bytes.size(), 30), bytes.size()};
  }
  return {0, bytes.size()};
}

TEST_F(DreamBenchTest, CorruptedCopiesFailCleanlyAndCutsAlwaysFail) {
  std::mt19937 random(kFlipSeed);
  int flipped_ok = 0;
  int flipped_error = 0;
  for (const std::string& path : photos_) {
    const std::string bytes = ReadFileOrEmpty(path);
    const absl::StatusOr<ImageFormat> format = DetectImageFormat(bytes, path);
    ASSERT_TRUE(format.ok()) << format.status();
    const Layout layout = LayoutOf(bytes, *format);
    ASSERT_LT(layout.header_end, layout.data_end) << path;

    std::vector<size_t> cuts;
    for (const double fraction : kCutFractions) {
      cuts.push_back(static_cast<size_t>(layout.data_end * fraction));
    }
    for (const size_t back : kCutBytesFromEnd) cuts.push_back(layout.data_end - back);
    for (const size_t cut : cuts) {
      const std::string name = absl::StrCat(path, " cut at ", cut);
      const absl::StatusOr<Image> image =
          DecodeImage(absl::string_view(bytes).substr(0, cut), name);
      ASSERT_FALSE(image.ok()) << name << " decoded";
      EXPECT_TRUE(IsCleanDecodeError(image.status(), name)) << image.status();
    }

    const auto flip_in = [&](size_t begin, size_t end, int flips) {
      std::string broken = bytes;
      for (int i = 0; i < flips; ++i) {
        broken[std::uniform_int_distribution<size_t>(begin, end - 1)(random)] ^=
            static_cast<char>(std::uniform_int_distribution<int>(1, 255)(random));
      }
      const std::string name = path + " flipped";
      const absl::StatusOr<Image> image = DecodeImage(broken, name);
      if (image.ok()) {
        ++flipped_ok;
        EXPECT_EQ(image->pixels.size(), image->SizeBytes()) << name;
      } else {
        ++flipped_error;
        EXPECT_TRUE(IsCleanDecodeError(image.status(), name)) << image.status();
      }
    };
    for (int trial = 0; trial < kFlipTrialsPerRegion; ++trial) {
      flip_in(2, layout.header_end, 1 + trial % 2);                    // markers, tables, IHDR
      flip_in(layout.header_end, layout.data_end - 2, 1 + trial * 2);  // entropy-coded data
    }
  }
  std::cout << "flipped copies: " << flipped_ok << " still decode, " << flipped_error
            << " give an error\n";
}

}  // namespace
}  // namespace likeness::image
