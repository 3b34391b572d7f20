// The rename table on SDXL base's full name lists (../shared/data/sdxl: diffusers names and
// shapes of all four components). Tensors are on the meta device: shapes without memory.
//   1. Every diffusers name maps to exactly one single-file name, and no two to the same one
//      (q, k, v of one OpenCLIP layer share their fused tensor by design).
//   2. diffusers -> single file -> diffusers is the identity on names and shapes.
//   3. Names of the real sd_xl_base_1.0.safetensors come out.
//   4. The configs detected from these shapes alone are SDXL base's config.json values.
#include <torch/torch.h>

#include <map>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/model/checkpoint/test_util.h"
#include "tests/test_data.h"
#include "worker/model/checkpoint/sgm_convert.h"
#include "worker/model/checkpoint/sgm_structure.h"

namespace likeness::model::checkpoint {
namespace {

using nlohmann::json;

inline constexpr char kSdxlBaseSource[] = "SDXL base 1.0";

json Shapes() {
  return testing::ReadJson(likeness::testing::SdxlShapesPath());
}

SdxlComponents MetaComponents(const json& shapes) {
  SdxlComponents out;
  for (Component c : kAllComponents) {
    const std::string name(ComponentName(c));
    EXPECT_TRUE(shapes.at("components").contains(name)) << name;
    for (const auto& [key, shape] : shapes.at("components").at(name).items()) {
      out.Weights(c)[key] =
          torch::empty(shape.get<std::vector<int64_t>>(),
                       torch::TensorOptions().dtype(torch::kHalf).device(torch::kMeta));
    }
  }
  return out;
}

Naming NamingOf(Component c) {
  for (const ComponentPrefix& p : ComponentPrefixes()) {
    if (p.component == c) return p.naming;
  }
  return Naming::kUnet;
}

TEST(SdxlNamesTest, EveryDiffusersNameHasExactlyOneSingleFileName) {
  const SdxlComponents sdxl = MetaComponents(Shapes());
  for (Component c : kAllComponents) {
    SCOPED_TRACE(ComponentName(c));
    const StateDict& weights = sdxl.Weights(c);
    auto structure = DetectDiffusersStructure(NamingOf(c), weights, "sdxl");
    ASSERT_TRUE(structure.ok()) << structure.status();
    auto rules = InstantiateRules(NamingOf(c), *structure);
    ASSERT_TRUE(rules.ok()) << rules.status();
    std::map<std::string, int> uses;
    std::set<std::string> sgm_names;
    for (const NameRule& rule : *rules) {
      EXPECT_TRUE(sgm_names.insert(rule.sgm).second) << "two rules give " << rule.sgm;
      for (const std::string& name : rule.diffusers) ++uses[name];
    }
    for (const auto& [name, tensor] : weights) EXPECT_EQ(uses[name], 1) << name;
    // Only optional entries (shortcut convs where channels do not change) name nothing real.
    for (const NameRule& rule : *rules) {
      if (!rule.optional) {
        EXPECT_EQ(weights.count(rule.diffusers.front()), 1u) << rule.diffusers.front();
      }
    }
  }
}

TEST(SdxlNamesTest, DiffusersToSingleFileAndBackIsTheIdentity) {
  const SdxlComponents sdxl = MetaComponents(Shapes());
  auto single_file = ToSingleFile(sdxl, "sdxl");
  ASSERT_TRUE(single_file.ok()) << single_file.status();
  auto back = ConvertSingleFile(*single_file, "sdxl");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->unknown.empty());
  EXPECT_TRUE(back->ignored.empty());
  EXPECT_TRUE(back->absent.empty());
  for (Component c : kAllComponents) {
    SCOPED_TRACE(ComponentName(c));
    const StateDict& original = sdxl.Weights(c);
    const StateDict& converted = back->Weights(c);
    ASSERT_EQ(converted.size(), original.size());
    for (const auto& [name, tensor] : original) {
      auto it = converted.find(name);
      ASSERT_NE(it, converted.end()) << name;
      EXPECT_EQ(it->second.sizes(), tensor.sizes()) << name;
      EXPECT_EQ(it->second.scalar_type(), torch::kHalf) << name;
    }
  }
}

TEST(SdxlNamesTest, GivesTheNamesOfTheOriginalCheckpoint) {
  auto single_file = ToSingleFile(MetaComponents(Shapes()), "sdxl");
  ASSERT_TRUE(single_file.ok()) << single_file.status();
  // Names and shapes as sd_xl_base_1.0.safetensors has them.
  const std::map<std::string, std::vector<int64_t>> expected = {
      {"model.diffusion_model.input_blocks.0.0.weight", {320, 4, 3, 3}},
      {"model.diffusion_model.input_blocks.3.0.op.weight", {320, 320, 3, 3}},
      {"model.diffusion_model.input_blocks.4.0.skip_connection.weight", {640, 320, 1, 1}},
      {"model.diffusion_model.input_blocks.8.1.transformer_blocks.9.attn2.to_k.weight",
       {1280, 2048}},
      {"model.diffusion_model.middle_block.1.transformer_blocks.9.ff.net.2.weight", {1280, 5120}},
      {"model.diffusion_model.output_blocks.2.2.conv.weight", {1280, 1280, 3, 3}},
      {"model.diffusion_model.output_blocks.5.2.conv.weight", {640, 640, 3, 3}},
      {"model.diffusion_model.output_blocks.8.0.out_layers.3.weight", {320, 320, 3, 3}},
      {"model.diffusion_model.label_emb.0.0.weight", {1280, 2816}},
      {"model.diffusion_model.out.2.weight", {4, 320, 3, 3}},
      {"first_stage_model.decoder.up.3.upsample.conv.weight", {512, 512, 3, 3}},
      {"first_stage_model.decoder.up.0.block.0.nin_shortcut.weight", {128, 256, 1, 1}},
      {"first_stage_model.encoder.mid.attn_1.q.weight", {512, 512, 1, 1}},
      {"first_stage_model.quant_conv.weight", {8, 8, 1, 1}},
      {"conditioner.embedders.0.transformer.text_model.encoder.layers.11.self_attn.q_proj.weight",
       {768, 768}},
      {"conditioner.embedders.1.model.transformer.resblocks.31.attn.in_proj_weight", {3840, 1280}},
      {"conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_bias", {3840}},
      {"conditioner.embedders.1.model.positional_embedding", {77, 1280}},
      {"conditioner.embedders.1.model.text_projection", {1280, 1280}},
  };
  for (const auto& [name, shape] : expected) {
    auto it = single_file->find(name);
    ASSERT_NE(it, single_file->end()) << name;
    EXPECT_EQ(it->second.sizes().vec(), shape) << name;
  }
}

TEST(SdxlNamesTest, DetectsSdxlBaseConfigsFromShapesAlone) {
  const json shapes = Shapes();
  if (!absl::StrContains(shapes.value("source", ""), kSdxlBaseSource)) {
    GTEST_SKIP() << "the shapes file is not SDXL base's; its configs are not known here";
  }
  auto single_file = ToSingleFile(MetaComponents(shapes), "sdxl");
  ASSERT_TRUE(single_file.ok()) << single_file.status();
  auto c =
      ConvertSingleFile(*single_file, "sdxl");  // No override: SDXL's conventions cover the heads.
  ASSERT_TRUE(c.ok()) << c.status();
  // stabilityai/stable-diffusion-xl-base-1.0, unet/config.json.
  EXPECT_EQ(c->unet_config.at("block_out_channels"), json({320, 640, 1280}));
  EXPECT_EQ(c->unet_config.at("attention_head_dim"), json({5, 10, 20}));
  EXPECT_EQ(c->unet_config.at("transformer_layers_per_block"), json({1, 2, 10}));
  EXPECT_EQ(c->unet_config.at("cross_attention_dim"), 2048);
  EXPECT_EQ(c->unet_config.at("projection_class_embeddings_input_dim"), 2816);
  EXPECT_EQ(c->unet_config.at("addition_time_embed_dim"), 256);
  EXPECT_EQ(c->unet_config.at("layers_per_block"), 2);
  EXPECT_EQ(c->unet_config.at("down_block_types"),
            json({"DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"}));
  EXPECT_EQ(c->unet_config.at("up_block_types"),
            json({"CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"}));
  EXPECT_EQ(c->unet_config.at("use_linear_projection"), true);
  EXPECT_TRUE(c->unet_config.at("reverse_transformer_layers_per_block").is_null());
  EXPECT_EQ(c->unet_config.at("sample_size"), 128);
  // vae/config.json.
  EXPECT_EQ(c->vae_config.at("block_out_channels"), json({128, 256, 512, 512}));
  EXPECT_EQ(c->vae_config.at("layers_per_block"), 2);
  EXPECT_EQ(c->vae_config.at("latent_channels"), 4);
  EXPECT_EQ(c->vae_config.at("scaling_factor"), 0.13025);
  // text_encoder/config.json and text_encoder_2/config.json.
  EXPECT_EQ(c->text_encoder_config.at("hidden_size"), 768);
  EXPECT_EQ(c->text_encoder_config.at("num_attention_heads"), 12);
  EXPECT_EQ(c->text_encoder_config.at("num_hidden_layers"), 12);
  EXPECT_EQ(c->text_encoder_config.at("intermediate_size"), 3072);
  EXPECT_EQ(c->text_encoder_config.at("hidden_act"), "quick_gelu");
  EXPECT_EQ(c->text_encoder_config.at("projection_dim"), 768);
  EXPECT_EQ(c->text_encoder_2_config.at("hidden_size"), 1280);
  EXPECT_EQ(c->text_encoder_2_config.at("num_attention_heads"), 20);
  EXPECT_EQ(c->text_encoder_2_config.at("num_hidden_layers"), 32);
  EXPECT_EQ(c->text_encoder_2_config.at("intermediate_size"), 5120);
  EXPECT_EQ(c->text_encoder_2_config.at("projection_dim"), 1280);
  EXPECT_EQ(c->text_encoder_2_config.at("hidden_act"), "gelu");
  EXPECT_EQ(c->text_encoder_2_config.at("torch_dtype"), "float16");
}

}  // namespace
}  // namespace likeness::model::checkpoint
