// The trainer on the tiny golden SDXL bundle (CPU): what one step changes for each method,
// LoRA's zero start, bit-identical resume, NaN skipping, checkpoint crashes and the cache.
#include "worker/train/trainer.h"

#include <filesystem>
#include <fstream>
#include <limits>
#include <set>

#include "common/atomic_file.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/test_data.h"
#include "tests/train/train_test_util.h"
#include "worker/train/checkpoint.h"

namespace likeness::train {
namespace {
namespace fs = std::filesystem;
using testing::MakeTinyTrainer;
using testing::SnapshotModels;
using testing::TinyTrainConfig;

// Square, landscape and portrait photos: three buckets at the tiny resolution.
const std::vector<std::pair<int, int>> kPhotoSizes = {{32, 32}, {48, 36}, {36, 48}, {40, 40}};

class TrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("LIKENESS_HASH_CACHE", "off", 1);
    root_ = testing::MakeTestTempDir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    subject_ = root_ + "/subject";
    testing::WriteSubjectFolder(subject_, kPhotoSizes, 1);
  }
  void TearDown() override { DisarmCrashPoints(); }

  TrainSettings Settings(v1::TrainMethod method, const std::string& out,
                         const std::function<void(v1::TrainConfig&)>& edit = {}) {
    v1::TrainConfig c = TinyTrainConfig(method, subject_, root_ + "/" + out);
    c.set_cache_dir(root_ + "/cache");
    if (edit) edit(c);
    absl::StatusOr<TrainSettings> s = ResolveTrainConfig(c);
    EXPECT_TRUE(s.ok()) << s.status();
    return *s;
  }

  std::unique_ptr<Trainer> Make(const TrainSettings& s, TrainHooks hooks = {},
                                model::SdxlModels* models = nullptr) {
    absl::StatusOr<std::unique_ptr<Trainer>> t = MakeTinyTrainer(s, std::move(hooks), models);
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? std::move(*t) : nullptr;
  }

  static std::vector<torch::Tensor> Copies(const std::vector<torch::Tensor>& tensors) {
    std::vector<torch::Tensor> out;
    for (const torch::Tensor& t : tensors) out.push_back(t.detach().clone());
    return out;
  }

  void ExpectBitIdenticalResume(v1::TrainMethod method);

  std::string root_, subject_;
};

TEST_F(TrainerTest, LoraStepChangesOnlyLoraTensorsAndStartsAtTheBaseOutput) {
  const TrainSettings s = Settings(v1::TRAIN_METHOD_LORA, "out");
  // The base UNet's output on fixed inputs, before any LoRA exists.
  model::SdxlModels models;
  std::unique_ptr<Trainer> trainer;
  torch::manual_seed(0);
  const torch::Tensor x = torch::randn({1, 4, 16, 16});
  const torch::Tensor t = torch::tensor({500}, torch::kInt64);
  const torch::Tensor ctx = torch::randn({1, 77, 64});
  const torch::Tensor pooled = torch::randn({1, 32});
  const torch::Tensor ids = torch::tensor({{32.f, 32.f, 0.f, 0.f, 32.f, 32.f}});
  {
    nlohmann::json config = nlohmann::json::parse(s.model_config);
    model::SdxlLoadReport report;
    auto base = model::LoadSdxlModels(s.base_model, {}, &report, config);
    ASSERT_TRUE(base.ok());
    torch::NoGradGuard no_grad;
    const torch::Tensor before = base->unet->forward(x, t, ctx, pooled, ids);
    trainer = Make(s, {}, &models);
    ASSERT_NE(trainer, nullptr);
    models.unet->eval();
    // B = 0: the attached, untrained LoRA leaves the output bit-identical.
    EXPECT_TRUE(torch::equal(models.unet->forward(x, t, ctx, pooled, ids), before));
    models.unet->train();
  }
  ASSERT_NE(trainer->lora(), nullptr);
  const auto base_before = SnapshotModels(models);
  const std::vector<torch::Tensor> lora_before = Copies(trainer->params());
  ASSERT_EQ(lora_before.size(), static_cast<size_t>(trainer->lora()->NumModules() * 2));
  ASSERT_TRUE(trainer->Step().ok());
  for (const auto& [name, tensor] : SnapshotModels(models)) {
    EXPECT_TRUE(torch::equal(tensor, base_before.at(name))) << name;
  }
  const std::vector<torch::Tensor> lora_after = trainer->params();
  int changed_up = 0;
  for (size_t i = 1; i < lora_after.size(); i += 2) {  // down, up per module
    changed_up += !torch::equal(lora_after[i], lora_before[i]);
  }
  EXPECT_EQ(changed_up, trainer->lora()->NumModules());
  EXPECT_TRUE(std::isfinite(trainer->losses().at(0)));
}

