// Unit tests of the evaluator's encoders (worker/model/vision): config parsing, the published
// parameter counts of the real models, state-dict names, and loading from the layouts users have
// (folders, single files, full CLIPModel files, original DINO names, no config.json). Numerical
// agreement with transformers is the golden test's job (tests/model/golden_*vision*.cc).
#include <filesystem>
#include <fstream>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "common/safetensors/safetensors_file.h"
#include "common/safetensors/writer.h"
#include "tests/eval/eval_fixtures.h"
#include "tests/test_data.h"
#include "worker/model/layers.h"
#include "worker/model/vision/dino_rename_table.h"
#include "worker/model/vision/vision_checkpoint.h"

namespace likeness::model {
namespace {

namespace fs = std::filesystem;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using nlohmann::json;

// Published sizes: openai/clip-vit-large-patch14's CLIPVisionModelWithProjection and
// facebook/dino-vits16's ViTModel without pooler.
constexpr int64_t kClipVitL14VisionParameters = 303'966'208;
constexpr int64_t kDinoVitS16Parameters = 21'665'664;
constexpr uint64_t kSeed = 77;

// openai/clip-vit-large-patch14's config.json, the fields that matter.
constexpr char kOpenAiClipConfig[] = R"({
  "architectures": ["CLIPModel"], "initializer_factor": 1.0, "logit_scale_init_value": 2.6592,
  "model_type": "clip", "projection_dim": 768,
  "text_config": {"hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12,
                  "num_hidden_layers": 12, "projection_dim": 768, "bos_token_id": 0,
                  "eos_token_id": 2, "pad_token_id": 1, "model_type": "clip_text_model",
                  "hidden_act": "quick_gelu", "dropout": 0.0},
  "vision_config": {"hidden_size": 1024, "image_size": 224, "intermediate_size": 4096,
                    "model_type": "clip_vision_model", "num_attention_heads": 16,
                    "num_hidden_layers": 24, "patch_size": 14, "projection_dim": 768,
                    "hidden_act": "quick_gelu", "dropout": 0.0, "layer_norm_eps": 1e-05}})";

// facebook/dino-vits16's config.json.
constexpr char kDinoVitS16Config[] = R"({
  "architectures": ["ViTModel"], "attention_probs_dropout_prob": 0.0, "hidden_act": "gelu",
  "hidden_dropout_prob": 0.0, "hidden_size": 384, "image_size": 224, "initializer_range": 0.02,
  "intermediate_size": 1536, "layer_norm_eps": 1e-12, "model_type": "vit",
  "num_attention_heads": 6, "num_channels": 3, "num_hidden_layers": 12, "patch_size": 16,
  "qkv_bias": true, "torch_dtype": "float32", "transformers_version": "4.13.0.dev0"})";

std::set<std::string> Names(const torch::nn::Module& module) {
  std::set<std::string> names;
  for (const auto& [name, tensor] : ModuleStateDict(module)) names.insert(name);
  return names;
}

void WriteDict(const std::string& path, const StateDict& dict) {
  ASSERT_TRUE(safetensors::WriteSafetensors(path, safetensors::NamedTensors(dict.begin(), dict.end())).ok());
}

StateDict ReadDict(const std::string& path) {
  auto file = safetensors::SafetensorsFile::Open(path);
  EXPECT_TRUE(file.ok()) << file.status();
  absl::StatusOr<StateDict> dict = ReadStateDict(**file);
  EXPECT_TRUE(dict.ok()) << dict.status();
  return dict.ok() ? *dict : StateDict();
}

// The golden CLIP vision file: its input and image_embeds.
struct GoldenClip {
  torch::Tensor pixels, image_embeds;
};
GoldenClip ReadGoldenClip() {
  auto files = likeness::testing::GoldenFilesOfClass(likeness::testing::kGoldenClipVisionClass);
  EXPECT_TRUE(files.ok()) << files.status();
  auto file = safetensors::SafetensorsFile::Open(files->front().safetensors);
  return {*(*file)->Get("__input__.pixel_values"), *(*file)->Get("__output__.image_embeds")};
}

