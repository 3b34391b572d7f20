#include "worker/model/checkpoint/diffusers_folder.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/types/span.h"
#include "common/safetensors/safetensors_file.h"
#include "common/status_macros.h"

namespace likeness::model::checkpoint {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kWeightBases[] = {kDiffusersWeightsBase, kTransformersWeightsBase};
constexpr const char* kSafetensorsEndings[] = {".safetensors", ".safetensors.index.json"};
// Pickle formats, recognised only to say why they are not loaded.
constexpr const char* kPickleEndings[] = {".bin", ".bin.index.json", ".ckpt", ".pt", ".pth"};

bool IsFile(const std::string& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

bool IsDir(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}

std::string Join(const std::string& dir, absl::string_view name) {
  return (fs::path(dir) / std::string(name)).string();
}

absl::StatusOr<json> ReadJsonFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot be read"));
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  json parsed = json::parse(text, /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded())
    return absl::InvalidArgumentError(absl::StrCat(path, ": not valid JSON"));
  return parsed;
}

// The weight file names FindWeightsFile tries, in order.
std::vector<std::string> WeightCandidates(absl::string_view variant) {
  std::vector<std::string> names;
  for (const char* base : kWeightBases) {
    if (variant.empty()) {
      names.push_back(absl::StrCat(base, ".safetensors"));
      names.push_back(absl::StrCat(base, ".safetensors.index.json"));
    } else {
      names.push_back(absl::StrCat(base, ".", variant, ".safetensors"));
      names.push_back(absl::StrCat(base, ".safetensors.index.", variant, ".json"));
      names.push_back(absl::StrCat(base, ".", variant, ".safetensors.index.json"));
    }
  }
  return names;
}

bool EndsWithAny(absl::string_view name, absl::Span<const char* const> endings) {
  for (const char* ending : endings) {
    if (absl::EndsWith(name, ending)) return true;
  }
  return false;
}

// A shard must be a file beside its index: an index naming "../x" must not reach elsewhere.
bool IsPlainFileName(absl::string_view name) {
  return !name.empty() && name != "." && name != ".." &&
         name.find('/') == absl::string_view::npos && name.find('\\') == absl::string_view::npos;
}

absl::StatusOr<StateDict> LoadSharded(const std::string& index_path) {
  LIKENESS_ASSIGN_OR_RETURN(json index, ReadJsonFile(index_path));
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(index_path, ": no \"weight_map\" object"));
  }
  std::map<std::string, std::vector<std::string>> names_by_shard;
  for (const auto& [name, shard] : index["weight_map"].items()) {
    if (!shard.is_string() || !IsPlainFileName(shard.get<std::string>())) {
      return absl::InvalidArgumentError(
          absl::StrCat(index_path, ": tensor '", name, "' maps to ", shard.dump(),
                       ", which is not a file name beside the index"));
    }
    names_by_shard[shard.get<std::string>()].push_back(name);
  }
  const std::string dir = fs::path(index_path).parent_path().string();
  StateDict out;
  for (const auto& [shard, names] : names_by_shard) {
    const std::string shard_path = Join(dir, shard);
    if (!IsFile(shard_path)) {
      return absl::NotFoundError(absl::StrCat(index_path, ": shard '", shard, "' (holding '",
                                              names.front(), "' and ", names.size() - 1,
                                              " more) does not exist"));
    }
    absl::StatusOr<std::shared_ptr<safetensors::SafetensorsFile>> file =
        safetensors::SafetensorsFile::Open(shard_path);
    if (!file.ok()) {
      return absl::Status(file.status().code(), absl::StrCat(index_path, ": shard '", shard,
                                                             "': ", file.status().message()));
    }
    for (const std::string& name : names) {
      if (!(*file)->Contains(name)) {
        return absl::InvalidArgumentError(absl::StrCat(index_path, ": tensor '", name,
                                                       "' is mapped to shard '", shard,
                                                       "', which does not hold it"));
      }
      LIKENESS_ASSIGN_OR_RETURN(out[name], (*file)->Get(name));
    }
    for (const std::string& name : (*file)->Names()) {
      if (!absl::StartsWith(name, "__") && !index["weight_map"].contains(name)) {
        return absl::InvalidArgumentError(absl::StrCat(index_path, ": shard '", shard,
                                                       "' holds tensor '", name,
                                                       "', which the index does not list"));
      }
    }
  }
  return out;
}

// The component a single folder holds, from its config.json.
absl::StatusOr<DiffusersComponent> SingleComponent(const std::string& path) {
  const std::string config_path = Join(path, kComponentConfigFile);
  LIKENESS_ASSIGN_OR_RETURN(json config, ReadJsonFile(config_path));
  DiffusersComponent c;
  fs::path p = fs::path(path).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();  // "unet/" -> "unet"
  c.name = p.filename().string();
  c.dir = path;
  if (config.is_object() && config.contains("_class_name") && config["_class_name"].is_string()) {
    c.library = "diffusers";
    c.class_name = config["_class_name"].get<std::string>();
  } else if (config.is_object() && config.contains("architectures") &&
             config["architectures"].is_array() && !config["architectures"].empty() &&
             config["architectures"][0].is_string()) {
    c.library = "transformers";
    c.class_name = config["architectures"][0].get<std::string>();
  }
  return c;
}

}  // namespace

