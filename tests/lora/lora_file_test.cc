// LoRA files: kohya and PEFT save -> load round trips are exact, kohya names follow sd-scripts'
// SGM naming (tiny UNet and full SDXL on the meta device), older spellings are read, and broken
// or foreign files fail with errors naming the key.
#include "worker/lora/lora_file.h"

#include <map>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/safetensors/safetensors_file.h"
#include "common/safetensors/writer.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/lora/lora_test_util.h"
#include "tests/test_data.h"
#include "worker/lora/lora_layer_index.h"
#include "worker/lora/lora_network.h"
#include "worker/lora/lora_set.h"

namespace likeness::lora {
namespace {

using testing::BitIdentical;
using testing::MakeTinyInputs;
using testing::MaxAbsDiff;
using testing::RandomizeAdapters;
using testing::RunTiny;

model::SdxlModels Tiny(uint64_t seed = 7) {
  absl::StatusOr<model::SdxlModels> models = testing::TinySdxl(seed);
  EXPECT_TRUE(models.ok()) << models.status();
  return *std::move(models);
}

LoraTrainOptions AllTargets(int64_t rank = 4, double alpha = 0.0) {
  LoraTrainOptions options;
  options.rank = rank;
  options.alpha = alpha;
  options.targets.WithUnetFeedForward().WithUnetProjections().WithTextEncoders(/*mlp=*/true);
  return options;
}

std::string TempDir(const std::string& name) { return testing::MakeTestTempDir("lora_" + name); }

std::set<std::string> KeysOf(const std::string& path) {
  auto file = safetensors::SafetensorsFile::Open(path);
  EXPECT_TRUE(file.ok()) << file.status();
  const std::vector<std::string> names = (*file)->Names();
  return std::set<std::string>(names.begin(), names.end());
}

void ExpectSameAdapters(const LoraNetwork& a, const LoraNetwork& b) {
  ASSERT_EQ(a.NumModules(), b.NumModules());
  for (int64_t i = 0; i < a.NumModules(); ++i) {
    EXPECT_EQ(a.layer(i).QualifiedName(), b.layer(i).QualifiedName());
    EXPECT_TRUE(BitIdentical(a.adapter(i).down(), b.adapter(i).down())) << a.layer(i).path;
    EXPECT_TRUE(BitIdentical(a.adapter(i).up(), b.adapter(i).up())) << a.layer(i).path;
    EXPECT_EQ(a.adapter(i).alpha(), b.adapter(i).alpha()) << a.layer(i).path;
  }
}

// Writes `tensors` as a safetensors file in a fresh folder and returns its path.
std::string WriteFile(const std::string& name, const safetensors::NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {}) {
  const std::string path = TempDir(name) + "/" + name + ".safetensors";
  const absl::Status status = safetensors::WriteSafetensors(path, tensors, metadata);
  EXPECT_TRUE(status.ok()) << status;
  return path;
}

absl::Status LoadStatus(const std::string& path, const LoraLoadOptions& options = {}) {
  model::SdxlModels models = Tiny();
  return LoraNetwork::Load(models, path, options).status();
}

void ExpectError(const absl::Status& status, const std::vector<std::string>& fragments) {
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  for (const std::string& f : fragments) {
    EXPECT_TRUE(absl::StrContains(status.message(), f)) << status << "\n  lacks: " << f;
  }
}

// ---------------------------------------------------------------------------------------------
// Round trips.

class RoundTripTest : public ::testing::TestWithParam<LoraFileFormat> {};

TEST_P(RoundTripTest, SaveThenLoadIsExact) {
  model::SdxlModels models = Tiny();
  // alpha != rank, so a lost alpha would show.
  auto trained = LoraNetwork::CreateTrainable(models, AllTargets(4, 2.5));
  ASSERT_TRUE(trained.ok()) << trained.status();
  RandomizeAdapters(**trained, 3);
  const testing::TinyInputs inputs = MakeTinyInputs();
  torch::NoGradGuard no_grad;
  const torch::Tensor expected = RunTiny(models, inputs);

  const std::string path = TempDir(FormatName(GetParam())) + "/lora.safetensors";
  LoraSaveOptions save;
  save.format = GetParam();
  save.base_model_hash = "ab12";
  ASSERT_TRUE((*trained)->Save(path, save).ok());

  model::SdxlModels fresh = Tiny();
  LoraLoadReport report;
  auto loaded = LoraNetwork::Load(fresh, path, {}, &report);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(report.format, GetParam());
  EXPECT_TRUE(report.unmatched.empty());
  EXPECT_EQ(report.metadata.at(kMetaBaseModelHash), "ab12");
  ExpectSameAdapters(**trained, **loaded);
  EXPECT_TRUE(BitIdentical(RunTiny(fresh, inputs), expected));

  // Saving what was loaded writes the same tensors again (names, values, alphas).
  const std::string again =
      TempDir(std::string(FormatName(GetParam())) + "_again") + "/l.safetensors";
  ASSERT_TRUE((*loaded)->Save(again, save).ok());
  EXPECT_EQ(KeysOf(again), KeysOf(path));
  model::SdxlModels third = Tiny();
  auto reloaded = LoraNetwork::Load(third, again);
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  ExpectSameAdapters(**trained, **reloaded);
}

TEST_P(RoundTripTest, Bf16StorageRoundsOnceAndLoadsIntoTheLayerDtype) {
  model::SdxlModels models = Tiny();
  auto trained = LoraNetwork::CreateTrainable(models, AllTargets());
  ASSERT_TRUE(trained.ok());
  RandomizeAdapters(**trained, 3);
  const std::string path =
      TempDir(std::string("bf16_") + FormatName(GetParam())) + "/l.safetensors";
  LoraSaveOptions save;
  save.format = GetParam();
  save.dtype = torch::kBFloat16;
  ASSERT_TRUE((*trained)->Save(path, save).ok());
  auto file = safetensors::SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok());
  model::SdxlModels fresh = Tiny();
  auto loaded = LoraNetwork::Load(fresh, path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  for (int64_t i = 0; i < (*loaded)->NumModules(); ++i) {
    EXPECT_EQ((*loaded)->adapter(i).down().scalar_type(), torch::kFloat32);  // the layer's dtype
    EXPECT_TRUE(
        BitIdentical((*loaded)->adapter(i).down(),
                     (*trained)->adapter(i).down().to(torch::kBFloat16).to(torch::kFloat32)));
    EXPECT_EQ((*loaded)->adapter(i).alpha(), (*trained)->adapter(i).alpha());
  }
}

TEST_P(RoundTripTest, LoadWeightsResumesIntoTheSameTensors) {
  model::SdxlModels models = Tiny();
  LoraTrainOptions options = AllTargets(4, 2.0);
  auto trained = LoraNetwork::CreateTrainable(models, options);
  ASSERT_TRUE(trained.ok());
  RandomizeAdapters(**trained, 3);
  const std::string path =
      TempDir(std::string("resume_") + FormatName(GetParam())) + "/l.safetensors";
  LoraSaveOptions save;
  save.format = GetParam();
  ASSERT_TRUE((*trained)->Save(path, save).ok());

  model::SdxlModels fresh = Tiny();
  options.seed = 99;
  auto resumed = LoraNetwork::CreateTrainable(fresh, options);
  ASSERT_TRUE(resumed.ok());
  const std::vector<torch::Tensor> before = (*resumed)->TrainableTensors();
  ASSERT_TRUE((*resumed)->LoadWeights(path).ok());
  const std::vector<torch::Tensor> after = (*resumed)->TrainableTensors();
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_TRUE(after[i].is_same(before[i]));  // the optimizer's tensors, updated in place
    EXPECT_TRUE(after[i].requires_grad());
  }
  ExpectSameAdapters(**trained, **resumed);

