// Golden checker for diffusers.UNet2DConditionModel (README sections 1 and 8), plus the UNet's
// unit tests: SDXL base's parameter count and state-dict names/shapes, config parsing and its
// errors, gradient checkpointing, odd sizes and dtypes.
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/model/golden_harness.h"
#include "tests/test_data.h"
#include "worker/model/layers.h"
#include "worker/model/state_dict.h"
#include "worker/model/unet/unet2d_condition.h"
#include "worker/model/unet/unet_config.h"

namespace likeness::testing {
namespace {

using model::unet::AdditionEmbedType;
using model::unet::MakeUNet;
using model::unet::UNet2DConditionModel;
using model::unet::UNetConfig;

constexpr char kUNetClass[] = "diffusers.UNet2DConditionModel";
constexpr char kGradPrefix[] = "__output__.grad.";
// README "Tolerances observed": the loss is a sum that cancels, so its float32 error is large
// relative to |loss| (2e-5 between 1 and 2 threads alone); the README suggests rtol 1e-3 for it.
// The gradients, which carry the same information element-wise, keep the 1e-4 bound.
constexpr double kLossRelTolerance = 1e-3;

// Recomputation runs the same float32 kernels on the same data; only reduction order may differ.
constexpr double kCheckpointRelTolerance = 1e-5;

constexpr int64_t kSdxlBaseUNetParameters = 2'567'463'684;

// The sidecar's config with its constructor_kwargs (what the reference was built with) on top.
nlohmann::json ReferenceConfig(const nlohmann::json& sidecar) {
  nlohmann::json config = sidecar.value("config", nlohmann::json::object());
  if (auto it = sidecar.find("constructor_kwargs"); it != sidecar.end() && it->is_object()) {
    for (const auto& [key, value] : it->items()) config[key] = value;
  }
  return config;
}

torch::Tensor OptionalInput(const GoldenCase& c, const std::string& key) {
  return c.file->Contains("__input__." + key) ? c.Input(key) : torch::Tensor();
}

// One forward (and, when the file has a loss, backward) pass, compared with the reference.
void RunAndCompare(const GoldenCase& c, UNet2DConditionModel& unet, const std::string& label) {
  const bool has_loss = c.HasOutput("loss");
  torch::Tensor sample = c.Input("sample").clone().requires_grad_(has_loss);
  for (auto& p : unet->parameters()) p.mutable_grad() = torch::Tensor();
  model::unet::UNetInputs inputs{sample, c.Input("timestep"), c.Input("encoder_hidden_states"),
                                 OptionalInput(c, "text_embeds"), OptionalInput(c, "time_ids")};
  ASSERT_TRUE(unet->CheckInputs(inputs).ok()) << unet->CheckInputs(inputs);
  torch::Tensor out;
  {
    torch::AutoGradMode grad_mode(has_loss);
    out = unet->forward(inputs);
  }
  ExpectGoldenClose(out, c.Output("sample"), c.name + label + " sample");
  if (!has_loss) return;

  torch::Tensor loss = (out * c.Input("loss_weight")).sum();
  loss.backward();
  ExpectGoldenClose(loss, c.Output("loss"), c.name + label + " loss", kLossRelTolerance);
  ExpectGoldenClose(sample.grad(), c.Output("grad.sample"), c.name + label + " grad.sample");
  const auto params = unet->named_parameters();
  int checked = 0;
  for (const std::string& key : c.file->Names()) {
    if (!absl::StartsWith(key, kGradPrefix) || key == std::string(kGradPrefix) + "sample") continue;
    const std::string name = key.substr(sizeof(kGradPrefix) - 1);
    const torch::Tensor* p = params.find(name);
    ASSERT_NE(p, nullptr) << c.name << ": " << key << " names no UNet parameter";
    ExpectGoldenClose(p->grad(), c.Output("grad." + name), c.name + label + " grad." + name);
    ++checked;
  }
  EXPECT_GT(checked, 0) << c.name << ": has a loss but no parameter gradients";
}

void CheckUNet(const GoldenCase& c) {
  absl::StatusOr<UNetConfig> config = UNetConfig::FromJson(ReferenceConfig(c.sidecar));
  ASSERT_TRUE(config.ok()) << c.name << ": " << config.status();
  absl::StatusOr<UNet2DConditionModel> unet = MakeUNet(*config);
  ASSERT_TRUE(unet.ok()) << unet.status();
  absl::StatusOr<model::StateDict> weights = model::ReadStateDict(*c.file);
  ASSERT_TRUE(weights.ok()) << weights.status();
  absl::StatusOr<model::LoadReport> report = model::LoadStateDict(**unet, *weights, c.path);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->unexpected.empty())
      << c.name
      << ": tensors the UNet does not have: " << model::JoinNamesForError(report->unexpected);
  if (auto n = c.sidecar.find("weights"); n != c.sidecar.end() && n->contains("num_parameters")) {
    EXPECT_EQ(model::CountParameters(**unet), (*n)["num_parameters"].get<int64_t>());
  }
  RunAndCompare(c, *unet, "");
  // Gradient checkpointing must reproduce the same outputs and gradients.
  if (c.HasOutput("loss")) {
    (*unet)->SetGradientCheckpointing(true);
    RunAndCompare(c, *unet, " (gradient checkpointing)");
  }
}

LIKENESS_REGISTER_GOLDEN(kUNetClass, CheckUNet);

// ---------------------------------------------------------------------------------------------
// SDXL base: built on the meta device (no memory), compared with the shapes file.

// stabilityai/stable-diffusion-xl-base-1.0 unet/config.json.
constexpr char kSdxlBaseConfigJson[] = R"({
  "_class_name": "UNet2DConditionModel", "_diffusers_version": "0.19.0.dev0",
  "act_fn": "silu", "addition_embed_type": "text_time", "addition_embed_type_num_heads": 64,
  "addition_time_embed_dim": 256, "attention_head_dim": [5, 10, 20],
  "block_out_channels": [320, 640, 1280], "center_input_sample": false, "class_embed_type": null,
  "class_embeddings_concat": false, "conv_in_kernel": 3, "conv_out_kernel": 3,
  "cross_attention_dim": 2048, "cross_attention_norm": null,
  "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
  "downsample_padding": 1, "dual_cross_attention": false, "encoder_hid_dim": null,
  "encoder_hid_dim_type": null, "flip_sin_to_cos": true, "freq_shift": 0, "in_channels": 4,
  "layers_per_block": 2, "mid_block_only_cross_attention": null, "mid_block_scale_factor": 1,
  "mid_block_type": "UNetMidBlock2DCrossAttn", "norm_eps": 1e-05, "norm_num_groups": 32,
  "num_attention_heads": null, "num_class_embeds": null, "only_cross_attention": false,
  "out_channels": 4, "projection_class_embeddings_input_dim": 2816, "resnet_out_scale_factor": 1.0,
  "resnet_skip_time_act": false, "resnet_time_scale_shift": "default", "sample_size": 128,
  "time_cond_proj_dim": null, "time_embedding_act_fn": null, "time_embedding_dim": null,
  "time_embedding_type": "positional", "timestep_post_act": null,
  "transformer_layers_per_block": [1, 2, 10],
  "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
  "upcast_attention": null, "use_linear_projection": true})";

