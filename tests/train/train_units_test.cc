// The trainer's pieces that need no model: config resolution, LR schedules, min-SNR weights,
// AdamW against hand-derived values, clipping, EMA, buckets and micro-conditioning, the data
// order, and the checkpoint commit sequence with its crash points.
#include <torch/torch.h>

#include <cmath>
#include <filesystem>

#include "common/atomic_file.h"
#include "common/config/proto_yaml.h"
#include "gtest/gtest.h"
#include "tests/test_data.h"
#include "worker/image/image.h"
#include "worker/train/checkpoint.h"
#include "worker/train/data_order.h"
#include "worker/train/diffusion_loss.h"
#include "worker/train/lr_schedule.h"
#include "worker/train/optimizer.h"
#include "worker/train/train_data.h"
#include "worker/train/train_settings.h"

namespace likeness::train {
namespace {
namespace fs = std::filesystem;

v1::TrainConfig MinimalConfig() {
  v1::TrainConfig c;
  c.set_method(v1::TRAIN_METHOD_LORA);
  c.set_base_model("/models/sdxl.safetensors");
  c.set_instance_dir("/data/dog");
  c.set_instance_prompt("a photo of {identifier} dog");
  c.set_output_dir("/out");
  return c;
}

TEST(TrainSettingsTest, DefaultsAreTheNamedConstants) {
  absl::StatusOr<TrainSettings> s = ResolveTrainConfig(MinimalConfig());
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->method, Method::kLora);
  EXPECT_EQ(s->instance_prompt, "a photo of sks dog");
  EXPECT_EQ(s->steps, kDefaultSteps);
  EXPECT_EQ(s->resolution, kDefaultResolution);
  EXPECT_DOUBLE_EQ(s->learning_rate, kDefaultLoraLearningRate);
  EXPECT_DOUBLE_EQ(s->text_encoder_learning_rate, kDefaultLoraLearningRate);
  EXPECT_DOUBLE_EQ(s->adamw.weight_decay, kDefaultAdamWeightDecay);
  EXPECT_DOUBLE_EQ(s->max_grad_norm, kDefaultMaxGradNorm);
  EXPECT_TRUE(s->bucketing);
  EXPECT_EQ(s->cache_dir, "/out/cache");
  EXPECT_EQ(s->max_consecutive_nan_skips, kDefaultMaxConsecutiveNanSkips);
  EXPECT_EQ(s->lr_schedule.total_steps, kDefaultSteps);
}

TEST(TrainSettingsTest, ErrorsNameTheField) {
  const auto error_of = [](const std::function<void(v1::TrainConfig&)>& edit) {
    v1::TrainConfig c = MinimalConfig();
    edit(c);
    absl::StatusOr<TrainSettings> s = ResolveTrainConfig(c);
    EXPECT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(s.status().message());
  };
  EXPECT_NE(error_of([](auto& c) { c.set_method(v1::TRAIN_METHOD_UNSPECIFIED); }).find("method"),
            std::string::npos);
  EXPECT_NE(error_of([](auto& c) { c.set_batch_size(-1); }).find("batch_size"), std::string::npos);
  EXPECT_NE(error_of([](auto& c) { c.set_lr_scheduler("cosine_restarts"); }).find("lr_scheduler"),
            std::string::npos);
  EXPECT_NE(error_of([](auto& c) { c.set_class_dir("/c"); }).find("class_prompt"),
            std::string::npos);
  EXPECT_NE(error_of([](auto& c) { c.set_method(v1::TRAIN_METHOD_TEXTUAL_INVERSION); })
                .find("ti_init_word"),
            std::string::npos);
  EXPECT_NE(error_of([](auto& c) { c.set_adam_beta2(1.0); }).find("adam_beta2"), std::string::npos);
  EXPECT_NE(error_of([](auto& c) { c.set_prediction_type("sample"); }).find("prediction_type"),
            std::string::npos);
  EXPECT_NE(error_of([](auto& c) { c.set_validation_every(10); }).find("validation_prompts"),
            std::string::npos);
}

TEST(TrainSettingsTest, YamlConfigMapsOntoTheSettings) {
  v1::TrainConfig c = MinimalConfig();
  ASSERT_TRUE(config::MergeYamlIntoProto(R"(method: pivotal_tuning
ti_init_word: man
ti_num_vectors: 2
lr_scheduler: cosine
lr_warmup_steps: 10
steps: 100
embedding_learning_rate: 1e-3
lora_unet_targets: [to_q, to_v]
lora_text_encoder_targets: self_attn.q_proj
snr_gamma: 5
prediction_type: v_prediction
bucketing: false
validation_every: 50
validation_prompts: ["{identifier} on the moon"]
)", "t.yaml", &c).ok());
  ASSERT_TRUE(config::ApplyOverrides({"adam_weight_decay=0", "batch_size=2"}, &c).ok());
  absl::StatusOr<TrainSettings> s = ResolveTrainConfig(c);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->method, Method::kPivotalTuning);
  EXPECT_EQ(s->lr_schedule.kind, LrScheduleKind::kCosine);
  EXPECT_EQ(s->lr_schedule.warmup_steps, 10);
  EXPECT_EQ(s->lora.unet_targets, (std::vector<std::string>{"to_q", "to_v"}));
  EXPECT_EQ(s->lora.text_encoder_targets, (std::vector<std::string>{"self_attn.q_proj"}));
  EXPECT_EQ(s->prediction, Prediction::kVPrediction);
  EXPECT_FALSE(s->bucketing);
  EXPECT_EQ(s->adamw.weight_decay, 0.0);  // explicitly set, not the default
  EXPECT_EQ(s->batch_size, 2);
  EXPECT_EQ(s->validation_prompts, (std::vector<std::string>{"sks on the moon"}));
  EXPECT_DOUBLE_EQ(s->embedding_learning_rate, 1e-3);
}

TEST(TrainSettingsTest, PivotalEmbeddingPhase) {
  v1::TrainConfig c = MinimalConfig();
  c.set_method(v1::TRAIN_METHOD_PIVOTAL_TUNING);
  c.set_ti_init_word("dog");
  c.set_steps(10);
  c.set_pivotal_embedding_fraction(0.3);
  absl::StatusOr<TrainSettings> s = ResolveTrainConfig(c);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->EmbeddingStopStep(), 3);
  c.set_pivotal_keep_training_embedding(true);
  EXPECT_EQ(ResolveTrainConfig(c)->EmbeddingStopStep(), 10);
}

