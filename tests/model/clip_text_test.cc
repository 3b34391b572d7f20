// Unit tests of the SDXL text encoders (worker/model/text): config parsing, the published
// parameter counts of SDXL's two encoders, state-dict names, forward invariants and the SDXL
// conditioning helpers. Numerical agreement with transformers is the golden test's job
// (golden_text_encoders.cc).
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "worker/model/layers.h"
#include "worker/model/state_dict.h"
#include "worker/model/text/clip_text_config.h"
#include "worker/model/text/clip_text_model.h"
#include "worker/model/text/sdxl_conditioning.h"

namespace likeness::model {
namespace {

using ::testing::HasSubstr;

// Published sizes: openai/clip-vit-large-patch14's text tower and laion's ViT-bigG-14 text tower
// with its projection, as SDXL base ships them.
constexpr int64_t kSdxlClipLParameters = 123'060'480;
constexpr int64_t kSdxlBigGParameters = 694'659'840;

constexpr int64_t kEndOfText = 49407;
constexpr int64_t kStartOfText = 49406;

ClipTextConfig TinyConfig(int64_t hidden = 16, int64_t heads = 2, int64_t layers = 3) {
  ClipTextConfig config;
  config.vocab_size = 49408;
  config.hidden_size = hidden;
  config.intermediate_size = 2 * hidden + 5;
  config.num_hidden_layers = layers;
  config.num_attention_heads = heads;
  config.projection_dim = 12;
  config.bos_token_id = 0;
  config.eos_token_id = 2;
  config.pad_token_id = 1;
  return config;
}

// SDXL-style ids: BOS, `words` ids, EOS, then `pad` up to `length`.
torch::Tensor Ids(const std::vector<int64_t>& words, int64_t pad, int64_t length = 77) {
  std::vector<int64_t> ids = {kStartOfText};
  ids.insert(ids.end(), words.begin(), words.end());
  ids.push_back(kEndOfText);
  ids.resize(length, pad);
  return torch::tensor(ids, torch::kLong).view({1, length});
}

// SDXL base's text_encoder_2/config.json.
constexpr char kSdxlBigGConfigJson[] = R"({
  "architectures": ["CLIPTextModelWithProjection"], "attention_dropout": 0.0, "bos_token_id": 0,
  "dropout": 0.0, "eos_token_id": 2, "hidden_act": "gelu", "hidden_size": 1280,
  "initializer_factor": 1.0, "initializer_range": 0.02, "intermediate_size": 5120,
  "layer_norm_eps": 1e-05, "max_position_embeddings": 77, "model_type": "clip_text_model",
  "num_attention_heads": 20, "num_hidden_layers": 32, "pad_token_id": 1, "projection_dim": 1280,
  "torch_dtype": "float16", "transformers_version": "4.32.0.dev0", "vocab_size": 49408})";

void ExpectSameConfig(const ClipTextConfig& a, const ClipTextConfig& b) {
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.hidden_size, b.hidden_size);
  EXPECT_EQ(a.intermediate_size, b.intermediate_size);
  EXPECT_EQ(a.num_hidden_layers, b.num_hidden_layers);
  EXPECT_EQ(a.num_attention_heads, b.num_attention_heads);
  EXPECT_EQ(a.max_position_embeddings, b.max_position_embeddings);
  EXPECT_EQ(a.hidden_act, b.hidden_act);
  EXPECT_EQ(a.layer_norm_eps, b.layer_norm_eps);
  EXPECT_EQ(a.projection_dim, b.projection_dim);
  EXPECT_EQ(a.bos_token_id, b.bos_token_id);
  EXPECT_EQ(a.eos_token_id, b.eos_token_id);
  EXPECT_EQ(a.pad_token_id, b.pad_token_id);
}

TEST(ClipTextConfigTest, SdxlBigGJsonGivesThePreset) {
  absl::StatusOr<ClipTextConfig> config = ClipTextConfig::FromJsonText(kSdxlBigGConfigJson);
  ASSERT_TRUE(config.ok()) << config.status();
  ExpectSameConfig(*config, ClipTextConfig::SdxlBigG());
  EXPECT_EQ(config->head_dim(), 64);
}

TEST(ClipTextConfigTest, AbsentKeysTakeTransformersDefaults) {
  absl::StatusOr<ClipTextConfig> config = ClipTextConfig::FromJsonText(R"({"hidden_size": 768})");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->hidden_size, 768);
  EXPECT_EQ(config->num_attention_heads, 8);
  EXPECT_EQ(config->eos_token_id, 49407);
  EXPECT_EQ(config->hidden_act, ClipActivation::kQuickGelu);
}

