// The generation pipeline on the tiny SDXL-topology golden models (single-file checkpoint):
// bit-for-bit reproducibility, seeds per image, guidance, img2img, inpainting with paste-back,
// the 9-channel inpainting UNet, PNG parameters, and errors that name the setting.
#include "worker/generate/pipeline.h"

#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/test_data.h"
#include "worker/generate/denoise.h"
#include "worker/generate/file_hash.h"
#include "worker/generate/personalize.h"
#include "worker/embeddings/textual_inversion.h"
#include "worker/lora/lora_network.h"
#include "worker/image/image_io.h"
#include "worker/model/state_dict.h"
#include "worker/model/unet/unet2d_condition.h"

namespace likeness::generate {
namespace {

constexpr char kSingleFileStem[] = "sdxl_single_file_tiny";
constexpr char kInpaintUnetStem[] = "unet_tiny_inpaint";
constexpr int kTestSteps = 4;

nlohmann::json ReadSidecar(const std::string& stem) {
  std::ifstream in(testing::GoldenDir() + "/" + stem + ".json");
  return nlohmann::json::parse(in);
}

std::unique_ptr<Pipeline> LoadTinyPipeline() {
  PipelineOptions options;
  options.model_path = testing::GoldenDir() + "/" + kSingleFileStem + ".safetensors";
  options.vocab_path = testing::BpeVocabPath();
  options.config_override = ReadSidecar(kSingleFileStem)["config"];
  options.software = "likeness test";
  absl::StatusOr<std::unique_ptr<Pipeline>> pipeline = Pipeline::Load(options);
  EXPECT_TRUE(pipeline.ok()) << pipeline.status();
  return pipeline.ok() ? std::move(*pipeline) : nullptr;
}

GenerationSettings BaseSettings() {
  v1::GenerateConfig config;
  config.add_prompts("a photo of a red cube on a table");
  config.set_steps(kTestSteps);
  config.set_seed(7);
  absl::StatusOr<GenerationSettings> settings = ResolveGenerateConfig(config);
  EXPECT_TRUE(settings.ok()) << settings.status();
  return *settings;
}

class PipelineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    setenv("LIKENESS_HASH_CACHE", "off", 1);
    pipeline_ = LoadTinyPipeline().release();
  }
  static void TearDownTestSuite() { delete pipeline_; }
  void SetUp() override { ASSERT_NE(pipeline_, nullptr); }

  std::vector<GeneratedImage> Run(const GenerationSettings& settings) {
    absl::StatusOr<std::vector<GeneratedImage>> images = pipeline_->Generate(settings);
    EXPECT_TRUE(images.ok()) << images.status();
    return images.ok() ? *images : std::vector<GeneratedImage>{};
  }

  static Pipeline* pipeline_;
};
Pipeline* PipelineTest::pipeline_ = nullptr;

TEST_F(PipelineTest, SameSeedSameBytesDifferentSeedDifferentImage) {
  const GenerationSettings settings = BaseSettings();
  const std::vector<GeneratedImage> a = Run(settings);
  const std::vector<GeneratedImage> b = Run(settings);
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(a[0].image.width, pipeline_->NativeSize());
  EXPECT_EQ(a[0].image.pixels, b[0].image.pixels);
  GenerationSettings other = settings;
  other.seed = 8;
  EXPECT_NE(Run(other)[0].image.pixels, a[0].image.pixels);
}

TEST_F(PipelineTest, ImageIOfABatchEqualsASingleRunWithSeedPlusI) {
  GenerationSettings batch = BaseSettings();
  batch.images_per_prompt = 3;
  batch.batch_size = 1;  // one UNet call per image: the comparison below is exact
  const std::vector<GeneratedImage> images = Run(batch);
  ASSERT_EQ(images.size(), 3u);
  GenerationSettings single = BaseSettings();
  single.seed = batch.seed + 2;
  EXPECT_EQ(Run(single)[0].image.pixels, images[2].image.pixels);
  EXPECT_EQ(images[2].seed, batch.seed + 2);
  // All three in one UNet batch: equal up to the summation order of batched matmuls.
  batch.batch_size = 0;
  const std::vector<GeneratedImage> together = Run(batch);
  ASSERT_EQ(together.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    int max_diff = 0;
    for (size_t k = 0; k < images[i].image.pixels.size(); ++k) {
      max_diff = std::max(max_diff, std::abs(int(images[i].image.pixels[k]) -
                                             int(together[i].image.pixels[k])));
    }
    EXPECT_LE(max_diff, 1) << "image " << i;
  }
}

