// Image <-> tensor conversions and the square training crop.
#include "worker/image/image_tensor.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "gtest/gtest.h"
#include "tests/image/image_fixtures.h"

namespace likeness::image {
namespace {

constexpr float kTolerance = 1e-6f;

TEST(ImageTensorTest, RgbBecomesChwInUnitRange) {
  const Image image = testing::GradientImage(5, 3, 3);
  absl::StatusOr<torch::Tensor> tensor = ImageToTensor(image);
  ASSERT_TRUE(tensor.ok()) << tensor.status();
  ASSERT_EQ(tensor->sizes(), (std::vector<int64_t>{3, 3, 5}));
  EXPECT_EQ(tensor->scalar_type(), torch::kFloat32);
  for (int y = 0; y < 3; ++y) {
    for (int x = 0; x < 5; ++x) {
      for (int c = 0; c < 3; ++c) {
        EXPECT_NEAR((*tensor)[c][y][x].item<float>(), image.Sample(x, y, c) / 255.0f, kTolerance);
      }
    }
  }
}

TEST(ImageTensorTest, GrayIsRepeatedToThreeChannels) {
  const Image image = testing::GradientImage(4, 4, 1);
  absl::StatusOr<torch::Tensor> tensor = ImageToTensor(image);
  ASSERT_TRUE(tensor.ok()) << tensor.status();
  ASSERT_EQ(tensor->size(0), 3);
  EXPECT_TRUE(torch::equal((*tensor)[0], (*tensor)[1]));
  EXPECT_TRUE(torch::equal((*tensor)[0], (*tensor)[2]));
  EXPECT_NEAR((*tensor)[1][2][3].item<float>(), image.Sample(3, 2, 0) / 255.0f, kTolerance);
}

TEST(ImageTensorTest, AlphaIsCompositedOnTheBackground) {
  Image rgba = MakeImage(3, 1, 4);
  rgba.pixels = {200, 100, 0, 0, /**/ 200, 100, 0, 255, /**/ 200, 100, 0, 51};
  absl::StatusOr<torch::Tensor> on_white = ImageToTensor(rgba);
  ASSERT_TRUE(on_white.ok()) << on_white.status();
  EXPECT_NEAR((*on_white)[0][0][0].item<float>(), 1.0f,
              kTolerance);  // fully transparent: background
  EXPECT_NEAR((*on_white)[1][0][1].item<float>(), 100 / 255.0f, kTolerance);  // opaque: the pixel
  EXPECT_NEAR((*on_white)[2][0][2].item<float>(), 0.8f, 1e-5f);               // 20% of 0 over white

  ToTensorOptions black;
  black.background = {0.0f, 0.0f, 0.0f};
  absl::StatusOr<torch::Tensor> on_black = ImageToTensor(rgba, black);
  ASSERT_TRUE(on_black.ok());
  EXPECT_NEAR((*on_black)[0][0][2].item<float>(), 0.2f * 200 / 255.0f, 1e-5f);

  Image gray_alpha = MakeImage(1, 1, 2);
  gray_alpha.pixels = {255, 0};
  absl::StatusOr<torch::Tensor> gray = ImageToTensor(gray_alpha, black);
  ASSERT_TRUE(gray.ok());
  EXPECT_TRUE(torch::allclose(*gray, torch::zeros({3, 1, 1})));
}

TEST(ImageTensorTest, SixteenBitUsesTheFullRange) {
  Image image = MakeImage(3, 1, 1, 16);
  const uint16_t values[] = {0, 0x8000, 0xFFFF};  // 0x8000 and up would be negative as int16
  std::memcpy(image.pixels.data(), values, sizeof(values));
  absl::StatusOr<torch::Tensor> tensor = ImageToTensor(image);
  ASSERT_TRUE(tensor.ok()) << tensor.status();
  EXPECT_NEAR((*tensor)[0][0][0].item<float>(), 0.0f, kTolerance);
  EXPECT_NEAR((*tensor)[0][0][1].item<float>(), 32768.0f / 65535.0f, kTolerance);
  EXPECT_NEAR((*tensor)[0][0][2].item<float>(), 1.0f, kTolerance);
}

TEST(ImageTensorTest, MalformedImagesAreRefused) {
  Image image = MakeImage(2, 2, 3);
  image.pixels.pop_back();
  EXPECT_EQ(ImageToTensor(image).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ImageToTensor(Image{}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ImageTensorTest, TensorToImageRoundTrips) {
  for (const int channels : {1, 3, 4}) {
    const Image image = testing::GradientImage(7, 6, channels);
    // ImageToTensor gives RGB; build the [C, H, W] tensor for other channel counts directly.
    const torch::Tensor chw =
        torch::from_blob(const_cast<uint8_t*>(image.pixels.data()), {6, 7, channels}, torch::kUInt8)
            .permute({2, 0, 1})
            .to(torch::kFloat32)
            .div(255.0f);
    absl::StatusOr<Image> back = TensorToImage(chw);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->channels, channels);
    EXPECT_EQ(back->pixels, image.pixels) << channels;
  }
}

TEST(ImageTensorTest, TensorToImageMapsRangeClampsAndRounds) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const torch::Tensor values =
      torch::tensor({-1.0f, 0.0f, 1.0f, 3.0f, -7.0f, nan, 0.2f}).view({1, 1, 7});
  absl::StatusOr<Image> image = TensorToImage(values, TensorRange::kMinusOneToOne);
  ASSERT_TRUE(image.ok()) << image.status();
  // 0.2 -> 0.6 * 255 = 153.
  EXPECT_EQ(image->pixels, (std::vector<uint8_t>{0, 128, 255, 255, 0, 0, 153}));

  absl::StatusOr<Image> unit =
      TensorToImage(torch::tensor({0.5f / 255.0f, 1.4f / 255.0f}).view({1, 1, 2}));
  ASSERT_TRUE(unit.ok());
  EXPECT_EQ(unit->pixels[1], 1);

  absl::StatusOr<Image> half = TensorToImage(torch::full({3, 2, 2}, 0.5, torch::kBFloat16));
  ASSERT_TRUE(half.ok()) << half.status();
  EXPECT_EQ(half->pixels, std::vector<uint8_t>(12, 128));
}

TEST(ImageTensorTest, TensorToImageRefusesOtherShapes) {
  EXPECT_EQ(TensorToImage(torch::zeros({2, 4, 4})).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TensorToImage(torch::zeros({1, 3, 4, 4})).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TensorToImage(torch::Tensor()).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ImageTensorTest, ResizeAndCenterCropPortrait) {
  absl::StatusOr<SquareCrop> crop = ResizeAndCenterCrop(torch::rand({3, 300, 200}), 100);
  ASSERT_TRUE(crop.ok()) << crop.status();
  EXPECT_EQ(crop->pixels.sizes(), (std::vector<int64_t>{3, 100, 100}));
  EXPECT_EQ(crop->original_height, 300);
  EXPECT_EQ(crop->original_width, 200);
  EXPECT_EQ(crop->crop_top, 25);  // resized to 150 x 100
  EXPECT_EQ(crop->crop_left, 0);
}

TEST(ImageTensorTest, ResizeAndCenterCropMatchesTorchvisionRounding) {
  // Landscape upscale: 50 x 80 -> 100 x 160, margin 30 on the left.
  absl::StatusOr<SquareCrop> up = ResizeAndCenterCrop(torch::rand({3, 50, 80}), 100);
  ASSERT_TRUE(up.ok());
  EXPECT_EQ(up->crop_left, 30);
  EXPECT_EQ(up->crop_top, 0);
  // 201 x 100 stays 201 x 100; the margin 50.5 rounds to even (50), as Python's round() does.
  absl::StatusOr<SquareCrop> odd = ResizeAndCenterCrop(torch::rand({3, 201, 100}), 100);
  ASSERT_TRUE(odd.ok());
  EXPECT_EQ(odd->crop_top, 50);
  // 300 x 199: the long side is int(100 * 300 / 199) = 150, truncated.
  absl::StatusOr<SquareCrop> truncated = ResizeAndCenterCrop(torch::rand({3, 300, 199}), 100);
  ASSERT_TRUE(truncated.ok());
  EXPECT_EQ(truncated->crop_top, 25);
}

// A one-pixel checkerboard shrunk 3x: plain bilinear would land on single pixels and keep a
// full-contrast pattern; the antialiasing filter averages it to gray.
TEST(ImageTensorTest, ResizeAntialiasesWhenShrinking) {
  const torch::Tensor index = torch::arange(300);
  const torch::Tensor checker =
      ((index.view({300, 1}) + index.view({1, 300})) % 2).to(torch::kFloat32);
  absl::StatusOr<SquareCrop> crop =
      ResizeAndCenterCrop(checker.unsqueeze(0).expand({3, 300, 300}), 100);
  ASSERT_TRUE(crop.ok()) << crop.status();
  EXPECT_LT((crop->pixels - 0.5f).abs().max().item<float>(), 0.15f);
}

TEST(ImageTensorTest, ResizeRefusesBadInput) {
  EXPECT_FALSE(ResizeAndCenterCrop(torch::rand({3, 10, 10}), 0).ok());
  EXPECT_FALSE(ResizeAndCenterCrop(torch::rand({10, 10}), 4).ok());
}

}  // namespace
}  // namespace likeness::image
