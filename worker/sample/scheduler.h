// Samplers ("schedulers" in diffusers) for SDXL: Euler, Euler ancestral, DPM++ 2M (with and
// without Karras sigmas) and DDIM, with diffusers' "leading", "trailing" and "linspace" timestep
// spacing, for epsilon and v-prediction models. They reproduce diffusers' EulerDiscreteScheduler,
// EulerAncestralDiscreteScheduler, DPMSolverMultistepScheduler (dpmsolver++, order 2) and
// DDIMScheduler (eta 0) step for step (checked by the `golden` test's "schedulers" case).
//
// A denoising loop, as the generation pipeline runs it:
//   1. scheduler->SetTimesteps(steps);
//   2. latents = noise * scheduler->init_noise_sigma();
//   3. for i in [begin, steps):
//        x_in   = scheduler->ScaleModelInput(latents, i);
//        eps    = unet(x_in, scheduler->timesteps()[i], ...);
//        latents = scheduler->Step(eps, i, latents, step_noise).prev_sample;
// Steps take the step index explicitly (no hidden counter), so img2img can start at any index
// and inpainting can re-noise and repeat a step (RePaint jumps). Multistep solvers keep their
// history of model outputs; Reset() clears it for a new image.
//
// Noise that a step draws (Euler ancestral) is passed in by the caller, so each image of a batch
// can take it from its own seeded generator and a batch of N equals N single runs bit for bit.
//
// Where this differs from diffusers, on purpose:
//   * "trailing" spacing always gives `steps` timesteps. numpy's arange gives one more (a
//     timestep of -1) for some step counts (61, 103, 121, ...), which diffusers passes on.
//   * DPM++ ends at sigma 0 by default (final_sigmas_type "zero", diffusers >= 0.26, and what
//     A1111 does); diffusers 0.24, the golden reference, ended at sigma_min
//     (FinalSigmas::kSigmaMin).
//   * Steps whose latents are float16/bfloat16 compute in float32 and cast back, as diffusers'
//     newer DPM does, so a half-precision pipeline keeps its small sigmas.
#ifndef LIKENESS_WORKER_SAMPLE_SCHEDULER_H_
#define LIKENESS_WORKER_SAMPLE_SCHEDULER_H_

#include <torch/torch.h>

#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "worker/sample/noise_schedule.h"

namespace likeness::sample {

enum class SamplerKind {
  kEuler,           // EulerDiscreteScheduler
  kEulerAncestral,  // EulerAncestralDiscreteScheduler
  kDpmpp2m,         // DPMSolverMultistepScheduler, dpmsolver++, solver_order 2
  kDdim,            // DDIMScheduler, eta 0
};

enum class TimestepSpacing { kLeading, kTrailing, kLinspace };
absl::StatusOr<TimestepSpacing> ParseTimestepSpacing(const std::string& name);  // "leading", ...
std::string TimestepSpacingName(TimestepSpacing spacing);

// DPM++'s last noise level (diffusers' final_sigmas_type): 0, so the last step returns the
// denoised estimate, or the smallest training sigma, as diffusers < 0.26 always did.
enum class FinalSigmas { kZero, kSigmaMin };

// What the project calls each sampler on the command line: "euler", "euler_karras", "euler_a",
// "dpmpp_2m", "dpmpp_2m_karras", "ddim". The "_karras" suffix sets use_karras_sigmas (Euler and
// DPM++ only: diffusers' Euler ancestral and DDIM have no Karras sigmas).
struct SamplerChoice {
  SamplerKind kind = SamplerKind::kEuler;
  bool karras_sigmas = false;
};
absl::StatusOr<SamplerChoice> ParseSamplerName(const std::string& name);
// SamplerName(*ParseSamplerName(n)) == n. A karras flag on a kind without Karras sigmas is dropped.
std::string SamplerName(const SamplerChoice& choice);       // "dpmpp_2m_karras"
std::string SamplerA1111Name(const SamplerChoice& choice);  // "DPM++ 2M Karras", as A1111 writes it
std::vector<std::string> SamplerNames();                    // every accepted name, for --help

struct SchedulerConfig {
  NoiseScheduleConfig schedule;  // betas, prediction type
  TimestepSpacing spacing = TimestepSpacing::kLeading;
  int64_t steps_offset = 1;
  bool use_karras_sigmas = false;
  // DDIM: diffusers' set_alpha_to_one (SDXL's config: false) and clip_sample (false).
  bool set_alpha_to_one = false;
  // DPM++: lower_order_final (true): the last steps fall back to first order below 15 steps.
  bool lower_order_final = true;
  // DPM++: euler_at_final (false): the last step is always first order.
  bool euler_at_final = false;
  // DPM++: the noise level after the last step (final_sigmas_type).
  FinalSigmas final_sigmas = FinalSigmas::kZero;
  // DPM++: lambda_min_clipped (-inf: no clipping): timesteps whose log-SNR/2 is below it are
  // cut from the top of the schedule (diffusers' guard for cosine schedules).
  double lambda_min_clipped = -std::numeric_limits<double>::infinity();
  // Euler with Karras sigmas: sigma_min / sigma_max override the table's ends when set.
  std::optional<double> sigma_min, sigma_max;
  // DDIM: clip_sample clamps the x0 estimate to [-clip_sample_range, clip_sample_range].
  bool clip_sample = false;
  double clip_sample_range = 1.0;