TEST_F(PipelineTest, EverySamplerRunsAndGuidanceMatters) {
  for (const std::string& name : sample::SamplerNames()) {
    GenerationSettings settings = BaseSettings();
    settings.sampler = *sample::ParseSamplerName(name);
    const std::vector<GeneratedImage> images = Run(settings);
    ASSERT_EQ(images.size(), 1u) << name;
    EXPECT_EQ(images[0].parameters.Field("Sampler"), sample::SamplerA1111Name(settings.sampler));
  }
  GenerationSettings unguided = BaseSettings();
  unguided.guidance_scale = 1.0;
  GenerationSettings rescaled = BaseSettings();
  rescaled.guidance_rescale = 0.7;
  const auto base = Run(BaseSettings())[0].image.pixels;
  EXPECT_NE(Run(unguided)[0].image.pixels, base);
  EXPECT_NE(Run(rescaled)[0].image.pixels, base);
  GenerationSettings encoded_negative = BaseSettings();
  encoded_negative.encode_empty_negative = true;  // "" encoded instead of SDXL's zeros
  EXPECT_NE(Run(encoded_negative)[0].image.pixels, base);
}

class PipelineFilesTest : public PipelineTest {
 protected:
  void SetUp() override {
    PipelineTest::SetUp();
    dir_ = testing::MakeTestTempDir("pipeline_files");
    // A 32x32 init image with a gradient, and a mask whose white box is the top-left quarter.
    image::Image init = image::MakeImage(32, 32, 3);
    image::Image mask = image::MakeImage(32, 32, 1);
    for (int y = 0; y < 32; ++y) {
      for (int x = 0; x < 32; ++x) {
        for (int c = 0; c < 3; ++c) init.pixels[(y * 32 + x) * 3 + c] = uint8_t(x * 8 + c * 40);
        if (x < 16 && y < 16) mask.pixels[y * 32 + x] = 255;
      }
    }
    init_path_ = dir_ + "/init.png";
    mask_path_ = dir_ + "/mask.png";
    ASSERT_TRUE(image::WritePngFile(init_path_, init).ok());
    ASSERT_TRUE(image::WritePngFile(mask_path_, mask).ok());
    init_ = init;
  }
  std::string dir_, init_path_, mask_path_;
  image::Image init_;
};

TEST_F(PipelineFilesTest, Img2ImgRunsOnlyTheLastStepsAndStaysNearTheImage) {
  GenerationSettings settings = BaseSettings();
  settings.init_image = init_path_;
  settings.strength = 0.5;
  int64_t evaluations = 0;
  absl::StatusOr<std::vector<GeneratedImage>> images =
      pipeline_->Generate(settings, [&](const GenerateProgress& p) { evaluations = p.evaluations_total; });
  ASSERT_TRUE(images.ok()) << images.status();
  EXPECT_EQ(evaluations, kTestSteps / 2);
  EXPECT_EQ((*images)[0].parameters.Field("Denoising strength"), "0.5");
}

TEST_F(PipelineFilesTest, InpaintingWithPasteBackKeepsUnmaskedPixels) {
  GenerationSettings settings = BaseSettings();
  settings.init_image = init_path_;
  settings.mask = mask_path_;
  settings.paste_back = true;
  settings.mask_options.blur_px = 2;
  settings.repaint_jump_length = 2;
  settings.repaint_jump_samples = 2;
  const std::vector<GeneratedImage> images = Run(settings);
  ASSERT_EQ(images.size(), 1u);
  const image::Image& out = images[0].image;
  int changed_inside = 0;
  for (int y = 0; y < 32; ++y) {
    for (int x = 0; x < 32; ++x) {
      for (int c = 0; c < 3; ++c) {
        const size_t i = (y * 32 + x) * 3 + c;
        // Beyond the blur's reach (2 px * 2.5 sigmas = 5 px) every byte is the original's.
        if (x >= 16 + 5 || y >= 16 + 5) {
          ASSERT_EQ(out.pixels[i], init_.pixels[i]) << x << "," << y;
        } else if (x < 10 && y < 10 && out.pixels[i] != init_.pixels[i]) {
          ++changed_inside;
        }
      }
    }
  }
  EXPECT_GT(changed_inside, 0);
}

