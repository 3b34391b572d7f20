// `likeness inspect`: what a checkpoint holds, or what an architecture would hold.
#include <map>
#include <ostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/atomic_file.h"
#include "common/safetensors/safetensors_file.h"
#include "nlohmann/json.hpp"
#include "worker/cli/commands.h"
#include "worker/model/checkpoint/checkpoint_kind.h"
#include "worker/model/checkpoint/diffusers_folder.h"
#include "worker/model/checkpoint/sgm_convert.h"
#include "worker/model/layers.h"
#include "worker/model/sdxl/sdxl_models.h"
#include "worker/model/state_dict.h"

namespace likeness::cli {
namespace {

namespace ckpt = model::checkpoint;
using nlohmann::json;

constexpr double kBytesPerGiB = 1024.0 * 1024.0 * 1024.0;

const std::map<std::string, std::string>& ComponentClasses() {
  static const auto* classes = new std::map<std::string, std::string>{
      {"unet", "UNet2DConditionModel"},
      {"vae", "AutoencoderKL"},
      {"text_encoder", "CLIPTextModel"},
      {"text_encoder_2", "CLIPTextModelWithProjection"}};
  return *classes;
}

// Counts, dtypes and bytes of a state dict; names and shapes too when `tensors` is set.
json DescribeStateDict(const model::StateDict& dict, bool tensors) {
  int64_t parameters = 0, bytes = 0;
  std::map<std::string, int64_t> dtypes;
  json shapes = json::object();
  for (const auto& [name, t] : dict) {
    parameters += t.numel();
    bytes += t.numel() * static_cast<int64_t>(t.element_size());
    ++dtypes[std::string(c10::toString(t.scalar_type()))];
    if (tensors) shapes[name] = t.sizes().vec();
  }
  json out = {{"tensors_count", dict.size()}, {"parameters", parameters}, {"bytes", bytes}, {"dtypes", dtypes}};
  if (tensors) out["tensors"] = shapes;
  return out;
}

// Parameters only (no buffers), as published parameter counts are.
json DescribeModule(torch::nn::Module& module, const std::string& cls, bool tensors) {
  model::StateDict params;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) params[item.key()] = item.value();
  json out = DescribeStateDict(params, tensors);
  out["class"] = cls;
  out.erase("bytes");
  out.erase("dtypes");
  return out;
}

absl::StatusOr<json> InspectArch(const std::string& arch, bool tensors) {
  model::SdxlBuildOptions options;
  options.device = torch::kMeta;  // Shapes only: no memory for 3.5 B parameters.
  absl::StatusOr<model::SdxlModels> models = model::BuildSdxlArchitecture(arch, options);
  if (!models.ok()) return models.status();
  json out = {{"arch", arch}, {"components", json::object()}};
  int64_t total = 0;
  for (const char* name : model::kSdxlComponents) {
    json c = DescribeModule(*models->Component(name), ComponentClasses().at(name), tensors);
    total += c["parameters"].get<int64_t>();
    out["components"][name] = c;
  }
  out["parameters"] = total;
  return out;
}

absl::StatusOr<json> InspectPath(const std::string& path, bool tensors, const json& config_override) {
  absl::StatusOr<ckpt::CheckpointKind> kind = ckpt::DetectCheckpoint(path);
  if (!kind.ok()) return kind.status();
  json out = {{"path", path}, {"format", std::string(ckpt::CheckpointKindName(*kind))}, {"components", json::object()}};
  switch (*kind) {
    case ckpt::CheckpointKind::kSingleFile: {
      absl::StatusOr<ckpt::SdxlComponents> components = ckpt::LoadSingleFile(path, config_override);
      if (!components.ok()) return components.status();
      for (ckpt::Component c : ckpt::kAllComponents) {
        const std::string name(ckpt::ComponentName(c));
        if (components->Weights(c).empty()) continue;
        json d = DescribeStateDict(components->Weights(c), tensors);
        d["class"] = ComponentClasses().at(name);
        d["config"] = components->Config(c);
        out["components"][name] = d;
      }
      out["unknown"] = components->unknown;
      out["ignored"] = components->ignored;
      out["absent"] = components->absent;
      break;
    }
    case ckpt::CheckpointKind::kDiffusersPipeline:
    case ckpt::CheckpointKind::kDiffusersComponent: {
      absl::StatusOr<ckpt::DiffusersPipelineFolder> folder = ckpt::OpenDiffusersFolder(path);
      if (!folder.ok()) return folder.status();
      for (const ckpt::DiffusersComponent& c : folder->components) {
        json d = {{"class", c.class_name}, {"library", c.library}};
        if (absl::StatusOr<json> config = ckpt::LoadComponentConfig(*folder, c.name); config.ok()) {
          d["config"] = *config;
        }
        // Tokenizers and schedulers have no weights; a model component without them is an error.
        if (absl::StatusOr<std::string> file = ckpt::FindWeightsFile(c.dir, ""); file.ok()) {
          absl::StatusOr<model::StateDict> weights = ckpt::LoadComponent(*folder, c.name);
          if (!weights.ok()) return weights.status();
          d.update(DescribeStateDict(*weights, tensors));
          d["weights"] = *file;
        } else if (ComponentClasses().count(c.name) > 0) {
          return file.status();
        }
        out["components"][c.name] = d;
      }
      break;
    }
    case ckpt::CheckpointKind::kLoraKohya:
    case ckpt::CheckpointKind::kLoraDiffusers: {
      absl::StatusOr<std::shared_ptr<safetensors::SafetensorsFile>> file = safetensors::SafetensorsFile::Open(path);
      if (!file.ok()) return file.status();
      absl::StatusOr<model::StateDict> dict = model::ReadStateDict(**file);
      if (!dict.ok()) return dict.status();
      out["components"]["lora"] = DescribeStateDict(*dict, tensors);
      out["metadata"] = (*file)->metadata();
      break;
    }
  }
  return out;
}

void PrintHuman(const json& report, std::ostream& out) {
  out << (report.contains("arch") ? "architecture: " + report["arch"].get<std::string>()
                                  : report["path"].get<std::string>() + " (" + report["format"].get<std::string>() + ")")
      << "\n";
  out << absl::StrFormat("  %-16s %-30s %15s %10s  %s\n", "component", "class", "parameters", "GiB", "dtypes");
  for (const auto& [name, c] : report["components"].items()) {
    std::string dtypes;
    if (c.contains("dtypes")) {
      for (const auto& [dtype, count] : c["dtypes"].items()) absl::StrAppend(&dtypes, dtypes.empty() ? "" : ", ", dtype, " x", count.dump());
    }
    const int64_t parameters = c.value("parameters", int64_t{0});
    const std::string gib = c.contains("bytes") ? absl::StrFormat("%.2f", c["bytes"].get<double>() / kBytesPerGiB) : "-";
    out << absl::StrFormat("  %-16s %-30s %15d %10s  %s\n", name, c.value("class", ""), parameters, gib, dtypes);
  }
  for (const char* list : {"unknown", "ignored", "absent"}) {
    if (report.contains(list) && !report[list].empty()) {
      out << "  " << list << " (" << report[list].size() << "): " << report[list].dump() << "\n";
    }
  }
}

int RunInspect(const Args& args, std::ostream& out, std::ostream& err) {
  const bool tensors = args.Switch("tensors");
  const bool has_arch = args.Given("arch");
  if (has_arch == !args.positional().empty()) {
    err << "likeness inspect: give either PATH or --arch NAME\n";
    return kExitUsage;
  }
  json config_override = nullptr;
  if (args.Given("config")) {
    absl::StatusOr<std::string> text = ReadFileToString(args.Get("config"));
    if (text.ok()) config_override = json::parse(*text, nullptr, /*allow_exceptions=*/false);
    if (!text.ok() || !config_override.is_object()) {
      err << "likeness inspect: --config " << args.Get("config")
          << (text.ok() ? " is not a JSON object" : ": " + std::string(text.status().message())) << "\n";
      return kExitFailure;
    }
  }
  absl::StatusOr<json> report = has_arch ? InspectArch(args.Get("arch"), tensors)
                                         : InspectPath(args.positional()[0], tensors, config_override);
  if (!report.ok()) {
    err << "likeness inspect: " << report.status().message() << "\n";
    return absl::IsInvalidArgument(report.status()) && has_arch ? kExitUsage : kExitFailure;
  }
  if (args.Switch("json")) {
    out << report->dump(2) << "\n";
  } else {
    PrintHuman(*report, out);
  }
  return kExitOk;
}

}  // namespace

