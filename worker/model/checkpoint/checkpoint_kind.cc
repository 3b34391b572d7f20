#include "worker/model/checkpoint/checkpoint_kind.h"

#include <algorithm>
#include <filesystem>
#include <memory>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/safetensors/safetensors_file.h"
#include "common/status_macros.h"
#include "worker/model/checkpoint/diffusers_folder.h"

namespace likeness::model::checkpoint {
namespace {

namespace fs = std::filesystem;

constexpr int kNamesInError = 5;
constexpr const char* kPickleExtensions[] = {".ckpt", ".bin", ".pt", ".pth"};

// Name markers, as data: a file is of a kind when some tensor has one of `prefixes` and
// contains one of `markers` ("" = any).
struct NameSignature {
  CheckpointKind kind;
  std::vector<const char*> prefixes;
  std::vector<const char*> markers;
};
const NameSignature kSignatures[] = {
    {CheckpointKind::kLoraKohya,
     {"lora_unet_", "lora_te1_", "lora_te2_", "lora_te_"},
     {".lora_down.", ".lora_up.", ".alpha"}},
    {CheckpointKind::kLoraDiffusers,
     {"unet.", "text_encoder.", "text_encoder_2."},
     {".lora_down.", ".lora_up.", "_lora.down.", "_lora.up.", ".lora.down.", ".lora.up.",
      ".lora_A.", ".lora_B."}},
    {CheckpointKind::kSingleFile, {"model.diffusion_model."}, {""}},
};
// SD 1.x/2.x single files keep their text encoder here; SDXL's is under conditioner.*.
constexpr char kSd1TextPrefix[] = "cond_stage_model.";
constexpr char kSdxlConditionerPrefix[] = "conditioner.";

bool Matches(const NameSignature& signature, absl::string_view name) {
  for (const char* prefix : signature.prefixes) {
    if (!absl::StartsWith(name, prefix)) continue;
    for (const char* marker : signature.markers) {
      if (absl::StrContains(name, marker)) return true;
    }
  }
  return false;
}

bool AnyStartsWith(const std::vector<std::string>& names, absl::string_view prefix) {
  for (const std::string& name : names) {
    if (absl::StartsWith(name, prefix)) return true;
  }
  return false;
}

absl::StatusOr<CheckpointKind> DetectFile(const std::string& path) {
  const std::string extension = absl::AsciiStrToLower(fs::path(path).extension().string());
  for (const char* pickle : kPickleExtensions) {
    if (extension == pickle) {
      return absl::FailedPreconditionError(absl::StrCat(
          path,
          ": a pickle checkpoint; these are not loaded for safety, since unpickling can run "
          "arbitrary code. Convert it to .safetensors first"));
    }
  }
  LIKENESS_ASSIGN_OR_RETURN(std::shared_ptr<safetensors::SafetensorsFile> file,
                            safetensors::SafetensorsFile::Open(path));
  std::vector<std::string> names;
  for (std::string& name : file->Names()) {
    if (!absl::StartsWith(name, "__")) names.push_back(std::move(name));
  }
  for (const NameSignature& signature : kSignatures) {
    for (const std::string& name : names) {
      if (!Matches(signature, name)) continue;
      if (signature.kind == CheckpointKind::kSingleFile && AnyStartsWith(names, kSd1TextPrefix) &&
          !AnyStartsWith(names, kSdxlConditionerPrefix)) {
        return absl::InvalidArgumentError(absl::StrCat(path,
                                                       ": a Stable Diffusion 1.x/2.x single file (",
                                                       kSd1TextPrefix, "*); Likeness loads SDXL"));
      }
      return signature.kind;
    }
  }
  std::vector<std::string> head(names.begin(),
                                names.begin() + std::min<size_t>(names.size(), kNamesInError));
  return absl::InvalidArgumentError(absl::StrCat(
      path, ": not a checkpoint Likeness recognises (", names.size(),
      " tensors: ", absl::StrJoin(head, ", "), names.size() > head.size() ? ", ..." : "", ")"));
}

}  // namespace

absl::string_view CheckpointKindName(CheckpointKind kind) {
  switch (kind) {
    case CheckpointKind::kDiffusersPipeline:
      return "diffusers pipeline";
    case CheckpointKind::kDiffusersComponent:
      return "diffusers component folder";
    case CheckpointKind::kSingleFile:
      return "single-file checkpoint";
    case CheckpointKind::kLoraKohya:
      return "LoRA (kohya names)";
    case CheckpointKind::kLoraDiffusers:
      return "LoRA (diffusers names)";
  }
  return "unknown";
}

absl::StatusOr<CheckpointKind> DetectCheckpoint(const std::string& path) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (!fs::exists(status))
    return absl::NotFoundError(absl::StrCat(path, ": no such file or folder"));
  if (fs::is_directory(status)) {
    if (fs::is_regular_file(fs::path(path) / kModelIndexFile, ec))
      return CheckpointKind::kDiffusersPipeline;
    if (fs::is_regular_file(fs::path(path) / kComponentConfigFile, ec))
      return CheckpointKind::kDiffusersComponent;
    return absl::InvalidArgumentError(absl::StrCat(path, ": a folder with neither ",
                                                   kModelIndexFile, " nor ", kComponentConfigFile,
                                                   "; not a diffusers folder"));
  }
  return DetectFile(path);
}

}  // namespace likeness::model::checkpoint