TEST(ClipVisionConfigTest, ReadsTheVisionHalfOfOpenAisClipConfig) {
  absl::StatusOr<ClipVisionConfig> config = ClipVisionConfig::FromJsonText(kOpenAiClipConfig);
  ASSERT_TRUE(config.ok()) << config.status();
  const ClipVisionConfig want = ClipVisionConfig::OpenAiVitL14();
  EXPECT_EQ(config->hidden_size, want.hidden_size);
  EXPECT_EQ(config->intermediate_size, want.intermediate_size);
  EXPECT_EQ(config->num_hidden_layers, want.num_hidden_layers);
  EXPECT_EQ(config->num_attention_heads, want.num_attention_heads);
  EXPECT_EQ(config->patch_size, want.patch_size);
  EXPECT_EQ(config->image_size, want.image_size);
  EXPECT_EQ(config->projection_dim, want.projection_dim);
  EXPECT_EQ(config->num_positions(), 257);
}

TEST(ClipVisionConfigTest, TopLevelProjectionDimWinsInAFullConfig) {
  json config = json::parse(kOpenAiClipConfig);
  config["vision_config"].erase("projection_dim");  // older configs lack it
  EXPECT_EQ(ClipVisionConfig::FromJson(config)->projection_dim, 768);
  config["projection_dim"] = 512;
  EXPECT_EQ(ClipVisionConfig::FromJson(config)->projection_dim, 512);
}

TEST(ClipVisionConfigTest, ErrorsNameTheField) {
  absl::StatusOr<ClipVisionConfig> act =
      ClipVisionConfig::FromJsonText(R"({"model_type": "clip_vision_model", "hidden_act": "relu"})");
  EXPECT_THAT(act.status().message(), HasSubstr("hidden_act"));
  absl::StatusOr<ClipVisionConfig> heads =
      ClipVisionConfig::FromJsonText(R"({"hidden_size": 32, "num_attention_heads": 5})");
  EXPECT_THAT(heads.status().message(), HasSubstr("num_attention_heads"));
  EXPECT_THAT(ClipVisionConfig::FromJsonText(R"({"model_type": "vit"})").status().message(),
              HasSubstr("model_type"));
  EXPECT_THAT(ClipVisionConfig::FromJsonText(R"({"model_type": "clip"})").status().message(),
              HasSubstr("vision_config"));
  EXPECT_FALSE(ClipVisionConfig::FromJsonText("{").ok());
}

TEST(ViTConfigTest, ReadsDinoVitS16sConfig) {
  absl::StatusOr<ViTConfig> config = ViTConfig::FromJsonText(kDinoVitS16Config);
  ASSERT_TRUE(config.ok()) << config.status();
  const ViTConfig want = ViTConfig::DinoVitS16();
  EXPECT_EQ(config->hidden_size, want.hidden_size);
  EXPECT_EQ(config->num_attention_heads, want.num_attention_heads);
  EXPECT_EQ(config->intermediate_size, want.intermediate_size);
  EXPECT_EQ(config->layer_norm_eps, 1e-12);
  EXPECT_EQ(config->num_positions(), 197);
  EXPECT_THAT(ViTConfig::FromJsonText(R"({"qkv_bias": 1})").status().message(), HasSubstr("qkv_bias"));
  EXPECT_THAT(ViTConfig::FromJsonText(R"({"model_type": "clip"})").status().message(),
              HasSubstr("model_type"));
}

