#include "tests/lora/lora_test_util.h"

#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "tests/test_data.h"
#include "worker/model/layers.h"

namespace likeness::testing {
namespace {

absl::StatusOr<nlohmann::json> ReadSidecar(const std::string& name) {
  const std::string path = GoldenDir() + "/" + name;
  std::ifstream file(path);
  if (!file.good()) {
    return absl::NotFoundError(absl::StrCat("cannot read ", path, " (set ", kGoldenDirEnv, ")"));
  }
  nlohmann::json json = nlohmann::json::parse(file, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return absl::InvalidArgumentError(path + " is not valid JSON");
  return json;
}

// The sidecar's config with its constructor_kwargs on top (what the reference was built with).
nlohmann::json ReferenceConfig(const nlohmann::json& sidecar) {
  nlohmann::json config = sidecar.value("config", nlohmann::json::object());
  if (auto it = sidecar.find("constructor_kwargs"); it != sidecar.end() && it->is_object()) {
    for (const auto& [key, value] : it->items()) config[key] = value;
  }
  return config;
}

// Tiny sizes, from the UNet sidecar's input descriptions: latents [B, 4, H, W], 7 text tokens of
// 64 channels, a 32-wide pooled embedding and 6 time ids.
constexpr int64_t kBatch = 2;
constexpr int64_t kLatentSize = 8;
constexpr int64_t kTextTokens = 7;
constexpr int64_t kCrossAttentionDim = 64;
constexpr int64_t kPooledDim = 32;
constexpr int64_t kTimeIds = 6;
constexpr int64_t kTokenizerLength = 77;
constexpr int64_t kVocabulary = 49408;

}  // namespace

absl::StatusOr<model::SdxlConfigs> TinySdxlConfigs() {
  LIKENESS_ASSIGN_OR_RETURN(nlohmann::json unet, ReadSidecar("unet_tiny_sdxl.json"));
  LIKENESS_ASSIGN_OR_RETURN(nlohmann::json vae, ReadSidecar("vae_tiny.json"));
  LIKENESS_ASSIGN_OR_RETURN(nlohmann::json text, ReadSidecar("text_encoders_tiny.json"));
  model::SdxlConfigs configs;
  configs.unet = ReferenceConfig(unet);
  configs.vae = ReferenceConfig(vae);
  configs.text_encoder = text["config"]["text_encoder"];
  configs.text_encoder_2 = text["config"]["text_encoder_2"];
  return configs;
}

absl::StatusOr<model::SdxlModels> TinySdxl(uint64_t seed) {
  LIKENESS_ASSIGN_OR_RETURN(model::SdxlConfigs configs, TinySdxlConfigs());
  LIKENESS_ASSIGN_OR_RETURN(model::SdxlModels models, model::BuildSdxlModels(configs, {}));
  for (const char* name : model::kSdxlComponents) {
    torch::nn::Module* component = models.Component(name);
    model::InitializeRandomly(*component, seed);
    component->eval();
  }
  return models;
}

TinyInputs MakeTinyInputs(uint64_t seed) {
  torch::Generator g = at::detail::createCPUGenerator(seed);
  TinyInputs in;
  in.sample = at::normal(0.0, 1.0, {kBatch, 4, kLatentSize, kLatentSize}, g);
  in.timestep = torch::tensor({999.0f, 250.0f});
  in.encoder_hidden_states = at::normal(0.0, 1.0, {kBatch, kTextTokens, kCrossAttentionDim}, g);
  in.text_embeds = at::normal(0.0, 1.0, {kBatch, kPooledDim}, g);
  in.time_ids = torch::tensor({64.0f, 64.0f, 0.0f, 0.0f, 64.0f, 64.0f}).repeat({kBatch, 1});
  in.input_ids = torch::randint(0, kVocabulary - 2, {kBatch, kTokenizerLength}, g, torch::kInt64);
  in.input_ids.index_put_({torch::indexing::Slice(), 0}, kVocabulary - 2);  // BOS 49406
  in.input_ids.index_put_({torch::indexing::Slice(), 9}, kVocabulary - 1);  // EOS 49407
  return in;
}

torch::Tensor RunTiny(model::SdxlModels& models, const TinyInputs& in) {
  torch::Tensor unet = models.unet->forward(in.sample, in.timestep, in.encoder_hidden_states,
                                            in.text_embeds, in.time_ids);
  model::ClipTextOutput te1 = models.text_encoder->forward(in.input_ids);
  model::ClipTextOutput te2 = models.text_encoder_2->forward(in.input_ids);
  return torch::cat({unet.flatten(), te1.last_hidden_state.flatten(),
                     te2.last_hidden_state.flatten(), te2.text_embeds.flatten()});
}

void RandomizeAdapters(lora::LoraNetwork& network, uint64_t seed, double std) {
  torch::NoGradGuard no_grad;
  torch::Generator g = at::detail::createCPUGenerator(seed);
  for (torch::Tensor t : network.TrainableTensors()) {
    t.copy_(at::normal(0.0, std, t.sizes(), g));
  }
}

bool BitIdentical(const torch::Tensor& a, const torch::Tensor& b) {
  return a.sizes() == b.sizes() && a.scalar_type() == b.scalar_type() && torch::equal(a, b);
}

double MaxAbsDiff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

}  // namespace likeness::testing
