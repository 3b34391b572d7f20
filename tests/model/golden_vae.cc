// AutoencoderKL against diffusers (the golden checker for "diffusers.AutoencoderKL"), and the
// VAE's unit tests: config parsing, SDXL's parameter names and shapes, the posterior, the
// pipeline helpers and tiled decoding.
#include <cmath>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/model/golden_harness.h"
#include "tests/test_data.h"
#include "worker/model/layers.h"
#include "worker/model/state_dict.h"
#include "worker/model/vae/autoencoder_kl.h"
#include "worker/model/vae/diagonal_gaussian.h"
#include "worker/model/vae/vae_config.h"
#include "worker/model/vae/vae_latents.h"
#include "worker/model/vae/vae_tiling.h"

namespace likeness::model {
namespace {

using ::likeness::testing::ExpectGoldenClose;
using ::likeness::testing::GoldenCase;

// The VAE's entry in the SDXL shapes file (test_data.h SdxlShapesPath()).
constexpr char kSdxlVaeComponent[] = "vae";
constexpr int64_t kSdxlVaeParameters = 83'653'863;
constexpr char kOutputPrefix[] = "__output__.";
constexpr uint64_t kTestSeed = 1234;

// ---------------------------------------------------------------------------------------------
// Golden checker

// sidecar "config" with "constructor_kwargs" (if any) laid over it.
nlohmann::json GoldenConfigJson(const GoldenCase& c) {
  nlohmann::json config = c.sidecar.value("config", nlohmann::json::object());
  if (const auto kwargs = c.sidecar.find("constructor_kwargs");
      kwargs != c.sidecar.end() && kwargs->is_object()) {
    for (const auto& [key, value] : kwargs->items()) config[key] = value;
  }
  return config;
}

void CheckAutoencoderKL(const GoldenCase& c) {
  absl::StatusOr<VaeConfig> config = VaeConfig::FromJson(GoldenConfigJson(c));
  ASSERT_TRUE(config.ok()) << c.name << ": " << config.status();
  absl::StatusOr<AutoencoderKL> vae = CreateAutoencoderKL(*config);
  ASSERT_TRUE(vae.ok()) << c.name << ": " << vae.status();
  absl::StatusOr<StateDict> weights = ReadStateDict(*c.file);
  ASSERT_TRUE(weights.ok()) << weights.status();
  absl::StatusOr<LoadReport> report = LoadStateDict(**vae, *weights, c.path);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->unexpected.empty())
      << c.name << ": tensors the model lacks: " << JoinNamesForError(report->unexpected);
  if (const auto count = c.sidecar.find("weights");
      count != c.sidecar.end() && count->contains("num_parameters")) {
    EXPECT_EQ(CountParameters(**vae), count->at("num_parameters").get<int64_t>()) << c.name;
  }
  (*vae)->eval();
  torch::NoGradGuard no_grad;