TEST(VisionModelsTest, RealModelsHaveTheirPublishedParameterCounts) {
  // Shapes only: the meta device allocates nothing.
  ScopedParameterOptions meta(torch::TensorOptions().dtype(torch::kFloat32).device(torch::kMeta));
  absl::StatusOr<CLIPVisionModelWithProjection> clip =
      CreateClipVisionModel(ClipVisionConfig::OpenAiVitL14());
  ASSERT_TRUE(clip.ok()) << clip.status();
  EXPECT_EQ(CountParameters(**clip), kClipVitL14VisionParameters);
  absl::StatusOr<ViTModel> dino = CreateViTModel(ViTConfig::DinoVitS16());
  ASSERT_TRUE(dino.ok()) << dino.status();
  EXPECT_EQ(CountParameters(**dino), kDinoVitS16Parameters);
}

TEST(VisionModelsTest, StateDictNamesAreTransformers) {
  ScopedParameterOptions meta(torch::TensorOptions().device(torch::kMeta));
  ClipVisionConfig clip_config;
  clip_config.num_hidden_layers = 1;
  const std::set<std::string> clip = Names(*CLIPVisionModelWithProjection(clip_config));
  for (const char* name :
       {"vision_model.embeddings.class_embedding", "vision_model.embeddings.patch_embedding.weight",
        "vision_model.embeddings.position_embedding.weight", "vision_model.pre_layrnorm.weight",
        "vision_model.encoder.layers.0.self_attn.q_proj.bias",
        "vision_model.encoder.layers.0.mlp.fc2.weight", "vision_model.post_layernorm.bias",
        "visual_projection.weight"}) {
    EXPECT_THAT(clip, Contains(name));
  }
  EXPECT_EQ(clip.count("visual_projection.bias"), 0u);
  EXPECT_EQ(clip.count("vision_model.embeddings.patch_embedding.bias"), 0u);
  ViTConfig vit_config;
  vit_config.num_hidden_layers = 1;
  const std::set<std::string> vit = Names(*ViTModel(vit_config));
  for (const char* name :
       {"embeddings.cls_token", "embeddings.position_embeddings",
        "embeddings.patch_embeddings.projection.bias", "encoder.layer.0.layernorm_before.weight",
        "encoder.layer.0.attention.attention.value.bias",
        "encoder.layer.0.attention.output.dense.weight", "encoder.layer.0.intermediate.dense.weight",
        "encoder.layer.0.output.dense.bias", "encoder.layer.0.layernorm_after.bias",
        "layernorm.weight"}) {
    EXPECT_THAT(vit, Contains(name));
  }
  EXPECT_EQ(vit.count("pooler.dense.weight"), 0u);
}

class VisionLoadTest : public ::testing::Test {
 protected:
  std::string dir_ = likeness::testing::MakeTestTempDir("vision_load");
};

TEST_F(VisionLoadTest, ClipVisionFolderAndFileLoadAndReproduceTheGolden) {
  absl::StatusOr<std::string> folder = likeness::testing::WriteTinyClipVisionFolder(dir_ + "/clip");
  ASSERT_TRUE(folder.ok()) << folder.status();
  const GoldenClip golden = ReadGoldenClip();
  for (const std::string& path : {*folder, *folder + "/model.safetensors"}) {
    absl::StatusOr<LoadedClip> clip = LoadClip(path);
    ASSERT_TRUE(clip.ok()) << clip.status();
    EXPECT_TRUE(clip->text.is_empty());
    EXPECT_THAT(clip->config.description, HasSubstr("config.json"));
    EXPECT_THAT(clip->unexpected, IsEmpty());
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(torch::equal(clip->vision(golden.pixels).image_embeds, golden.image_embeds)) << path;
  }
}