  // A network with other targets or another alpha cannot take these weights.
  model::SdxlModels other = Tiny();
  auto fewer = LoraNetwork::CreateTrainable(other, LoraTrainOptions{});
  ASSERT_TRUE(fewer.ok());
  ExpectError((*fewer)->LoadWeights(path), {"names modules this LoRA network lacks"});
  fewer->reset();
  options.alpha = 3.0;
  auto other_alpha = LoraNetwork::CreateTrainable(other, options);
  ASSERT_TRUE(other_alpha.ok());
  ExpectError((*other_alpha)->LoadWeights(path), {"alpha 2", "alpha 3"});
}

INSTANTIATE_TEST_SUITE_P(Formats, RoundTripTest,
                         ::testing::Values(LoraFileFormat::kKohya, LoraFileFormat::kPeft),
                         [](const auto& info) { return std::string(FormatName(info.param)); });

// ---------------------------------------------------------------------------------------------
// Key names and metadata.

TEST(KohyaFormatTest, TinyUnetUsesSdScriptsSgmNames) {
  model::SdxlModels models = Tiny();
  auto trained = LoraNetwork::CreateTrainable(models, AllTargets(4, 1.0));
  ASSERT_TRUE(trained.ok());
  const std::string path = TempDir("kohya_names") + "/l.safetensors";
  ASSERT_TRUE((*trained)->Save(path).ok());
  const std::set<std::string> keys = KeysOf(path);
  // The tiny UNet has SDXL's topology (3 levels, 2 layers per block, attention in levels 1-2,
  // 1/1/2 transformer blocks): sd-scripts' make_unet_conversion_map gives
  // down_blocks.i.attentions.j -> input_blocks.(3i+j+1).1, up_blocks.i.attentions.j ->
  // output_blocks.(3i+j).1, mid_block.attentions.0 -> middle_block.1.
  for (const char* name : {
           "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q",
           "lora_unet_input_blocks_5_1_proj_in",
           "lora_unet_input_blocks_8_1_transformer_blocks_1_attn2_to_k",
           "lora_unet_middle_block_1_transformer_blocks_1_ff_net_0_proj",
           "lora_unet_output_blocks_0_1_transformer_blocks_1_attn1_to_out_0",
           "lora_unet_output_blocks_5_1_transformer_blocks_0_ff_net_2",
           "lora_te1_text_model_encoder_layers_0_self_attn_q_proj",
           "lora_te2_text_model_encoder_layers_2_mlp_fc2",
       }) {
    for (const char* suffix : {".lora_down.weight", ".lora_up.weight", ".alpha"}) {
      EXPECT_EQ(keys.count(absl::StrCat(name, suffix)), 1u) << name << suffix;
    }
  }
  for (const std::string& key : keys) {
    EXPECT_FALSE(absl::StrContains(key, "down_blocks")) << key;
    EXPECT_FALSE(absl::StrContains(key, "up_blocks")) << key;
  }
  EXPECT_EQ(keys.size(), static_cast<size_t>(3 * (*trained)->NumModules()));

  auto file = safetensors::SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok());
  const auto& meta = (*file)->metadata();
  EXPECT_EQ(meta.at("ss_network_module"), "networks.lora");
  EXPECT_EQ(meta.at("ss_network_dim"), "4");
  EXPECT_EQ(meta.at("ss_network_alpha"), "1.0");
  EXPECT_EQ(meta.at("ss_base_model_version"), "sdxl_base_v1-0");
  EXPECT_EQ(meta.at("modelspec.architecture"), "stable-diffusion-xl-v1-base/lora");
  const auto alpha = (*file)->Get("lora_unet_input_blocks_4_1_proj_in.alpha");
  ASSERT_TRUE(alpha.ok());
  EXPECT_EQ(alpha->dim(), 0);
  EXPECT_EQ(alpha->item<float>(), 1.0f);
  const nlohmann::json targets = nlohmann::json::parse(meta.at(kMetaTargets));
  EXPECT_EQ(targets["unet"].size(), 8u);
}

