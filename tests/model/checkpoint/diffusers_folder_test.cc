// Diffusers folders built in a temp dir from the golden tensors: plain, sharded, fp16 variants,
// a single component folder, and the errors for broken or unsupported layouts.
#include "worker/model/checkpoint/diffusers_folder.h"

#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/safetensors/writer.h"
#include "gtest/gtest.h"
#include "tests/model/checkpoint/test_util.h"
#include "tests/test_data.h"

namespace likeness::model::checkpoint {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::BitEqual;
using testing::IsErrorNaming;

constexpr int kShards = 3;

enum class Layout { kPlain, kSharded };

std::string WeightsBase(Component c) {
  return c == Component::kUnet || c == Component::kVae ? kDiffusersWeightsBase
                                                       : kTransformersWeightsBase;
}

StateDict ToHalf(const StateDict& sd) {
  StateDict out;
  for (const auto& [name, tensor] : sd) out[name] = tensor.to(torch::kHalf);
  return out;
}

// Writes `weights` into `dir` as diffusers/transformers save_pretrained names them.
void WriteWeights(const std::string& dir, const std::string& base, const StateDict& weights,
                  Layout layout, const std::string& variant = "") {
  const std::string dot_variant = variant.empty() ? "" : "." + variant;
  if (layout == Layout::kPlain) {
    ASSERT_TRUE(
        safetensors::WriteSafetensors(absl::StrCat(dir, "/", base, dot_variant, ".safetensors"),
                                      safetensors::NamedTensors(weights.begin(), weights.end()))
            .ok());
    return;
  }
  std::vector<safetensors::NamedTensors> shards(kShards);
  json weight_map = json::object();
  int i = 0;
  for (const auto& [name, tensor] : weights) {
    const int shard = i++ % kShards;
    shards[shard].emplace_back(name, tensor);
    weight_map[name] =
        absl::StrCat(base, dot_variant, "-0000", shard + 1, "-of-0000", kShards, ".safetensors");
  }
  for (int s = 0; s < kShards; ++s) {
    const std::string file =
        absl::StrCat(base, dot_variant, "-0000", s + 1, "-of-0000", kShards, ".safetensors");
    ASSERT_TRUE(safetensors::WriteSafetensors(dir + "/" + file, shards[s]).ok());
  }
  const std::string index = variant.empty()
                                ? absl::StrCat(base, ".safetensors.index.json")
                                : absl::StrCat(base, ".safetensors.index.", variant, ".json");
  testing::WriteJson(dir + "/" + index,
                     {{"metadata", {{"total_size", 0}}}, {"weight_map", weight_map}});
}

class DiffusersFolderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto cases = testing::SingleFileCases();
    ASSERT_FALSE(cases.empty()) << "no golden single-file case in "
                                << likeness::testing::GoldenDir();
    sidecar_ = cases.front().sidecar;
    golden_ = testing::GoldenDiffusersWeights(sidecar_);
  }

  // A pipeline folder: model_index.json, the four model components, and weightless scheduler and
  // tokenizer folders. `unet_layout` picks how the UNet's weights are stored.
  std::string WritePipeline(const std::string& name, Layout unet_layout = Layout::kPlain) {
    const std::string root = likeness::testing::MakeTestTempDir(name);
    const json index = {{"_class_name", "StableDiffusionXLPipeline"},
                        {"_diffusers_version", "0.24.0"},
                        {"force_zeros_for_empty_prompt", true},
                        {"feature_extractor", {nullptr, nullptr}},
                        {"scheduler", {"diffusers", "EulerDiscreteScheduler"}},
                        {"tokenizer", {"transformers", "CLIPTokenizer"}},
                        {"unet", {"diffusers", "UNet2DConditionModel"}},
                        {"vae", {"diffusers", "AutoencoderKL"}},
                        {"text_encoder", {"transformers", "CLIPTextModel"}},
                        {"text_encoder_2", {"transformers", "CLIPTextModelWithProjection"}}};
    testing::WriteJson(root + "/" + kModelIndexFile, index);
    fs::create_directories(root + "/scheduler");
    testing::WriteJson(root + "/scheduler/scheduler_config.json",
                       {{"_class_name", "EulerDiscreteScheduler"}});
    fs::create_directories(root + "/tokenizer");
    for (Component c : kAllComponents) {
      const std::string dir = absl::StrCat(root, "/", ComponentName(c));
      fs::create_directories(dir);
      testing::WriteJson(dir + "/" + kComponentConfigFile,
                         sidecar_.at("config").at(std::string(ComponentName(c))));
      WriteWeights(dir, WeightsBase(c), golden_.at(c),
                   c == Component::kUnet ? unet_layout : Layout::kPlain);
    }
    return root;
  }

  void ExpectSameWeights(const absl::StatusOr<StateDict>& loaded, const StateDict& expected) {
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    ASSERT_EQ(loaded->size(), expected.size());
    for (const auto& [name, tensor] : expected) {
      auto it = loaded->find(name);
      ASSERT_NE(it, loaded->end()) << name;
      EXPECT_TRUE(BitEqual(it->second, tensor)) << name;
    }
  }

  json sidecar_;
  std::map<Component, StateDict> golden_;
};