const DiffusersComponent* DiffusersPipelineFolder::Find(absl::string_view name) const {
  for (const DiffusersComponent& c : components) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

absl::StatusOr<DiffusersPipelineFolder> OpenDiffusersFolder(const std::string& path,
                                                            absl::string_view variant) {
  if (!IsDir(path)) {
    if (IsFile(path)) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": a file, not a diffusers folder (single files load with LoadSingleFile)"));
    }
    return absl::NotFoundError(absl::StrCat(path, ": no such folder"));
  }
  DiffusersPipelineFolder folder;
  folder.path = path;
  folder.variant = std::string(variant);
  const std::string index_path = Join(path, kModelIndexFile);
  if (!IsFile(index_path)) {
    if (!IsFile(Join(path, kComponentConfigFile))) {
      return absl::NotFoundError(absl::StrCat(path, ": not a diffusers folder: no ",
                                              kModelIndexFile, " (a pipeline) and no ",
                                              kComponentConfigFile, " (one component)"));
    }
    folder.single_component = true;
    LIKENESS_ASSIGN_OR_RETURN(DiffusersComponent component, SingleComponent(path));
    folder.components.push_back(std::move(component));
    return folder;
  }
  LIKENESS_ASSIGN_OR_RETURN(folder.model_index, ReadJsonFile(index_path));
  if (!folder.model_index.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(index_path, ": not a JSON object"));
  }
  std::vector<std::string> absent;
  for (const auto& [key, value] : folder.model_index.items()) {
    // "_class_name" etc. are metadata; [null, null] marks an optional component left out; other
    // values are pipeline settings (force_zeros_for_empty_prompt, ...).
    if (absl::StartsWith(key, "_") || !value.is_array() || value.size() != 2 ||
        !value[0].is_string() || !value[1].is_string()) {
      continue;
    }
    DiffusersComponent c{key, value[0].get<std::string>(), value[1].get<std::string>(),
                         Join(path, key)};
    if (!IsDir(c.dir)) absent.push_back(absl::StrCat(key, " (", c.class_name, ")"));
    folder.components.push_back(std::move(c));
  }
  if (!absent.empty()) {
    return absl::NotFoundError(absl::StrCat(index_path,
                                            " lists component(s) whose folders are absent from ",
                                            path, ": ", absl::StrJoin(absent, ", ")));
  }
  return folder;
}

absl::StatusOr<std::string> FindWeightsFile(const std::string& dir, absl::string_view variant) {
  const std::vector<std::string> candidates = WeightCandidates(variant);
  for (const std::string& name : candidates) {
    if (IsFile(Join(dir, name))) return Join(dir, name);
  }
  std::vector<std::string> safetensors, pickle;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (EndsWithAny(name, kSafetensorsEndings) || absl::StrContains(name, ".safetensors.index.")) {
      safetensors.push_back(name);
    } else if (EndsWithAny(name, kPickleEndings)) {
      pickle.push_back(name);
    }
  }
  std::sort(safetensors.begin(), safetensors.end());
  std::sort(pickle.begin(), pickle.end());
  const std::string wanted =
      variant.empty() ? std::string("no variant") : absl::StrCat("variant '", variant, "'");
  if (!safetensors.empty()) {
    return absl::NotFoundError(absl::StrCat(
        dir, ": no weights for ", wanted, " (looked for ", absl::StrJoin(candidates, ", "),
        "); it has ", absl::StrJoin(safetensors, ", "), ": ask for that variant"));
  }
  if (!pickle.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        dir, ": only pickle weights (", absl::StrJoin(pickle, ", "),
        "); pickle checkpoints are not loaded for safety, since unpickling can run arbitrary code. "
        "Convert them to safetensors, e.g. save_pretrained(..., safe_serialization=True)"));
  }
  return absl::NotFoundError(
      absl::StrCat(dir, ": no weights file (looked for ", absl::StrJoin(candidates, ", "), ")"));
}

absl::StatusOr<json> LoadComponentConfig(const DiffusersPipelineFolder& folder,
                                         absl::string_view name) {
  const DiffusersComponent* c = folder.Find(name);
  if (c == nullptr)
    return absl::NotFoundError(absl::StrCat(folder.path, ": no component '", name, "'"));
  return ReadJsonFile(Join(c->dir, kComponentConfigFile));
}

absl::StatusOr<StateDict> LoadComponent(const DiffusersPipelineFolder& folder,
                                        absl::string_view name) {
  const DiffusersComponent* c = folder.Find(name);
  if (c == nullptr) {
    std::vector<std::string> names;
    for (const DiffusersComponent& component : folder.components) names.push_back(component.name);
    return absl::NotFoundError(absl::StrCat(folder.path, ": no component '", name, "'; it has ",
                                            absl::StrJoin(names, ", ")));
  }
  LIKENESS_ASSIGN_OR_RETURN(std::string weights, FindWeightsFile(c->dir, folder.variant));
  if (absl::EndsWith(weights, ".json")) return LoadSharded(weights);
  LIKENESS_ASSIGN_OR_RETURN(std::shared_ptr<safetensors::SafetensorsFile> file,
                            safetensors::SafetensorsFile::Open(weights));
  return ReadStateDict(*file);
}

}  // namespace likeness::model::checkpoint