TEST_F(TrainerTest, TextualInversionStepChangesOnlyTheNewVectors) {
  const TrainSettings s = Settings(v1::TRAIN_METHOD_TEXTUAL_INVERSION, "out", [](auto& c) {
    c.set_ti_num_vectors(2);
  });
  model::SdxlModels models;
  std::unique_ptr<Trainer> trainer = Make(s, {}, &models);
  ASSERT_NE(trainer, nullptr);
  ASSERT_EQ(trainer->params().size(), 2u);  // sks.clip_l, sks.clip_g
  EXPECT_EQ(trainer->params()[0].size(0), 2);
  const auto base_before = SnapshotModels(models);
  const std::vector<torch::Tensor> before = Copies(trainer->params());
  ASSERT_TRUE(trainer->Step().ok());
  for (const auto& [name, tensor] : SnapshotModels(models)) {
    EXPECT_TRUE(torch::equal(tensor, base_before.at(name))) << name;
  }
  for (size_t i = 0; i < before.size(); ++i) {
    EXPECT_FALSE(torch::equal(trainer->params()[i], before[i])) << trainer->param_names()[i];
  }
}

TEST_F(TrainerTest, DreamBoothStepChangesTheUnetOnly) {
  const TrainSettings s = Settings(v1::TRAIN_METHOD_DREAMBOOTH, "out");
  model::SdxlModels models;
  std::unique_ptr<Trainer> trainer = Make(s, {}, &models);
  ASSERT_NE(trainer, nullptr);
  const auto before = SnapshotModels(models);
  ASSERT_TRUE(trainer->Step().ok());
  int unet_changed = 0, unet_params = 0;
  for (const auto& [name, tensor] : SnapshotModels(models)) {
    if (name.rfind("unet.", 0) == 0) {
      ++unet_params;
      unet_changed += !torch::equal(tensor, before.at(name));
    } else {
      EXPECT_TRUE(torch::equal(tensor, before.at(name))) << name;
    }
  }
  // Every UNet weight moves (weight decay alone moves those without gradient).
  EXPECT_GT(unet_changed, unet_params * 9 / 10);
}