UNet2DConditionModel BuildOnMeta(const UNetConfig& config) {
  model::ScopedParameterOptions meta(
      torch::TensorOptions().dtype(torch::kFloat32).device(torch::kMeta));
  return UNet2DConditionModel(config);
}

// (name, shape) in named_parameters() order.
std::vector<std::pair<std::string, std::vector<int64_t>>> ParameterShapes(
    const torch::nn::Module& module) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  for (const auto& item : module.named_parameters())
    out.emplace_back(item.key(), item.value().sizes().vec());
  return out;
}

TEST(UNetModelTest, SdxlBaseMatchesReferenceStateDict) {
  const std::string path = SdxlShapesPath();
  std::ifstream file(path);
  ASSERT_TRUE(file.good()) << "cannot read " << path << " (set " << kSdxlShapesEnv << ")";
  // ordered_json keeps the file's order, which is diffusers' state_dict order.
  const nlohmann::ordered_json shapes = nlohmann::ordered_json::parse(file, nullptr, false);
  ASSERT_FALSE(shapes.is_discarded()) << path << " is not valid JSON";
  ASSERT_TRUE(shapes.contains("components") && shapes["components"].contains("unet")) << path;
  std::vector<std::pair<std::string, std::vector<int64_t>>> expected;
  for (const auto& [name, shape] : shapes["components"]["unet"].items()) {
    expected.emplace_back(name, shape.get<std::vector<int64_t>>());
  }

  UNet2DConditionModel unet = BuildOnMeta(UNetConfig::SdxlBase());
  EXPECT_EQ(model::CountParameters(*unet), kSdxlBaseUNetParameters);
  const auto actual = ParameterShapes(*unet);
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i) {
    ASSERT_EQ(actual[i], expected[i]) << "parameter #" << i << " (in diffusers' state_dict order)";
  }

  absl::StatusOr<UNetConfig> parsed = UNetConfig::FromJsonString(kSdxlBaseConfigJson);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(ParameterShapes(*BuildOnMeta(*parsed)), actual);
}

