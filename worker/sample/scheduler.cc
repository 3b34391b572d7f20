// The Scheduler base, sampler names and MakeScheduler.
#include "worker/sample/scheduler.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "worker/sample/scheduler_internal.h"

namespace likeness::sample {
namespace {

constexpr char kKarrasSuffix[] = "_karras";
constexpr char kA1111KarrasSuffix[] = " Karras";

struct SamplerNameEntry {
  SamplerKind kind;
  const char* name;        // the project's, for --sampler
  const char* a1111_name;  // A1111's "Sampler:" value, without " Karras"
  bool karras_capable;     // diffusers' class has use_karras_sigmas
};

// The order --help lists them in.
constexpr SamplerNameEntry kSamplerNames[] = {
    {SamplerKind::kEuler, "euler", "Euler", true},
    {SamplerKind::kEulerAncestral, "euler_a", "Euler a", false},
    {SamplerKind::kDpmpp2m, "dpmpp_2m", "DPM++ 2M", true},
    {SamplerKind::kDdim, "ddim", "DDIM", false},
};

const SamplerNameEntry& EntryFor(SamplerKind kind) {
  for (const SamplerNameEntry& entry : kSamplerNames) {
    if (entry.kind == kind) return entry;
  }
  return kSamplerNames[0];
}

}  // namespace

namespace internal {

absl::Status CheckStepCount(const SchedulerConfig& config, int64_t steps) {
  if (steps < 1 || steps > config.schedule.num_train_timesteps) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sampling steps must be in [1, ", config.schedule.num_train_timesteps, "], got ", steps));
  }
  return absl::OkStatus();
}

torch::Tensor ToStepPrecision(const torch::Tensor& t) {
  if (t.scalar_type() == torch::kHalf || t.scalar_type() == torch::kBFloat16)
    return t.to(torch::kFloat32);
  return t;
}

void CheckIndex(const Scheduler& scheduler, int64_t index, int64_t limit, const char* what) {
  TORCH_CHECK(scheduler.num_steps() > 0, what, ": call SetTimesteps first");
  TORCH_CHECK(index >= 0 && index < limit, what, ": step index ", index, " is outside [0, ", limit,
              ") for ", scheduler.num_steps(), " steps");
}

void CheckStepShapes(const torch::Tensor& model_output, const torch::Tensor& sample,
                     const torch::Tensor& noise) {
  TORCH_CHECK(model_output.defined() && sample.defined(),
              "Step: model_output and sample are required");
  TORCH_CHECK(model_output.sizes() == sample.sizes(), "Step: model_output ", model_output.sizes(),
              " and sample ", sample.sizes(), " differ in shape");
  TORCH_CHECK(!noise.defined() || noise.sizes() == sample.sizes(), "Step: noise ", noise.sizes(),
              " and sample ", sample.sizes(), " differ in shape");
}

}  // namespace internal

absl::StatusOr<SamplerChoice> ParseSamplerName(const std::string& name) {
  for (const SamplerNameEntry& entry : kSamplerNames) {
    if (name == entry.name) return SamplerChoice{entry.kind, false};
    if (entry.karras_capable && name == absl::StrCat(entry.name, kKarrasSuffix)) {
      return SamplerChoice{entry.kind, true};
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown sampler '", name, "' (want one of: ", absl::StrJoin(SamplerNames(), ", "), ")"));
}

std::string SamplerName(const SamplerChoice& choice) {
  const SamplerNameEntry& entry = EntryFor(choice.kind);
  return absl::StrCat(entry.name,
                      choice.karras_sigmas && entry.karras_capable ? kKarrasSuffix : "");
}

std::string SamplerA1111Name(const SamplerChoice& choice) {
  const SamplerNameEntry& entry = EntryFor(choice.kind);
  return absl::StrCat(entry.a1111_name,
                      choice.karras_sigmas && entry.karras_capable ? kA1111KarrasSuffix : "");
}

std::vector<std::string> SamplerNames() {
  std::vector<std::string> names;
  for (const SamplerNameEntry& entry : kSamplerNames) {
    names.push_back(entry.name);
    if (entry.karras_capable) names.push_back(absl::StrCat(entry.name, kKarrasSuffix));
  }
  return names;
}

Scheduler::Scheduler(const SchedulerConfig& config) : config_(config), schedule_(config.schedule) {}

int64_t Scheduler::BeginIndexForStrength(double strength) const {
  const int64_t steps = num_steps();
  if (!(strength > 0.0)) return steps;  // also NaN: nothing to denoise
  if (strength >= 1.0) return 0;
  // Python's int(): truncation of the float64 product, as diffusers' get_timesteps.
  const int64_t init_steps =
      std::min(static_cast<int64_t>(static_cast<double>(steps) * strength), steps);
  return std::max<int64_t>(steps - init_steps, 0);
}

absl::StatusOr<std::unique_ptr<Scheduler>> MakeScheduler(const SamplerChoice& choice,
                                                         const SchedulerConfig& config) {
  const SamplerNameEntry& entry = EntryFor(choice.kind);
  if (choice.karras_sigmas && !entry.karras_capable) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sampler '", entry.name, "' has no Karras sigmas (diffusers' ",
        choice.kind == SamplerKind::kDdim ? "DDIMScheduler" : "EulerAncestralDiscreteScheduler",
        " has no use_karras_sigmas)"));
  }
  LIKENESS_RETURN_IF_ERROR(internal::ValidateSchedulerConfig(config));
  SchedulerConfig effective = config;
  effective.use_karras_sigmas = choice.karras_sigmas;
  switch (choice.kind) {
    case SamplerKind::kEuler:
      return internal::NewEulerScheduler(effective);
    case SamplerKind::kEulerAncestral:
      return internal::NewEulerAncestralScheduler(effective);
    case SamplerKind::kDpmpp2m:
      return internal::NewDpmSolverScheduler(effective);
    case SamplerKind::kDdim:
      return internal::NewDdimScheduler(effective);
  }
  return absl::InvalidArgumentError("unknown sampler kind");
}

}  // namespace likeness::sample