// K steps straight vs K/2 steps, a checkpoint, a fresh trainer resuming it, K/2 more: the
// losses, trained tensors, EMA and metrics must match bit for bit. The settings exercise every
// random stream and every piece of state: flips, offset noise, min-SNR, accumulation, EMA, a
// warmed-up cosine schedule, LoRA dropout (libtorch's default generator) and, for pivotal
// tuning, the embedding freezing half-way.
void TrainerTest::ExpectBitIdenticalResume(v1::TrainMethod method) {
  const auto edit = [&](v1::TrainConfig& c) {
    c.set_steps(4);
    c.set_random_flip(true);
    c.set_snr_gamma(5.0);
    c.set_noise_offset(0.05);
    c.set_gradient_accumulation_steps(2);
    c.set_batch_size(2);
    c.set_ema_decay(0.9);
    c.set_lr_scheduler("cosine");
    c.set_lr_warmup_steps(1);
    if (method != v1::TRAIN_METHOD_TEXTUAL_INVERSION) c.set_lora_dropout(0.1);
    if (method == v1::TRAIN_METHOD_PIVOTAL_TUNING) c.set_pivotal_embedding_fraction(0.25);
  };
  std::unique_ptr<Trainer> straight = Make(Settings(method, "straight", edit));
  ASSERT_NE(straight, nullptr);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(straight->Step().ok());

  const TrainSettings split = Settings(method, "split", edit);
  std::string checkpoint;
  {
    std::unique_ptr<Trainer> first = Make(split);
    ASSERT_NE(first, nullptr);
    for (int i = 0; i < 2; ++i) ASSERT_TRUE(first->Step().ok());
    absl::StatusOr<std::string> dir = first->SaveCheckpoint();
    ASSERT_TRUE(dir.ok()) << dir.status();
    checkpoint = *dir;
    // A step past the checkpoint that a crash loses: it must leave no trace.
    ASSERT_TRUE(first->Step().ok());
  }
  std::unique_ptr<Trainer> resumed = Make(split);
  ASSERT_NE(resumed, nullptr);
  ASSERT_TRUE(resumed->Resume(checkpoint).ok());
  EXPECT_EQ(resumed->step(), 2);
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(resumed->Step().ok());

  for (int64_t step : {2, 3}) {
    EXPECT_EQ(resumed->losses().at(step), straight->losses().at(step)) << step;
  }
  ASSERT_FALSE(straight->params().empty());
  ASSERT_EQ(resumed->params().size(), straight->params().size());
  for (size_t i = 0; i < straight->params().size(); ++i) {
    EXPECT_TRUE(torch::equal(resumed->params()[i], straight->params()[i]))
        << straight->param_names()[i];
  }
  ASSERT_EQ(resumed->ema().shadow().size(), straight->ema().shadow().size());
  for (size_t i = 0; i < straight->ema().shadow().size(); ++i) {
    EXPECT_TRUE(torch::equal(resumed->ema().shadow()[i], straight->ema().shadow()[i]));
  }
  // metrics.jsonl describes one uninterrupted run: steps 1..4 once each.
  std::ifstream metrics(split.output_dir + "/metrics.jsonl");
  std::vector<int64_t> steps;
  for (std::string line; std::getline(metrics, line);) {
    steps.push_back(nlohmann::json::parse(line)["step"].get<int64_t>());
  }
  EXPECT_EQ(steps, (std::vector<int64_t>{1, 2, 3, 4}));
}

TEST_F(TrainerTest, ResumeIsBitIdenticalLora) { ExpectBitIdenticalResume(v1::TRAIN_METHOD_LORA); }

TEST_F(TrainerTest, ResumeIsBitIdenticalTextualInversion) {
  ExpectBitIdenticalResume(v1::TRAIN_METHOD_TEXTUAL_INVERSION);
}

TEST_F(TrainerTest, ResumeIsBitIdenticalPivotalTuning) {
  ExpectBitIdenticalResume(v1::TRAIN_METHOD_PIVOTAL_TUNING);
}