// ---------------------------------------------------------------------------------------------
// Config parsing.

nlohmann::json SdxlJson() { return nlohmann::json::parse(kSdxlBaseConfigJson); }

void ExpectConfigError(const nlohmann::json& json, const std::vector<std::string>& fragments) {
  absl::StatusOr<UNetConfig> config = UNetConfig::FromJson(json);
  ASSERT_FALSE(config.ok()) << json.dump();
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  for (const std::string& f : fragments) {
    EXPECT_TRUE(absl::StrContains(config.status().message(), f))
        << config.status() << " lacks " << f;
  }
}

TEST(UNetConfigTest, ParsesSdxlBaseLikeThePreset) {
  absl::StatusOr<UNetConfig> c = UNetConfig::FromJson(SdxlJson());
  ASSERT_TRUE(c.ok()) << c.status();
  const UNetConfig p = UNetConfig::SdxlBase();
  EXPECT_EQ(c->num_attention_heads, p.num_attention_heads);
  EXPECT_EQ(c->cross_attention_dim, p.cross_attention_dim);
  EXPECT_EQ(c->transformer_layers_per_block, p.transformer_layers_per_block);
  EXPECT_EQ(c->UpTransformerLayers(0), (std::vector<int64_t>{10, 10, 10}));
  EXPECT_EQ(c->MidTransformerLayers(), 10);
  EXPECT_EQ(c->addition_embed_type, AdditionEmbedType::kTextTime);
  EXPECT_EQ(c->TimeEmbedDim(), 1280);
  EXPECT_FALSE(c->upcast_attention);
}

TEST(UNetConfigTest, NumAttentionHeadsTakesPriorityOverAttentionHeadDim) {
  nlohmann::json json = SdxlJson();
  json["num_attention_heads"] = {10, 20, 40};
  absl::StatusOr<UNetConfig> c = UNetConfig::FromJson(json);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->num_attention_heads, (std::vector<int64_t>{10, 20, 40}));
  json["attention_head_dim"] = 8;
  json["num_attention_heads"] = nullptr;
  c = UNetConfig::FromJson(json);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->num_attention_heads, (std::vector<int64_t>{8, 8, 8}));
}

TEST(UNetConfigTest, UnsupportedValuesAreErrorsNamingThem) {
  nlohmann::json json = SdxlJson();
  json["addition_embed_type"] = "text";
  ExpectConfigError(json, {"addition_embed_type", "\"text\""});
  json = SdxlJson();
  json["down_block_types"][1] = "SimpleCrossAttnDownBlock2D";
  ExpectConfigError(json, {"down_block_types[1]", "SimpleCrossAttnDownBlock2D"});
  json = SdxlJson();
  json["class_embed_type"] = "timestep";
  ExpectConfigError(json, {"class_embed_type", "timestep"});
  json = SdxlJson();
  json["attention_head_dim"] = {5, 10};
  ExpectConfigError(json, {"attention_head_dim", "[5,10]"});
  json = SdxlJson();
  json["brand_new_feature"] = 3;
  ExpectConfigError(json, {"brand_new_feature"});
  json = SdxlJson();
  json["block_out_channels"] = {320, 640, 1270};
  ExpectConfigError(json, {"block_out_channels[2]", "1270"});
  json = SdxlJson();
  json["dropout"] = 0.1;
  ExpectConfigError(json, {"dropout"});
  json = SdxlJson();
  json["brand_new_switch"] = false;  // a feature that is off is fine
  EXPECT_TRUE(UNetConfig::FromJson(json).ok());
}

