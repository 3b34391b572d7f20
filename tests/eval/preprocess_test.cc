// The encoders' preprocessing (worker/eval/preprocess.h) and Pillow's resize
// (worker/eval/pillow_resize.h) against hand-computed values.
#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "worker/eval/pillow_resize.h"
#include "worker/eval/preprocess.h"

namespace likeness::eval {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

image::Image Gray(int width, int height, std::vector<uint8_t> pixels) {
  image::Image image = image::MakeImage(width, height, 1);
  image.pixels = std::move(pixels);
  return image;
}

image::Image Uniform(int width, int height, std::array<uint8_t, 3> rgb) {
  image::Image image = image::MakeImage(width, height, 3);
  for (size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = rgb[i % 3];
  return image;
}

int64_t FixedPointSum(const ResampleTaps& taps) {
  int64_t sum = 0;
  for (int32_t w : taps.weights) sum += w;
  return sum;
}

TEST(PillowResizeTest, DownscaleTapsWidenWithTheScale) {
  // 4 -> 2: scale 2, support 2 * 2 = 4, so every output pixel sees all 4 inputs.
  const std::vector<ResampleTaps> taps = PillowResampleTaps(4, 2, PillowFilter::kBicubic);
  ASSERT_EQ(taps.size(), 2u);
  EXPECT_EQ(taps[0].first, 0);
  EXPECT_EQ(taps[0].weights.size(), 4u);
  // Pixel 0's center is 1.0: the taps sit at bicubic(-0.25), (0.25), (0.75), (1.25) =
  // 0.8671875, 0.8671875, 0.2265625, -0.0703125, summing to 1.890625; in 2^22 fixed point,
  // rounded half away from zero.
  const double total = 1.890625;
  const double one = 1 << kPillowPrecisionBits;
  EXPECT_THAT(taps[0].weights,
              ElementsAre(static_cast<int32_t>(0.8671875 / total * one + 0.5),
                          static_cast<int32_t>(0.8671875 / total * one + 0.5),
                          static_cast<int32_t>(0.2265625 / total * one + 0.5),
                          static_cast<int32_t>(-0.0703125 / total * one - 0.5)));
  // Pixel 1 mirrors it.
  EXPECT_THAT(taps[1].weights, ElementsAre(taps[0].weights[3], taps[0].weights[2],
                                           taps[0].weights[1], taps[0].weights[0]));
}

TEST(PillowResizeTest, StepEdgeDownscaleMatchesHandComputedValues) {
  // [0, 0, 255, 255] -> 2 pixels, with the weights of the test above. Pixel 0:
  // 255 * (0.2265625 - 0.0703125) / 1.890625 = 21.07 -> 21; pixel 1: 255 * 2 * 0.8671875 /
  // 1.890625 = 233.93 -> 234.
  absl::StatusOr<image::Image> out = PillowResize(Gray(4, 1, {0, 0, 255, 255}), 2, 1);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(out->pixels, ElementsAre(21, 234));
}

TEST(PillowResizeTest, OvershootIsClampedNotWrapped) {
  // Upscaling a step with bicubic rings below 0 and above 255 before the clamp.
  absl::StatusOr<image::Image> out = PillowResize(Gray(4, 1, {0, 0, 255, 255}), 16, 1);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->pixels.front(), 0);
  EXPECT_EQ(out->pixels.back(), 255);
  for (size_t i = 1; i < out->pixels.size(); ++i) EXPECT_GE(out->pixels[i], out->pixels[i - 1]);
}

TEST(PillowResizeTest, ConstantImagesStayConstant) {
  for (PillowFilter filter : {PillowFilter::kBicubic, PillowFilter::kBilinear}) {
    for (auto [w, h] : {std::pair{7, 5}, std::pair{3, 11}, std::pair{40, 2}}) {
      absl::StatusOr<image::Image> out = PillowResize(Uniform(13, 9, {0, 200, 255}), w, h, filter);
      ASSERT_TRUE(out.ok()) << out.status();
      for (size_t i = 0; i < out->pixels.size(); i += 3) {
        ASSERT_EQ(out->pixels[i], 0);
        ASSERT_EQ(out->pixels[i + 1], 200);
        ASSERT_EQ(out->pixels[i + 2], 255);
      }
    }
  }
}

TEST(PillowResizeTest, WeightsSumToOneInFixedPoint) {
  for (auto [in, out] : {std::pair{1000, 224}, std::pair{56, 44}, std::pair{40, 32}, std::pair{5, 9}}) {
    for (const ResampleTaps& taps : PillowResampleTaps(in, out, PillowFilter::kBicubic)) {
      EXPECT_NEAR(FixedPointSum(taps), 1 << kPillowPrecisionBits, taps.weights.size());
      EXPECT_GE(taps.first, 0);
      EXPECT_LE(taps.first + static_cast<int>(taps.weights.size()), in);
    }
  }
}

TEST(PillowResizeTest, SameSizeIsACopyAndBadInputIsRefused) {
  const image::Image in = Gray(3, 2, {1, 2, 3, 4, 5, 6});
  EXPECT_EQ(PillowResize(in, 3, 2)->pixels, in.pixels);
  EXPECT_FALSE(PillowResize(in, 0, 2).ok());
  image::Image deep = image::MakeImage(2, 2, 1, 16);
  EXPECT_FALSE(PillowResize(deep, 1, 1).ok());
}

TEST(PreprocessTest, ShortestEdgeSizeTruncatesTheLongSide) {
  EXPECT_THAT(ShortestEdgeSize(56, 40, 32), Pair(44, 32));  // int(32 * 56 / 40) = int(44.8)
  EXPECT_THAT(ShortestEdgeSize(40, 56, 32), Pair(32, 44));
  EXPECT_THAT(ShortestEdgeSize(1000, 750, 224), Pair(298, 224));  // 298.67
  EXPECT_THAT(ShortestEdgeSize(768, 768, 256), Pair(256, 256));
}

TEST(PreprocessTest, CenterCropRoundsLikeEachReference) {
  // transformers floors; torchvision rounds halves to even (Python's round).
  EXPECT_THAT(CenterCropOrigin(259, 224, 224, 224, CropRounding::kFloor), Pair(17, 0));
  EXPECT_THAT(CenterCropOrigin(259, 224, 224, 224, CropRounding::kRoundHalfToEven), Pair(18, 0));
  EXPECT_THAT(CenterCropOrigin(225, 227, 224, 224, CropRounding::kRoundHalfToEven), Pair(0, 2));
  EXPECT_THAT(CenterCropOrigin(44, 32, 32, 32, CropRounding::kFloor), Pair(6, 0));
}

TEST(PreprocessTest, SpecsFollowTheModelSize) {
  const PreprocessSpec clip = PreprocessSpec::Clip(224);
  EXPECT_EQ(clip.resize_shortest_edge, 224);
  EXPECT_EQ(clip.crop_height, 224);
  const PreprocessSpec dino = PreprocessSpec::Dino(224);
  EXPECT_EQ(dino.resize_shortest_edge, 256);
  EXPECT_EQ(dino.crop_width, 224);
  EXPECT_EQ(PreprocessSpec::Dino(32).resize_shortest_edge, 36);  // int(32 * 256 / 224)
}

TEST(PreprocessTest, UniformImageGivesHandComputedValues) {
  const std::array<uint8_t, 3> rgb = {128, 0, 255};
  for (const PreprocessSpec& spec : {PreprocessSpec::Clip(32), PreprocessSpec::Dino(32)}) {
    absl::StatusOr<torch::Tensor> pixels = Preprocess(Uniform(50, 40, rgb), spec);
    ASSERT_TRUE(pixels.ok()) << pixels.status();
    ASSERT_EQ(pixels->sizes(), (std::vector<int64_t>{3, 32, 32}));
    for (int c = 0; c < 3; ++c) {
      const float scaled = spec.rescale == RescaleArithmetic::kFloat64Product
                               ? static_cast<float>(rgb[c] * (1.0 / 255.0))
                               : static_cast<float>(rgb[c]) / 255.0f;
      const float expected = (scaled - static_cast<float>(spec.mean[c])) /
                             static_cast<float>(spec.std[c]);
      EXPECT_EQ((*pixels)[c].min().item<float>(), expected) << c;
      EXPECT_EQ((*pixels)[c].max().item<float>(), expected) << c;
    }
  }
  // CLIP, red 128: (128/255 - 0.48145466) / 0.26862954 = 0.07632...
  const float red = (*Preprocess(Uniform(32, 32, rgb), PreprocessSpec::Clip(32)))[0][0][0].item<float>();
  EXPECT_NEAR(red, (128.0 / 255.0 - 0.48145466) / 0.26862954, 1e-6);
}

TEST(PreprocessTest, CropTakesTheCenter) {
  // A 3-wide image whose middle column is white, cropped to 1 x 1 after a same-size "resize".
  image::Image image = image::MakeImage(3, 1, 3);
  for (int c = 0; c < 3; ++c) image.pixels[3 + c] = 255;
  PreprocessSpec spec = PreprocessSpec::Clip(1);
  spec.crop_height = spec.crop_width = 1;
  spec.resize_shortest_edge = 1;
  absl::StatusOr<torch::Tensor> pixels = Preprocess(image, spec);
  ASSERT_TRUE(pixels.ok()) << pixels.status();
  EXPECT_NEAR((*pixels)[0][0][0].item<float>(), (1.0 - kOpenAiClipMean[0]) / kOpenAiClipStd[0],
              1e-6);
  spec.crop_width = 2;
  spec.resize_shortest_edge = 1;
  spec.crop_height = 2;
  EXPECT_FALSE(Preprocess(image, spec).ok());  // larger than the resized image
}

TEST(ToRgb8Test, GrayRepeatsAndAlphaCompositesOnWhite) {
  absl::StatusOr<image::Image> gray = ToRgb8(Gray(2, 1, {7, 200}));
  ASSERT_TRUE(gray.ok()) << gray.status();
  EXPECT_THAT(gray->pixels, ElementsAre(7, 7, 7, 200, 200, 200));
  image::Image rgba = image::MakeImage(2, 1, 4);
  rgba.pixels = {10, 20, 30, 255, 10, 20, 30, 0};
  absl::StatusOr<image::Image> rgb = ToRgb8(rgba);
  ASSERT_TRUE(rgb.ok()) << rgb.status();
  EXPECT_THAT(rgb->pixels, ElementsAre(10, 20, 30, 255, 255, 255));
}

}  // namespace
}  // namespace likeness::eval