TEST_F(TrainerTest, NanLossIsSkippedAndCountedAndTooManyStopTheRun) {
  TrainHooks hooks;
  hooks.nan_loss_steps = {1};
  std::unique_ptr<Trainer> trainer = Make(Settings(v1::TRAIN_METHOD_LORA, "out"), hooks);
  ASSERT_NE(trainer, nullptr);
  ASSERT_TRUE(trainer->Step().ok());
  const std::vector<torch::Tensor> after_first = Copies(trainer->params());
  ASSERT_TRUE(trainer->Step().ok());
  EXPECT_EQ(trainer->skipped_steps(), 1);
  EXPECT_TRUE(std::isnan(trainer->losses().at(1)));
  for (size_t i = 0; i < after_first.size(); ++i) {
    EXPECT_TRUE(torch::equal(trainer->params()[i], after_first[i]));  // no update
  }
  ASSERT_TRUE(trainer->Step().ok());  // a good step resets the run of skips
  EXPECT_FALSE(std::isnan(trainer->losses().at(2)));

  hooks.nan_loss_steps = {0, 1, 2};
  std::unique_ptr<Trainer> diverged =
      Make(Settings(v1::TRAIN_METHOD_LORA, "diverged",
                    [](auto& c) { c.set_max_consecutive_nan_skips(2); }),
           hooks);
  ASSERT_NE(diverged, nullptr);
  ASSERT_TRUE(diverged->Step().ok());
  const absl::Status stopped = diverged->Step();
  EXPECT_EQ(stopped.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(stopped.message().find("max_consecutive_nan_skips"), std::string::npos) << stopped;
}

TEST_F(TrainerTest, CrashedCheckpointIsIgnoredAndRunTrainingResumesTheLatest) {
  TrainSettings s = Settings(v1::TRAIN_METHOD_LORA, "run", [](auto& c) {
    c.set_steps(4);
    c.set_checkpoint_every(2);
  });
  ArmCrashPoint(kCrashBeforeRename);
  {
    std::unique_ptr<Trainer> trainer = Make(s);
    ASSERT_NE(trainer, nullptr);
    for (int i = 0; i < 2; ++i) ASSERT_TRUE(trainer->Step().ok());
    DisarmCrashPoints();
    ASSERT_TRUE(trainer->SaveCheckpoint().ok());  // step-2
    ASSERT_TRUE(trainer->Step().ok());
    ArmCrashPoint(kCrashBeforeManifest);
    ASSERT_TRUE(trainer->Step().ok());
    EXPECT_EQ(trainer->SaveCheckpoint().status().code(), absl::StatusCode::kAborted);
  }
  DisarmCrashPoints();
  EXPECT_TRUE(fs::exists(s.output_dir + "/step-4.tmp"));
  EXPECT_FALSE(fs::exists(s.output_dir + "/step-4"));
  EXPECT_EQ((*FindLatestCheckpoint(s.output_dir))->step, 2);
  // The library entry point resumes from step-2 and finishes the run.
  s.resume = true;
  std::vector<std::string> events;
  TrainHooks hooks;
  hooks.progress = [&](const TrainProgress& p) {
    if (p.event != "step") events.push_back(p.event);
  };
  absl::StatusOr<TrainResult> result = RunTraining(s, hooks);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->steps, 4);
  ASSERT_FALSE(events.empty());
  EXPECT_NE(std::find_if(events.begin(), events.end(),
                         [](const std::string& e) { return e.rfind("resumed", 0) == 0; }),
            events.end());
  absl::StatusOr<CheckpointInfo> final_checkpoint = ReadCheckpoint(s.output_dir + "/step-4");
  ASSERT_TRUE(final_checkpoint.ok()) << final_checkpoint.status();
  EXPECT_TRUE(fs::exists(s.output_dir + "/step-4/" + kLoraFileName));
  EXPECT_TRUE(fs::exists(s.output_dir + "/step-4/" + kStateTensorsName));
  // The final LoRA loads back through the LoRA library (kohya format).
  model::SdxlModels models;
  auto fresh = Make(Settings(v1::TRAIN_METHOD_LORA, "reload"), {}, &models);
  ASSERT_NE(fresh, nullptr);
  EXPECT_TRUE(fresh->lora()->LoadWeights(s.output_dir + "/step-4/" + kLoraFileName).ok());
}

