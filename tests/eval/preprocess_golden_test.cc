// CLIPImageProcessor's outputs in every golden CLIPVisionModelWithProjection file that has a
// preprocessing case (golden README section 6), reproduced bit for bit:
//   __output__.preprocess.resized_uint8  == ResizeShortestEdge(image) (Pillow's 8-bit bicubic)
//   __output__.preprocess.pixel_values   == Preprocess(image)
//   __output__.preprocess.image_embeds   ~= the golden model on our pixel values (end to end)
// The settings come from the sidecar's preprocessor_config, so another golden set of the same
// format is checked as it is. The golden test (tests/model/golden_clip_vision.cc) leaves these
// keys to this test because it does not link worker/eval.
#include <cstring>
#include <iostream>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "common/safetensors/safetensors_file.h"
#include "tests/eval/eval_fixtures.h"
#include "worker/eval/preprocess.h"
#include "worker/model/state_dict.h"
#include "worker/model/vision/clip_vision_model.h"

namespace likeness::eval {
namespace {

using likeness::testing::GoldenFile;
using nlohmann::json;

constexpr char kImageKey[] = "__input__.image_uint8";
constexpr char kResizedKey[] = "__output__.preprocess.resized_uint8";
constexpr char kPixelValuesKey[] = "__output__.preprocess.pixel_values";
constexpr char kImageEmbedsKey[] = "__output__.preprocess.image_embeds";
// PIL's Image.Resampling numbers, as preprocessor_config.json stores them.
constexpr int kPilBilinear = 2;
constexpr int kPilBicubic = 3;
// The README's bound for a float32 implementation's forward outputs.
constexpr double kRelTolerance = 1e-4;

// The PreprocessSpec that CLIPImageProcessor's saved config describes; ADD_FAILURE for settings
// the preprocessing here does not implement.
PreprocessSpec SpecFromProcessorConfig(const std::string& name, const json& config) {
  PreprocessSpec spec = PreprocessSpec::Clip(0);
  spec.resize_shortest_edge = config.at("size").at("shortest_edge").get<int>();
  spec.crop_height = config.at("crop_size").at("height").get<int>();
  spec.crop_width = config.at("crop_size").at("width").get<int>();
  const int resample = config.value("resample", kPilBicubic);
  EXPECT_TRUE(resample == kPilBicubic || resample == kPilBilinear) << name << ": resample " << resample;
  spec.filter = resample == kPilBilinear ? PillowFilter::kBilinear : PillowFilter::kBicubic;
  EXPECT_EQ(config.value("rescale_factor", kRescaleFactor), kRescaleFactor) << name;
  for (const char* step : {"do_resize", "do_center_crop", "do_rescale", "do_normalize"}) {
    EXPECT_TRUE(config.value(step, true)) << name << ": " << step << " off is not implemented";
  }
  for (int c = 0; c < 3; ++c) {
    spec.mean[c] = config.at("image_mean").at(c).get<double>();
    spec.std[c] = config.at("image_std").at(c).get<double>();
  }
  return spec;
}

image::Image ImageFromHwc(const torch::Tensor& hwc) {
  const torch::Tensor t = hwc.contiguous();
  image::Image image = image::MakeImage(static_cast<int>(t.size(1)), static_cast<int>(t.size(0)),
                                        static_cast<int>(t.size(2)));
  std::memcpy(image.pixels.data(), t.data_ptr<uint8_t>(), image.pixels.size());
  return image;
}

torch::Tensor HwcFromImage(const image::Image& image) {
  torch::Tensor t = torch::empty({image.height, image.width, image.channels}, torch::kUInt8);
  std::memcpy(t.data_ptr<uint8_t>(), image.pixels.data(), image.pixels.size());
  return t;
}

TEST(PreprocessGoldenTest, ReproducesClipImageProcessorBitForBit) {
  absl::StatusOr<std::vector<GoldenFile>> files =
      likeness::testing::GoldenFilesOfClass(likeness::testing::kGoldenClipVisionClass);
  ASSERT_TRUE(files.ok()) << files.status();
  int checked = 0;
  for (const GoldenFile& golden : *files) {
    SCOPED_TRACE(golden.stem);
    auto file = safetensors::SafetensorsFile::Open(golden.safetensors);
    ASSERT_TRUE(file.ok()) << file.status();
    if (!(*file)->Contains(kImageKey)) continue;
    ASSERT_TRUE(golden.sidecar.contains("preprocessor_config"));
    const PreprocessSpec spec = SpecFromProcessorConfig(golden.stem, golden.sidecar["preprocessor_config"]);
    const image::Image input = ImageFromHwc(*(*file)->Get(kImageKey));

    absl::StatusOr<image::Image> resized = ResizeShortestEdge(input, spec.resize_shortest_edge, spec.filter);
    ASSERT_TRUE(resized.ok()) << resized.status();
    const torch::Tensor expected_resized = *(*file)->Get(kResizedKey);
    const torch::Tensor ours_resized = HwcFromImage(*resized);
    ASSERT_EQ(ours_resized.sizes(), expected_resized.sizes());
    const torch::Tensor level_diff =
        (ours_resized.to(torch::kInt) - expected_resized.to(torch::kInt)).abs();
    std::cout << "[ golden   ] " << golden.stem << " preprocess.resized_uint8: "
              << level_diff.gt(0).sum().item<int64_t>() << " of " << level_diff.numel()
              << " values differ, max " << level_diff.max().item<int>() << " levels\n";
    EXPECT_TRUE(torch::equal(ours_resized, expected_resized));

    absl::StatusOr<torch::Tensor> pixels = Preprocess(input, spec);
    ASSERT_TRUE(pixels.ok()) << pixels.status();
    const torch::Tensor expected_pixels = *(*file)->Get(kPixelValuesKey);  // [1, 3, S, S]
    ASSERT_EQ(pixels->unsqueeze(0).sizes(), expected_pixels.sizes());
    std::cout << "[ golden   ] " << golden.stem << " preprocess.pixel_values: max|diff| "
              << (pixels->unsqueeze(0) - expected_pixels).abs().max().item<float>() << "\n";
    EXPECT_TRUE(torch::equal(pixels->unsqueeze(0), expected_pixels));

    // End to end: the golden model on our pixels.
    absl::StatusOr<model::ClipVisionConfig> config =
        model::ClipVisionConfig::FromJson(golden.sidecar.at("config"));
    ASSERT_TRUE(config.ok()) << config.status();
    model::CLIPVisionModelWithProjection clip(*config);
    ASSERT_TRUE(model::LoadClipVisionStateDict(*clip, *model::ReadStateDict(**file), golden.safetensors).ok());
    clip->eval();
    torch::NoGradGuard no_grad;
    const torch::Tensor embeds = clip(pixels->unsqueeze(0)).image_embeds;
    const torch::Tensor expected_embeds = *(*file)->Get(kImageEmbedsKey);
    const double bound = kRelTolerance * expected_embeds.abs().max().item<double>();
    EXPECT_LE((embeds - expected_embeds).abs().max().item<double>(), bound);
    ++checked;
  }
  EXPECT_GT(checked, 0) << "no golden CLIP vision file has a preprocessing case";
}

}  // namespace
}  // namespace likeness::eval
