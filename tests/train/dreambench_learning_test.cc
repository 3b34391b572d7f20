// The learning test of issue 4: DreamBooth on one real DreamBench subject (the first folder of
// $LIKENESS_DREAMBENCH_DIR) with the tiny golden bundle at a tiny resolution, on the CPU.
//
// The denoising loss is measured with FIXED noise and timesteps (kEvalTimesteps, one noise
// draw per image and timestep from kEvalSeed), so before/after differences are the model's,
// not the draw's:
//   * instance loss: the subject's photos with "a photo of sks <class>";
//   * class loss: the base model's own class images (class_images.h) with "a photo of a <class>".
// Measured on the shared 2-core machine (2026-11-22, subject backpack, 32 px, 30 steps, lr 4e-4,
// 4 generated class images, 5 timesteps), epsilon-MSE:
//   run                                instance loss   class loss
//   base model                         1.3278          1.3281
//   fine-tuned                         0.4452 (0.34x)  0.4498
//   fine-tuned with prior preservation 0.3635 (0.27x)  0.3645 (0.27x base, 0.81x fine-tuned)
// The golden tiny UNet is an untrained network (its base loss is above 1, worse than
// predicting zero noise), so whatever it is trained on it first learns to denoise at all, and
// the class loss FALLS with or without prior preservation: "the class loss stays near the
// base" cannot be shown with it. What the test holds to: fine-tuning cuts the subject's loss
// to well below the base's, and prior preservation leaves the class loss no worse than the
// base's and no worse than the run without it. The literal check needs trained SDXL weights.
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/test_data.h"
#include "tests/train/train_test_util.h"
#include "worker/embeddings/textual_inversion.h"
#include "worker/model/text/sdxl_conditioning.h"
#include "worker/sample/noise_schedule.h"
#include "worker/train/class_images.h"
#include "worker/train/trainer.h"

namespace likeness::train {
namespace {
namespace fs = std::filesystem;

constexpr int kResolution = 32;       // the tiny UNet's latents are 16x16
constexpr int kSteps = 30;
constexpr double kLearningRate = 4e-4;
constexpr int kNumClassImages = 4;
constexpr uint64_t kEvalSeed = 1234;
// Spread over the schedule, so the figure is not one noise level's.
constexpr int64_t kEvalTimesteps[] = {100, 300, 500, 700, 900};
// Thresholds, set with a margin from the measured figures above.
constexpr double kMaxInstanceRatio = 0.6;  // fine-tuned instance loss / base's (measured 0.34)

struct EvalSet {
  std::vector<CachedLatent> latents;
  std::string prompt;
};

// Mean epsilon-MSE of the UNet over `set` x kEvalTimesteps with fixed noise.
double FixedNoiseLoss(model::SdxlModels& models, const text::ClipTokenizer& tokenizer,
                      const EvalSet& set) {
  torch::NoGradGuard no_grad;
  models.unet->eval();
  const auto ids = [&](text::PadStyle pad) {
    const std::vector<int> v = tokenizer.Tokenize(set.prompt, pad);
    return torch::tensor(std::vector<int64_t>(v.begin(), v.end()), torch::kInt64).unsqueeze(0);
  };
  const model::SdxlPromptEmbeds cond =
      model::EncodeSdxlPrompt(models.text_encoder, models.text_encoder_2,
                              ids(embeddings::kPadStyle1), ids(embeddings::kPadStyle2));
  torch::Generator generator = at::detail::createCPUGenerator(kEvalSeed);
  const sample::NoiseSchedule schedule;
  double total = 0.0;
  int64_t count = 0;
  for (const CachedLatent& latent : set.latents) {
    const torch::Tensor x0 = latent.latents.unsqueeze(0);  // [1, C, h, w]
    for (const int64_t t : kEvalTimesteps) {
      const torch::Tensor noise = torch::randn(x0.sizes(), generator, torch::kFloat32);
      const torch::Tensor timestep = torch::tensor({t}, torch::kInt64);
      const torch::Tensor prediction =
          models.unet->forward(schedule.AddNoise(x0, noise, timestep), timestep,
                               cond.prompt_embeds, cond.pooled_prompt_embeds,
                               latent.time_ids.unsqueeze(0));
      total += torch::mse_loss(prediction, noise).item<double>();
      ++count;
    }
  }
  models.unet->train();
  return total / count;
}

// The class of `subject` from DreamBench's prompts_and_classes.txt ("backpack,backpack").
std::string SubjectClass(const std::string& subject) {
  std::ifstream in(testing::DreamBenchDir() + "/prompts_and_classes.txt");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(subject + ",", 0) == 0) return line.substr(subject.size() + 1);
  }
  return "object";
}

