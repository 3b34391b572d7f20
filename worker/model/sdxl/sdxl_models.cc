#include "worker/model/sdxl/sdxl_models.h"

#include "absl/strings/str_cat.h"
#include "common/safetensors/safetensors_file.h"
#include "common/status_macros.h"
#include "worker/model/checkpoint/checkpoint_kind.h"
#include "worker/model/checkpoint/diffusers_folder.h"
#include "worker/model/checkpoint/sgm_convert.h"
#include "worker/model/layers.h"
#include "worker/model/state_dict.h"

namespace likeness::model {
namespace {

template <typename Fn>
auto CatchTorch(const std::string& what, Fn&& fn) -> absl::StatusOr<decltype(fn())> {
  try {
    return fn();
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", e.what_without_backtrace()));
  }
}

torch::TensorOptions ComponentOptions(const std::string& name, const SdxlBuildOptions& options) {
  const bool float32 = name == "vae" && options.vae_in_float32;
  return torch::TensorOptions().dtype(float32 ? torch::kFloat32 : options.dtype).device(options.device);
}

absl::Status LoadComponentWeights(SdxlModels& models, const std::string& name, const StateDict& weights,
                                  const std::string& source, SdxlLoadReport* report) {
  torch::nn::Module* module = models.Component(name);
  const std::string where = absl::StrCat(source, " (", name, ")");
  // Each source tensor's mapped pages are dropped right after its copy: the checkpoint is
  // never resident beside the whole model (peak memory is the weights plus one tensor).
  const AfterCopy release = [](const torch::Tensor& t) { safetensors::ReleaseMappedPages(t); };
  absl::StatusOr<LoadReport> loaded = name == "text_encoder" || name == "text_encoder_2"
                                          ? LoadClipTextStateDict(*module, weights, where, release)
                                          : LoadStateDict(*module, weights, where, release);
  if (!loaded.ok()) return loaded.status();
  if (report != nullptr) {
    for (const std::string& u : loaded->unexpected) report->unexpected.push_back(absl::StrCat(name, ": ", u));
  }
  return absl::OkStatus();
}

const nlohmann::json& Override(const nlohmann::json& config_override, const std::string& name) {
  static const nlohmann::json* const kNull = new nlohmann::json();
  if (!config_override.is_object()) return *kNull;
  auto it = config_override.find(name);
  return it == config_override.end() ? *kNull : *it;
}

}  // namespace

torch::nn::Module* SdxlModels::Component(const std::string& name) {
  if (name == "unet") return unet.get();
  if (name == "vae") return vae.get();
  if (name == "text_encoder") return text_encoder.get();
  if (name == "text_encoder_2") return text_encoder_2.get();
  return nullptr;
}

absl::StatusOr<SdxlModels> BuildSdxlModels(const SdxlConfigs& configs, const SdxlBuildOptions& options) {
  SdxlModels models;
  {
    ScopedParameterOptions scope(ComponentOptions("unet", options));
    LIKENESS_ASSIGN_OR_RETURN(unet::UNetConfig config, unet::UNetConfig::FromJson(configs.unet));
    LIKENESS_ASSIGN_OR_RETURN(models.unet, unet::MakeUNet(config));
  }
  {
    ScopedParameterOptions scope(ComponentOptions("vae", options));
    LIKENESS_ASSIGN_OR_RETURN(VaeConfig config, VaeConfig::FromJson(configs.vae));
    LIKENESS_ASSIGN_OR_RETURN(models.vae, CreateAutoencoderKL(config));
  }
  {
    ScopedParameterOptions scope(ComponentOptions("text_encoder", options));
    LIKENESS_ASSIGN_OR_RETURN(ClipTextConfig config, ClipTextConfig::FromJson(configs.text_encoder));
    LIKENESS_ASSIGN_OR_RETURN(models.text_encoder,
                              CatchTorch("text_encoder", [&] { return CLIPTextModel(config); }));
  }
  {
    ScopedParameterOptions scope(ComponentOptions("text_encoder_2", options));
    LIKENESS_ASSIGN_OR_RETURN(ClipTextConfig config, ClipTextConfig::FromJson(configs.text_encoder_2));
    LIKENESS_ASSIGN_OR_RETURN(models.text_encoder_2, CatchTorch("text_encoder_2", [&] {
                                return CLIPTextModelWithProjection(config);
                              }));
  }
  return models;
}

absl::StatusOr<SdxlModels> BuildSdxlArchitecture(const std::string& arch, const SdxlBuildOptions& options) {
  if (arch != kArchSdxlBase) {
    return absl::InvalidArgumentError(absl::StrCat("unknown architecture '", arch, "' (known: ", kArchSdxlBase, ")"));
  }
  SdxlModels models;
  {
    ScopedParameterOptions scope(ComponentOptions("unet", options));
    LIKENESS_ASSIGN_OR_RETURN(models.unet, unet::MakeUNet(unet::UNetConfig::SdxlBase()));
  }
  {
    ScopedParameterOptions scope(ComponentOptions("vae", options));
    LIKENESS_ASSIGN_OR_RETURN(models.vae, CreateAutoencoderKL(VaeConfig::SdxlBase()));
  }
  {
    ScopedParameterOptions scope(ComponentOptions("text_encoder", options));
    models.text_encoder = CLIPTextModel(ClipTextConfig::SdxlClipL());
  }
  {
    ScopedParameterOptions scope(ComponentOptions("text_encoder_2", options));
    models.text_encoder_2 = CLIPTextModelWithProjection(ClipTextConfig::SdxlBigG());
  }
  return models;
}

absl::StatusOr<SdxlModels> LoadSdxlModels(const std::string& path, const SdxlBuildOptions& options,
                                          SdxlLoadReport* report, const nlohmann::json& config_override,
                                          const std::string& variant) {
  SdxlLoadReport local_report;
  if (report == nullptr) report = &local_report;
  LIKENESS_ASSIGN_OR_RETURN(checkpoint::CheckpointKind kind, checkpoint::DetectCheckpoint(path));
  report->format = std::string(checkpoint::CheckpointKindName(kind));
  if (kind == checkpoint::CheckpointKind::kSingleFile) {
    LIKENESS_ASSIGN_OR_RETURN(checkpoint::SdxlComponents components,
                              checkpoint::LoadSingleFile(path, config_override));
    if (!components.absent.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(path, ": the file lacks components: ",
                                                        JoinNamesForError(components.absent)));
    }
    report->ignored = components.ignored;
    for (const std::string& u : components.unknown) report->unexpected.push_back(u);
    SdxlConfigs configs{components.unet_config, components.vae_config, components.text_encoder_config,
                        components.text_encoder_2_config};
    LIKENESS_ASSIGN_OR_RETURN(SdxlModels models, BuildSdxlModels(configs, options));
    LIKENESS_RETURN_IF_ERROR(LoadComponentWeights(models, "unet", components.unet, path, report));
    LIKENESS_RETURN_IF_ERROR(LoadComponentWeights(models, "vae", components.vae, path, report));
    LIKENESS_RETURN_IF_ERROR(LoadComponentWeights(models, "text_encoder", components.text_encoder, path, report));
    LIKENESS_RETURN_IF_ERROR(LoadComponentWeights(models, "text_encoder_2", components.text_encoder_2, path, report));
    return models;
  }
  if (kind != checkpoint::CheckpointKind::kDiffusersPipeline) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is a ", report->format,
                                                   ", not an SDXL pipeline folder or single-file checkpoint"));
  }
  LIKENESS_ASSIGN_OR_RETURN(checkpoint::DiffusersPipelineFolder folder, checkpoint::OpenDiffusersFolder(path, variant));
  SdxlConfigs configs;
  nlohmann::json* slots[] = {&configs.unet, &configs.vae, &configs.text_encoder, &configs.text_encoder_2};
  for (int i = 0; i < 4; ++i) {
    const std::string name = kSdxlComponents[i];
    const nlohmann::json& replacement = Override(config_override, name);
    if (!replacement.is_null()) {
      *slots[i] = replacement;
    } else {
      LIKENESS_ASSIGN_OR_RETURN(*slots[i], checkpoint::LoadComponentConfig(folder, name));
    }
  }
  LIKENESS_ASSIGN_OR_RETURN(SdxlModels models, BuildSdxlModels(configs, options));
  for (const char* name : kSdxlComponents) {
    // One component's views at a time: its pages are dropped before the next maps.
    LIKENESS_ASSIGN_OR_RETURN(StateDict weights, checkpoint::LoadComponent(folder, name));
    LIKENESS_RETURN_IF_ERROR(LoadComponentWeights(models, name, weights, path, report));
  }
  return models;
}

}  // namespace likeness::model