TEST(PeftFormatTest, KeysAndAdapterMetadataAreDiffusers) {
  model::SdxlModels models = Tiny();
  LoraTrainOptions options;
  options.rank = 2;
  options.alpha = 3.0;
  options.targets.WithTextEncoders();
  auto trained = LoraNetwork::CreateTrainable(models, options);
  ASSERT_TRUE(trained.ok());
  const std::string path = TempDir("peft_names") + "/l.safetensors";
  LoraSaveOptions save;
  save.format = LoraFileFormat::kPeft;
  ASSERT_TRUE((*trained)->Save(path, save).ok());
  const std::set<std::string> keys = KeysOf(path);
  EXPECT_EQ(
      keys.count("unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight"),
      1u);
  EXPECT_EQ(
      keys.count("unet.up_blocks.0.attentions.2.transformer_blocks.1.attn2.to_out.0.lora_B.weight"),
      1u);
  EXPECT_EQ(keys.count("text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_A.weight"),
            1u);
  EXPECT_EQ(
      keys.count("text_encoder_2.text_model.encoder.layers.2.self_attn.out_proj.lora_B.weight"),
      1u);
  for (const std::string& key : keys) EXPECT_FALSE(absl::EndsWith(key, ".alpha")) << key;

  auto file = safetensors::SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok());
  const nlohmann::json adapter =
      nlohmann::json::parse((*file)->metadata().at(kPeftAdapterMetadataKey));
  EXPECT_EQ(adapter["unet.r"], 2);
  EXPECT_EQ(adapter["unet.lora_alpha"], 3.0);
  EXPECT_EQ(adapter["unet.target_modules"],
            nlohmann::json::array({"to_q", "to_k", "to_v", "to_out.0"}));
  EXPECT_EQ(adapter["text_encoder_2.lora_alpha"], 3.0);
  EXPECT_EQ((*file)->metadata().at("format"), "pt");
}