TEST(ClipTextConfigTest, FullClipConfigIsReadThroughTextConfig) {
  absl::StatusOr<ClipTextConfig> config = ClipTextConfig::FromJsonText(
      R"({"model_type": "clip", "text_config": {"hidden_size": 64, "hidden_act": "gelu"}})");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->hidden_size, 64);
  EXPECT_EQ(config->hidden_act, ClipActivation::kGelu);
}

TEST(ClipTextConfigTest, ErrorsNameTheField) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"hidden_size": "768"})", "'hidden_size'"},
      {R"({"hidden_size": 7.5})", "'hidden_size'"},
      {R"({"num_hidden_layers": 0})", "'num_hidden_layers'"},
      {R"({"vocab_size": -3})", "'vocab_size'"},
      {R"({"hidden_size": 100, "num_attention_heads": 3})", "'num_attention_heads'"},
      {R"({"hidden_act": "relu"})", "'hidden_act'"},
      {R"({"hidden_act": 1})", "'hidden_act'"},
      {R"({"layer_norm_eps": "1e-5"})", "'layer_norm_eps'"},
      {R"({"layer_norm_eps": 0})", "'layer_norm_eps'"},
      {R"({"eos_token_id": null})", "'eos_token_id'"},
      {R"({"projection_dim": 0})", "'projection_dim'"},
      {R"({"attention_dropout": 0.1})", "'attention_dropout'"},
      {R"({"model_type": "t5"})", "'model_type'"},
      {R"({"model_type": "clip"})", "'text_config'"},
  };
  for (const auto& [json, field] : cases) {
    absl::StatusOr<ClipTextConfig> config = ClipTextConfig::FromJsonText(json);
    ASSERT_FALSE(config.ok()) << json;
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << json;
    EXPECT_THAT(std::string(config.status().message()), HasSubstr(field)) << json;
  }
  EXPECT_EQ(ClipTextConfig::FromJsonText("{\"hidden_size\": ").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ClipTextConfig::FromJsonText("[1, 2]").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ClipTextModelTest, SdxlPresetsHaveThePublishedParameterCounts) {
  // Parameters are uninitialised: both encoders (3.3 GB of float32) live in virtual memory only.
  CLIPTextModel clip_l(ClipTextConfig::SdxlClipL());
  EXPECT_EQ(CountParameters(*clip_l), kSdxlClipLParameters);
  CLIPTextModelWithProjection big_g(ClipTextConfig::SdxlBigG());
  EXPECT_EQ(CountParameters(*big_g), kSdxlBigGParameters);
  EXPECT_EQ(big_g->text_projection->weight.sizes(), (std::vector<int64_t>{1280, 1280}));
  EXPECT_FALSE(big_g->text_projection->bias.defined());
}

TEST(ClipTextModelTest, StateDictNamesAreTransformers) {
  CLIPTextModelWithProjection model(TinyConfig(16, 2, /*layers=*/2));
  std::set<std::string> names;
  for (const auto& [name, tensor] : ModuleStateDict(*model)) names.insert(name);
  std::set<std::string> expected = {
      "text_model.embeddings.token_embedding.weight",
      "text_model.embeddings.position_embedding.weight",
      "text_model.final_layer_norm.weight",
      "text_model.final_layer_norm.bias",
      "text_projection.weight",
  };
  for (int layer = 0; layer < 2; ++layer) {
    const std::string prefix = absl::StrCat("text_model.encoder.layers.", layer, ".");
    for (const char* part :
         {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj",
          "layer_norm1", "layer_norm2", "mlp.fc1", "mlp.fc2"}) {
      expected.insert(absl::StrCat(prefix, part, ".weight"));
      expected.insert(absl::StrCat(prefix, part, ".bias"));
    }
  }
  EXPECT_EQ(names, expected);  // No position_ids: it is a non-persistent buffer in transformers.
  // The golden file's counts: 52 tensors for 3 layers, 53 with text_projection.
  EXPECT_EQ(ModuleStateDict(*CLIPTextModel(TinyConfig())).size(), 52u);
  EXPECT_EQ(ModuleStateDict(*CLIPTextModelWithProjection(TinyConfig())).size(), 53u);
}

TEST(ClipTextModelTest, LoadIgnoresOldPositionIdsButReportsOtherExtras) {
  CLIPTextModel source(TinyConfig());
  InitializeRandomly(*source, 3);
  StateDict weights = ModuleStateDict(*source);
  weights["text_model.embeddings.position_ids"] = torch::arange(77).view({1, 77});
  weights["logit_scale"] = torch::ones({});
  CLIPTextModel target(TinyConfig());
  absl::StatusOr<LoadReport> report = LoadClipTextStateDict(*target, weights, "model.safetensors");
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->unexpected, (std::vector<std::string>{"logit_scale"}));
  EXPECT_TRUE(target->text_model->final_layer_norm->weight.equal(
      source->text_model->final_layer_norm->weight));

  weights.erase("text_model.final_layer_norm.bias");
  report = LoadClipTextStateDict(*target, weights, "model.safetensors");
  ASSERT_FALSE(report.ok());
  EXPECT_THAT(std::string(report.status().message()),
              HasSubstr("text_model.final_layer_norm.bias"));
}