class DreamBenchLearningTest : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("LIKENESS_HASH_CACHE", "off", 1);
    root_ = testing::MakeTestTempDir("dreambench_learning");
    subject_ = testing::FirstSubjectDir();
    ASSERT_FALSE(subject_.empty()) << "no subject folder in " << testing::DreamBenchDir()
                                   << " (set " << testing::kDreamBenchDirEnv << ")";
    class_name_ = SubjectClass(fs::path(subject_).filename().string());
    absl::StatusOr<text::ClipTokenizer> tokenizer =
        text::ClipTokenizer::Load(testing::BpeVocabPath());
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    tokenizer_ = std::make_unique<text::ClipTokenizer>(*std::move(tokenizer));
  }

  TrainSettings Settings(const std::string& out, bool prior) {
    v1::TrainConfig c = testing::TinyTrainConfig(v1::TRAIN_METHOD_DREAMBOOTH, subject_,
                                                 root_ + "/" + out);
    c.set_instance_prompt("a photo of {identifier} " + class_name_);
    c.set_resolution(kResolution);
    c.set_steps(kSteps);
    c.set_learning_rate(kLearningRate);
    c.set_cache_dir(root_ + "/cache");
    if (prior) {
      c.set_class_dir(root_ + "/class");  // absent: every class image is generated
      c.set_class_prompt("a photo of a " + class_name_);
      c.set_num_class_images(kNumClassImages);
      c.set_prior_loss_weight(1.0);
    }
    absl::StatusOr<TrainSettings> s = ResolveTrainConfig(c);
    EXPECT_TRUE(s.ok()) << s.status();
    return *s;
  }

  EvalSet InstanceSet(Trainer& trainer, model::SdxlModels& models) {
    EvalSet set{{}, trainer.settings().instance_prompt};
    for (const TrainImage& image : trainer.instance_images()) {
      absl::StatusOr<CachedLatent> c =
          trainer.cache().Latent(image.path, trainer.buckets()[image.bucket], false, models.vae);
      EXPECT_TRUE(c.ok()) << c.status();
      if (c.ok()) set.latents.push_back(*c);
    }
    return set;
  }

  EvalSet ClassSet(Trainer& trainer, model::SdxlModels& models) {
    const TrainSettings& s = trainer.settings();
    ClassImageRequest request;
    request.cache_dir = s.cache_dir;
    request.model_key = *ModelKey(s.base_model, s.model_config);
    request.class_prompt = s.class_prompt;
    request.count = kNumClassImages;
    request.resolution = s.resolution;
    request.seed = s.seed;
    const fs::path dir = fs::path(s.cache_dir) / kClassImageSubdir / ClassImageKey(request);
    EvalSet set{{}, s.class_prompt};
    std::vector<std::string> files;
    for (const auto& entry : fs::directory_iterator(dir)) files.push_back(entry.path().string());
    std::sort(files.begin(), files.end());
    EXPECT_EQ(static_cast<int>(files.size()), kNumClassImages);
    for (const std::string& file : files) {
      absl::StatusOr<CachedLatent> c =
          trainer.cache().Latent(file, Bucket{kResolution, kResolution}, false, models.vae);
      EXPECT_TRUE(c.ok()) << c.status();
      if (c.ok()) set.latents.push_back(*c);
    }
    return set;
  }

  std::string root_, subject_, class_name_;
  std::unique_ptr<text::ClipTokenizer> tokenizer_;
};

TEST_F(DreamBenchLearningTest, FineTuningLowersTheSubjectLossAndPriorPreservationKeepsTheClass) {
  // With prior preservation: the class images come from the base model first.
  model::SdxlModels prior_models;
  absl::StatusOr<std::unique_ptr<Trainer>> prior =
      testing::MakeTinyTrainer(Settings("prior", true), {}, &prior_models);
  ASSERT_TRUE(prior.ok()) << prior.status();
  const EvalSet instance = InstanceSet(**prior, prior_models);
  const EvalSet klass = ClassSet(**prior, prior_models);
  ASSERT_FALSE(instance.latents.empty());
  ASSERT_EQ(static_cast<int>(klass.latents.size()), kNumClassImages);
  // Nothing has trained yet: these are the base model's losses.
  const double base_instance = FixedNoiseLoss(prior_models, *tokenizer_, instance);
  const double base_class = FixedNoiseLoss(prior_models, *tokenizer_, klass);
  ASSERT_TRUE((*prior)->Run().ok());
  const double prior_instance = FixedNoiseLoss(prior_models, *tokenizer_, instance);
  const double prior_class = FixedNoiseLoss(prior_models, *tokenizer_, klass);

  model::SdxlModels plain_models;
  absl::StatusOr<std::unique_ptr<Trainer>> plain =
      testing::MakeTinyTrainer(Settings("plain", false), {}, &plain_models);
  ASSERT_TRUE(plain.ok()) << plain.status();
  ASSERT_TRUE((*plain)->Run().ok());
  const double plain_instance = FixedNoiseLoss(plain_models, *tokenizer_, instance);
  const double plain_class = FixedNoiseLoss(plain_models, *tokenizer_, klass);

  std::printf(
      "DreamBench %s (%s), %d px, %d steps: instance loss base %.4f, fine-tuned %.4f, with prior "
      "%.4f; class loss base %.4f, fine-tuned %.4f, with prior %.4f\n",
      fs::path(subject_).filename().c_str(), class_name_.c_str(), kResolution, kSteps,
      base_instance, plain_instance, prior_instance, base_class, plain_class, prior_class);
  EXPECT_LT(plain_instance, kMaxInstanceRatio * base_instance);
  EXPECT_LT(prior_instance, kMaxInstanceRatio * base_instance);
  EXPECT_LE(prior_class, base_class);
  EXPECT_LE(prior_class, plain_class);
}

}  // namespace
}  // namespace likeness::train