// ---------------------------------------------------------------------------------------------
// Full SDXL base, built on the meta device (no memory).

class SdxlNamesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model::SdxlBuildOptions options;
    options.device = torch::kMeta;
    auto models = model::BuildSdxlArchitecture(model::kArchSdxlBase, options);
    ASSERT_TRUE(models.ok()) << models.status();
    models_ = *std::move(models);
    auto index = LoraLayerIndex::Build(models_);
    ASSERT_TRUE(index.ok()) << index.status();
    index_ = *std::move(index);
  }
  int Count(LoraComponent component, const std::vector<std::string>& patterns) const {
    int count = 0;
    for (const LoraLayer& layer : index_.layers()) {
      count += layer.component == component && MatchesAnyTarget(layer.path, patterns);
    }
    return count;
  }
  model::SdxlModels models_;
  LoraLayerIndex index_;
};

TEST_F(SdxlNamesTest, ModuleCountsMatchSdScripts) {
  // SDXL base (transformer_layers_per_block [1, 2, 10]): 70 transformer blocks (down: 2
  // attentions x 2 blocks + 2 x 10; mid: 10; up: 3 x 10 + 3 x 2) in 11 Transformer2DModels
  // (4 down, 1 mid, 6 up).
  const LoraTargets defaults = LoraTargets::Default();
  EXPECT_EQ(Count(LoraComponent::kUnet, defaults.unet), 70 * 8);  // 560
  // sd-scripts targets every Linear in a Transformer2DModel: 70 x 10 + 11 x 2 = 722, the
  // "create LoRA for U-Net: 722 modules." it logs for SDXL.
  LoraTargets kohya = LoraTargets::Default();
  kohya.WithUnetFeedForward().WithUnetProjections().WithTextEncoders(/*mlp=*/true);
  EXPECT_EQ(Count(LoraComponent::kUnet, kohya.unet), 722);
  // CLIPAttention + CLIPMLP: 12 x 6 = 72 (CLIP-L) and 32 x 6 = 192 (bigG); sd-scripts logs
  // "create LoRA for Text Encoder: 264 modules."
  EXPECT_EQ(Count(LoraComponent::kTextEncoder, kohya.text_encoder), 72);
  EXPECT_EQ(Count(LoraComponent::kTextEncoder2, kohya.text_encoder_2), 192);

  // Trainable LoRA on meta: counts without memory. rank 4 on to_q/k/v/out of 70 blocks.
  auto network = LoraNetwork::CreateTrainable(models_, {});
  ASSERT_TRUE(network.ok()) << network.status();
  EXPECT_EQ((*network)->NumModules(), 560);
}