TEST(LrScheduleTest, MatchesDiffusersGetScheduler) {
  LrScheduleSettings s{LrScheduleKind::kConstant, 0, 100};
  EXPECT_EQ(LrFactor(s, 0), 1.0);
  s = {LrScheduleKind::kConstantWithWarmup, 10, 100};
  EXPECT_EQ(LrFactor(s, 0), 0.0);  // transformers: the first update has rate 0
  EXPECT_DOUBLE_EQ(LrFactor(s, 5), 0.5);
  EXPECT_EQ(LrFactor(s, 10), 1.0);
  EXPECT_EQ(LrFactor(s, 99), 1.0);
  s = {LrScheduleKind::kLinear, 10, 110};
  EXPECT_DOUBLE_EQ(LrFactor(s, 5), 0.5);
  EXPECT_DOUBLE_EQ(LrFactor(s, 10), 1.0);
  EXPECT_DOUBLE_EQ(LrFactor(s, 60), 0.5);
  EXPECT_DOUBLE_EQ(LrFactor(s, 110), 0.0);
  EXPECT_DOUBLE_EQ(LrFactor(s, 200), 0.0);
  s = {LrScheduleKind::kCosine, 0, 100};
  EXPECT_DOUBLE_EQ(LrFactor(s, 0), 1.0);
  EXPECT_NEAR(LrFactor(s, 50), 0.5, 1e-15);
  EXPECT_NEAR(LrFactor(s, 25), 0.5 * (1 + std::cos(M_PI * 0.25)), 1e-15);
  EXPECT_NEAR(LrFactor(s, 100), 0.0, 1e-15);
}

