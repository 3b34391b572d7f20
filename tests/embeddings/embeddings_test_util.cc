#include "tests/embeddings/embeddings_test_util.h"

#include <fstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/safetensors/safetensors_file.h"
#include "common/status_macros.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/test_data.h"
#include "worker/model/state_dict.h"
#include "worker/model/text/clip_text_config.h"

namespace likeness::testing {
namespace {

constexpr char kTinyEncodersStem[] = "text_encoders_tiny";

template <typename Model>
absl::Status Load(const safetensors::SafetensorsFile& file, const nlohmann::json& sidecar,
                  const std::string& component, Model& module) {
  if (!sidecar.contains("config") || !sidecar["config"].contains(component)) {
    return absl::NotFoundError(absl::StrCat(file.path(), ": sidecar has no config.", component));
  }
  LIKENESS_ASSIGN_OR_RETURN(model::ClipTextConfig config,
                            model::ClipTextConfig::FromJson(sidecar["config"][component]));
  module = Model(config);
  LIKENESS_ASSIGN_OR_RETURN(model::StateDict weights, model::ReadStateDict(file, component + "."));
  LIKENESS_ASSIGN_OR_RETURN(model::LoadReport report,
                            model::LoadClipTextStateDict(*module, weights, file.path()));
  module->eval();
  return absl::OkStatus();
}

}  // namespace

std::shared_ptr<const text::ClipTokenizer> ClipTokenizerOrFail() {
  static const auto* const loaded = new absl::StatusOr<std::shared_ptr<const text::ClipTokenizer>>(
      []() -> absl::StatusOr<std::shared_ptr<const text::ClipTokenizer>> {
        LIKENESS_ASSIGN_OR_RETURN(text::ClipTokenizer tokenizer,
                                  text::ClipTokenizer::Load(BpeVocabPath()));
        return std::make_shared<const text::ClipTokenizer>(std::move(tokenizer));
      }());
  if (!loaded->ok()) {
    ADD_FAILURE() << loaded->status();
    return nullptr;
  }
  return **loaded;
}

absl::StatusOr<TinyTextEncoders> LoadTinyTextEncoders() {
  const std::string stem = GoldenDir() + "/" + kTinyEncodersStem;
  std::ifstream in(stem + ".json");
  if (!in) return absl::NotFoundError(absl::StrCat(stem, ".json: cannot open"));
  nlohmann::json sidecar;
  try {
    sidecar = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(stem, ".json: ", e.what()));
  }
  LIKENESS_ASSIGN_OR_RETURN(auto file, safetensors::SafetensorsFile::Open(stem + ".safetensors"));
  TinyTextEncoders out;
  LIKENESS_RETURN_IF_ERROR(Load(*file, sidecar, "text_encoder", out.encoder_1));
  LIKENESS_RETURN_IF_ERROR(Load(*file, sidecar, "text_encoder_2", out.encoder_2));
  if (sidecar.contains("prompts")) out.prompts = sidecar["prompts"].get<std::vector<std::string>>();
  LIKENESS_ASSIGN_OR_RETURN(out.input_ids_1, file->Get("__input__.text_encoder.input_ids"));
  LIKENESS_ASSIGN_OR_RETURN(out.input_ids_2, file->Get("__input__.text_encoder_2.input_ids"));
  out.input_ids_1 = out.input_ids_1.clone();
  out.input_ids_2 = out.input_ids_2.clone();
  return out;
}

torch::Tensor IdsTensor(const std::vector<int>& ids) {
  std::vector<int64_t> wide(ids.begin(), ids.end());
  return torch::tensor(wide, torch::kLong).unsqueeze(0);
}

}  // namespace likeness::testing