// ---------------------------------------------------------------------------------------------
// Behaviour on a small random model.

UNetConfig SmallConfig() {
  UNetConfig c = UNetConfig::SdxlBase();
  c.block_out_channels = {16, 32};
  c.down_block_types = {model::unet::kDownBlock2D, model::unet::kCrossAttnDownBlock2D};
  c.up_block_types = {model::unet::kCrossAttnUpBlock2D, model::unet::kUpBlock2D};
  c.layers_per_block = {1, 1};
  c.transformer_layers_per_block = {{1}, {2}};
  c.num_attention_heads = {2, 4};
  c.cross_attention_dim = {24, 24};
  c.norm_num_groups = 8;
  c.addition_time_embed_dim = 4;
  c.projection_class_embeddings_input_dim = 12 + 6 * 4;
  return c;
}

model::unet::UNetInputs SmallInputs(int64_t batch, int64_t height, int64_t width) {
  torch::manual_seed(3);
  return {torch::randn({batch, 4, height, width}),
          torch::tensor({999.0f, 10.0f}).slice(0, 0, batch), torch::randn({batch, 5, 24}),
          torch::randn({batch, 12}), torch::rand({batch, 6}) * 1024};
}

UNet2DConditionModel SmallModel(const UNetConfig& config = SmallConfig()) {
  UNet2DConditionModel unet(config);
  model::InitializeRandomly(*unet, 11);
  return unet;
}

std::vector<torch::Tensor> Gradients(UNet2DConditionModel& unet,
                                     const model::unet::UNetInputs& inputs) {
  for (auto& p : unet->parameters()) p.mutable_grad() = torch::Tensor();
  unet->forward(inputs).square().sum().backward();
  std::vector<torch::Tensor> grads;
  for (const auto& p : unet->parameters())
    grads.push_back(p.grad().defined() ? p.grad().clone() : torch::Tensor());
  return grads;
}

TEST(UNetModelTest, GradientCheckpointingGivesTheSameGradients) {
  UNet2DConditionModel unet = SmallModel();
  const auto inputs = SmallInputs(2, 8, 8);
  const std::vector<torch::Tensor> plain = Gradients(unet, inputs);
  unet->SetGradientCheckpointing(true);
  const std::vector<torch::Tensor> checkpointed = Gradients(unet, inputs);
  ASSERT_EQ(plain.size(), checkpointed.size());
  for (size_t i = 0; i < plain.size(); ++i) {
    ASSERT_TRUE(plain[i].defined() && checkpointed[i].defined()) << "parameter #" << i;
    const double max_ref = plain[i].abs().max().item<double>();
    const double max_diff = (plain[i] - checkpointed[i]).abs().max().item<double>();
    EXPECT_LE(max_diff, kCheckpointRelTolerance * max_ref)
        << "parameter #" << i << " max|ref| " << max_ref;
  }
}

// A frozen UNet with one trainable tensor deep inside (as with LoRA): the checkpointed blocks see
// inputs that do not require grad, and the trainable tensor must still get its gradient.
TEST(UNetModelTest, GradientCheckpointingReachesParametersBehindFrozenInputs) {
  UNet2DConditionModel unet = SmallModel();
  const std::string trainable = "up_blocks.0.attentions.1.transformer_blocks.0.attn2.to_k.weight";
  for (auto& item : unet->named_parameters()) item.value().requires_grad_(item.key() == trainable);
  const auto inputs = SmallInputs(2, 8, 8);
  Gradients(unet, inputs);
  const torch::Tensor expected = unet->named_parameters()[trainable].grad().clone();
  ASSERT_TRUE(expected.defined());
  unet->SetGradientCheckpointing(true);
  Gradients(unet, inputs);
  const torch::Tensor actual = unet->named_parameters()[trainable].grad();
  ASSERT_TRUE(actual.defined()) << "checkpointing lost the gradient of " << trainable;
  EXPECT_TRUE(torch::allclose(actual, expected, 1e-5, 1e-6));
}

