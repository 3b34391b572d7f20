// What a run leaves for users and for later runs, on the tiny golden bundle (CPU): the
// DreamBooth exports (diffusers folder, single file; EMA weights when on) load back with our
// loader and give the same outputs, the checkpoint stores the UNet once, prior-preservation
// class images are generated from the base model and reused, and a resume with other
// result-changing settings is refused naming them.
#include <filesystem>
#include <fstream>

#include "common/safetensors/safetensors_file.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/test_data.h"
#include "tests/train/train_test_util.h"
#include "worker/generate/pipeline.h"
#include "worker/image/image_io.h"
#include "worker/model/state_dict.h"
#include "worker/train/checkpoint.h"
#include "worker/train/class_images.h"
#include "worker/train/full_export.h"
#include "worker/train/trainer.h"

namespace likeness::train {
namespace {
namespace fs = std::filesystem;

const std::vector<std::pair<int, int>> kPhotoSizes = {{32, 32}, {48, 36}, {40, 40}};

class TrainOutputsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("LIKENESS_HASH_CACHE", "off", 1);
    root_ = testing::MakeTestTempDir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    subject_ = root_ + "/subject";
    testing::WriteSubjectFolder(subject_, kPhotoSizes, 3);
  }

  TrainSettings Settings(v1::TrainMethod method, const std::string& out,
                         const std::function<void(v1::TrainConfig&)>& edit = {}) {
    v1::TrainConfig c = testing::TinyTrainConfig(method, subject_, root_ + "/" + out);
    c.set_cache_dir(root_ + "/cache");
    c.set_steps(2);
    if (edit) edit(c);
    absl::StatusOr<TrainSettings> s = ResolveTrainConfig(c);
    EXPECT_TRUE(s.ok()) << s.status();
    return *s;
  }

  std::string root_, subject_;
};

// The UNet's output on fixed inputs of the tiny config's sizes.
torch::Tensor UnetOutput(model::SdxlModels& models) {
  torch::NoGradGuard no_grad;
  models.unet->eval();
  torch::manual_seed(3);
  const torch::Tensor x = torch::randn({1, 4, 16, 16});
  const torch::Tensor ctx = torch::randn({1, 77, 64});
  const torch::Tensor pooled = torch::randn({1, 32});
  const torch::Tensor ids = torch::tensor({{32.f, 32.f, 0.f, 0.f, 32.f, 32.f}});
  return models.unet->forward(x, torch::tensor({400}, torch::kInt64), ctx, pooled, ids);
}

absl::StatusOr<model::SdxlModels> Load(const std::string& path, const nlohmann::json& config) {
  model::SdxlLoadReport report;
  return model::LoadSdxlModels(path, {}, &report, config);
}

TEST_F(TrainOutputsTest, DreamBoothExportsLoadBackWithTheSameWeightsAndOutputs) {
  const TrainSettings s = Settings(v1::TRAIN_METHOD_DREAMBOOTH, "out");
  model::SdxlModels trained;
  absl::StatusOr<std::unique_ptr<Trainer>> trainer = testing::MakeTinyTrainer(s, {}, &trained);
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  ASSERT_TRUE((*trainer)->Run().ok());
  const std::string checkpoint = s.output_dir + "/step-2";
  const std::string diffusers = s.output_dir + "/export/diffusers";
  const std::string single = s.output_dir + "/export/model.safetensors";

  // The UNet is stored once: the export's file is the checkpoint's, and trainer_state holds
  // no copy of the weights (only AdamW's moments and the RNG).
  EXPECT_TRUE(fs::equivalent(checkpoint + "/unet.safetensors",
                             diffusers + "/unet/diffusion_pytorch_model.safetensors"));
  auto state = safetensors::SafetensorsFile::Open(checkpoint + "/trainer_state.safetensors");
  ASSERT_TRUE(state.ok());
  for (const std::string& name : (*state)->Names()) {
    EXPECT_NE(name.rfind("param.", 0), 0u) << name;
  }

  const auto expected = testing::SnapshotModels(trained);
  const torch::Tensor expected_output = UnetOutput(trained);
  absl::StatusOr<model::SdxlModels> from_folder = Load(diffusers, nullptr);
  ASSERT_TRUE(from_folder.ok()) << from_folder.status();
  absl::StatusOr<model::SdxlModels> from_file =
      Load(single, nlohmann::json::parse(s.model_config));
  ASSERT_TRUE(from_file.ok()) << from_file.status();
  for (model::SdxlModels* loaded : {&*from_folder, &*from_file}) {
    for (const auto& [name, tensor] : testing::SnapshotModels(*loaded)) {
      ASSERT_TRUE(expected.count(name)) << name;
      EXPECT_TRUE(torch::equal(tensor, expected.at(name))) << name;
    }
    EXPECT_TRUE(torch::equal(UnetOutput(*loaded), expected_output));
  }
}

TEST_F(TrainOutputsTest, DreamBoothExportHoldsTheEmaWeightsWhenEmaIsOn) {
  const TrainSettings s = Settings(v1::TRAIN_METHOD_DREAMBOOTH, "ema", [](auto& c) {
    c.set_ema_decay(0.5);
    c.set_steps(3);
  });
  absl::StatusOr<std::unique_ptr<Trainer>> trainer = testing::MakeTinyTrainer(s);
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  ASSERT_TRUE((*trainer)->Run().ok());
  absl::StatusOr<model::SdxlModels> exported = Load(s.output_dir + "/export/diffusers", nullptr);
  ASSERT_TRUE(exported.ok()) << exported.status();
  const model::StateDict unet = model::ModuleStateDict(*exported->unet);
  const std::vector<std::string>& names = (*trainer)->param_names();
  int differs_from_raw = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string name = names[i].substr(std::string("unet/").size());
    ASSERT_TRUE(unet.count(name)) << name;
    EXPECT_TRUE(torch::equal(unet.at(name), (*trainer)->ema().shadow()[i])) << name;
    differs_from_raw += !torch::equal(unet.at(name), (*trainer)->params()[i]);
  }
  EXPECT_GT(differs_from_raw, 0);  // the raw weights stay in the checkpoint, for resume
  EXPECT_FALSE(fs::equivalent(s.output_dir + "/step-3/unet.safetensors",
                              s.output_dir + "/export/diffusers/unet/diffusion_pytorch_model.safetensors"));
}