TEST(ClipTextModelTest, PoolingPositionsFollowTransformers) {
  // Encoder 1 pads with EOS: both rules find the first EOS.
  const torch::Tensor eos_padded =
      torch::cat({Ids({320, 1125}, kEndOfText), Ids({320}, kEndOfText)});
  const torch::Tensor first_eos = torch::tensor(std::vector<int64_t>{3, 2});
  EXPECT_TRUE(ClipPoolingPositions(eos_padded, kLegacyEosTokenId).equal(first_eos));
  EXPECT_TRUE(ClipPoolingPositions(eos_padded, kEndOfText).equal(first_eos));
  // Legacy rule: the largest id, whatever the eos id says.
  const torch::Tensor big_word = Ids({49500}, 0);
  EXPECT_EQ(ClipPoolingPositions(big_word, kLegacyEosTokenId).item<int64_t>(), 1);
  EXPECT_EQ(ClipPoolingPositions(big_word, kEndOfText).item<int64_t>(), 2);
  // No eos at all: position 0, as argmax of all zeros.
  EXPECT_EQ(ClipPoolingPositions(torch::full({1, 5}, 7, torch::kLong), kEndOfText).item<int64_t>(),
            0);
}

TEST(ClipTextModelTest, ForwardShapesHiddenStatesAndPooling) {
  const ClipTextConfig config = TinyConfig();
  CLIPTextModelWithProjection model(config);
  InitializeRandomly(*model, 11);
  torch::NoGradGuard no_grad;
  const torch::Tensor ids = torch::cat({Ids({320, 1125, 539}, 0), Ids({320}, 0)});
  ClipTextForwardOptions options;
  options.output_hidden_states = true;
  const ClipTextOutput out = model(ids, options);
  ASSERT_EQ(out.hidden_states.size(), static_cast<size_t>(config.num_hidden_layers + 1));
  for (const torch::Tensor& h : out.hidden_states)
    EXPECT_EQ(h.sizes(), (std::vector<int64_t>{2, 77, 16}));
  EXPECT_TRUE(out.penultimate_hidden_state.equal(out.hidden_states[config.num_hidden_layers - 1]));
  EXPECT_TRUE(out.last_hidden_state.allclose(
      model->text_model->final_layer_norm(out.hidden_states.back())));
  EXPECT_TRUE(out.pooler_output[0].equal(out.last_hidden_state[0][4]));
  EXPECT_TRUE(out.pooler_output[1].equal(out.last_hidden_state[1][2]));
  EXPECT_EQ(out.text_embeds.sizes(), (std::vector<int64_t>{2, 12}));
  EXPECT_TRUE(out.text_embeds.allclose(
      torch::matmul(out.pooler_output, model->text_projection->weight.t())));

  // Without output_hidden_states only the penultimate is kept.
  const ClipTextOutput lean = model(ids);
  EXPECT_TRUE(lean.hidden_states.empty());
  EXPECT_TRUE(lean.last_hidden_state.equal(out.last_hidden_state));
  EXPECT_TRUE(lean.penultimate_hidden_state.equal(out.penultimate_hidden_state));
}

TEST(ClipTextModelTest, StopAtPenultimateSkipsTheLastLayer) {
  CLIPTextModel model(TinyConfig());
  InitializeRandomly(*model, 5);
  torch::NoGradGuard no_grad;
  const torch::Tensor ids = Ids({320, 1125}, kEndOfText);
  ClipTextForwardOptions options;
  options.output_hidden_states = true;
  const ClipTextOutput full = model(ids, options);
  options.stop_at_penultimate = true;
  const ClipTextOutput early = model(ids, options);
  EXPECT_TRUE(early.penultimate_hidden_state.equal(full.penultimate_hidden_state));
  EXPECT_EQ(early.hidden_states.size(), full.hidden_states.size() - 1);
  EXPECT_FALSE(early.last_hidden_state.defined());
  EXPECT_FALSE(early.pooler_output.defined());
}

