// A generate config (protos/likeness.proto GenerateConfig, from YAML, flags or the coordinator)
// checked and completed with defaults: what the pipeline runs.
#ifndef LIKENESS_WORKER_GENERATE_GENERATE_SETTINGS_H_
#define LIKENESS_WORKER_GENERATE_GENERATE_SETTINGS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "protos/likeness.pb.h"
#include "worker/generate/inpaint_mask.h"
#include "worker/sample/noise_schedule.h"
#include "worker/sample/scheduler.h"

namespace likeness::generate {

// Defaults for unset fields. Steps and guidance follow diffusers' SDXL pipeline; the sampler is
// SDXL base's own scheduler (EulerDiscrete); mask blur is A1111's default.
inline constexpr int kDefaultSteps = 30;
inline constexpr double kDefaultGuidanceScale = 5.0;
inline constexpr char kDefaultSampler[] = "euler";
inline constexpr double kDefaultImg2ImgStrength = 0.75;
inline constexpr double kDefaultInpaintStrength = 1.0;
inline constexpr int kDefaultMaskBlurPx = 4;
inline constexpr int kDefaultRepaintJumpLength = 10;
// Bounds that catch typos before they cost an hour.
inline constexpr int kMaxSteps = 1000;
inline constexpr int kMaxImagesPerPrompt = 1024;
inline constexpr int kMaxSidePx = 8192;
inline constexpr int kMaxRepaintJumpSamples = 20;

struct GenerationSettings {
  std::vector<std::string> prompts;
  std::string negative_prompt;
  bool encode_empty_negative = false;
  sample::SamplerChoice sampler;
  int steps = kDefaultSteps;
  double guidance_scale = kDefaultGuidanceScale;
  double guidance_rescale = 0.0;
  uint64_t seed = 0;
  int images_per_prompt = 1;
  int batch_size = 0;  // 0: all images of a prompt in one UNet batch
  int width = 0;       // 0: the init image's, else the model's native size
  int height = 0;
  std::string init_image;
  double strength = 1.0;
  std::string mask;
  MaskOptions mask_options;
  bool paste_back = false;
  int repaint_jump_length = 0;
  int repaint_jump_samples = 1;
  std::optional<sample::PredictionType> prediction_type;  // unset: the model's
  bool vae_tiling = false;
};

// Checks every field and fills defaults. INVALID_ARGUMENT naming the field and value
// ("generate: steps: 0 is outside [1, 1000]").
absl::StatusOr<GenerationSettings> ResolveGenerateConfig(const v1::GenerateConfig& config);

}  // namespace likeness::generate

#endif  // LIKENESS_WORKER_GENERATE_GENERATE_SETTINGS_H_