TEST_F(VisionLoadTest, FullClipModelFileLoadsBothTowers) {
  absl::StatusOr<std::string> folder = likeness::testing::WriteTinyFullClipFolder(dir_ + "/full");
  ASSERT_TRUE(folder.ok()) << folder.status();
  absl::StatusOr<LoadedClip> clip = LoadClip(*folder);
  ASSERT_TRUE(clip.ok()) << clip.status();
  ASSERT_FALSE(clip->text.is_empty());
  EXPECT_THAT(clip->ignored, Contains("logit_scale"));
  EXPECT_THAT(clip->ignored, Contains("vision_model.embeddings.position_ids"));
  EXPECT_THAT(clip->ignored, Contains("text_model.embeddings.position_ids"));
  EXPECT_THAT(clip->unexpected, IsEmpty());
  // Both projections come from the top-level projection_dim (the nested configs lack it).
  const GoldenClip golden = ReadGoldenClip();
  EXPECT_EQ(clip->text->config().projection_dim, golden.image_embeds.size(1));
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(clip->vision(golden.pixels).image_embeds, golden.image_embeds));
  // The text tower is the one the fixture wrote.
  const ClipTextConfig text_config = clip->text->config();
  CLIPTextModelWithProjection direct(text_config);
  ASSERT_TRUE(LoadClipTextStateDict(*direct, likeness::testing::RandomClipTextTower(
                                                 text_config, likeness::testing::kTinyTextTowerSeed),
                                    "direct")
                  .ok());
  const torch::Tensor ids = torch::tensor({49406, 320, 1125, 539, 49407, 49407}, torch::kLong).view({1, -1});
  EXPECT_TRUE(torch::equal(clip->text(ids).text_embeds, direct(ids).text_embeds));
}

TEST_F(VisionLoadTest, ExtraTensorsAreReportedAndMissingOnesNamed) {
  ASSERT_TRUE(likeness::testing::WriteTinyClipVisionFolder(dir_ + "/clip").ok());
  StateDict dict = ReadDict(dir_ + "/clip/model.safetensors");
  dict["extra.weight"] = torch::zeros({2});
  WriteDict(dir_ + "/clip/model.safetensors", dict);
  absl::StatusOr<LoadedClip> clip = LoadClip(dir_ + "/clip");
  ASSERT_TRUE(clip.ok()) << clip.status();
  EXPECT_THAT(clip->unexpected, Contains("extra.weight"));
  dict.erase("visual_projection.weight");
  WriteDict(dir_ + "/clip/model.safetensors", dict);
  absl::StatusOr<LoadedClip> missing = LoadClip(dir_ + "/clip");
  EXPECT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("visual_projection.weight"));
}

TEST_F(VisionLoadTest, ClipWithoutConfigIsDetectedFromShapes) {
  ClipVisionConfig config;
  config.hidden_size = 2 * kAssumedHeadDim;
  config.num_attention_heads = 2;
  config.intermediate_size = 150;
  config.num_hidden_layers = 2;
  config.image_size = 32;
  config.patch_size = 8;
  config.projection_dim = 24;
  CLIPVisionModelWithProjection reference(config);
  InitializeRandomly(*reference, kSeed);
  reference->eval();
  WriteDict(dir_ + "/clip.safetensors", ModuleStateDict(*reference));
  absl::StatusOr<LoadedClip> clip = LoadClip(dir_ + "/clip.safetensors");
  ASSERT_TRUE(clip.ok()) << clip.status();
  EXPECT_THAT(clip->config.description, HasSubstr("detected"));
  const ClipVisionConfig& detected = clip->vision->config();
  EXPECT_EQ(detected.num_attention_heads, 2);
  EXPECT_EQ(detected.image_size, 32);
  EXPECT_EQ(detected.patch_size, 8);
  EXPECT_EQ(detected.intermediate_size, 150);
  EXPECT_EQ(detected.num_hidden_layers, 2);
  EXPECT_EQ(detected.projection_dim, 24);
  torch::NoGradGuard no_grad;
  const torch::Tensor pixels = torch::randn({1, 3, 32, 32});
  EXPECT_TRUE(torch::equal(clip->vision(pixels).image_embeds, reference(pixels).image_embeds));

  // The golden tiny tower (width 32) has 16-wide heads, which shapes cannot show.
  ASSERT_TRUE(likeness::testing::WriteTinyClipVisionFolder(dir_ + "/tiny").ok());
  fs::remove(dir_ + "/tiny/config.json");
  absl::StatusOr<LoadedClip> tiny = LoadClip(dir_ + "/tiny/model.safetensors");
  EXPECT_FALSE(tiny.ok());
  EXPECT_THAT(tiny.status().message(), HasSubstr("config.json"));
}