TEST_F(SdxlNamesTest, KohyaNamesAreSdScriptsSgmNames) {
  // Expected names from sd-scripts' library/sdxl_model_util.py make_unet_conversion_map
  // (down_blocks.i.attentions.j <-> input_blocks.(3i+j+1).1, up_blocks.i.attentions.j <->
  // output_blocks.(3i+j).1, mid_block.attentions.0 <-> middle_block.1, resnets' conv1 <->
  // in_layers.2, down_blocks.i.downsamplers.0.conv <-> input_blocks.(3(i+1)).0.op,
  // up_blocks.i.upsamplers.0 <-> output_blocks.(3i+2).2, time_embedding.linear_1 <->
  // time_embed.0) with networks/lora.py's "lora_unet" prefix and dots as underscores;
  // text-encoder names are transformers' module paths under "lora_te1"/"lora_te2".
  const std::pair<const char*, const char*> expected[] = {
      {"down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q",
       "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q"},
      {"down_blocks.2.attentions.1.transformer_blocks.9.attn2.to_k",
       "lora_unet_input_blocks_8_1_transformer_blocks_9_attn2_to_k"},
      {"mid_block.attentions.0.transformer_blocks.9.ff.net.2",
       "lora_unet_middle_block_1_transformer_blocks_9_ff_net_2"},
      {"up_blocks.0.attentions.2.transformer_blocks.9.attn1.to_out.0",
       "lora_unet_output_blocks_2_1_transformer_blocks_9_attn1_to_out_0"},
      {"up_blocks.1.attentions.2.proj_out", "lora_unet_output_blocks_5_1_proj_out"},
      {"down_blocks.1.resnets.0.conv1", "lora_unet_input_blocks_4_0_in_layers_2"},
      {"down_blocks.0.downsamplers.0.conv", "lora_unet_input_blocks_3_0_op"},
      {"up_blocks.0.upsamplers.0.conv", "lora_unet_output_blocks_2_2_conv"},
      {"time_embedding.linear_1", "lora_unet_time_embed_0"},
  };
  for (const auto& [path, kohya] : expected) {
    const LoraLayer* layer = index_.Find(LoraComponent::kUnet, path);
    ASSERT_NE(layer, nullptr) << path;
    EXPECT_EQ(layer->kohya_name, kohya);
    EXPECT_EQ(index_.FindKohya(kohya), layer);
    // The diffusers spelling finds the same layer (older kohya files).
    EXPECT_EQ(index_.FindKohya(absl::StrCat("lora_unet_", absl::StrReplaceAll(path, {{".", "_"}}))),
              layer);
  }
  const LoraLayer* te1 = index_.FindKohya("lora_te1_text_model_encoder_layers_11_mlp_fc2");
  ASSERT_NE(te1, nullptr);
  EXPECT_EQ(te1->QualifiedName(), "text_encoder.text_model.encoder.layers.11.mlp.fc2");
  const LoraLayer* te2 =
      index_.FindKohya("lora_te2_text_model_encoder_layers_31_self_attn_out_proj");
  ASSERT_NE(te2, nullptr);
  EXPECT_EQ(te2->QualifiedName(), "text_encoder_2.text_model.encoder.layers.31.self_attn.out_proj");
  // Every UNet layer has an SGM name (none fell back to the diffusers spelling).
  for (const LoraLayer& layer : index_.layers()) {
    if (layer.component != LoraComponent::kUnet) continue;
    EXPECT_FALSE(layer.kohya_diffusers_name.empty()) << layer.path;
    EXPECT_NE(layer.kohya_name, layer.kohya_diffusers_name) << layer.path;
  }
}

// ---------------------------------------------------------------------------------------------
// Other spellings.

// Fixed-value halves for `layer` with `rank`.
std::pair<torch::Tensor, torch::Tensor> Halves(const LoraLayer& layer, int64_t rank, float value) {
  const LoraLayerShape s = layer.Shape();
  return {torch::full(s.DownShape(rank), value), torch::full(s.UpShape(rank), value)};
}