TEST(DiffusionLossTest, MinSnrWeightsAsDiffusers) {
  const torch::Tensor snr = torch::tensor({0.5f, 5.0f, 20.0f});
  const torch::Tensor eps = MinSnrWeights(snr, 5.0, Prediction::kEpsilon);
  EXPECT_FLOAT_EQ(eps[0].item<float>(), 1.0f);         // min(0.5, 5) / 0.5
  EXPECT_FLOAT_EQ(eps[1].item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(eps[2].item<float>(), 5.0f / 20.0f);
  const torch::Tensor v = MinSnrWeights(snr, 5.0, Prediction::kVPrediction);
  EXPECT_FLOAT_EQ(v[0].item<float>(), 0.5f / 1.5f);
  EXPECT_FLOAT_EQ(v[2].item<float>(), 5.0f / 21.0f);
  EXPECT_TRUE(torch::equal(MinSnrWeights(snr, 0.0, Prediction::kEpsilon), torch::ones({3})));
}

TEST(DiffusionLossTest, PriorRowsAreWeightedSeparately) {
  // Two instance rows with squared errors 1 and 4, one class row with 9 (per element).
  const torch::Tensor target = torch::zeros({3, 1, 2, 2});
  const torch::Tensor pred = torch::tensor({1.0f, 2.0f, 3.0f}).view({3, 1, 1, 1}).expand({3, 1, 2, 2});
  const torch::Tensor weights = torch::tensor({1.0f, 0.5f, 100.0f});
  DiffusionLoss loss = ComputeDiffusionLoss(pred, target, weights, 2, 0.25);
  EXPECT_FLOAT_EQ(loss.instance.item<float>(), (1.0f + 0.5f * 4.0f) / 2);
  EXPECT_FLOAT_EQ(loss.prior.item<float>(), 9.0f);  // unweighted
  EXPECT_FLOAT_EQ(loss.total.item<float>(), 1.5f + 0.25f * 9.0f);
}

// torch.optim.AdamW(lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1) on one scalar
// w = 1 with gradients 0.5 then -1, derived by hand:
//   step 1: w = 1 * (1 - 0.01) = 0.99; m = 0.05; v = 0.00025; m^ = 0.5, v^ = 0.25
//           w -= 0.1 * 0.5 / (0.5 + 1e-8)                      -> 0.89000000002
//   step 2: w *= 0.99; m = 0.045 - 0.1 = -0.055; v = 0.00024975 + 0.001 = 0.00124975
//           m^ = -0.055 / 0.19; v^ = 0.00124975 / 0.001999; w -= 0.1 * m^ / (sqrt(v^) + 1e-8)
TEST(AdamWTest, MatchesHandDerivedTorchSemantics) {
  torch::Tensor w = torch::ones({1}, torch::kFloat64).requires_grad_(true);
  ParamGroup group{"g", {w}, 0.1, 0.1, false};
  AdamW adamw({group}, AdamWOptions{0.9, 0.999, 1e-8});
  w.mutable_grad() = torch::full({1}, 0.5, torch::kFloat64);
  adamw.Step(1.0);
  const double w1 = 0.99 - 0.1 * 0.5 / (0.5 + 1e-8);
  EXPECT_NEAR(w.item<double>(), w1, 1e-15);
  w.mutable_grad() = torch::full({1}, -1.0, torch::kFloat64);
  adamw.Step(1.0);
  const double m_hat = -0.055 / (1 - 0.81);
  const double v_hat = (0.999 * 0.00025 + 0.001) / (1 - 0.999 * 0.999);
  const double w2 = w1 * 0.99 - 0.1 * m_hat / (std::sqrt(v_hat) + 1e-8);
  EXPECT_NEAR(w.item<double>(), w2, 1e-14);
}

TEST(AdamWTest, SkipsFrozenGroupsAndMissingGradsAndRestoresState) {
  torch::Tensor a = torch::ones({2}).requires_grad_(true);
  torch::Tensor b = torch::ones({2}).requires_grad_(true);
  torch::Tensor c = torch::ones({2}).requires_grad_(true);
  AdamW adamw({{"live", {a, b}, 0.1, 0.0, false}, {"frozen", {c}, 0.1, 0.0, true}}, {});
  a.mutable_grad() = torch::ones({2});
  c.mutable_grad() = torch::ones({2});
  adamw.Step(1.0);
  EXPECT_FALSE(torch::equal(a, torch::ones({2})));
  EXPECT_TRUE(torch::equal(b, torch::ones({2})));  // no gradient: untouched, no state
  EXPECT_TRUE(torch::equal(c, torch::ones({2})));  // frozen group
  safetensors::NamedTensors state = adamw.StateTensors();
  ASSERT_EQ(state.size(), 3u);  // a only
  // A copy restored from the state continues identically.
  torch::Tensor a2 = a.detach().clone().requires_grad_(true);
  torch::Tensor b2 = b.detach().clone().requires_grad_(true);
  torch::Tensor c2 = c.detach().clone().requires_grad_(true);
  AdamW restored({{"live", {a2, b2}, 0.1, 0.0, false}, {"frozen", {c2}, 0.1, 0.0, true}}, {});
  ASSERT_TRUE(restored.LoadStateTensors({state.begin(), state.end()}).ok());
  a.mutable_grad() = torch::full({2}, 0.3);
  a2.mutable_grad() = torch::full({2}, 0.3);
  adamw.Step(0.5);
  restored.Step(0.5);
  EXPECT_TRUE(torch::equal(a, a2));
}

TEST(ClipGradNormTest, MatchesClipGradNorm) {
  std::vector<torch::Tensor> grads = {torch::full({4}, 3.0f), torch::Tensor(), torch::full({1}, 4.0f)};
  // norm = sqrt(4 * 9 + 16) = sqrt(52)
  const double norm = ClipGradNorm(grads, 1.0);
  EXPECT_NEAR(norm, std::sqrt(52.0), 1e-5);
  const float coef = static_cast<float>(1.0 / (std::sqrt(52.0) + kClipNormEpsilon));
  EXPECT_NEAR(grads[0][0].item<float>(), 3.0f * coef, 1e-6);
  std::vector<torch::Tensor> small = {torch::full({1}, 0.1f)};
  ClipGradNorm(small, 1.0);
  EXPECT_EQ(small[0].item<float>(), 0.1f);  // below the limit: unchanged
  std::vector<torch::Tensor> bad = {torch::full({1}, NAN)};
  EXPECT_FALSE(std::isfinite(ClipGradNorm(bad, 1.0)));
}

TEST(EmaTest, WarmsUpAsDiffusers) {
  torch::Tensor p = torch::zeros({1});
  Ema ema({p}, 0.99);
  p.fill_(1.0);
  ema.Update({p});  // decay min(0.99, 1/10) = 0.1: shadow = 0.9
  EXPECT_FLOAT_EQ(ema.shadow()[0].item<float>(), 0.9f);
  ema.Update({p});  // decay 2/11
  EXPECT_NEAR(ema.shadow()[0].item<float>(), 0.9f + 0.1f * (9.0f / 11.0f), 1e-6);
}

TEST(BucketsTest, SdxlListScaledForTinyResolutions) {
  const std::vector<Bucket> full = MakeBuckets(1024, 64, true);
  EXPECT_EQ(full.size(), std::size(kSdxlBuckets));
  EXPECT_EQ(full[0], (Bucket{1024, 1024}));
  const std::vector<Bucket> tiny = MakeBuckets(32, 8, true);
  for (const Bucket& b : tiny) {
    EXPECT_EQ(b.width % 8, 0);
    EXPECT_EQ(b.height % 8, 0);
  }
  EXPECT_EQ(tiny[0], (Bucket{32, 32}));
  EXPECT_EQ(MakeBuckets(32, 8, false), (std::vector<Bucket>{{32, 32}}));
  EXPECT_EQ(full[NearestBucket(full, 4000, 3000)], (Bucket{1152, 896}));
  EXPECT_EQ(full[NearestBucket(full, 3000, 4000)], (Bucket{896, 1152}));
  EXPECT_EQ(full[NearestBucket(full, 500, 500)], (Bucket{1024, 1024}));
}

TEST(PrepareImageTest, MicroConditioningComesFromTheRealCrop) {
  image::Image photo = image::MakeImage(100, 50, 3);
  for (size_t i = 0; i < photo.pixels.size(); ++i) photo.pixels[i] = static_cast<uint8_t>(i % 251);
  // Cover 32x32: scale 0.64 -> 64x32, crop 16 from the left.
  absl::StatusOr<PreparedImage> p = PrepareImage(photo, {32, 32}, false);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->pixels.sizes(), (std::vector<int64_t>{3, 32, 32}));
  EXPECT_EQ(p->original_height, 50);
  EXPECT_EQ(p->original_width, 100);
  EXPECT_EQ(p->crop_top, 0);
  EXPECT_EQ(p->crop_left, 16);
  EXPECT_EQ(p->target_height, 32);
  EXPECT_GE(p->pixels.min().item<float>(), -1.0f);
  EXPECT_LE(p->pixels.max().item<float>(), 1.0f);
  // A flip mirrors the crop: the left offset is measured from the other side.
  absl::StatusOr<PreparedImage> f = PrepareImage(photo, {40, 24}, true);
  absl::StatusOr<PreparedImage> n = PrepareImage(photo, {40, 24}, false);
  ASSERT_TRUE(f.ok() && n.ok());
  EXPECT_EQ(f->crop_left, 48 - n->crop_left - 40);
  // Same margins both ways (48 - 40 = 8, halved): the flipped crop is the mirror image.
  EXPECT_TRUE(torch::equal(f->pixels, n->pixels.flip({2})));
}