  // diffusers' scheduler_config.json (any of the four classes); unknown keys are ignored,
  // a known key of the wrong type or value is INVALID_ARGUMENT naming it, and so is a feature
  // these samplers do not implement (thresholding, trained_betas, rescale_betas_zero_snr, ...).
  // The keys that name a DPM variant (algorithm_type, solver_order, solver_type) are ignored:
  // the SamplerKind decides them (dpmsolver++, 2, midpoint), as from_config(..., **overrides)
  // does in a pipeline that swaps schedulers. A DPM config without final_sigmas_type gets
  // today's default, kZero.
  static absl::StatusOr<SchedulerConfig> FromJson(const nlohmann::json& json);
  // SDXL base 1.0's scheduler/scheduler_config.json.
  static SchedulerConfig SdxlBase();
};

struct StepOutput {
  torch::Tensor prev_sample;  // the latents for step index + 1
  // The x0 estimate of this step. For DPM++ it is the data prediction the solver integrates,
  // which diffusers computes but does not return.
  torch::Tensor pred_original_sample;
};

class Scheduler {
 public:
  virtual ~Scheduler() = default;

  // Computes timesteps (and sigmas) for `steps` inference steps and clears the history.
  // INVALID_ARGUMENT for steps < 1 or more than the training steps (and for DDIM, a leading
  // schedule whose offset reaches past the last training timestep: 1000 steps, offset 1).
  // num_steps() is `steps`, except for DPM++ with lambda_min_clipped, which can drop some.
  virtual absl::Status SetTimesteps(int64_t steps) = 0;
  int64_t num_steps() const { return timesteps_.defined() ? timesteps_.size(0) : 0; }
  // [steps]: float32 (Euler kinds) or int64 (DPM, DDIM), as diffusers makes them.
  const torch::Tensor& timesteps() const { return timesteps_; }
  // [steps + 1] float32 ending in 0 (Euler kinds; DPM++ with FinalSigmas::kZero) or sigma_min
  // (DPM++ with kSigmaMin); undefined for DDIM.
  const torch::Tensor& sigmas() const { return sigmas_; }
  virtual double init_noise_sigma() const = 0;

  // The UNet's input at step `index` (Euler kinds divide by sqrt(sigma^2 + 1)).
  virtual torch::Tensor ScaleModelInput(const torch::Tensor& sample, int64_t index) const = 0;
  // One step from the noise level of `index` to that of `index + 1`. `noise` (same shape as
  // sample) is required when NeedsStepNoise(). A wrong index, shape or missing noise is a
  // programming error (c10::Error). prev_sample has the sample's dtype.
  virtual StepOutput Step(const torch::Tensor& model_output, int64_t index,
                          const torch::Tensor& sample, const torch::Tensor& noise = {}) = 0;
  virtual bool NeedsStepNoise() const { return false; }
  // Clears multistep history (a new image, or a repeated step in a RePaint jump). DPM++ also
  // falls back to first order by itself when the previous Step was not at index - 1.
  virtual void Reset() {}

  // `original` (clean latents) noised to the level the sample has before step `index`;
  // index == num_steps() returns `original` (fully denoised). img2img and inpainting use it.
  // Euler kinds: original + sigma * noise. DPM++ and DDIM keep their latents in the
  // variance-preserving form sqrt(a) * original + sqrt(1 - a) * noise, with a the
  // alphas_cumprod of the timestep (DDIM) or 1 / (sigma^2 + 1) (DPM++, whose Karras sigmas fall
  // between timesteps).
  virtual torch::Tensor AddNoise(const torch::Tensor& original, const torch::Tensor& noise,
                                 int64_t index) const = 0;
  // RePaint's jump back: a sample at the level after step `index` (before index + 1) re-noised
  // to the level before step `index`, with fresh `noise` (forward diffusion between the two):
  // Euler kinds x + sqrt(s_i^2 - s_{i+1}^2) * noise; DPM++ and DDIM
  // sqrt(a_i / a_next) * x + sqrt(1 - a_i / a_next) * noise with a the alphas_cumprod of the two
  // levels (DDIM's level after step i is the one its Step lands on: timestep t_i - T / steps, or
  // the final alpha).
  virtual torch::Tensor Renoise(const torch::Tensor& sample, const torch::Tensor& noise,
                                int64_t index) const = 0;

  // img2img: the first step index for `strength` in (0, 1] (diffusers' get_timesteps):
  // steps - min(int(steps * strength), steps). Strength <= 0 (or NaN) gives num_steps()
  // (nothing to denoise), strength >= 1 gives 0.
  int64_t BeginIndexForStrength(double strength) const;

  const SchedulerConfig& config() const { return config_; }
  const NoiseSchedule& schedule() const { return schedule_; }

 protected:
  explicit Scheduler(const SchedulerConfig& config);
  SchedulerConfig config_;
  NoiseSchedule schedule_;
  torch::Tensor timesteps_, sigmas_;
};

// A scheduler of `choice.kind` (karras_sigmas overrides config.use_karras_sigmas).
// INVALID_ARGUMENT for Karras sigmas on Euler ancestral or DDIM, or a config FromJson rejects.
absl::StatusOr<std::unique_ptr<Scheduler>> MakeScheduler(const SamplerChoice& choice,
                                                         const SchedulerConfig& config);

}  // namespace likeness::sample

#endif  // LIKENESS_WORKER_SAMPLE_SCHEDULER_H_