TEST(LoraFileReadTest, OlderKohyaAndDiffusersSpellingsLoad) {
  model::SdxlModels models = Tiny();
  auto index = LoraLayerIndex::Build(models);
  ASSERT_TRUE(index.ok());
  const LoraLayer* q = index->Find(LoraComponent::kUnet,
                                   "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q");
  const LoraLayer* te =
      index->Find(LoraComponent::kTextEncoder, "text_model.encoder.layers.1.self_attn.k_proj");
  ASSERT_TRUE(q != nullptr && te != nullptr);
  auto [qd, qu] = Halves(*q, 2, 0.5f);
  auto [td, tu] = Halves(*te, 3, 0.25f);

  // kohya with diffusers-style UNet names, no alpha (-> rank) and SD1.x's lora_te_.
  const std::string kohya = WriteFile(
      "old_kohya",
      {{"lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight",
        qd},
       {"lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q.lora_up.weight", qu},
       {"lora_te_text_model_encoder_layers_1_self_attn_k_proj.lora_down.weight", td},
       {"lora_te_text_model_encoder_layers_1_self_attn_k_proj.lora_up.weight", tu},
       {"lora_te_text_model_encoder_layers_1_self_attn_k_proj.alpha", torch::tensor(0.0)}});
  // diffusers attention processors + .lora.down, and lora_linear_layer with an .alpha key.
  const std::string diffusers = WriteFile(
      "old_diffusers",
      {{"unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.processor.to_q_lora.down."
        "weight",
        qd},
       {"unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.processor.to_q_lora.up.weight",
        qu},
       {"text_encoder.text_model.encoder.layers.1.self_attn.k_proj.lora_linear_layer.down.weight",
        td},
       {"text_encoder.text_model.encoder.layers.1.self_attn.k_proj.lora_linear_layer.up.weight",
        tu},
       {"text_encoder.text_model.encoder.layers.1.self_attn.k_proj.alpha", torch::tensor(1.5)}});
  for (const std::string& path : {kohya, diffusers}) {
    auto contents = ReadLoraFile(path, *index);
    ASSERT_TRUE(contents.ok()) << contents.status();
    ASSERT_EQ(contents->modules.size(), 2u) << path;
    EXPECT_EQ(contents->modules[0].layer, q);
    EXPECT_EQ(contents->modules[0].alpha, 2.0);  // no alpha: rank
    EXPECT_EQ(contents->modules[1].layer, te);
    EXPECT_EQ(contents->modules[1].alpha, path == kohya ? 3.0 : 1.5);  // kohya alpha 0: rank
    EXPECT_TRUE(BitIdentical(contents->modules[1].up, tu));
  }
}

TEST(LoraFileReadTest, PeftAlphaComesFromMetadataPatterns) {
  model::SdxlModels models = Tiny();
  auto index = LoraLayerIndex::Build(models);
  ASSERT_TRUE(index.ok());
  const LoraLayer* q = index->Find(LoraComponent::kUnet,
                                   "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q");
  const LoraLayer* k = index->Find(LoraComponent::kUnet,
                                   "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_k");
  auto [qd, qu] = Halves(*q, 2, 0.5f);
  auto [kd, ku] = Halves(*k, 2, 0.5f);
  const nlohmann::json adapter = {
      {"unet.r", 2},
      {"unet.lora_alpha", 8},
      {"unet.alpha_pattern", {{"down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_k", 1}}}};
  const std::string path = WriteFile(
      "peft_alpha",
      {{"unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight", qd},
       {"unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.lora_B.weight", qu},
       {"unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_k.lora_A.weight", kd},
       {"unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_k.lora_B.weight", ku}},
      {{kPeftAdapterMetadataKey, adapter.dump()}});
  auto contents = ReadLoraFile(path, *index);
  ASSERT_TRUE(contents.ok()) << contents.status();
  ASSERT_EQ(contents->modules.size(), 2u);
  EXPECT_EQ(contents->modules[0].alpha, 8.0);  // to_q: lora_alpha
  EXPECT_EQ(contents->modules[1].alpha, 1.0);  // to_k: alpha_pattern
}

// ---------------------------------------------------------------------------------------------
// Bad files.

class BadFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    models_ = Tiny();
    auto index = LoraLayerIndex::Build(models_);
    ASSERT_TRUE(index.ok());
    index_ = *std::move(index);
    q_ = index_.FindKohya(kQ);
    ASSERT_NE(q_, nullptr);
  }
  static constexpr char kQ[] = "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q";
  model::SdxlModels models_;
  LoraLayerIndex index_;
  const LoraLayer* q_ = nullptr;
};