TEST_F(DiffusersFolderTest, APipelineLoadsEveryComponentBitForBit) {
  const std::string root = WritePipeline("ckpt_plain");
  auto folder = OpenDiffusersFolder(root);
  ASSERT_TRUE(folder.ok()) << folder.status();
  EXPECT_FALSE(folder->single_component);
  EXPECT_EQ(folder->components.size(),
            6u);  // 4 models, scheduler, tokenizer; [null, null] skipped.
  EXPECT_EQ(folder->Find("feature_extractor"), nullptr);
  ASSERT_NE(folder->Find("unet"), nullptr);
  EXPECT_EQ(folder->Find("unet")->class_name, "UNet2DConditionModel");
  EXPECT_EQ(folder->Find("text_encoder_2")->library, "transformers");
  for (Component c : kAllComponents) {
    SCOPED_TRACE(ComponentName(c));
    ExpectSameWeights(LoadComponent(*folder, ComponentName(c)), golden_.at(c));
    auto config = LoadComponentConfig(*folder, ComponentName(c));
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_EQ(*config, sidecar_.at("config").at(std::string(ComponentName(c))));
  }
}

TEST_F(DiffusersFolderTest, AShardedComponentLoads) {
  const std::string root = WritePipeline("ckpt_sharded", Layout::kSharded);
  ASSERT_TRUE(fs::exists(root + "/unet/diffusion_pytorch_model.safetensors.index.json"));
  auto folder = OpenDiffusersFolder(root);
  ASSERT_TRUE(folder.ok()) << folder.status();
  ExpectSameWeights(LoadComponent(*folder, "unet"), golden_.at(Component::kUnet));
}

TEST_F(DiffusersFolderTest, Fp16VariantsLoadPlainAndSharded) {
  const std::string root = WritePipeline("ckpt_fp16");
  const StateDict unet_half = ToHalf(golden_.at(Component::kUnet));
  const StateDict vae_half = ToHalf(golden_.at(Component::kVae));
  WriteWeights(root + "/unet", kDiffusersWeightsBase, unet_half, Layout::kPlain, "fp16");
  WriteWeights(root + "/vae", kDiffusersWeightsBase, vae_half, Layout::kSharded, "fp16");
  auto fp16 = OpenDiffusersFolder(root, "fp16");
  ASSERT_TRUE(fp16.ok()) << fp16.status();
  ExpectSameWeights(LoadComponent(*fp16, "unet"), unet_half);
  ExpectSameWeights(LoadComponent(*fp16, "vae"), vae_half);
  // Without a variant the fp32 files are read.
  auto plain = OpenDiffusersFolder(root);
  ASSERT_TRUE(plain.ok());
  ExpectSameWeights(LoadComponent(*plain, "unet"), golden_.at(Component::kUnet));
  // A variant that is not there: the error says what is.
  EXPECT_TRUE(IsErrorNaming(LoadComponent(*fp16, "text_encoder").status(),
                            absl::StatusCode::kNotFound,
                            {root + "/text_encoder", "fp16", "model.safetensors"}));
}

TEST_F(DiffusersFolderTest, AVariantOnlyFolderNeedsTheVariant) {
  const std::string root = WritePipeline("ckpt_variant_only");
  fs::remove(root + "/unet/diffusion_pytorch_model.safetensors");
  WriteWeights(root + "/unet", kDiffusersWeightsBase, ToHalf(golden_.at(Component::kUnet)),
               Layout::kPlain, "fp16");
  auto folder = OpenDiffusersFolder(root);
  ASSERT_TRUE(folder.ok());
  EXPECT_TRUE(IsErrorNaming(LoadComponent(*folder, "unet").status(), absl::StatusCode::kNotFound,
                            {root + "/unet", "diffusion_pytorch_model.fp16.safetensors"}));
}

TEST_F(DiffusersFolderTest, ASingleComponentFolderOpens) {
  const std::string root = WritePipeline("ckpt_single");
  for (const std::string& path : {root + "/unet", root + "/unet/"}) {
    auto folder = OpenDiffusersFolder(path);
    ASSERT_TRUE(folder.ok()) << folder.status();
    EXPECT_TRUE(folder->single_component);
    ASSERT_EQ(folder->components.size(), 1u);
    EXPECT_EQ(folder->components[0].name, "unet");
    EXPECT_EQ(folder->components[0].class_name, "UNet2DConditionModel");
    ExpectSameWeights(LoadComponent(*folder, "unet"), golden_.at(Component::kUnet));
  }
  auto text = OpenDiffusersFolder(root + "/text_encoder_2");
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(text->components[0].library, "transformers");
  EXPECT_EQ(text->components[0].class_name, "CLIPTextModelWithProjection");
}