  std::optional<DiagonalGaussianDistribution> posterior;
  const auto encoded = [&]() -> const DiagonalGaussianDistribution& {
    if (!posterior.has_value()) posterior.emplace((*vae)->Encode(c.Input("image")));
    return *posterior;
  };
  int checked = 0;
  for (const std::string& name : c.file->Names()) {
    if (!absl::StartsWith(name, kOutputPrefix)) continue;
    const std::string key = name.substr(sizeof(kOutputPrefix) - 1);
    torch::Tensor actual;
    if (key == "latent_dist.mean") {
      actual = encoded().mean();
    } else if (key == "latent_dist.logvar") {
      actual = encoded().logvar();
    } else if (key == "latent_dist.std") {
      actual = encoded().stddev();
    } else if (key == "latent_dist.var") {
      actual = encoded().var();
    } else if (key == "latent_dist.mode") {
      actual = encoded().Mode();
    } else if (key == "decoded") {
      actual = (*vae)->Decode(c.Input("latent"));
    } else if (key == "reconstruction") {
      actual = (*vae)->forward(c.Input("image"), /*sample_posterior=*/false);
    } else {
      ADD_FAILURE() << c.name << ": output '" << key << "' has no check in golden_vae.cc";
      continue;
    }
    ExpectGoldenClose(actual, c.Output(key), c.name + ": " + key);
    ++checked;
  }
  EXPECT_GT(checked, 0) << c.name << " holds no " << kOutputPrefix << " tensors";
}

LIKENESS_REGISTER_GOLDEN("diffusers.AutoencoderKL", CheckAutoencoderKL);

// ---------------------------------------------------------------------------------------------
// Unit tests

// The golden tiny VAE's shape (README section 2): two levels of 32 and 64 channels.
VaeConfig TinyConfig() {
  VaeConfig config;
  config.block_out_channels = {32, 64};
  config.down_block_types.assign(2, kVaeDownBlockType);
  config.up_block_types.assign(2, kVaeUpBlockType);
  config.layers_per_block = 1;
  config.scaling_factor = 0.13025;
  return config;
}

AutoencoderKL TinyVae(const VaeConfig& config = TinyConfig()) {
  AutoencoderKL vae(config);
  InitializeRandomly(*vae, kTestSeed);
  vae->eval();
  return vae;
}

TEST(VaeConfigTest, ParsesDiffusersConfigJson) {
  absl::StatusOr<VaeConfig> config = VaeConfig::FromJsonText(R"({
    "_class_name": "AutoencoderKL", "_diffusers_version": "0.20.0.dev0", "act_fn": "silu",
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
    "force_upcast": true, "in_channels": 3, "latent_channels": 4, "layers_per_block": 2,
    "norm_num_groups": 32, "out_channels": 3, "sample_size": 1024, "scaling_factor": 0.13025,
    "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"],
    "shift_factor": null, "latents_mean": null, "some_future_key": 1})");
  ASSERT_TRUE(config.ok()) << config.status();
  const VaeConfig sdxl = VaeConfig::SdxlBase();
  EXPECT_EQ(config->block_out_channels, sdxl.block_out_channels);
  EXPECT_EQ(config->down_block_types, sdxl.down_block_types);
  EXPECT_EQ(config->up_block_types, sdxl.up_block_types);
  EXPECT_EQ(config->layers_per_block, sdxl.layers_per_block);
  EXPECT_EQ(config->sample_size, sdxl.sample_size);
  EXPECT_DOUBLE_EQ(config->scaling_factor, 0.13025);
  EXPECT_FALSE(config->shift_factor.has_value());
  EXPECT_FALSE(config->latents_mean.has_value());
  EXPECT_TRUE(config->force_upcast);
  EXPECT_TRUE(config->mid_block_add_attention);
  EXPECT_EQ(config->unrecognized_keys, std::vector<std::string>{"some_future_key"});
  EXPECT_EQ(config->DownsampleFactor(), 8);
}

TEST(VaeConfigTest, AbsentKeysTakeDiffusersDefaults) {
  absl::StatusOr<VaeConfig> config =
      VaeConfig::FromJsonText(R"({"shift_factor": 0.0609, "mid_block_add_attention": false})");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->block_out_channels, std::vector<int64_t>{64});
  EXPECT_DOUBLE_EQ(config->scaling_factor, 0.18215);
  EXPECT_DOUBLE_EQ(config->shift_factor.value_or(0), 0.0609);
  EXPECT_FALSE(config->mid_block_add_attention);
  EXPECT_EQ(config->DownsampleFactor(), 1);
}