TEST_F(BadFileTest, DownWithoutUp) {
  auto [d, u] = Halves(*q_, 2, 1.0f);
  const std::string path = WriteFile("no_up", {{absl::StrCat(kQ, ".lora_down.weight"), d},
                                               {absl::StrCat(kQ, ".alpha"), torch::tensor(1.0)}});
  ExpectError(ReadLoraFile(path, index_).status(),
              {absl::StrCat(kQ, ".lora_down.weight has no matching ", kQ, ".lora_up.weight")});
  const std::string peft = WriteFile(
      "no_b",
      {{"unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight", d}});
  ExpectError(ReadLoraFile(peft, index_).status(),
              {"to_q.lora_A.weight has no matching", "to_q.lora_B.weight"});
}

TEST_F(BadFileTest, RankMismatch) {
  const LoraLayerShape s = q_->Shape();
  const std::string path =
      WriteFile("rank", {{absl::StrCat(kQ, ".lora_down.weight"), torch::zeros(s.DownShape(4))},
                         {absl::StrCat(kQ, ".lora_up.weight"), torch::zeros(s.UpShape(3))}});
  ExpectError(ReadLoraFile(path, index_).status(),
              {"rank mismatch", absl::StrCat(kQ, ".lora_down.weight"), "has rank 4",
               absl::StrCat(kQ, ".lora_up.weight"), "has rank 3"});
}

TEST_F(BadFileTest, ShapeThatDoesNotFitTheLayer) {
  const std::string path = WriteFile(
      "shape", {{absl::StrCat(kQ, ".lora_down.weight"), torch::zeros({2, 999})},
                {absl::StrCat(kQ, ".lora_up.weight"), torch::zeros(q_->Shape().UpShape(2))}});
  ExpectError(ReadLoraFile(path, index_).status(),
              {absl::StrCat(kQ, ".lora_down.weight has shape [2, 999]"),
               "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q (Linear"});
}

TEST_F(BadFileTest, UnknownModuleIsAnErrorUnlessAllowed) {
  auto [d, u] = Halves(*q_, 2, 0.1f);
  const std::string unknown = "lora_unet_input_blocks_99_1_proj_in";
  const std::string path = WriteFile("unknown", {{absl::StrCat(kQ, ".lora_down.weight"), d},
                                                 {absl::StrCat(kQ, ".lora_up.weight"), u},
                                                 {unknown + ".lora_down.weight", d},
                                                 {unknown + ".lora_up.weight", u}});
  ExpectError(LoadStatus(path), {"1 of its 2 LoRA modules match no layer", unknown});
  LoraLoadOptions allow;
  allow.allow_unmatched = true;
  model::SdxlModels models = Tiny();
  LoraLoadReport report;
  auto network = LoraNetwork::Load(models, path, allow, &report);
  ASSERT_TRUE(network.ok()) << network.status();
  EXPECT_EQ((*network)->NumModules(), 1);
  EXPECT_EQ(report.unmatched, std::vector<std::string>{unknown});
}

TEST_F(BadFileTest, LoraForAnotherArchitectureNamesItsKeys) {
  // An SD1.x LoRA: attention in down_blocks.0, which SDXL's first level lacks.
  const std::string sd1 = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q";
  const std::string path = WriteFile("sd1", {{sd1 + ".lora_down.weight", torch::zeros({4, 320})},
                                             {sd1 + ".lora_up.weight", torch::zeros({320, 4})}});
  LoraLoadOptions allow;
  allow.allow_unmatched = true;
  ExpectError(LoadStatus(path, allow),
              {"none of its 1 LoRA modules matches", "another architecture", sd1});
}

TEST_F(BadFileTest, UnsupportedKindsAreNamed) {
  auto [d, u] = Halves(*q_, 2, 0.1f);
  const std::string dora =
      WriteFile("dora", {{absl::StrCat(kQ, ".lora_down.weight"), d},
                         {absl::StrCat(kQ, ".lora_up.weight"), u},
                         {absl::StrCat(kQ, ".dora_scale"), torch::ones({1, 64})}});
  ExpectError(ReadLoraFile(dora, index_).status(), {"DoRA", absl::StrCat(kQ, ".dora_scale")});
  const std::string loha =
      WriteFile("loha", {{absl::StrCat(kQ, ".hada_w1_a"), torch::ones({64, 2})},
                         {absl::StrCat(kQ, ".hada_w1_b"), torch::ones({2, 64})}});
  ExpectError(ReadLoraFile(loha, index_).status(), {"LyCORIS LoHa", absl::StrCat(kQ, ".hada_w1_")});
  const std::string magnitude = WriteFile(
      "magnitude",
      {{"unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.lora_magnitude_vector",
        torch::ones({64})}});
  ExpectError(ReadLoraFile(magnitude, index_).status(), {"DoRA", "lora_magnitude_vector"});
}