TEST(ClipTextModelTest, CausalMaskKeepsEarlierTokensBlindToLaterOnes) {
  CLIPTextModel model(TinyConfig());
  InitializeRandomly(*model, 9);
  torch::NoGradGuard no_grad;
  // Same prompt, different padding: positions up to EOS must not change (SDXL relies on it).
  const ClipTextOutput a = model(Ids({320, 1125}, kEndOfText));
  const ClipTextOutput b = model(Ids({320, 1125}, 0));
  constexpr int64_t kPromptLength = 4;  // BOS, two words, EOS
  EXPECT_TRUE(a.last_hidden_state.narrow(1, 0, kPromptLength)
                  .allclose(b.last_hidden_state.narrow(1, 0, kPromptLength)));
  EXPECT_FALSE(a.last_hidden_state.narrow(1, kPromptLength, 1)
                   .allclose(b.last_hidden_state.narrow(1, kPromptLength, 1)));
  EXPECT_TRUE(a.pooler_output.allclose(b.pooler_output));
}

TEST(ClipTextModelTest, ShorterSequencesUseTheFirstPositions) {
  CLIPTextModel model(TinyConfig());
  InitializeRandomly(*model, 2);
  torch::NoGradGuard no_grad;
  const torch::Tensor ids = Ids({320, 1125}, kEndOfText);
  const ClipTextOutput full = model(ids);
  const ClipTextOutput short_one = model(ids.narrow(1, 0, 10));
  EXPECT_TRUE(
      short_one.last_hidden_state.allclose(full.last_hidden_state.narrow(1, 0, 10), 1e-5, 1e-6));
  EXPECT_THROW(model(torch::zeros({1, 78}, torch::kLong)), c10::Error);
}

TEST(ClipTextModelTest, ActivationsMatchTheirFormulas) {
  constexpr double kPi = 3.14159265358979323846;
  const torch::Tensor x = torch::linspace(-4, 4, 101, torch::kDouble);
  EXPECT_TRUE(
      ApplyClipActivation(x, ClipActivation::kQuickGelu).allclose(x * torch::sigmoid(1.702 * x)));
  EXPECT_TRUE(ApplyClipActivation(x, ClipActivation::kGelu)
                  .allclose(0.5 * x * (1 + torch::erf(x / std::sqrt(2.0)))));
  const torch::Tensor tanh_gelu =
      0.5 * x * (1 + torch::tanh(std::sqrt(2.0 / kPi) * (x + 0.044715 * x.pow(3))));
  EXPECT_TRUE(ApplyClipActivation(x, ClipActivation::kGeluTanh).allclose(tanh_gelu));
}

TEST(SdxlConditioningTest, PromptEmbedsConcatenatePenultimatesAndPoolFromEncoder2) {
  CLIPTextModel encoder_1(TinyConfig(/*hidden=*/16, /*heads=*/2));
  CLIPTextModelWithProjection encoder_2(TinyConfig(/*hidden=*/24, /*heads=*/3));
  InitializeRandomly(*encoder_1, 1);
  InitializeRandomly(*encoder_2, 2);
  torch::NoGradGuard no_grad;
  const torch::Tensor ids_1 = torch::cat({Ids({320, 1125}, kEndOfText), Ids({539}, kEndOfText)});
  const torch::Tensor ids_2 = torch::cat({Ids({320, 1125}, 0), Ids({539}, 0)});
  const SdxlPromptEmbeds embeds = EncodeSdxlPrompt(encoder_1, encoder_2, ids_1, ids_2);
  EXPECT_EQ(embeds.prompt_embeds.sizes(), (std::vector<int64_t>{2, 77, 16 + 24}));
  EXPECT_TRUE(
      embeds.prompt_embeds.narrow(-1, 0, 16).equal(encoder_1(ids_1).penultimate_hidden_state));
  const ClipTextOutput out_2 = encoder_2(ids_2);
  EXPECT_TRUE(embeds.prompt_embeds.narrow(-1, 16, 24).equal(out_2.penultimate_hidden_state));
  EXPECT_TRUE(embeds.pooled_prompt_embeds.equal(out_2.text_embeds));
  EXPECT_THROW(EncodeSdxlPrompt(encoder_1, encoder_2, ids_1, ids_2.narrow(0, 0, 1)), c10::Error);
}

TEST(SdxlConditioningTest, TimeIdsAreOriginalCropTargetInHeightWidthOrder) {
  const torch::Tensor ids = SdxlTimeIds({/*height=*/768, /*width=*/1344}, {/*top=*/64, /*left=*/32},
                                        {/*height=*/1024, /*width=*/1024});
  EXPECT_EQ(ids.scalar_type(), torch::kFloat32);
  EXPECT_EQ(ids.sizes(), (std::vector<int64_t>{kSdxlTimeIdsSize}));
  EXPECT_TRUE(ids.equal(torch::tensor({768.f, 1344.f, 64.f, 32.f, 1024.f, 1024.f})));
}

}  // namespace
}  // namespace likeness::model
