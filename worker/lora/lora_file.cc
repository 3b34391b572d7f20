#include "worker/lora/lora_file.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/safetensors/safetensors_file.h"
#include "common/safetensors/writer.h"
#include "common/status_macros.h"
#include "worker/lora/lora_file_internal.h"
#include "worker/model/state_dict.h"

namespace likeness::lora {
namespace {

// How many of a file's first keys an "is not a LoRA file" error shows.
constexpr size_t kKeysInError = 5;

absl::StatusOr<LoraFileContents> ReadDetected(const safetensors::SafetensorsFile& file,
                                              const LoraLayerIndex& index) {
  const std::string& path = file.path();
  const std::vector<std::string> names = file.Names();
  if (names.empty()) return absl::InvalidArgumentError(absl::StrCat(path, ": holds no tensors"));
  // Unsupported adapter kinds first: their keys are kohya- or PEFT-shaped, and the kind is what
  // the user needs to hear.
  for (const std::string& key : names)
    LIKENESS_RETURN_IF_ERROR(internal::CheckSupportedKey(path, key));
  const std::string* kohya = nullptr;
  const std::string* peft = nullptr;
  for (const std::string& key : names) {
    if (kohya == nullptr && internal::IsKohyaKey(key)) kohya = &key;
    if (peft == nullptr && !internal::IsKohyaKey(key) && internal::IsPeftKey(key)) peft = &key;
  }
  if (kohya != nullptr && peft != nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": mixes kohya keys (", *kohya,
                                                   ") and PEFT/diffusers keys (", *peft, ")"));
  }
  if (kohya == nullptr && peft == nullptr) {
    std::vector<std::string> first(names.begin(),
                                   names.begin() + std::min(names.size(), kKeysInError));
    return absl::InvalidArgumentError(absl::StrCat(
        path,
        ": is not a LoRA file: no kohya (lora_unet_*, lora_te1_*, lora_te2_*) and no PEFT "
        "(*.lora_A.weight / *.lora_B.weight) keys; its keys start ",
        model::JoinNamesForError(first)));
  }
  LoraFileContents contents;
  contents.format = kohya != nullptr ? LoraFileFormat::kKohya : LoraFileFormat::kPeft;
  contents.metadata = file.metadata();
  LIKENESS_RETURN_IF_ERROR(kohya != nullptr ? internal::ParseKohya(file, index, &contents)
                                            : internal::ParsePeft(file, index, &contents));
  return contents;
}

}  // namespace

const char* FormatName(LoraFileFormat format) {
  return format == LoraFileFormat::kKohya ? "kohya" : "peft";
}

absl::StatusOr<LoraFileContents> ReadLoraFile(const std::string& path,
                                              const LoraLayerIndex& index) {
  LIKENESS_ASSIGN_OR_RETURN(std::shared_ptr<safetensors::SafetensorsFile> file,
                            safetensors::SafetensorsFile::Open(path));
  try {
    return ReadDetected(*file, index);
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": reading the LoRA failed: ", e.what_without_backtrace()));
  }
}

std::map<std::string, std::string> LoraFileMetadata(LoraFileFormat format,
                                                    const std::vector<LoraModuleWeights>& modules,
                                                    const LoraFileInfo& info) {
  std::map<std::string, std::string> metadata = format == LoraFileFormat::kKohya
                                                    ? internal::KohyaMetadata(modules, info)
                                                    : internal::PeftMetadata(modules, info);
  internal::AddCommonMetadata(info, metadata);
  for (const auto& [key, value] : info.extra) metadata[key] = value;
  return metadata;
}

absl::Status WriteLoraFile(const std::string& path, LoraFileFormat format,
                           const std::vector<LoraModuleWeights>& modules, const LoraFileInfo& info,
                           std::optional<torch::Dtype> dtype) {
  if (modules.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": no LoRA modules to write"));
  }
  try {
    const safetensors::NamedTensors tensors = format == LoraFileFormat::kKohya
                                                  ? internal::KohyaTensors(modules, dtype)
                                                  : internal::PeftTensors(modules, dtype);
    return safetensors::WriteSafetensors(path, tensors, LoraFileMetadata(format, modules, info));
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat(path, ": writing the LoRA failed: ", e.what_without_backtrace()));
  }
}

}  // namespace likeness::lora