TEST_F(BadFileTest, NotALoraAndMixedFormats) {
  ExpectError(ReadLoraFile(testing::GoldenDir() + "/unet_tiny_sdxl.safetensors", index_).status(),
              {"is not a LoRA file"});
  auto [d, u] = Halves(*q_, 2, 0.1f);
  const std::string mixed = WriteFile(
      "mixed",
      {{absl::StrCat(kQ, ".lora_down.weight"), d},
       {absl::StrCat(kQ, ".lora_up.weight"), u},
       {"unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_k.lora_A.weight", d}});
  ExpectError(ReadLoraFile(mixed, index_).status(), {"mixes kohya keys"});
  const std::string odd = WriteFile("odd", {{absl::StrCat(kQ, ".lora_down.weight"), d},
                                            {absl::StrCat(kQ, ".lora_up.weight"), u},
                                            {absl::StrCat(kQ, ".scale"), torch::tensor(1.0)}});
  ExpectError(ReadLoraFile(odd, index_).status(),
              {"unknown kind 'scale'", absl::StrCat(kQ, ".scale")});
}

// ---------------------------------------------------------------------------------------------
// Several files at once.

TEST(LoraSetTest, TwoFilesWithScalesAddUpAndRemoveRestores) {
  model::SdxlModels models = Tiny();
  const testing::TinyInputs inputs = MakeTinyInputs();
  torch::NoGradGuard no_grad;
  const torch::Tensor base = RunTiny(models, inputs);
  std::string paths[2];
  for (int i = 0; i < 2; ++i) {
    LoraTrainOptions options = AllTargets();
    options.seed = i;
    auto network = LoraNetwork::CreateTrainable(models, options);
    ASSERT_TRUE(network.ok());
    RandomizeAdapters(**network, 100 + i);
    paths[i] = TempDir(absl::StrCat("set", i)) + "/l.safetensors";
    LoraSaveOptions save;
    save.format = i == 0 ? LoraFileFormat::kKohya : LoraFileFormat::kPeft;
    ASSERT_TRUE((*network)->Save(paths[i], save).ok());
  }
  EXPECT_TRUE(BitIdentical(RunTiny(models, inputs), base));  // the trainers above detached

  LoraSet set(&models);
  LoraLoadOptions half;
  half.scale = 0.5;
  ASSERT_TRUE(set.Add("a", paths[0], half).ok());
  auto spec = ParseLoraSpec(paths[1] + ":1.0");
  ASSERT_TRUE(spec.ok());
  ASSERT_TRUE(set.Add(*spec).ok());  // named by its path
  EXPECT_EQ(set.Add("a", paths[1]).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(set.Names(), (std::vector<std::string>{"a", paths[1]}));
  const torch::Tensor both = RunTiny(models, inputs);
  ASSERT_TRUE(set.MergeAll().ok());
  EXPECT_LT(MaxAbsDiff(RunTiny(models, inputs), both), 2e-5);
  ASSERT_TRUE(set.UnmergeAll().ok());
  ASSERT_TRUE(set.SetScale(paths[1], 0.0).ok());
  ASSERT_TRUE(set.SetScale("a", 0.0).ok());
  EXPECT_LT(MaxAbsDiff(RunTiny(models, inputs), base), 2e-5);  // after an unmerge: rounding
  EXPECT_EQ(set.SetScale("c", 1.0).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(set.Remove("a").ok());
  EXPECT_EQ(set.Names(), std::vector<std::string>{paths[1]});
  set.Clear();
  EXPECT_TRUE(set.empty());
}

}  // namespace
}  // namespace likeness::lora