TEST(VaeConfigTest, ErrorsNameTheFieldAndValue) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"block_out_channels": "wide"})", "'block_out_channels'"},
      {R"({"block_out_channels": [32, 48], "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D"],
           "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D"]})",
       "norm_num_groups 32"},
      {R"({"block_out_channels": [32, 64]})", "'down_block_types'"},
      {R"({"down_block_types": ["CrossAttnDownBlock2D"]})", "CrossAttnDownBlock2D"},
      {R"({"layers_per_block": 1.5})", "'layers_per_block'"},
      {R"({"act_fn": "gelu"})", "gelu"},
      {R"({"scaling_factor": -1})", "'scaling_factor'"},
      {R"({"force_upcast": "yes"})", "'force_upcast'"},
      {R"({"latents_mean": [0, 0, 0, 0]})", "'latents_std'"},
      {R"({"latents_mean": [0, 0], "latents_std": [1, 1]})", "'latents_mean'"},
      {R"([1, 2])", "top level"},
  };
  for (const auto& [json, want] : cases) {
    absl::StatusOr<VaeConfig> config = VaeConfig::FromJsonText(json);
    ASSERT_FALSE(config.ok()) << json;
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << json;
    EXPECT_TRUE(absl::StrContains(config.status().message(), want))
        << config.status() << " lacks " << want;
  }
  EXPECT_FALSE(VaeConfig::FromJsonText("{not json").ok());
}

TEST(VaeConfigTest, CreateRejectsAnInvalidConfig) {
  VaeConfig config = TinyConfig();
  config.norm_num_groups = 0;
  absl::StatusOr<AutoencoderKL> vae = CreateAutoencoderKL(config);
  ASSERT_FALSE(vae.ok());
  EXPECT_TRUE(absl::StrContains(vae.status().message(), "norm_num_groups")) << vae.status();
}

TEST(AutoencoderKLTest, SdxlBaseMatchesDiffusersStateDict) {
  const std::string path = ::likeness::testing::SdxlShapesPath();
  std::ifstream in(path);
  ASSERT_TRUE(in.good()) << "cannot read " << path << " (set "
                         << ::likeness::testing::kSdxlShapesEnv << ")";
  const nlohmann::json shapes = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(shapes.is_discarded()) << path << " is not valid JSON";
  ASSERT_TRUE(shapes.contains("components") && shapes["components"].contains(kSdxlVaeComponent))
      << path;
  std::map<std::string, std::vector<int64_t>> want;
  for (const auto& [name, shape] : shapes["components"][kSdxlVaeComponent].items()) {
    want[name] = shape.get<std::vector<int64_t>>();
  }

  AutoencoderKL vae(VaeConfig::SdxlBase());  // uninitialised: no memory is touched
  EXPECT_EQ(CountParameters(*vae), kSdxlVaeParameters);
  std::map<std::string, std::vector<int64_t>> got;
  for (const auto& [name, tensor] : ModuleStateDict(*vae)) got[name] = tensor.sizes().vec();
  for (const auto& [name, shape] : want) {
    const auto it = got.find(name);
    if (it == got.end()) {
      ADD_FAILURE() << "model lacks " << name;
    } else {
      EXPECT_EQ(it->second, shape) << name;
    }
  }
  for (const auto& [name, shape] : got) EXPECT_TRUE(want.count(name)) << "model has extra " << name;
}

TEST(AutoencoderKLTest, OptionalPartsFollowTheConfig) {
  VaeConfig config = TinyConfig();
  config.use_quant_conv = false;
  config.use_post_quant_conv = false;
  config.mid_block_add_attention = false;
  AutoencoderKL vae = TinyVae(config);
  for (const auto& [name, tensor] : ModuleStateDict(*vae)) {
    EXPECT_FALSE(absl::StrContains(name, "quant_conv") || absl::StrContains(name, "attentions"))
        << name;
  }
  torch::NoGradGuard no_grad;
  EXPECT_EQ(vae->forward(torch::rand({1, 3, 16, 16}) * 2 - 1).sizes(),
            (std::vector<int64_t>{1, 3, 16, 16}));
}