Command MakeInspectCommand() {
  Command command;
  command.name = "inspect";
  command.summary = "Show what a checkpoint holds, or what an architecture would hold.";
  command.usage_args = "[--json] [--tensors] [--config FILE] (PATH | --arch sdxl-base)";
  command.description =
      "PATH: a diffusers pipeline or component folder, a single-file SDXL checkpoint\n"
      "(A1111/ComfyUI naming) or a LoRA file. Lists the components with their classes,\n"
      "parameter counts, dtypes and sizes, the configuration (detected from tensor shapes for\n"
      "a single file; SDXL's head counts are assumed when the sizes are SDXL's, else give\n"
      "them with --config) and any tensor no component knows.\n"
      "--arch NAME: builds the architecture without allocating its weights and lists the same\n"
      "for it (parameter counts are parameters only, as published).";
  command.options = {
      {"arch", "NAME", "an architecture instead of a PATH (sdxl-base)", ""},
      {"json", "", "print JSON instead of a table", ""},
      {"tensors", "", "with --json: every tensor's name and shape", ""},
      {"config", "FILE", "JSON object of config.json overrides per component (\"unet\", \"vae\",\n"
                         "                            \"text_encoder\", \"text_encoder_2\"): what a single file\n"
                         "                            cannot show, such as attention heads of a non-SDXL size", ""},
  };
  command.max_positional = 1;
  command.run = RunInspect;
  return command;
}

}  // namespace likeness::cli