TEST_F(TrainerTest, LatentsAreCachedOnceAndReusedAcrossRuns) {
  const TrainSettings s = Settings(v1::TRAIN_METHOD_LORA, "a");
  std::unique_ptr<Trainer> first = Make(s);
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->cache().computed(), static_cast<int64_t>(kPhotoSizes.size()));
  ASSERT_TRUE(first->Step().ok());
  // Another trial (other seed, other output) reads every latent from the cache.
  std::unique_ptr<Trainer> second = Make(Settings(v1::TRAIN_METHOD_LORA, "b", [](auto& c) {
    c.set_seed(99);
  }));
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(second->cache().computed(), 0);
  EXPECT_EQ(second->cache().loaded(), static_cast<int64_t>(kPhotoSizes.size()));
  // The photos fall into several buckets.
  std::set<int> buckets;
  for (const TrainImage& image : first->instance_images()) buckets.insert(image.bucket);
  EXPECT_GE(buckets.size(), 2u);
  // The caption file of the first photo is used instead of the instance prompt.
  EXPECT_EQ(first->instance_images()[0].caption, "a sks dog on a sofa");
  EXPECT_EQ(first->instance_images()[1].caption, "a photo of sks dog");
}

TEST_F(TrainerTest, ValidationWritesImagesAndLeavesTheRunUnchanged) {
  const auto edit = [](v1::TrainConfig& c) {
    c.set_steps(2);
    c.set_lora_dropout(0.1);
  };
  std::unique_ptr<Trainer> plain = Make(Settings(v1::TRAIN_METHOD_LORA, "plain", edit));
  ASSERT_NE(plain, nullptr);
  ASSERT_TRUE(plain->Run().ok());
  const TrainSettings s = Settings(v1::TRAIN_METHOD_LORA, "validated", [&](auto& c) {
    edit(c);
    c.set_validation_every(1);
    c.add_validation_prompts("a photo of {identifier} dog on the beach");
  });
  std::unique_ptr<Trainer> validated = Make(s);
  ASSERT_NE(validated, nullptr);
  ASSERT_TRUE(validated->Run().ok());
  EXPECT_TRUE(fs::exists(s.output_dir + "/validation/step-1/0_0.png"));
  EXPECT_TRUE(fs::exists(s.output_dir + "/validation/step-2/0_0.png"));
  for (size_t i = 0; i < plain->params().size(); ++i) {
    EXPECT_TRUE(torch::equal(plain->params()[i], validated->params()[i]));
  }
}

TEST_F(TrainerTest, PriorPreservationTrainsOnClassImagesInTheBatchBucket) {
  testing::WriteSubjectFolder(root_ + "/class", {{32, 32}, {40, 40}, {64, 48}}, 2);
  const TrainSettings s = Settings(v1::TRAIN_METHOD_DREAMBOOTH, "out", [&](auto& c) {
    c.set_class_dir(root_ + "/class");
    c.set_class_prompt("a photo of a dog");
    c.set_prior_loss_weight(0.5);
  });
  std::unique_ptr<Trainer> trainer = Make(s);
  ASSERT_NE(trainer, nullptr);
  const int64_t instance_latents = trainer->cache().computed();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(trainer->Step().ok());
  // Class latents were made on demand, in the buckets the instance batches used.
  EXPECT_GT(trainer->cache().computed(), instance_latents);
  EXPECT_TRUE(std::isfinite(trainer->losses().at(2)));
  // An empty class folder with no num_class_images to generate is refused, naming the field.
  fs::create_directories(root_ + "/empty_class");
  const TrainSettings empty = Settings(v1::TRAIN_METHOD_DREAMBOOTH, "empty", [&](auto& c) {
    c.set_class_dir(root_ + "/empty_class");
    c.set_class_prompt("a photo of a dog");
  });
  absl::StatusOr<std::unique_ptr<Trainer>> refused = testing::MakeTinyTrainer(empty);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("class_dir"), std::string::npos) << refused.status();
  // (More class images than the folder holds are generated: train_outputs_test.)
}

TEST_F(TrainerTest, ResumeIsBitIdenticalDreamBooth) {
  // The UNet comes back from unet.safetensors, which the checkpoint stores once.
  ExpectBitIdenticalResume(v1::TRAIN_METHOD_DREAMBOOTH);
}

}  // namespace
}  // namespace likeness::train