TEST(AutoencoderKLTest, ShapesFollowTheDownsampleFactor) {
  AutoencoderKL vae = TinyVae();
  torch::NoGradGuard no_grad;
  const DiagonalGaussianDistribution posterior = vae->Encode(torch::rand({2, 3, 24, 40}) * 2 - 1);
  EXPECT_EQ(posterior.mean().sizes(), (std::vector<int64_t>{2, 4, 12, 20}));
  EXPECT_EQ(vae->Decode(posterior.Mode()).sizes(), (std::vector<int64_t>{2, 3, 24, 40}));
}

TEST(DiagonalGaussianTest, ClampsLogVarAndSamplesReproducibly) {
  // [1, 2*C, 1, 3] with C = 1: mean (0, 1, 2), logvar (-40, 0, 25) -> clamped (-30, 0, 20).
  const torch::Tensor moments =
      torch::tensor({0.0f, 1.0f, 2.0f, -40.0f, 0.0f, 25.0f}).view({1, 2, 1, 3});
  const DiagonalGaussianDistribution d(moments);
  EXPECT_TRUE(d.logvar().equal(torch::tensor({-30.0f, 0.0f, 20.0f}).view({1, 1, 1, 3})));
  EXPECT_TRUE(d.stddev().allclose(torch::exp(0.5 * d.logvar())));
  EXPECT_TRUE(d.var().allclose(torch::exp(d.logvar())));
  EXPECT_TRUE(d.Mode().equal(d.mean()));

  torch::Generator a = at::detail::createCPUGenerator(kTestSeed);
  torch::Generator b = at::detail::createCPUGenerator(kTestSeed);
  torch::Generator c = at::detail::createCPUGenerator(kTestSeed);
  const torch::Tensor sample = d.Sample(a);
  EXPECT_TRUE(sample.equal(d.Sample(b)));
  EXPECT_TRUE(sample.allclose(d.mean() + d.stddev() * at::randn({1, 1, 1, 3}, c)));
}

TEST(VaeLatentsTest, EncodeAndDecodeApplyTheScaling) {
  AutoencoderKL vae = TinyVae();
  const torch::Tensor image = torch::rand({1, 3, 16, 16}) * 2 - 1;
  torch::Generator g1 = at::detail::createCPUGenerator(kTestSeed);
  torch::Generator g2 = at::detail::createCPUGenerator(kTestSeed);
  absl::StatusOr<torch::Tensor> latents = EncodeToLatents(vae, image, g1);
  ASSERT_TRUE(latents.ok()) << latents.status();
  torch::NoGradGuard no_grad;
  const torch::Tensor z = vae->Encode(image).Sample(g2);
  EXPECT_TRUE(latents->allclose(z * 0.13025));

  absl::StatusOr<torch::Tensor> decoded = DecodeLatents(vae, *latents);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_TRUE(decoded->allclose(vae->Decode(*latents / 0.13025), 1e-5, 1e-5));
}

TEST(VaeLatentsTest, ShiftAndPerChannelStatisticsRoundTrip) {
  VaeConfig config = TinyConfig();
  config.shift_factor = 0.5;
  const torch::Tensor z = torch::randn({2, 4, 3, 3});
  EXPECT_TRUE(ScaleLatents(config, z).allclose((z - 0.5) * 0.13025));
  EXPECT_TRUE(UnscaleLatents(config, ScaleLatents(config, z)).allclose(z, 1e-5, 1e-6));
  config.shift_factor.reset();
  config.latents_mean = {0.1, -0.2, 0.3, 0.0};
  config.latents_std = {1.0, 2.0, 0.5, 4.0};
  const torch::Tensor mean = torch::tensor({0.1f, -0.2f, 0.3f, 0.0f}).view({1, 4, 1, 1});
  const torch::Tensor std = torch::tensor({1.0f, 2.0f, 0.5f, 4.0f}).view({1, 4, 1, 1});
  EXPECT_TRUE(ScaleLatents(config, z).allclose((z - mean) * 0.13025 / std));
  EXPECT_TRUE(UnscaleLatents(config, ScaleLatents(config, z)).allclose(z, 1e-5, 1e-6));
}