TEST_F(VisionLoadTest, DinoLoadsFromTransformersAndOriginalNames) {
  absl::StatusOr<std::string> folder = likeness::testing::WriteTinyDinoFolder(dir_ + "/dino");
  ASSERT_TRUE(folder.ok()) << folder.status();
  absl::StatusOr<LoadedDino> dino = LoadDino(*folder);
  ASSERT_TRUE(dino.ok()) << dino.status();
  EXPECT_EQ(dino->naming, "transformers ViTModel");
  EXPECT_THAT(dino->unexpected, IsEmpty());

  // A DINO ViT under the original names, with its projection head and no config.json.
  ViTConfig config;
  config.hidden_size = kAssumedHeadDim;
  config.num_attention_heads = 1;
  config.intermediate_size = 100;
  config.num_hidden_layers = 2;
  config.image_size = 32;
  config.patch_size = 8;
  config.layer_norm_eps = kOriginalDinoLayerNormEps;
  ViTModel reference(config);
  InitializeRandomly(*reference, kSeed);
  reference->eval();
  const StateDict hf = ModuleStateDict(*reference);
  StateDict original;
  for (const DinoRenameRow& row : DinoRenameTable()) {
    for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
      const auto expand = [&](const char* t) { return absl::StrReplaceAll(t, {{"{i}", absl::StrCat(i)}}); };
      original[expand(row.original)] =
          row.op == DinoTensorOp::kCopy
              ? hf.at(expand(row.transformers[0]))
              : torch::cat({hf.at(expand(row.transformers[0])), hf.at(expand(row.transformers[1])),
                            hf.at(expand(row.transformers[2]))});
    }
  }
  original["head.last_layer.weight_g"] = torch::ones({1, 4});
  WriteDict(dir_ + "/dino_original.safetensors", original);
  absl::StatusOr<LoadedDino> renamed = LoadDino(dir_ + "/dino_original.safetensors");
  ASSERT_TRUE(renamed.ok()) << renamed.status();
  EXPECT_EQ(renamed->naming, "original DINO");
  EXPECT_THAT(renamed->ignored, Contains("head.last_layer.weight_g"));
  EXPECT_EQ(renamed->model->config().layer_norm_eps, kOriginalDinoLayerNormEps);
  EXPECT_EQ(renamed->model->config().num_attention_heads, 1);
  torch::NoGradGuard no_grad;
  const torch::Tensor pixels = torch::randn({2, 3, 32, 32});
  EXPECT_TRUE(torch::equal(renamed->model(pixels).cls_embedding, reference(pixels).cls_embedding));
}

TEST_F(VisionLoadTest, ErrorsNameThePathAndSaySo) {
  EXPECT_TRUE(absl::IsNotFound(LoadClip(dir_ + "/nothing").status()));
  ASSERT_TRUE(likeness::testing::WriteTinyClipVisionFolder(dir_ + "/clip").ok());
  absl::StatusOr<LoadedDino> wrong = LoadDino(dir_ + "/clip");
  EXPECT_FALSE(wrong.ok());
  EXPECT_THAT(wrong.status().message(), HasSubstr("model_type"));
  fs::create_directories(dir_ + "/pickle");
  std::ofstream(dir_ + "/pickle/config.json") << kDinoVitS16Config;
  std::ofstream(dir_ + "/pickle/pytorch_model.bin") << "not read";
  absl::StatusOr<LoadedDino> pickle = LoadDino(dir_ + "/pickle");
  EXPECT_TRUE(absl::IsFailedPrecondition(pickle.status())) << pickle.status();
}

}  // namespace
}  // namespace likeness::model