TEST_F(PipelineFilesTest, NineChannelInpaintingUnet) {
  // Swap in the inpainting UNet (same topology, 9 input channels).
  const std::string path = testing::GoldenDir() + "/" + kInpaintUnetStem + ".safetensors";
  nlohmann::json config = ReadSidecar(kInpaintUnetStem)["config"];
  absl::StatusOr<model::unet::UNetConfig> parsed = model::unet::UNetConfig::FromJson(config);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  absl::StatusOr<model::unet::UNet2DConditionModel> unet = model::unet::MakeUNet(*parsed);
  ASSERT_TRUE(unet.ok());
  absl::StatusOr<std::shared_ptr<safetensors::SafetensorsFile>> file =
      safetensors::SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  absl::StatusOr<model::StateDict> weights = model::ReadStateDict(**file);
  ASSERT_TRUE(weights.ok());
  ASSERT_TRUE(model::LoadStateDict(**unet, *weights, path).ok());
  model::SdxlModels models = pipeline_->models();
  models.unet = *unet;
  Pipeline inpainting(models, pipeline_->clip_tokenizer(), pipeline_->info());

  GenerationSettings settings = BaseSettings();
  const absl::StatusOr<std::vector<GeneratedImage>> no_mask = inpainting.Generate(settings);
  EXPECT_NE(std::string(no_mask.status().message()).find("inpainting model"), std::string::npos);
  settings.init_image = init_path_;
  settings.mask = mask_path_;
  settings.paste_back = true;
  absl::StatusOr<std::vector<GeneratedImage>> images = inpainting.Generate(settings);
  ASSERT_TRUE(images.ok()) << images.status();
  EXPECT_EQ((*images)[0].image.pixels[(31 * 32 + 31) * 3], init_.pixels[(31 * 32 + 31) * 3]);
}

TEST_F(PipelineFilesTest, ParametersSurviveAPngRoundTrip) {
  GenerationSettings settings = BaseSettings();
  settings.negative_prompt = "blurry, low quality";
  pipeline_->AddLoraRecord({"subject", 0.75, "0123456789ab"});
  const std::vector<GeneratedImage> images = Run(settings);
  const std::string path = dir_ + "/out.png";
  const image::PngText text(images[0].image.text.begin(), images[0].image.text.end());
  ASSERT_TRUE(image::WritePngFile(path, images[0].image, text).ok());
  absl::StatusOr<image::Image> back = image::DecodeImageFile(path);
  ASSERT_TRUE(back.ok());
  ASSERT_EQ(back->text.count(kA1111ParametersKey), 1u);
  absl::StatusOr<A1111Parameters> parsed = ParseA1111Parameters(back->text.at(kA1111ParametersKey));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->prompt, settings.prompts[0]);
  EXPECT_EQ(parsed->negative_prompt, settings.negative_prompt);
  EXPECT_EQ(parsed->Field("Seed"), "7");
  EXPECT_EQ(parsed->Field("Steps"), "4");
  EXPECT_EQ(parsed->Field("Size"), "32x32");
  EXPECT_EQ(parsed->Field("Model"), kSingleFileStem);
  ASSERT_EQ(parsed->loras.size(), 1u);
  EXPECT_EQ(parsed->loras[0].hash, "0123456789ab");
}

TEST_F(PipelineFilesTest, ErrorsNameTheSetting) {
  GenerationSettings settings = BaseSettings();
  settings.width = settings.height = 36;  // not a multiple of 8
  EXPECT_NE(std::string(pipeline_->Generate(settings).status().message()).find("multiple of 8"),
            std::string::npos);
  settings = BaseSettings();
  settings.init_image = dir_ + "/missing.png";
  EXPECT_NE(std::string(pipeline_->Generate(settings).status().message()).find("missing.png"),
            std::string::npos);
  image::Image small_mask = image::MakeImage(16, 16, 1);
  small_mask.pixels.assign(small_mask.pixels.size(), 255);
  ASSERT_TRUE(image::WritePngFile(dir_ + "/small_mask.png", small_mask).ok());
  settings = BaseSettings();
  settings.init_image = init_path_;
  settings.mask = dir_ + "/small_mask.png";
  EXPECT_NE(std::string(pipeline_->Generate(settings).status().message()).find("must match"),
            std::string::npos);
}

TEST_F(PipelineFilesTest, LoraFromAFileAppliesWithItsScaleAndIsRecorded) {
  // A LoRA with non-zero up matrices, saved in kohya format, then detached again.
  const std::string lora_path = dir_ + "/subject.safetensors";
  {
    lora::LoraTrainOptions options;
    options.freeze_base = false;
    absl::StatusOr<std::unique_ptr<lora::LoraNetwork>> network =
        lora::LoraNetwork::CreateTrainable(pipeline_->models(), options);
    ASSERT_TRUE(network.ok()) << network.status();
    torch::NoGradGuard no_grad;
    for (torch::Tensor& t : (*network)->TrainableTensors()) t.normal_(0.0, 0.5);
    ASSERT_TRUE((*network)->Save(lora_path).ok());
  }
  const auto base = Run(BaseSettings())[0].image.pixels;
  auto generate_with_scale = [&](double scale) {
    Pipeline pipeline(pipeline_->models(), pipeline_->clip_tokenizer(), pipeline_->info());
    v1::GenerateConfig config;
    v1::LoraRef* ref = config.add_loras();
    ref->set_path(lora_path);
    ref->set_scale(scale);
    EXPECT_TRUE(ApplyPersonalization(config, pipeline).ok());
    absl::StatusOr<std::vector<GeneratedImage>> images = pipeline.Generate(BaseSettings());
    EXPECT_TRUE(images.ok()) << images.status();
    return *images;
  };  // each pipeline detaches its LoRA when it goes
  EXPECT_EQ(generate_with_scale(0.0)[0].image.pixels, base);
  const std::vector<GeneratedImage> with_lora = generate_with_scale(1.0);
  EXPECT_NE(with_lora[0].image.pixels, base);
  ASSERT_EQ(with_lora[0].parameters.loras.size(), 1u);
  EXPECT_EQ(with_lora[0].parameters.loras[0].name, "subject");
  EXPECT_EQ(with_lora[0].parameters.loras[0].hash.size(), kLoraShortHashDigits);
  EXPECT_EQ(Run(BaseSettings())[0].image.pixels, base);  // detached: the base model is back

  v1::GenerateConfig missing;
  missing.add_loras()->set_path(dir_ + "/nope.safetensors");
  Pipeline pipeline(pipeline_->models(), pipeline_->clip_tokenizer(), pipeline_->info());
  EXPECT_NE(std::string(ApplyPersonalization(missing, pipeline).message()).find("nope.safetensors"),
            std::string::npos);
}