TEST_F(DiffusersFolderTest, FolderErrorsNameWhatIsWrong) {
  const std::string root = WritePipeline("ckpt_errors");
  // No model_index.json.
  const std::string bare = likeness::testing::MakeTestTempDir("ckpt_no_index");
  fs::create_directories(bare + "/unet");
  EXPECT_TRUE(IsErrorNaming(OpenDiffusersFolder(bare).status(), absl::StatusCode::kNotFound,
                            {bare, kModelIndexFile}));
  EXPECT_TRUE(IsErrorNaming(OpenDiffusersFolder(bare + "/nothing").status(),
                            absl::StatusCode::kNotFound, {bare}));
  // A listed component whose folder is absent.
  fs::remove_all(root + "/vae");
  EXPECT_TRUE(IsErrorNaming(OpenDiffusersFolder(root).status(), absl::StatusCode::kNotFound,
                            {kModelIndexFile, "vae (AutoencoderKL)"}));
  fs::create_directories(root + "/vae");
  auto folder = OpenDiffusersFolder(root);
  ASSERT_TRUE(folder.ok()) << folder.status();
  // No weights at all; a component that is not there.
  EXPECT_TRUE(IsErrorNaming(LoadComponent(*folder, "vae").status(), absl::StatusCode::kNotFound,
                            {root + "/vae", "diffusion_pytorch_model.safetensors"}));
  EXPECT_TRUE(IsErrorNaming(LoadComponent(*folder, "refiner").status(), absl::StatusCode::kNotFound,
                            {"refiner", "unet"}));
  // Pickle weights only.
  std::ofstream(root + "/vae/diffusion_pytorch_model.bin") << "not loaded";
  EXPECT_TRUE(
      IsErrorNaming(LoadComponent(*folder, "vae").status(), absl::StatusCode::kFailedPrecondition,
                    {root + "/vae", "diffusion_pytorch_model.bin", "pickle", "safetensors"}));
}

TEST_F(DiffusersFolderTest, BrokenShardIndexesNameTheIndexShardAndTensor) {
  const std::string root = WritePipeline("ckpt_broken_index", Layout::kSharded);
  const std::string index_path = root + "/unet/diffusion_pytorch_model.safetensors.index.json";
  const json index = testing::ReadJson(index_path);
  auto folder = OpenDiffusersFolder(root);
  ASSERT_TRUE(folder.ok());
  const std::string first = index["weight_map"].begin().key();
  const std::string first_shard = index["weight_map"].begin().value();
  std::string other_shard;
  for (const auto& [name, shard] : index["weight_map"].items()) {
    if (shard != first_shard) other_shard = shard.get<std::string>();
  }
  ASSERT_FALSE(other_shard.empty());

  // A name mapped to a shard that lacks it.
  json wrong = index;
  wrong["weight_map"][first] = other_shard;
  testing::WriteJson(index_path, wrong);
  EXPECT_TRUE(IsErrorNaming(LoadComponent(*folder, "unet").status(),
                            absl::StatusCode::kInvalidArgument,
                            {index_path, "'" + first + "'", other_shard}));
  // A shard tensor the index leaves out.
  json unlisted = index;
  unlisted["weight_map"].erase(first);
  testing::WriteJson(index_path, unlisted);
  EXPECT_TRUE(IsErrorNaming(LoadComponent(*folder, "unet").status(),
                            absl::StatusCode::kInvalidArgument,
                            {index_path, "'" + first + "'", first_shard}));
  // A shard outside the folder.
  json escaping = index;
  escaping["weight_map"][first] = "../" + first_shard;
  testing::WriteJson(index_path, escaping);
  EXPECT_TRUE(IsErrorNaming(LoadComponent(*folder, "unet").status(),
                            absl::StatusCode::kInvalidArgument, {index_path, "'" + first + "'"}));
  // A missing shard.
  testing::WriteJson(index_path, index);
  fs::remove(root + "/unet/" + other_shard);
  EXPECT_TRUE(IsErrorNaming(LoadComponent(*folder, "unet").status(), absl::StatusCode::kNotFound,
                            {index_path, other_shard}));
  // Not an index at all.
  std::ofstream(index_path, std::ios::trunc) << "{\"weight_map\": 3}";
  EXPECT_TRUE(IsErrorNaming(LoadComponent(*folder, "unet").status(),
                            absl::StatusCode::kInvalidArgument, {index_path, "weight_map"}));
}

}  // namespace
}  // namespace likeness::model::checkpoint
