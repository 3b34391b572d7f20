// The samplers against diffusers: the golden checker for the "schedulers" sidecar (it has no
// "class", so the harness keys it by its "name"). Every case the sidecar lists is rebuilt from
// its stored config through SchedulerConfig::FromJson and run through the stored procedure
// (README section 4); the DDPM part checks NoiseSchedule.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/model/golden_harness.h"
#include "worker/sample/noise_schedule.h"
#include "worker/sample/scheduler.h"

namespace likeness::sample {
namespace {

using ::likeness::testing::GoldenCase;

constexpr char kSchedulersKey[] = "schedulers";
constexpr char kOutputPrefix[] = "__output__.";
constexpr char kDdpmCase[] = "ddpm";

// README section 4's suggested bounds for an independent float32 implementation: trajectories
// max|diff| <= 1e-5 * max|ref| (float64 vs float32 in the reference itself is 2e-7 to 5e-7),
// sigmas rtol 1e-6, timesteps exact.
constexpr double kTrajectoryTolerance = 1e-5;
constexpr double kSigmaRelTolerance = 1e-6;
// DDPM add_noise / get_velocity are two float32 multiply-adds: allow a few ulps only.
constexpr double kDdpmTolerance = 1e-6;
// The reference's model stand-in: model_output = kModelOutputScale * x_in + offset.
constexpr double kModelOutputScale = 0.1;
// diffusers 0.26 added final_sigmas_type (default "zero"); a reference older than that ended
// DPM++ at sigma_min, which its configs cannot say.
constexpr int kFinalSigmasTypeMinorVersion = 26;

// max|a - e| / max|e|, the figure the tolerances bound.
double RelativeError(const torch::Tensor& actual, const torch::Tensor& expected) {
  const torch::Tensor a = actual.detach().to(torch::kFloat64).cpu();
  const torch::Tensor e = expected.detach().to(torch::kFloat64).cpu();
  const double max_ref = e.abs().max().item<double>();
  const double max_diff = (a - e).abs().max().item<double>();
  return max_ref > 0 ? max_diff / max_ref : max_diff;
}

// Expects the bound and returns the figure, so a case can report its worst.
double ExpectClose(const torch::Tensor& actual, const torch::Tensor& expected,
                   const std::string& what, double tolerance) {
  EXPECT_TRUE(actual.defined()) << what << ": no result";
  if (!actual.defined()) return 0;
  EXPECT_EQ(actual.sizes(), expected.sizes()) << what << ": shape differs";
  if (actual.sizes() != expected.sizes()) return 0;
  const double error = RelativeError(actual, expected);
  EXPECT_LE(error, tolerance) << what << ": max|diff|/max|ref| " << error << " > " << tolerance;
  return error;
}

absl::StatusOr<SamplerKind> KindOfClass(std::string name) {
  if (absl::StartsWith(name, "diffusers.")) name = name.substr(sizeof("diffusers.") - 1);
  if (name == "EulerDiscreteScheduler") return SamplerKind::kEuler;
  if (name == "EulerAncestralDiscreteScheduler") return SamplerKind::kEulerAncestral;
  if (name == "DPMSolverMultistepScheduler") return SamplerKind::kDpmpp2m;
  if (name == "DDIMScheduler") return SamplerKind::kDdim;
  return absl::NotFoundError("no sampler implements " + name);
}

// The reference's diffusers minor version (0.x), or -1 when the sidecar does not say.
int ReferenceDiffusersMinor(const nlohmann::json& sidecar, const nlohmann::json& case_config) {
  std::string version = case_config.value("_diffusers_version", "");
  if (const auto versions = sidecar.find("versions");
      versions != sidecar.end() && versions->is_object()) {
    version = versions->value("diffusers", version);
  }
  const std::vector<std::string> parts = absl::StrSplit(version, '.');
  int major = 0, minor = 0;
  if (parts.size() < 2 || !absl::SimpleAtoi(parts[0], &major) ||
      !absl::SimpleAtoi(parts[1], &minor))
    return -1;
  return major == 0 ? minor : 1000;
}

// Worst figures of one case, for the summary line; -1 where the reference has no such output.
struct CaseErrors {
  double sigmas = -1, scaled_model_input = 0, model_output = 0, pred_original_sample = -1,
         latents = 0;
};

std::string Figure(double error) {
  if (error < 0) return "n/a";
  char text[32];
  std::snprintf(text, sizeof(text), "%.2e", error);
  return text;
}

void CheckCase(const GoldenCase& c, const std::string& name, const nlohmann::json& spec,
               std::set<std::string>& checked) {
  const std::string prefix = name + ".";
  const auto output = [&](const std::string& key) {
    checked.insert(kOutputPrefix + prefix + key);
    return c.Output(prefix + key);
  };
  const nlohmann::json config_json = spec.value("config", nlohmann::json::object());
  absl::StatusOr<SamplerKind> kind =
      KindOfClass(spec.value("class", config_json.value("_class_name", std::string())));
  ASSERT_TRUE(kind.ok()) << name << ": " << kind.status();
  if (*kind == SamplerKind::kDpmpp2m) {
    // DPM++ 2M is dpmsolver++ of order 2 with the midpoint rule; the config must agree.
    ASSERT_EQ(config_json.value("algorithm_type", "dpmsolver++"), "dpmsolver++") << name;
    ASSERT_EQ(config_json.value("solver_order", 2), 2) << name;
    ASSERT_EQ(config_json.value("solver_type", "midpoint"), "midpoint") << name;
  }
  absl::StatusOr<SchedulerConfig> config = SchedulerConfig::FromJson(config_json);
  ASSERT_TRUE(config.ok()) << name << ": " << config.status();
  const int minor = ReferenceDiffusersMinor(c.sidecar, config_json);
  if (!config_json.contains("final_sigmas_type") && minor >= 0 &&
      minor < kFinalSigmasTypeMinorVersion) {
    config->final_sigmas = FinalSigmas::kSigmaMin;
  }
  absl::StatusOr<std::unique_ptr<Scheduler>> scheduler =
      MakeScheduler(SamplerChoice{*kind, config->use_karras_sigmas}, *config);
  ASSERT_TRUE(scheduler.ok()) << name << ": " << scheduler.status();
  Scheduler& s = **scheduler;
  ASSERT_TRUE(spec.contains("num_inference_steps")) << name << ": no num_inference_steps";
  const int64_t steps = spec.at("num_inference_steps").get<int64_t>();
  const absl::Status set = s.SetTimesteps(steps);
  ASSERT_TRUE(set.ok()) << name << ": " << set;

  const torch::Tensor expected_timesteps = output("timesteps");
  EXPECT_EQ(s.timesteps().scalar_type(), expected_timesteps.scalar_type())
      << name << ": timesteps dtype";
  ASSERT_EQ(s.timesteps().sizes(), expected_timesteps.sizes()) << name << ": timesteps";
  EXPECT_TRUE(torch::equal(s.timesteps().to(expected_timesteps.scalar_type()), expected_timesteps))
      << name << ": timesteps differ\n  ours " << s.timesteps() << "\n  ref  "
      << expected_timesteps;

  CaseErrors worst;
  if (c.file->Contains(kOutputPrefix + prefix + "sigmas")) {
    const torch::Tensor expected = output("sigmas");
    ASSERT_TRUE(s.sigmas().defined()) << name << ": no sigmas";
    ASSERT_EQ(s.sigmas().sizes(), expected.sizes()) << name << ": sigmas";
    const torch::Tensor e = expected.to(torch::kFloat64);
    const torch::Tensor rel = (s.sigmas().to(torch::kFloat64) - e).abs() / e.abs().clamp_min(1e-30);
    const torch::Tensor both_zero = (e == 0) & (s.sigmas() == 0);
    worst.sigmas = rel.masked_fill(both_zero, 0).max().item<double>();
    EXPECT_LE(worst.sigmas, kSigmaRelTolerance)
        << name << ": sigmas\n  ours " << s.sigmas() << "\n  ref  " << expected;
  } else {
    EXPECT_FALSE(s.sigmas().defined()) << name << ": the reference has no sigmas, we do";
  }
  const double expected_init = output("init_noise_sigma").item<double>();
  EXPECT_NEAR(s.init_noise_sigma(), expected_init, kSigmaRelTolerance * std::abs(expected_init))
      << name << ": init_noise_sigma";

  const torch::Tensor offset = c.Input("model_output_offset");
  const torch::Tensor latents_ref = output("latents");
  const torch::Tensor scaled_ref = output("scaled_model_input");
  const torch::Tensor model_output_ref = output("model_output");
  const bool has_pred = c.file->Contains(kOutputPrefix + prefix + "pred_original_sample");
  const torch::Tensor pred_ref = has_pred ? output("pred_original_sample") : torch::Tensor();
  const std::string noise_key = "__input__." + prefix + "step_noise";
  const torch::Tensor step_noise =
      c.file->Contains(noise_key) ? c.Input(prefix + "step_noise") : torch::Tensor();
  ASSERT_TRUE(!s.NeedsStepNoise() || step_noise.defined()) << name << ": no " << noise_key;
  ASSERT_EQ(latents_ref.size(0), s.num_steps() + 1) << name << ": latents per step";

  torch::Tensor latents = c.Input("initial_noise") * s.init_noise_sigma();
  worst.latents = ExpectClose(latents, latents_ref[0], name + ": latents[0]", kTrajectoryTolerance);
  for (int64_t i = 0; i < s.num_steps(); ++i) {
    const std::string at = "[" + std::to_string(i) + "]";
    const torch::Tensor x_in = s.ScaleModelInput(latents, i);
    worst.scaled_model_input = std::max(
        worst.scaled_model_input,
        ExpectClose(x_in, scaled_ref[i], name + ": scaled_model_input" + at, kTrajectoryTolerance));
    const torch::Tensor model_output = x_in * kModelOutputScale + offset;
    worst.model_output = std::max(worst.model_output,
                                  ExpectClose(model_output, model_output_ref[i],
                                              name + ": model_output" + at, kTrajectoryTolerance));
    const StepOutput out =
        s.Step(model_output, i, latents, step_noise.defined() ? step_noise[i] : torch::Tensor());
    if (has_pred) {
      worst.pred_original_sample =
          std::max(worst.pred_original_sample,
                   ExpectClose(out.pred_original_sample, pred_ref[i],
                               name + ": pred_original_sample" + at, kTrajectoryTolerance));
    }
    latents = out.prev_sample;
    worst.latents =
        std::max(worst.latents, ExpectClose(latents, latents_ref[i + 1],
                                            name + ": latents[" + std::to_string(i + 1) + "]",
                                            kTrajectoryTolerance));
  }
  std::printf(
      "[ schedulers ] %-30s %s, %lld steps: timesteps %s; max|diff|/max|ref| sigmas %s, "
      "scaled_model_input %s, model_output %s, pred_original_sample %s, latents %s\n",
      name.c_str(), SamplerName(SamplerChoice{*kind, config->use_karras_sigmas}).c_str(),
      static_cast<long long>(steps),
      torch::equal(s.timesteps().to(expected_timesteps.scalar_type()), expected_timesteps)
          ? "exact"
          : "DIFFER",
      Figure(worst.sigmas).c_str(), Figure(worst.scaled_model_input).c_str(),
      Figure(worst.model_output).c_str(), Figure(worst.pred_original_sample).c_str(),
      Figure(worst.latents).c_str());
}

void CheckDdpm(const GoldenCase& c, const nlohmann::json& spec, std::set<std::string>& checked) {
  const std::string prefix = std::string(kDdpmCase) + ".";
  const auto output = [&](const std::string& key) {
    checked.insert(kOutputPrefix + prefix + key);
    return c.Output(prefix + key);
  };
  absl::StatusOr<SchedulerConfig> config =
      SchedulerConfig::FromJson(spec.value("config", nlohmann::json::object()));
  ASSERT_TRUE(config.ok()) << "ddpm: " << config.status();
  const NoiseSchedule schedule(config->schedule);
  const double betas =
      ExpectClose(schedule.betas(), output("betas"), "ddpm: betas", kDdpmTolerance);
  const double acp = ExpectClose(schedule.alphas_cumprod(), output("alphas_cumprod"),
                                 "ddpm: alphas_cumprod", kDdpmTolerance);
  const torch::Tensor x0 = c.Input(prefix + "original_samples");
  const torch::Tensor noise = c.Input(prefix + "noise");
  const torch::Tensor timesteps = c.Input(prefix + "timesteps");
  const double noisy = ExpectClose(schedule.AddNoise(x0, noise, timesteps), output("noisy_samples"),
                                   "ddpm: noisy_samples", kDdpmTolerance);
  const double velocity = ExpectClose(schedule.Velocity(x0, noise, timesteps), output("velocity"),
                                      "ddpm: velocity", kDdpmTolerance);
  std::printf(
      "[ schedulers ] %-30s max|diff|/max|ref| betas %.2e, alphas_cumprod %.2e, "
      "noisy_samples %.2e, velocity %.2e\n",
      kDdpmCase, betas, acp, noisy, velocity);
}

void CheckSchedulers(const GoldenCase& c) {
  const auto cases = c.sidecar.find("cases");
  ASSERT_TRUE(cases != c.sidecar.end() && cases->is_object() && !cases->empty())
      << c.name << ": the sidecar lists no scheduler cases";
  std::set<std::string> checked;
  for (const auto& [name, spec] : cases->items()) {
    SCOPED_TRACE(name);
    CheckCase(c, name, spec, checked);
  }
  if (const auto ddpm = c.sidecar.find(kDdpmCase); ddpm != c.sidecar.end()) {
    CheckDdpm(c, *ddpm, checked);
  }
  // Every reference output is compared by some check above: a new kind of output in another
  // data set fails here instead of passing unchecked.
  for (const std::string& key : c.file->Names()) {
    if (absl::StartsWith(key, kOutputPrefix)) {
      EXPECT_TRUE(checked.count(key)) << c.name << ": " << key << " is not checked";
    }
  }
}

LIKENESS_REGISTER_GOLDEN(kSchedulersKey, CheckSchedulers);

}  // namespace
}  // namespace likeness::sample