TEST(VaeLatentsTest, ForceUpcastRunsTheVaeInFloat32) {
  VaeConfig config = TinyConfig();
  EXPECT_EQ(VaeParameterDtype(config, torch::kBFloat16), torch::kFloat32);
  EXPECT_EQ(VaeParameterDtype(config, torch::kHalf), torch::kFloat32);
  EXPECT_EQ(VaeParameterDtype(config, torch::kFloat32), torch::kFloat32);
  config.force_upcast = false;
  EXPECT_EQ(VaeParameterDtype(config, torch::kBFloat16), torch::kBFloat16);

  AutoencoderKL vae = TinyVae();  // float32 parameters
  const torch::Tensor image = (torch::rand({1, 3, 16, 16}) * 2 - 1).to(torch::kBFloat16);
  absl::StatusOr<torch::Tensor> latents = EncodeToLatents(vae, image);
  ASSERT_TRUE(latents.ok()) << latents.status();
  EXPECT_EQ(latents->scalar_type(), torch::kBFloat16);  // the caller's dtype
  absl::StatusOr<torch::Tensor> decoded = DecodeLatents(vae, *latents);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->scalar_type(), torch::kFloat32);  // the VAE's dtype
}

TEST(VaeLatentsTest, RejectsWrongShapesWithAStatus) {
  AutoencoderKL vae = TinyVae();
  EXPECT_EQ(EncodeToLatents(vae, torch::zeros({1, 4, 16, 16})).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeToLatents(vae, torch::zeros({1, 3, 15, 16})).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeLatents(vae, torch::zeros({4, 8, 8})).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeLatents(vae, torch::zeros({1, 4, 8, 8}), VaeTilingOptions{/*tile_sample_size=*/7})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(VaeTilingTest, OneTileEqualsPlainDecode) {
  AutoencoderKL vae = TinyVae();
  torch::NoGradGuard no_grad;
  const torch::Tensor latent = torch::randn({1, 4, 8, 8});
  // Tiles of 32 pixels = 16 latent pixels cover the 8x8 latent at once.
  const torch::Tensor tiled = TiledDecode(*vae, latent, VaeTilingOptions{/*tile_sample_size=*/32});
  EXPECT_TRUE(tiled.equal(vae->Decode(latent)));
}

TEST(VaeTilingTest, ManyTilesGiveTheFullImage) {
  AutoencoderKL vae = TinyVae();
  torch::NoGradGuard no_grad;
  const torch::Tensor latent = torch::randn({1, 4, 20, 13});
  // 8-latent-pixel tiles every 6 pixels, blended over 4 image pixels.
  const VaeTilingOptions options{/*tile_sample_size=*/16, /*overlap_factor=*/0.25};
  const torch::Tensor tiled = TiledDecode(*vae, latent, options);
  EXPECT_EQ(tiled.sizes(), (std::vector<int64_t>{1, 3, 40, 26}));
  EXPECT_TRUE(torch::isfinite(tiled).all().item<bool>());
  absl::StatusOr<torch::Tensor> via_helper = DecodeLatents(vae, latent * 0.13025, options);
  ASSERT_TRUE(via_helper.ok()) << via_helper.status();
  EXPECT_TRUE(via_helper->allclose(tiled, 1e-5, 1e-5));
  // The top-left tile's first (keep - blend) rows and columns are untouched by blending.
  const torch::Tensor first_tile = vae->Decode(latent.slice(2, 0, 8).slice(3, 0, 8));
  EXPECT_TRUE(
      tiled.slice(2, 0, 12).slice(3, 0, 12).equal(first_tile.slice(2, 0, 12).slice(3, 0, 12)));
}

}  // namespace
}  // namespace likeness::model
