#include "worker/generate/generate_settings.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace likeness::generate {
namespace {

template <typename T>
absl::Status Range(const char* field, T value, T low, T high) {
  if (!(value >= low && value <= high)) {
    return absl::InvalidArgumentError(
        absl::StrCat("generate: ", field, ": ", value, " is outside [", low, ", ", high, "]"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<GenerationSettings> ResolveGenerateConfig(const v1::GenerateConfig& config) {
  GenerationSettings s;
  if (config.prompts_size() == 0) {
    return absl::InvalidArgumentError("generate: prompts: at least one prompt is required");
  }
  s.prompts.assign(config.prompts().begin(), config.prompts().end());
  s.negative_prompt = config.negative_prompt();
  s.encode_empty_negative = config.encode_empty_negative();
  absl::StatusOr<sample::SamplerChoice> sampler =
      sample::ParseSamplerName(config.sampler().empty() ? kDefaultSampler : config.sampler());
  if (!sampler.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("generate: sampler: ", sampler.status().message()));
  }
  s.sampler = *sampler;
  s.steps = config.steps() == 0 ? kDefaultSteps : config.steps();
  if (auto st = Range("steps", s.steps, 1, kMaxSteps); !st.ok()) return st;
  s.guidance_scale = config.has_guidance_scale() ? config.guidance_scale() : kDefaultGuidanceScale;
  if (auto st = Range("guidance_scale", s.guidance_scale, 0.0, 100.0); !st.ok()) return st;
  s.guidance_rescale = config.guidance_rescale();
  if (auto st = Range("guidance_rescale", s.guidance_rescale, 0.0, 1.0); !st.ok()) return st;
  s.seed = config.seed();
  s.images_per_prompt = config.images_per_prompt() == 0 ? 1 : config.images_per_prompt();
  if (auto st = Range("images_per_prompt", s.images_per_prompt, 1, kMaxImagesPerPrompt); !st.ok())
    return st;
  s.batch_size = static_cast<int>(config.batch_size());
  if (auto st = Range("batch_size", s.batch_size, 0, kMaxImagesPerPrompt); !st.ok()) return st;
  s.width = config.width();
  s.height = config.height();
  if (auto st = Range("width", s.width, 0, kMaxSidePx); !st.ok()) return st;
  if (auto st = Range("height", s.height, 0, kMaxSidePx); !st.ok()) return st;
  if ((s.width == 0) != (s.height == 0)) {
    return absl::InvalidArgumentError("generate: width and height: give both or neither");
  }
  s.init_image = config.init_image();
  s.mask = config.mask();
  if (!s.mask.empty() && s.init_image.empty()) {
    return absl::InvalidArgumentError("generate: mask: inpainting needs init_image too");
  }
  const double default_strength =
      s.mask.empty() ? kDefaultImg2ImgStrength : kDefaultInpaintStrength;
  s.strength = config.has_strength() ? config.strength() : (s.init_image.empty() ? 1.0 : default_strength);
  if (!(s.strength > 0.0 && s.strength <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("generate: strength: ", s.strength, " is outside (0, 1]"));
  }
  if (config.has_strength() && s.init_image.empty() && s.strength != 1.0) {
    return absl::InvalidArgumentError("generate: strength: only applies with init_image");
  }
  s.mask_options.dilate_px = config.mask_dilate();
  s.mask_options.blur_px = config.mask_blur() == 0 && !s.mask.empty() ? kDefaultMaskBlurPx
                                                                      : config.mask_blur();
  if (config.mask_blur() < 0) s.mask_options.blur_px = 0;  // -1: explicitly no blur
  if (auto st = Range("mask_dilate", s.mask_options.dilate_px, 0, kMaxMaskRadiusPx); !st.ok())
    return st;
  if (auto st = Range("mask_blur", config.mask_blur(), -1, kMaxMaskRadiusPx); !st.ok()) return st;
  s.paste_back = config.paste_back();
  if (s.paste_back && s.mask.empty()) {
    return absl::InvalidArgumentError("generate: paste_back: needs a mask");
  }
  s.repaint_jump_samples = config.repaint_jump_samples() == 0 ? 1 : config.repaint_jump_samples();
  if (auto st = Range("repaint_jump_samples", s.repaint_jump_samples, 1, kMaxRepaintJumpSamples);
      !st.ok())
    return st;
  s.repaint_jump_length = config.repaint_jump_length() == 0 ? kDefaultRepaintJumpLength
                                                            : config.repaint_jump_length();
  if (auto st = Range("repaint_jump_length", s.repaint_jump_length, 1, kMaxSteps); !st.ok())
    return st;
  if (s.repaint_jump_samples > 1 && s.mask.empty()) {
    return absl::InvalidArgumentError("generate: repaint_jump_samples: RePaint needs a mask");
  }
  if (!config.prediction_type().empty()) {
    absl::StatusOr<sample::PredictionType> type =
        sample::ParsePredictionType(config.prediction_type());
    if (!type.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("generate: prediction_type: ", type.status().message()));
    }
    s.prediction_type = *type;
  }
  s.vae_tiling = config.vae_tiling();
  return s;
}

}  // namespace likeness::generate