TEST(UNetModelTest, OddSizesScalarTimestepsAndIntegerTimesteps) {
  UNet2DConditionModel unet = SmallModel();
  torch::NoGradGuard no_grad;
  auto inputs = SmallInputs(2, 9, 7);  // not multiples of the x2 downsampling
  ASSERT_TRUE(unet->CheckInputs(inputs).ok()) << unet->CheckInputs(inputs);
  EXPECT_EQ(unet->forward(inputs).sizes(), (std::vector<int64_t>{2, 4, 9, 7}));

  inputs = SmallInputs(2, 8, 8);
  inputs.timestep = torch::tensor({500.0f, 500.0f});
  const torch::Tensor vector_t = unet->forward(inputs);
  inputs.timestep = torch::tensor(500.0f);
  EXPECT_TRUE(unet->forward(inputs).equal(vector_t));
  inputs.timestep = torch::tensor({500}, torch::kInt64);
  EXPECT_TRUE(unet->forward(inputs).equal(vector_t));
}

TEST(UNetModelTest, CheckInputsNamesTheBadInput) {
  UNet2DConditionModel unet = SmallModel();
  auto inputs = SmallInputs(2, 8, 8);
  inputs.text_embeds = torch::randn({2, 13});
  const absl::Status status = unet->CheckInputs(inputs);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(status.message(), "text_embeds")) << status;
  EXPECT_FALSE(unet->Run(inputs).ok());
}

TEST(UNetModelTest, ConvProjectionAndScaleShiftVariantsRun) {
  UNetConfig config = SmallConfig();
  config.use_linear_projection = false;
  config.resnet_time_scale_shift = model::unet::ResnetTimeScaleShift::kScaleShift;
  config.addition_embed_type = AdditionEmbedType::kNone;
  UNet2DConditionModel unet = SmallModel(config);
  const auto params = unet->named_parameters();
  EXPECT_EQ(params["down_blocks.1.attentions.0.proj_in.weight"].sizes(),
            (std::vector<int64_t>{32, 32, 1, 1}));
  EXPECT_EQ(params["down_blocks.0.resnets.0.time_emb_proj.weight"].sizes(),
            (std::vector<int64_t>{32, 64}));
  EXPECT_EQ(params.find("add_embedding.linear_1.weight"), nullptr);
  torch::NoGradGuard no_grad;
  auto inputs = SmallInputs(2, 8, 8);
  inputs.text_embeds = inputs.time_ids = torch::Tensor();
  ASSERT_TRUE(unet->CheckInputs(inputs).ok()) << unet->CheckInputs(inputs);
  EXPECT_TRUE(torch::isfinite(unet->forward(inputs)).all().item<bool>());
}

TEST(UNetModelTest, RunsInBfloat16CloseToFloat32) {
  UNet2DConditionModel unet = SmallModel();
  const auto inputs = SmallInputs(2, 8, 8);
  torch::NoGradGuard no_grad;
  const torch::Tensor reference = unet->forward(inputs);
  unet->to(torch::kBFloat16);
  model::unet::UNetInputs half = inputs;
  half.sample = inputs.sample.to(torch::kBFloat16);
  half.encoder_hidden_states = inputs.encoder_hidden_states.to(torch::kBFloat16);
  half.text_embeds = inputs.text_embeds.to(torch::kBFloat16);
  const torch::Tensor out = unet->forward(half);
  EXPECT_EQ(out.scalar_type(), torch::kBFloat16);
  const double max_ref = reference.abs().max().item<double>();
  const double max_diff = (out.to(torch::kFloat32) - reference).abs().max().item<double>();
  EXPECT_LE(max_diff, 0.1 * max_ref) << "bfloat16 has 8 significant bits";
}

}  // namespace
}  // namespace likeness::testing