TEST_F(PipelineFilesTest, EmbeddingFromAFileIsCalledByItsToken) {
  // An embedding initialised from "dog", saved as clip_l/clip_g under the token "sksdog".
  const std::string path = dir_ + "/sksdog.safetensors";
  {
    absl::StatusOr<std::unique_ptr<embeddings::SdxlTextualInversion>> ti =
        embeddings::SdxlTextualInversion::Attach(pipeline_->models(), pipeline_->clip_tokenizer(),
                                                 pipeline_->clip_tokenizer());
    ASSERT_TRUE(ti.ok()) << ti.status();
    ASSERT_TRUE((*ti)->AddTokenFromWord("sksdog", 1, "dog").ok());
    ASSERT_TRUE((*ti)->Save("sksdog", path).ok());
  }
  GenerationSettings with_word = BaseSettings();
  with_word.prompts = {"a photo of a dog"};
  const auto expected = Run(with_word)[0].image.pixels;
  Pipeline pipeline(pipeline_->models(), pipeline_->clip_tokenizer(), pipeline_->info());
  v1::GenerateConfig config;
  config.add_embeddings()->set_path(path);  // token: the file stem
  ASSERT_TRUE(ApplyPersonalization(config, pipeline).ok());
  GenerationSettings with_token = BaseSettings();
  with_token.prompts = {"a photo of a sksdog"};
  absl::StatusOr<std::vector<GeneratedImage>> images = pipeline.Generate(with_token);
  ASSERT_TRUE(images.ok()) << images.status();
  EXPECT_EQ((*images)[0].image.pixels, expected);
  EXPECT_NE((*images)[0].parameters.Field("TI hashes").find("sksdog: "), std::string::npos);
}

TEST(GenerateSettingsTest, DefaultsAndErrors) {
  v1::GenerateConfig config;
  EXPECT_NE(std::string(ResolveGenerateConfig(config).status().message()).find("prompts"),
            std::string::npos);
  config.add_prompts("x");
  absl::StatusOr<GenerationSettings> s = ResolveGenerateConfig(config);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->steps, kDefaultSteps);
  EXPECT_EQ(s->guidance_scale, kDefaultGuidanceScale);
  config.set_steps(5000);
  EXPECT_NE(std::string(ResolveGenerateConfig(config).status().message()).find("steps: 5000"),
            std::string::npos);
  config.set_steps(10);
  config.set_sampler("plms");
  EXPECT_NE(std::string(ResolveGenerateConfig(config).status().message()).find("sampler"),
            std::string::npos);
  config.set_sampler("euler_a");
  config.set_mask("m.png");
  EXPECT_NE(std::string(ResolveGenerateConfig(config).status().message()).find("init_image"),
            std::string::npos);
  config.set_init_image("i.png");
  s = ResolveGenerateConfig(config);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->strength, kDefaultInpaintStrength);
  EXPECT_EQ(s->mask_options.blur_px, kDefaultMaskBlurPx);
  config.set_strength(1.5);
  EXPECT_NE(std::string(ResolveGenerateConfig(config).status().message()).find("strength: 1.5"),
            std::string::npos);
}

TEST(DenoiseTest, EvaluationCountIncludesRepaintRepeats) {
  EXPECT_EQ(DenoiseEvaluations(30, 0, 0, 1), 30);
  EXPECT_EQ(DenoiseEvaluations(30, 15, 0, 1), 15);
  // 10 steps, jumps of 3 after steps 3, 6, 9 (not after the last), 2 resamplings: +2*3*3.
  EXPECT_EQ(DenoiseEvaluations(10, 0, 3, 3), 10 + 3 * 2 * 3);
}

}  // namespace
}  // namespace likeness::generate
