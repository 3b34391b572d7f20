// DetectCheckpoint: folders by their layout, files by their tensor names.
#include "worker/model/checkpoint/checkpoint_kind.h"

#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "common/safetensors/writer.h"
#include "gtest/gtest.h"
#include "tests/model/checkpoint/test_util.h"
#include "tests/test_data.h"
#include "worker/model/checkpoint/diffusers_folder.h"

namespace likeness::model::checkpoint {
namespace {

namespace fs = std::filesystem;
using testing::IsErrorNaming;

std::string WriteFile(const std::string& dir, const std::string& name,
                      const std::vector<std::string>& tensors) {
  safetensors::NamedTensors named;
  for (const std::string& t : tensors) named.emplace_back(t, torch::zeros({2}));
  const std::string path = dir + "/" + name;
  EXPECT_TRUE(safetensors::WriteSafetensors(path, named).ok()) << path;
  return path;
}

TEST(CheckpointKindTest, GoldenSingleFilesAreSingleFiles) {
  const auto cases = testing::SingleFileCases();
  ASSERT_FALSE(cases.empty());
  for (const auto& c : cases) {
    auto kind = DetectCheckpoint(c.path);
    ASSERT_TRUE(kind.ok()) << kind.status();
    EXPECT_EQ(*kind, CheckpointKind::kSingleFile) << c.name;
  }
}

TEST(CheckpointKindTest, FoldersByLayout) {
  const std::string root = likeness::testing::MakeTestTempDir("kind_folders");
  fs::create_directories(root + "/pipe/unet");
  testing::WriteJson(root + "/pipe/" + kModelIndexFile,
                     {{"unet", {"diffusers", "UNet2DConditionModel"}}});
  testing::WriteJson(root + "/pipe/unet/" + kComponentConfigFile,
                     {{"_class_name", "UNet2DConditionModel"}});
  EXPECT_EQ(*DetectCheckpoint(root + "/pipe"), CheckpointKind::kDiffusersPipeline);
  EXPECT_EQ(*DetectCheckpoint(root + "/pipe/unet"), CheckpointKind::kDiffusersComponent);
  fs::create_directories(root + "/empty");
  EXPECT_TRUE(IsErrorNaming(DetectCheckpoint(root + "/empty").status(),
                            absl::StatusCode::kInvalidArgument,
                            {root + "/empty", kModelIndexFile}));
  EXPECT_TRUE(IsErrorNaming(DetectCheckpoint(root + "/missing").status(),
                            absl::StatusCode::kNotFound, {root + "/missing"}));
}

TEST(CheckpointKindTest, FilesByTensorNames) {
  const std::string dir = likeness::testing::MakeTestTempDir("kind_files");
  EXPECT_EQ(
      *DetectCheckpoint(WriteFile(dir, "kohya.safetensors",
                                  {"lora_unet_down_blocks_1_attentions_0_proj_in.lora_down.weight",
                                   "lora_unet_down_blocks_1_attentions_0_proj_in.lora_up.weight",
                                   "lora_unet_down_blocks_1_attentions_0_proj_in.alpha"})),
      CheckpointKind::kLoraKohya);
  EXPECT_EQ(*DetectCheckpoint(
                WriteFile(dir, "kohya_te.safetensors",
                          {"lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_down.weight"})),
            CheckpointKind::kLoraKohya);
  EXPECT_EQ(
      *DetectCheckpoint(WriteFile(
          dir, "diffusers.safetensors",
          {"unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.lora_down.weight",
           "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.lora_up.weight"})),
      CheckpointKind::kLoraDiffusers);
  EXPECT_EQ(*DetectCheckpoint(WriteFile(
                dir, "peft.safetensors",
                {"text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_A.weight"})),
            CheckpointKind::kLoraDiffusers);
  EXPECT_EQ(*DetectCheckpoint(
                WriteFile(dir, "unet_only.safetensors", {"model.diffusion_model.out.2.weight"})),
            CheckpointKind::kSingleFile);
  const std::string sd1 =
      WriteFile(dir, "sd1.safetensors",
                {"model.diffusion_model.out.2.weight",
                 "cond_stage_model.transformer.text_model.final_layer_norm.weight"});
  EXPECT_TRUE(IsErrorNaming(DetectCheckpoint(sd1).status(), absl::StatusCode::kInvalidArgument,
                            {sd1, "1.x"}));
  // A diffusers UNet state dict alone is not a checkpoint kind (it has no folder and config).
  const std::string bare = WriteFile(dir, "bare.safetensors", {"conv_in.weight", "conv_in.bias"});
  EXPECT_TRUE(IsErrorNaming(DetectCheckpoint(bare).status(), absl::StatusCode::kInvalidArgument,
                            {bare, "conv_in.weight"}));
}

TEST(CheckpointKindTest, PickleFilesAreRefused) {
  const std::string dir = likeness::testing::MakeTestTempDir("kind_pickle");
  for (const char* name : {"model.ckpt", "pytorch_model.bin", "weights.pt", "lora.PTH"}) {
    const std::string path = dir + "/" + name;
    std::ofstream(path) << "PK";
    EXPECT_TRUE(IsErrorNaming(DetectCheckpoint(path).status(),
                              absl::StatusCode::kFailedPrecondition,
                              {path, "pickle", "safetensors"}));
  }
}

TEST(CheckpointKindTest, KindsHaveNames) {
  EXPECT_EQ(CheckpointKindName(CheckpointKind::kSingleFile), "single-file checkpoint");
  EXPECT_EQ(CheckpointKindName(CheckpointKind::kLoraKohya), "LoRA (kohya names)");
}

}  // namespace
}  // namespace likeness::model::checkpoint