TEST(DataOrderTest, DeterministicRestorableAndCoversEveryImageEachEpoch) {
  const std::vector<int> buckets = {0, 1, 0, 0, 2, 1, 0, 0, 1};
  DataOrder a(buckets, 3, 2, 42, true);
  DataOrder b(buckets, 3, 2, 42, true);
  DataOrder other(buckets, 3, 2, 43, true);
  EXPECT_EQ(a.batches_per_epoch(), 3 + 2 + 1);  // 5 in bucket 0, 3 in 1, 1 in 2
  // Reading out of order (a resume at batch 13) gives the same batches as reading in order.
  std::vector<std::vector<int>> in_order;
  for (int64_t i = 0; i < 20; ++i) in_order.push_back(a.Batch(i).examples);
  for (int64_t i = 19; i >= 0; i -= 3) EXPECT_EQ(b.Batch(i).examples, in_order[i]) << i;
  bool differs = false;
  for (int64_t i = 0; i < 6; ++i) differs |= other.Batch(i).examples != in_order[i];
  EXPECT_TRUE(differs);
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    std::vector<int> seen;
    for (const BatchRef& batch : a.Epoch(epoch)) {
      for (int e : batch.examples) {
        EXPECT_EQ(buckets[e], batch.bucket);
        seen.push_back(e);
      }
    }
    std::sort(seen.begin(), seen.end());
    EXPECT_EQ(seen, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8}));
  }
  // Epochs are shuffled differently.
  bool epochs_differ = false;
  for (size_t i = 0; i < a.Epoch(0).size(); ++i) {
    epochs_differ |= a.Epoch(0)[i].examples != a.Epoch(1)[i].examples;
  }
  EXPECT_TRUE(epochs_differ);
  // Class images: a permutation per pass.
  std::vector<int> pass;
  for (int k = 0; k < 5; ++k) pass.push_back(ClassExample(k + 5, 5, 42));
  std::sort(pass.begin(), pass.end());
  EXPECT_EQ(pass, (std::vector<int>{0, 1, 2, 3, 4}));
}

class CheckpointProtocolTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::MakeTestTempDir("checkpoint_protocol"); }
  void TearDown() override { DisarmCrashPoints(); }

  absl::Status Write(int64_t step) {
    absl::StatusOr<CheckpointWriter> w = CheckpointWriter::Begin(dir_, step);
    if (!w.ok()) return w.status();
    absl::Status s = WriteFileAtomically(w->dir() + "/weights.bin", "payload");
    if (!s.ok()) return s;
    w->AddFile("weights.bin");
    return w->Commit().status();
  }
  std::string dir_;
};

TEST_F(CheckpointProtocolTest, CrashBeforeManifestOrRenameLeavesNoCheckpoint) {
  ASSERT_TRUE(Write(2).ok());
  ArmCrashPoint(kCrashBeforeManifest);
  absl::Status crashed = Write(4);
  EXPECT_EQ(crashed.code(), absl::StatusCode::kAborted);
  EXPECT_FALSE(fs::exists(dir_ + "/step-4"));
  EXPECT_TRUE(fs::exists(dir_ + "/step-4.tmp/weights.bin"));
  EXPECT_FALSE(fs::exists(dir_ + "/step-4.tmp/manifest.json"));
  DisarmCrashPoints();
  ArmCrashPoint(kCrashBeforeRename);
  EXPECT_EQ(Write(6).code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(fs::exists(dir_ + "/step-6.tmp/manifest.json"));
  EXPECT_FALSE(fs::exists(dir_ + "/step-6"));
  absl::StatusOr<std::optional<CheckpointInfo>> latest = FindLatestCheckpoint(dir_);
  ASSERT_TRUE(latest.ok());
  ASSERT_TRUE(latest->has_value());
  EXPECT_EQ((*latest)->step, 2);
  // The next attempt at step 4 clears the crash's leftovers and commits.
  DisarmCrashPoints();
  ASSERT_TRUE(Write(4).ok());
  EXPECT_EQ((*FindLatestCheckpoint(dir_))->step, 4);
  EXPECT_TRUE(fs::exists(dir_ + "/step-4/manifest.json"));
}

TEST_F(CheckpointProtocolTest, DamagedCheckpointIsSkippedAndPruningKeepsTheNewest) {
  ASSERT_TRUE(Write(1).ok());
  ASSERT_TRUE(Write(2).ok());
  ASSERT_TRUE(Write(3).ok());
  // A truncated payload makes step-3 incomplete: resume falls back to step-2.
  ASSERT_TRUE(WriteFileAtomically(dir_ + "/step-3/weights.bin", "pay").ok());
  EXPECT_EQ((*FindLatestCheckpoint(dir_))->step, 2);
  EXPECT_EQ(ReadCheckpoint(dir_ + "/step-3").status().code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(PruneCheckpoints(dir_, 1).ok());
  EXPECT_FALSE(fs::exists(dir_ + "/step-1"));
  EXPECT_TRUE(fs::exists(dir_ + "/step-2"));
}

}  // namespace
}  // namespace likeness::train