TEST_F(TrainOutputsTest, ClassImagesAreGeneratedFromTheBaseModelCachedAndReused) {
  testing::WriteSubjectFolder(root_ + "/class", {{32, 32}}, 4);  // one given, two generated
  const TrainSettings s = Settings(v1::TRAIN_METHOD_LORA, "out", [&](auto& c) {
    c.set_class_dir(root_ + "/class");
    c.set_class_prompt("a photo of a dog");
    c.set_num_class_images(3);
  });
  ClassImageRequest request;
  request.cache_dir = s.cache_dir;
  absl::StatusOr<std::string> key = ModelKey(s.base_model, s.model_config);
  ASSERT_TRUE(key.ok());
  request.model_key = *key;
  request.class_prompt = s.class_prompt;
  request.count = 2;
  request.resolution = s.resolution;
  request.seed = s.seed;
  const fs::path folder = fs::path(s.cache_dir) / kClassImageSubdir / ClassImageKey(request);

  absl::StatusOr<std::unique_ptr<Trainer>> trainer = testing::MakeTinyTrainer(s);
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  ASSERT_TRUE(fs::exists(folder / "00000.png"));
  ASSERT_TRUE(fs::exists(folder / "00001.png"));
  ASSERT_TRUE((*trainer)->Step().ok());
  EXPECT_TRUE(std::isfinite((*trainer)->losses().at(0)));

  // The same images our sampler draws from the base model for the class prompt (seed + i).
  absl::StatusOr<model::SdxlModels> base = Load(s.base_model, nlohmann::json::parse(s.model_config));
  ASSERT_TRUE(base.ok());
  absl::StatusOr<text::ClipTokenizer> tokenizer = text::ClipTokenizer::Load(s.vocab);
  ASSERT_TRUE(tokenizer.ok());
  generate::Pipeline pipeline(*base, std::make_shared<const text::ClipTokenizer>(*std::move(tokenizer)),
                              {});
  v1::GenerateConfig g;
  g.add_prompts(s.class_prompt);
  g.set_sampler(kClassImageSampler);
  g.set_steps(kClassImageSteps);
  g.set_guidance_scale(kClassImageGuidance);
  g.set_seed(s.seed + 1);
  g.set_width(s.resolution);
  g.set_height(s.resolution);
  absl::StatusOr<generate::GenerationSettings> settings = generate::ResolveGenerateConfig(g);
  ASSERT_TRUE(settings.ok());
  absl::StatusOr<std::vector<generate::GeneratedImage>> direct = pipeline.Generate(*settings);
  ASSERT_TRUE(direct.ok()) << direct.status();
  absl::StatusOr<image::Image> cached = image::DecodeImageFile((folder / "00001.png").string());
  ASSERT_TRUE(cached.ok());
  EXPECT_EQ(cached->pixels, (*direct)[0].image.pixels);

  // A second run reuses the folder: its files are not rewritten.
  const auto written = fs::last_write_time(folder / "00000.png");
  fs::remove(folder / "00001.png");  // would be regenerated if the folder were not reused
  absl::StatusOr<std::unique_ptr<Trainer>> again = testing::MakeTinyTrainer(s);
  EXPECT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(fs::exists(folder / "00001.png"));
  EXPECT_EQ(fs::last_write_time(folder / "00000.png"), written);
}

TEST_F(TrainOutputsTest, ResumeWithOtherResultSettingsIsRefusedNamingThem) {
  const TrainSettings s = Settings(v1::TRAIN_METHOD_LORA, "run");
  {
    absl::StatusOr<std::unique_ptr<Trainer>> trainer = testing::MakeTinyTrainer(s);
    ASSERT_TRUE(trainer.ok());
    ASSERT_TRUE((*trainer)->Run().ok());
  }
  const std::string checkpoint = s.output_dir + "/step-2";
  // Output settings may change.
  TrainSettings cadence = Settings(v1::TRAIN_METHOD_LORA, "run", [](auto& c) {
    c.set_checkpoint_every(1);
    c.set_checkpoints_to_keep(3);
  });
  absl::StatusOr<std::unique_ptr<Trainer>> same = testing::MakeTinyTrainer(cadence);
  ASSERT_TRUE(same.ok());
  EXPECT_TRUE((*same)->Resume(checkpoint).ok());
  // Result-changing ones may not; every differing field is named with both values.
  TrainSettings other = Settings(v1::TRAIN_METHOD_LORA, "run", [](auto& c) {
    c.set_lora_alpha(8);
    c.set_noise_offset(0.1);
  });
  absl::StatusOr<std::unique_ptr<Trainer>> changed = testing::MakeTinyTrainer(other);
  ASSERT_TRUE(changed.ok());
  const absl::Status refused = (*changed)->Resume(checkpoint);
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.message().find("lora_alpha (checkpoint 0.0, now 8.0)"), std::string::npos)
      << refused;
  EXPECT_NE(refused.message().find("noise_offset"), std::string::npos) << refused;
}

}  // namespace
}  // namespace likeness::train
