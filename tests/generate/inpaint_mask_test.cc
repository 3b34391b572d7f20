// Inpainting masks: thresholding, dilation, blur, the latent mask, and paste-back that keeps
// every unmasked byte.
#include "worker/generate/inpaint_mask.h"

#include "gtest/gtest.h"
#include "worker/image/image.h"

namespace likeness::generate {
namespace {

// A W x H gray image, white inside [x0, x1) x [y0, y1).
image::Image BoxMask(int w, int h, int x0, int y0, int x1, int y1) {
  image::Image mask = image::MakeImage(w, h, 1);
  for (int y = y0; y < y1; ++y) {
    for (int x = x0; x < x1; ++x) mask.pixels[y * w + x] = 255;
  }
  return mask;
}

TEST(InpaintMaskTest, BinarySoftAndLatentMasks) {
  absl::StatusOr<torch::Tensor> luma = MaskLuminance(BoxMask(32, 32, 8, 8, 16, 16));
  ASSERT_TRUE(luma.ok());
  absl::StatusOr<InpaintMask> mask = PrepareInpaintMask(*luma, 4, {});
  ASSERT_TRUE(mask.ok()) << mask.status();
  EXPECT_EQ(mask->binary.sum().item<float>(), 64.0f);
  EXPECT_TRUE(torch::equal(mask->soft, mask->binary));
  ASSERT_EQ(mask->latent.sizes(), (std::vector<int64_t>{1, 1, 8, 8}));
  EXPECT_FLOAT_EQ(mask->latent[0][0][2][2].item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(mask->latent[0][0][0][0].item<float>(), 0.0f);
}

TEST(InpaintMaskTest, DilationGrowsAndBlurFadesButFarPixelsStayZero) {
  absl::StatusOr<torch::Tensor> luma = MaskLuminance(BoxMask(64, 64, 28, 28, 36, 36));
  MaskOptions options;
  options.dilate_px = 2;
  options.blur_px = 2;
  absl::StatusOr<InpaintMask> mask = PrepareInpaintMask(*luma, 8, options);
  ASSERT_TRUE(mask.ok()) << mask.status();
  EXPECT_EQ(mask->binary.sum().item<float>(), 12.0f * 12.0f);  // 8 + 2 * 2 on each side
  const float edge = mask->soft[0][0][32][26].item<float>();  // the dilated box's first column
  EXPECT_GT(edge, 0.0f);
  EXPECT_LT(edge, 1.0f);
  EXPECT_FLOAT_EQ(mask->soft[0][0][32][32].item<float>(), 1.0f);
  EXPECT_EQ(mask->soft[0][0][0][0].item<float>(), 0.0f);  // exactly zero, not 1e-9
  EXPECT_LE(mask->soft.max().item<float>(), 1.0f);
}

TEST(InpaintMaskTest, RejectsEmptyMasksBadSizesAndRadii) {
  absl::StatusOr<torch::Tensor> black = MaskLuminance(image::MakeImage(16, 16, 3));
  EXPECT_NE(std::string(PrepareInpaintMask(*black, 8, {}).status().message()).find("nothing to repaint"),
            std::string::npos);
  absl::StatusOr<torch::Tensor> odd = MaskLuminance(BoxMask(12, 12, 0, 0, 4, 4));
  EXPECT_EQ(PrepareInpaintMask(*odd, 8, {}).status().code(), absl::StatusCode::kInvalidArgument);
  MaskOptions huge;
  huge.blur_px = kMaxMaskRadiusPx + 1;
  absl::StatusOr<torch::Tensor> ok = MaskLuminance(BoxMask(16, 16, 0, 0, 4, 4));
  EXPECT_EQ(PrepareInpaintMask(*ok, 8, huge).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(InpaintMaskTest, PasteBackKeepsUnmaskedBytesExactly) {
  image::Image original = image::MakeImage(8, 8, 3);
  image::Image generated = image::MakeImage(8, 8, 3);
  for (size_t i = 0; i < original.pixels.size(); ++i) {
    original.pixels[i] = static_cast<uint8_t>(i * 7);
    generated.pixels[i] = static_cast<uint8_t>(255 - i);
  }
  torch::Tensor alpha = torch::zeros({1, 1, 8, 8});
  alpha.index_put_({0, 0, 3, 3}, 1.0);
  alpha.index_put_({0, 0, 4, 4}, 0.5);
  absl::StatusOr<image::Image> out = PasteBack(original, generated, alpha);
  ASSERT_TRUE(out.ok()) << out.status();
  for (int y = 0; y < 8; ++y) {
    for (int x = 0; x < 8; ++x) {
      for (int c = 0; c < 3; ++c) {
        const size_t i = (y * 8 + x) * 3 + c;
        if (x == 3 && y == 3) {
          EXPECT_EQ(out->pixels[i], generated.pixels[i]);
        } else if (x == 4 && y == 4) {
          EXPECT_NEAR(out->pixels[i], (original.pixels[i] + generated.pixels[i]) / 2.0, 1.0);
        } else {
          EXPECT_EQ(out->pixels[i], original.pixels[i]) << x << "," << y;
        }
      }
    }
  }
  EXPECT_EQ(PasteBack(original, image::MakeImage(4, 4, 3), alpha).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace likeness::generate
