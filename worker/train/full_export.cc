#include "worker/train/full_export.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/safetensors/writer.h"
#include "common/status_macros.h"
#include "worker/model/checkpoint/checkpoint_kind.h"
#include "worker/model/checkpoint/diffusers_folder.h"
#include "worker/model/checkpoint/sgm_convert.h"
#include "worker/model/sdxl/sdxl_models.h"

namespace likeness::train {
namespace fs = std::filesystem;
namespace ckpt = model::checkpoint;
namespace {

constexpr char kTempSuffix[] = ".tmp";
constexpr char kOldSuffix[] = ".old";
// Small folders of a diffusers base model that the export carries over as they are.
constexpr const char* kCopiedFolders[] = {"scheduler", "tokenizer", "tokenizer_2"};

struct ComponentInfo {
  const char* name;
  const char* library;
  const char* class_name;
  const char* weights_base;
};
// diffusers' StableDiffusionXLPipeline model_index.json entries for the four models.
constexpr ComponentInfo kComponents[] = {
    {"unet", "diffusers", "UNet2DConditionModel", ckpt::kDiffusersWeightsBase},
    {"vae", "diffusers", "AutoencoderKL", ckpt::kDiffusersWeightsBase},
    {"text_encoder", "transformers", "CLIPTextModel", ckpt::kTransformersWeightsBase},
    {"text_encoder_2", "transformers", "CLIPTextModelWithProjection",
     ckpt::kTransformersWeightsBase},
};

safetensors::NamedTensors CpuContiguous(const model::StateDict& weights) {
  safetensors::NamedTensors out;
  for (const auto& [name, t] : weights) out.emplace_back(name, t.detach().cpu().contiguous());
  return out;
}

absl::Status LinkOrCopy(const std::string& from, const std::string& to) {
  std::error_code error;
  fs::create_hard_link(from, to, error);
  if (!error) return absl::OkStatus();
  // EXDEV/EPERM: a file system without hard links (or another device) gets a copy.
  fs::copy_file(from, to, fs::copy_options::overwrite_existing, error);
  if (error) {
    return absl::InternalError(absl::StrCat("export: cannot link or copy ", from, " to ", to, ": ",
                                            error.message()));
  }
  return absl::OkStatus();
}

absl::Status WriteDiffusers(const std::string& dir, const FullExportInput& input) {
  nlohmann::json index = {{"_class_name", "StableDiffusionXLPipeline"},
                          {"_diffusers_version", "0.27.0"}};
  for (const ComponentInfo& c : kComponents) {
    index[c.name] = {c.library, c.class_name};
    const fs::path folder = fs::path(dir) / c.name;
    fs::create_directories(folder);
    if (!input.configs.contains(c.name)) {
      return absl::InvalidArgumentError(absl::StrCat("export: no config for ", c.name));
    }
    nlohmann::json config = input.configs[c.name];
    if (!config.contains("_class_name")) config["_class_name"] = c.class_name;
    LIKENESS_RETURN_IF_ERROR(WriteFileAtomically((folder / ckpt::kComponentConfigFile).string(),
                                                 config.dump(2) + "\n"));
    const std::string weights = (folder / absl::StrCat(c.weights_base, ".safetensors")).string();
    const auto link = input.link_from.find(c.name);
    if (link != input.link_from.end()) {
      LIKENESS_RETURN_IF_ERROR(LinkOrCopy(link->second, weights));
      continue;
    }
    const auto it = input.weights.find(c.name);
    if (it == input.weights.end()) {
      return absl::InvalidArgumentError(absl::StrCat("export: no weights for ", c.name));
    }
    LIKENESS_RETURN_IF_ERROR(safetensors::WriteSafetensors(weights, CpuContiguous(it->second)));
  }
  std::error_code error;
  if (fs::is_directory(input.base_model, error)) {
    for (const char* name : kCopiedFolders) {
      const fs::path from = fs::path(input.base_model) / name;
      if (!fs::is_directory(from, error)) continue;
      fs::copy(from, fs::path(dir) / name, fs::copy_options::recursive, error);
      if (error) {
        return absl::InternalError(
            absl::StrCat("export: copying ", from.string(), ": ", error.message()));
      }
      const std::string library = std::string(name) == "scheduler" ? "diffusers" : "transformers";
      const std::string class_name =
          std::string(name) == "scheduler" ? "EulerDiscreteScheduler" : "CLIPTokenizer";
      index[name] = {library, class_name};
    }
  }
  return WriteFileAtomically((fs::path(dir) / ckpt::kModelIndexFile).string(),
                             index.dump(2) + "\n");
}

absl::Status WriteSingleFile(const std::string& path, const FullExportInput& input) {
  ckpt::SdxlComponents components;
  for (const ckpt::Component c : ckpt::kAllComponents) {
    const std::string name(ckpt::ComponentName(c));
    const auto it = input.weights.find(name);
    if (it == input.weights.end()) {
      return absl::InvalidArgumentError(absl::StrCat("export: no weights for ", name));
    }
    for (const auto& [key, t] : it->second) components.Weights(c)[key] = t.detach().cpu();
  }
  LIKENESS_ASSIGN_OR_RETURN(model::StateDict sgm, ckpt::ToSingleFile(components, path));
  safetensors::NamedTensors tensors;
  for (const auto& [name, t] : sgm) tensors.emplace_back(name, t.contiguous());
  return safetensors::WriteSafetensors(path, tensors);
}

}  // namespace

absl::StatusOr<nlohmann::json> BaseModelConfigs(const std::string& base_model,
                                                const std::string& model_config) {
  nlohmann::json override_json = nullptr;
  if (!model_config.empty()) {
    override_json = nlohmann::json::parse(model_config, nullptr, false);
    if (override_json.is_discarded()) {
      return absl::InvalidArgumentError("train: model_config: not valid JSON");
    }
    if (override_json.contains("config")) override_json = override_json["config"];
  }
  LIKENESS_ASSIGN_OR_RETURN(ckpt::CheckpointKind kind, ckpt::DetectCheckpoint(base_model));
  nlohmann::json out = nlohmann::json::object();
  if (kind == ckpt::CheckpointKind::kSingleFile) {
    // The tensors are views of the mapped file; only the detected configs are kept.
    LIKENESS_ASSIGN_OR_RETURN(ckpt::SdxlComponents components,
                              ckpt::LoadSingleFile(base_model, override_json));
    for (const ckpt::Component c : ckpt::kAllComponents) {
      out[std::string(ckpt::ComponentName(c))] = components.Config(c);
    }
    return out;
  }
  LIKENESS_ASSIGN_OR_RETURN(ckpt::DiffusersPipelineFolder folder,
                            ckpt::OpenDiffusersFolder(base_model));
  for (const char* name : model::kSdxlComponents) {
    if (override_json.is_object() && override_json.contains(name)) {
      out[name] = override_json[name];
      continue;
    }
    LIKENESS_ASSIGN_OR_RETURN(out[name], ckpt::LoadComponentConfig(folder, name));
  }
  return out;
}

absl::StatusOr<std::string> WriteFullExport(const std::string& output_dir,
                                            const FullExportInput& input) {
  const fs::path final_dir = fs::path(output_dir) / kExportDir;
  const fs::path temp_dir = fs::path(output_dir) / absl::StrCat(kExportDir, kTempSuffix);
  const fs::path old_dir = fs::path(output_dir) / absl::StrCat(kExportDir, kOldSuffix);
  std::error_code error;
  fs::remove_all(temp_dir, error);
  fs::remove_all(old_dir, error);
  fs::create_directories(temp_dir, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("export: cannot create ", temp_dir.string(), ": ", error.message()));
  }
  try {
    LIKENESS_RETURN_IF_ERROR(WriteDiffusers((temp_dir / kExportDiffusersDir).string(), input));
    LIKENESS_RETURN_IF_ERROR(
        WriteSingleFile((temp_dir / kExportSingleFileName).string(), input));
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("export: ", e.what_without_backtrace()));
  }
  if (fs::exists(final_dir, error)) fs::rename(final_dir, old_dir, error);
  fs::rename(temp_dir, final_dir, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("export: cannot rename ", temp_dir.string(), ": ", error.message()));
  }
  fs::remove_all(old_dir, error);
  return final_dir.string();
}

}  // namespace likeness::train
