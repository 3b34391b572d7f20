// The four SDXL networks as one bundle, built from configs and loaded from whatever the user
// has: a diffusers pipeline folder or a single-file checkpoint (A1111/ComfyUI naming).
//
// Loading, in order:
//   1. DetectCheckpoint decides the format (worker/model/checkpoint/checkpoint_kind.h).
//   2. Per component: the config (config.json, or detected from shapes for a single file) is
//      parsed by the module's own FromJson, so a bad config names its field.
//   3. The module is built with UNINITIALISED parameters in the target dtype and device
//      (ScopedParameterOptions) and the file's tensors, which are views of the mapped file, are
//      copied in once by LoadStateDict, each source's pages dropped right after its copy
//      (safetensors::ReleaseMappedPages). Peak memory is the weights in the target dtype plus
//      about one tensor of the checkpoint, never a second full copy.
//   4. Missing tensors and shape mismatches fail the load; unexpected tensors are reported.
#ifndef LIKENESS_WORKER_MODEL_SDXL_SDXL_MODELS_H_
#define LIKENESS_WORKER_MODEL_SDXL_SDXL_MODELS_H_

#include <torch/torch.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "worker/model/text/clip_text_model.h"
#include "worker/model/unet/unet2d_condition.h"
#include "worker/model/vae/autoencoder_kl.h"

namespace likeness::model {

// The component names, as diffusers' pipeline folders call them.
inline constexpr const char* kSdxlComponents[] = {"unet", "vae", "text_encoder", "text_encoder_2"};
inline constexpr char kArchSdxlBase[] = "sdxl-base";

struct SdxlModels {
  unet::UNet2DConditionModel unet{nullptr};
  AutoencoderKL vae{nullptr};
  CLIPTextModel text_encoder{nullptr};
  CLIPTextModelWithProjection text_encoder_2{nullptr};

  // The component by name ("unet", ...), or nullptr for an unknown name.
  torch::nn::Module* Component(const std::string& name);
};

struct SdxlConfigs {
  nlohmann::json unet, vae, text_encoder, text_encoder_2;  // config.json objects
};

struct SdxlBuildOptions {
  torch::Dtype dtype = torch::kFloat32;
  torch::Device device = torch::kCPU;
  // SDXL's VAE overflows in fp16 (diffusers' force_upcast): keep it in float32 by default.
  bool vae_in_float32 = true;
};

// Builds the four modules from configs, parameters uninitialised (device kMeta builds a model
// that takes no memory at all: shapes and counts only).
absl::StatusOr<SdxlModels> BuildSdxlModels(const SdxlConfigs& configs, const SdxlBuildOptions& options);

// SDXL base 1.0's configs (the presets of each module).
absl::StatusOr<SdxlModels> BuildSdxlArchitecture(const std::string& arch, const SdxlBuildOptions& options);

struct SdxlLoadReport {
  std::string format;                   // "diffusers pipeline", "single file", ...
  std::vector<std::string> unexpected;  // tensors no module has, "component: name"
  std::vector<std::string> ignored;     // known-harmless extras the converter skipped
};

// Loads all four components from `path`. `config_override`: per component config objects that
// replace detected ones (a single file cannot say how many attention heads it has; SDXL's are
// assumed when the shapes are SDXL's). `variant`: a diffusers weight variant ("fp16").
absl::StatusOr<SdxlModels> LoadSdxlModels(const std::string& path, const SdxlBuildOptions& options,
                                          SdxlLoadReport* report,
                                          const nlohmann::json& config_override = nullptr,
                                          const std::string& variant = "");

}  // namespace likeness::model

#endif  // LIKENESS_WORKER_MODEL_SDXL_SDXL_MODELS_H_
