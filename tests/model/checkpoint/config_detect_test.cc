// Config detection: every shape-derived field of the golden sidecar configs is reproduced from
// the converted weights alone; SDXL's conventions fill the rest; overrides merge by the rules.
#include "worker/model/checkpoint/config_detect.h"

#include <torch/torch.h>

#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/model/checkpoint/test_util.h"
#include "worker/model/checkpoint/sgm_convert.h"

namespace likeness::model::checkpoint {
namespace {

using nlohmann::json;
using testing::IsErrorNaming;

// Settings no tensor shows: the heads, the training resolution and the writers' versions.
const std::set<std::string> kNotInWeights = {"attention_head_dim", "num_attention_heads",
                                             "sample_size", "_diffusers_version",
                                             "transformers_version"};
const std::set<std::string> kHeadFields = {"attention_head_dim", "num_attention_heads"};

bool Contains(const std::vector<std::string>& list, const std::string& key) {
  return std::find(list.begin(), list.end(), key) != list.end();
}

void ExpectMatchesSidecar(const DetectedConfig& detected, const json& sidecar,
                          const std::vector<std::string>& core) {
  for (const std::string& field : core)
    EXPECT_TRUE(Contains(detected.from_weights, field)) << field << " not read from the weights";
  for (const std::string& field : detected.from_weights) {
    ASSERT_TRUE(sidecar.contains(field)) << field;
    EXPECT_EQ(detected.config.at(field), sidecar.at(field)) << field;
  }
  for (const auto& [field, value] : sidecar.items()) {
    if (kNotInWeights.count(field) > 0) continue;
    ASSERT_TRUE(detected.config.contains(field)) << field;
    EXPECT_EQ(detected.config.at(field), value) << field;
  }
  for (const std::string& field : detected.undetermined)
    EXPECT_EQ(kHeadFields.count(field), 1u) << field;
}

TEST(ConfigDetectTest, DetectionReproducesTheSidecarConfigsFromWeightsAlone) {
  const auto cases = testing::SingleFileCases();
  ASSERT_FALSE(cases.empty());
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto converted = LoadSingleFile(c.path, c.sidecar.at("config"));
    ASSERT_TRUE(converted.ok()) << converted.status();
    const json& configs = c.sidecar.at("config");
    auto te1 = DetectClipTextConfig(converted->text_encoder, "quick_gelu", c.name);
    auto te2 = DetectClipTextConfig(converted->text_encoder_2, "gelu", c.name);
    auto vae = DetectVaeConfig(converted->vae, c.name);
    ASSERT_TRUE(te1.ok() && te2.ok() && vae.ok());
    auto unet =
        DetectUnetConfig(converted->unet, c.name, te2->config.at("projection_dim").get<int64_t>());
    ASSERT_TRUE(unet.ok()) << unet.status();
    const std::vector<std::string> text_core = {
        "hidden_size", "num_hidden_layers",       "intermediate_size",
        "vocab_size",  "max_position_embeddings", "architectures"};
    ExpectMatchesSidecar(*te1, configs.at("text_encoder"), text_core);
    std::vector<std::string> te2_core = text_core;
    te2_core.push_back("projection_dim");
    ExpectMatchesSidecar(*te2, configs.at("text_encoder_2"), te2_core);
    ExpectMatchesSidecar(*vae, configs.at("vae"),
                         {"in_channels", "out_channels", "latent_channels", "block_out_channels",
                          "layers_per_block", "down_block_types", "up_block_types"});
    ExpectMatchesSidecar(
        *unet, configs.at("unet"),
        {"in_channels", "out_channels", "conv_in_kernel", "conv_out_kernel", "block_out_channels",
         "layers_per_block", "down_block_types", "up_block_types", "mid_block_type",
         "transformer_layers_per_block", "reverse_transformer_layers_per_block",
         "cross_attention_dim", "use_linear_projection", "addition_embed_type",
         "projection_class_embeddings_input_dim", "addition_time_embed_dim"});
  }
}

TEST(ConfigDetectTest, WithoutThePooledWidthSdxlTimeEmbeddingIsAssumed) {
  for (const auto& c : testing::SingleFileCases()) {
    auto converted = LoadSingleFile(c.path, c.sidecar.at("config"));
    ASSERT_TRUE(converted.ok()) << converted.status();
    auto unet = DetectUnetConfig(converted->unet, c.name);
    ASSERT_TRUE(unet.ok()) << unet.status();
    EXPECT_EQ(unet->config.at("addition_time_embed_dim"), 256);
    EXPECT_TRUE(Contains(unet->by_convention, "addition_time_embed_dim"));
  }
}

// A CLIP text encoder's tensors with the given sizes, on the meta device (shapes only).
StateDict FakeText(int64_t hidden, int64_t layers, bool projection) {
  const auto meta = torch::TensorOptions().device(torch::kMeta);
  StateDict sd;
  sd["text_model.embeddings.token_embedding.weight"] = torch::empty({49408, hidden}, meta);
  sd["text_model.embeddings.position_embedding.weight"] = torch::empty({77, hidden}, meta);
  for (int64_t i = 0; i < layers; ++i) {
    sd[absl::StrCat("text_model.encoder.layers.", i, ".mlp.fc1.weight")] =
        torch::empty({4 * hidden, hidden}, meta);
  }
  if (projection) sd["text_projection.weight"] = torch::empty({hidden, hidden}, meta);
  return sd;
}

TEST(ConfigDetectTest, SdxlTextEncoderSizesGetTheirHeads) {
  auto clip_l = DetectClipTextConfig(FakeText(768, 12, false), "quick_gelu", "clip-l");
  ASSERT_TRUE(clip_l.ok()) << clip_l.status();
  EXPECT_EQ(clip_l->config.at("num_attention_heads"), 12);
  EXPECT_EQ(clip_l->config.at("architectures"), json::array({"CLIPTextModel"}));
  EXPECT_EQ(clip_l->config.at("hidden_act"), "quick_gelu");
  auto big_g = DetectClipTextConfig(FakeText(1280, 32, true), "gelu", "bigG");
  ASSERT_TRUE(big_g.ok()) << big_g.status();
  EXPECT_EQ(big_g->config.at("num_attention_heads"), 20);
  EXPECT_EQ(big_g->config.at("num_hidden_layers"), 32);
  EXPECT_EQ(big_g->config.at("intermediate_size"), 5120);
  EXPECT_EQ(big_g->config.at("architectures"), json::array({"CLIPTextModelWithProjection"}));
  auto other = DetectClipTextConfig(FakeText(96, 2, false), "gelu", "other");
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(other->config.at("num_attention_heads").is_null());
  EXPECT_TRUE(IsErrorNaming(CheckConfigComplete(*other, "text_encoder", "other.safetensors"),
                            absl::StatusCode::kFailedPrecondition,
                            {"num_attention_heads", "text_encoder", "other.safetensors"}));
}

TEST(ConfigDetectTest, AMissingTensorIsNamed) {
  StateDict sd = FakeText(768, 12, false);
  sd.erase("text_model.embeddings.position_embedding.weight");
  EXPECT_TRUE(IsErrorNaming(DetectClipTextConfig(sd, "gelu", "x.safetensors").status(),
                            absl::StatusCode::kInvalidArgument,
                            {"x.safetensors", "text_model.embeddings.position_embedding.weight"}));
}

TEST(ConfigDetectTest, OverridesReplaceConventionsAndMustAgreeWithTheWeights) {
  DetectedConfig d;
  d.config = {{"transformer_layers_per_block", {2, 2, 2}},
              {"attention_head_dim", nullptr},
              {"sample_size", 128}};
  d.from_weights = {"transformer_layers_per_block"};
  d.by_convention = {"sample_size"};
  d.undetermined = {"attention_head_dim"};
  // A number equals a per-level list of that number.
  ASSERT_TRUE(ApplyConfigOverride({{"transformer_layers_per_block", 2},
                                   {"attention_head_dim", {4, 4, 4}},
                                   {"sample_size", 16}},
                                  "src", d)
                  .ok());
  EXPECT_TRUE(d.undetermined.empty());
  EXPECT_TRUE(d.by_convention.empty());
  EXPECT_EQ(d.config.at("sample_size"), 16);
  EXPECT_TRUE(CheckConfigComplete(d, "unet", "src").ok());
  EXPECT_TRUE(IsErrorNaming(
      ApplyConfigOverride({{"transformer_layers_per_block", {1, 2, 2}}}, "src", d),
      absl::StatusCode::kInvalidArgument, {"src", "transformer_layers_per_block", "[1,2,2]"}));
  EXPECT_TRUE(ApplyConfigOverride(nullptr, "src", d).ok());
}

}  // namespace
}  // namespace likeness::model::checkpoint
