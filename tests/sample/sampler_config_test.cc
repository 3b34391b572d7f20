// Sampler names, SchedulerConfig::FromJson, MakeScheduler's checks and the timestep tables.
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "worker/sample/noise_schedule.h"
#include "worker/sample/schedule_math.h"
#include "worker/sample/scheduler.h"

namespace likeness::sample {
namespace {

// SDXL base 1.0's scheduler/scheduler_config.json, as the Hub has it.
constexpr char kSdxlSchedulerConfigJson[] = R"({
  "_class_name": "EulerDiscreteScheduler", "_diffusers_version": "0.19.0.dev0",
  "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
  "clip_sample": false, "interpolation_type": "linear", "num_train_timesteps": 1000,
  "prediction_type": "epsilon", "sample_max_value": 1.0, "set_alpha_to_one": false,
  "skip_prk_steps": true, "steps_offset": 1, "timestep_spacing": "leading",
  "trained_betas": null, "use_karras_sigmas": false})";

std::unique_ptr<Scheduler> Make(SamplerKind kind, bool karras, const SchedulerConfig& config,
                                int64_t steps) {
  absl::StatusOr<std::unique_ptr<Scheduler>> scheduler = MakeScheduler({kind, karras}, config);
  EXPECT_TRUE(scheduler.ok()) << scheduler.status();
  if (!scheduler.ok()) return nullptr;
  const absl::Status set = (*scheduler)->SetTimesteps(steps);
  EXPECT_TRUE(set.ok()) << set;
  return std::move(*scheduler);
}

SchedulerConfig WithSpacing(TimestepSpacing spacing) {
  SchedulerConfig config = SchedulerConfig::SdxlBase();
  config.spacing = spacing;
  return config;
}

std::vector<double> Values(const torch::Tensor& t) {
  const torch::Tensor d = t.to(torch::kFloat64).contiguous();
  return std::vector<double>(d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
}

TEST(SamplerNameTest, EveryNameRoundTrips) {
  const std::vector<std::string> names = SamplerNames();
  EXPECT_EQ(names, (std::vector<std::string>{"euler", "euler_karras", "euler_a", "dpmpp_2m",
                                             "dpmpp_2m_karras", "ddim"}));
  for (const std::string& name : names) {
    absl::StatusOr<SamplerChoice> choice = ParseSamplerName(name);
    ASSERT_TRUE(choice.ok()) << name << ": " << choice.status();
    EXPECT_EQ(SamplerName(*choice), name);
    EXPECT_EQ(choice->karras_sigmas, absl::EndsWith(name, "_karras")) << name;
  }
}

TEST(SamplerNameTest, A1111Names) {
  EXPECT_EQ(SamplerA1111Name({SamplerKind::kEuler, false}), "Euler");
  EXPECT_EQ(SamplerA1111Name({SamplerKind::kEulerAncestral, false}), "Euler a");
  EXPECT_EQ(SamplerA1111Name({SamplerKind::kDpmpp2m, false}), "DPM++ 2M");
  EXPECT_EQ(SamplerA1111Name({SamplerKind::kDpmpp2m, true}), "DPM++ 2M Karras");
  EXPECT_EQ(SamplerA1111Name({SamplerKind::kDdim, false}), "DDIM");
  // A karras flag on a kind without Karras sigmas is not part of its name.
  EXPECT_EQ(SamplerName({SamplerKind::kDdim, true}), "ddim");
  EXPECT_EQ(SamplerA1111Name({SamplerKind::kEulerAncestral, true}), "Euler a");
}

TEST(SamplerNameTest, UnknownNamesListTheAcceptedOnes) {
  for (const char* name :
       {"", "Euler", "dpmpp_2m_sde", "euler_a_karras", "ddim_karras", "dpmpp_2m "}) {
    absl::StatusOr<SamplerChoice> choice = ParseSamplerName(name);
    ASSERT_FALSE(choice.ok()) << name;
    EXPECT_EQ(choice.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StrContains(choice.status().message(), "dpmpp_2m_karras")) << choice.status();
  }
}

TEST(SamplerNameTest, SpacingAndPredictionNamesRoundTrip) {
  for (TimestepSpacing spacing :
       {TimestepSpacing::kLeading, TimestepSpacing::kTrailing, TimestepSpacing::kLinspace}) {
    EXPECT_EQ(*ParseTimestepSpacing(TimestepSpacingName(spacing)), spacing);
  }
  for (PredictionType type : {PredictionType::kEpsilon, PredictionType::kVPrediction}) {
    EXPECT_EQ(*ParsePredictionType(PredictionTypeName(type)), type);
  }
  EXPECT_FALSE(ParseTimestepSpacing("middle").ok());
  EXPECT_FALSE(ParsePredictionType("sample").ok());
}

TEST(SchedulerConfigTest, SdxlJsonEqualsSdxlBase) {
  absl::StatusOr<SchedulerConfig> config =
      SchedulerConfig::FromJson(nlohmann::json::parse(kSdxlSchedulerConfigJson));
  ASSERT_TRUE(config.ok()) << config.status();
  const SchedulerConfig sdxl = SchedulerConfig::SdxlBase();
  EXPECT_EQ(config->schedule.num_train_timesteps, sdxl.schedule.num_train_timesteps);
  EXPECT_DOUBLE_EQ(config->schedule.beta_start, sdxl.schedule.beta_start);
  EXPECT_DOUBLE_EQ(config->schedule.beta_end, sdxl.schedule.beta_end);
  EXPECT_EQ(config->schedule.beta_schedule, sdxl.schedule.beta_schedule);
  EXPECT_EQ(config->schedule.prediction_type, sdxl.schedule.prediction_type);
  EXPECT_EQ(config->spacing, sdxl.spacing);
  EXPECT_EQ(config->steps_offset, sdxl.steps_offset);
  EXPECT_EQ(config->use_karras_sigmas, sdxl.use_karras_sigmas);
  EXPECT_EQ(config->set_alpha_to_one, sdxl.set_alpha_to_one);
  EXPECT_EQ(config->final_sigmas, FinalSigmas::kZero);
  EXPECT_TRUE(config->lower_order_final);
  EXPECT_FALSE(config->clip_sample);
}

TEST(SchedulerConfigTest, ReadsEveryKnob) {
  absl::StatusOr<SchedulerConfig> config = SchedulerConfig::FromJson(nlohmann::json::parse(R"({
    "_class_name": "DPMSolverMultistepScheduler", "num_train_timesteps": 500,
    "beta_start": 0.0001, "beta_end": 0.02, "beta_schedule": "linear",
    "prediction_type": "v_prediction", "timestep_spacing": "trailing", "steps_offset": 0,
    "use_karras_sigmas": true, "set_alpha_to_one": true, "lower_order_final": false,
    "euler_at_final": true, "final_sigmas_type": "sigma_min", "lambda_min_clipped": -5.1,
    "sigma_min": 0.03, "sigma_max": null, "clip_sample": true, "clip_sample_range": 2.0,
    "algorithm_type": "sde-dpmsolver++", "solver_order": 3, "solver_type": "heun",
    "variance_type": "fixed_small", "thresholding": false, "some_future_key": [1, 2]})"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->schedule.num_train_timesteps, 500);
  EXPECT_DOUBLE_EQ(config->schedule.beta_start, 0.0001);
  EXPECT_DOUBLE_EQ(config->schedule.beta_end, 0.02);
  EXPECT_EQ(config->schedule.beta_schedule, BetaSchedule::kLinear);
  EXPECT_EQ(config->schedule.prediction_type, PredictionType::kVPrediction);
  EXPECT_EQ(config->spacing, TimestepSpacing::kTrailing);
  EXPECT_EQ(config->steps_offset, 0);
  EXPECT_TRUE(config->use_karras_sigmas);
  EXPECT_TRUE(config->set_alpha_to_one);
  EXPECT_FALSE(config->lower_order_final);
  EXPECT_TRUE(config->euler_at_final);
  EXPECT_EQ(config->final_sigmas, FinalSigmas::kSigmaMin);
  EXPECT_DOUBLE_EQ(config->lambda_min_clipped, -5.1);
  EXPECT_DOUBLE_EQ(config->sigma_min.value_or(0), 0.03);
  EXPECT_FALSE(config->sigma_max.has_value());
  EXPECT_TRUE(config->clip_sample);
  EXPECT_DOUBLE_EQ(config->clip_sample_range, 2.0);
}

TEST(SchedulerConfigTest, NonFiniteLambdaAsTheStrictJsonString) {
  absl::StatusOr<SchedulerConfig> config =
      SchedulerConfig::FromJson(nlohmann::json::parse(R"({"lambda_min_clipped": "-Infinity"})"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(std::isinf(config->lambda_min_clipped) && config->lambda_min_clipped < 0);
}

TEST(SchedulerConfigTest, ErrorsNameTheField) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"beta_schedule": "squaredcos_cap_v2"})", "'beta_schedule'"},
      {R"({"beta_schedule": 3})", "'beta_schedule'"},
      {R"({"prediction_type": "sample"})", "'prediction_type'"},
      {R"({"timestep_spacing": "middle"})", "'timestep_spacing'"},
      {R"({"steps_offset": "1"})", "'steps_offset'"},
      {R"({"steps_offset": 1.5})", "'steps_offset'"},
      {R"({"steps_offset": -1})", "'steps_offset'"},
      {R"({"num_train_timesteps": 1})", "'num_train_timesteps'"},
      {R"({"beta_start": "small"})", "'beta_start'"},
      {R"({"beta_end": 1.5})", "'beta_end'"},
      {R"({"use_karras_sigmas": "yes"})", "'use_karras_sigmas'"},
      {R"({"set_alpha_to_one": 1})", "'set_alpha_to_one'"},
      {R"({"final_sigmas_type": "one"})", "'final_sigmas_type'"},
      {R"({"lambda_min_clipped": "low"})", "'lambda_min_clipped'"},
      {R"({"sigma_min": -1})", "'sigma_min'"},
      {R"({"clip_sample_range": 0})", "'clip_sample_range'"},
      {R"({"trained_betas": [0.1, 0.2]})", "'trained_betas'"},
      {R"({"thresholding": true})", "'thresholding'"},
      {R"({"rescale_betas_zero_snr": true})", "'rescale_betas_zero_snr'"},
      {R"({"use_lu_lambdas": true})", "'use_lu_lambdas'"},
      {R"({"interpolation_type": "log_linear"})", "'interpolation_type'"},
      {R"({"timestep_type": "continuous"})", "'timestep_type'"},
      {R"({"variance_type": "learned_range"})", "'variance_type'"},
      {R"({"solver_order": "two"})", "'solver_order'"},
      {R"({"_class_name": "EDMDPMSolverMultistepScheduler"})", "'_class_name'"},
      {R"({"_class_name": "FlowMatchEulerDiscreteScheduler"})", "'_class_name'"},
      {R"([1, 2])", "JSON object"},
  };
  for (const auto& [json, want] : cases) {
    absl::StatusOr<SchedulerConfig> config = SchedulerConfig::FromJson(nlohmann::json::parse(json));
    ASSERT_FALSE(config.ok()) << json;
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << json;
    EXPECT_TRUE(absl::StrContains(config.status().message(), want))
        << config.status() << " lacks " << want;
  }
}

TEST(MakeSchedulerTest, KarrasOnlyWhereDiffusersHasIt) {
  const SchedulerConfig config = SchedulerConfig::SdxlBase();
  for (SamplerKind kind : {SamplerKind::kEulerAncestral, SamplerKind::kDdim}) {
    absl::StatusOr<std::unique_ptr<Scheduler>> scheduler = MakeScheduler({kind, true}, config);
    ASSERT_FALSE(scheduler.ok());
    EXPECT_EQ(scheduler.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StrContains(scheduler.status().message(), "Karras")) << scheduler.status();
  }
  SchedulerConfig karras_config = config;
  karras_config.use_karras_sigmas = true;
  // The choice overrides the config's flag, both ways.
  auto plain = Make(SamplerKind::kDpmpp2m, false, karras_config, 30);
  auto karras = Make(SamplerKind::kDpmpp2m, true, config, 30);
  EXPECT_FALSE(plain->config().use_karras_sigmas);
  EXPECT_TRUE(karras->config().use_karras_sigmas);
  EXPECT_EQ(karras->timesteps()[0].item<int64_t>(), 999);
  EXPECT_EQ(plain->timesteps()[0].item<int64_t>(), 961);
}

TEST(MakeSchedulerTest, RejectsAnInvalidConfig) {
  SchedulerConfig config = SchedulerConfig::SdxlBase();
  config.schedule.num_train_timesteps = 0;
  absl::StatusOr<std::unique_ptr<Scheduler>> scheduler =
      MakeScheduler({SamplerKind::kEuler, false}, config);
  ASSERT_FALSE(scheduler.ok());
  EXPECT_TRUE(absl::StrContains(scheduler.status().message(), "num_train_timesteps"))
      << scheduler.status();
}

TEST(SetTimestepsTest, StepCountOutOfRange) {
  for (SamplerKind kind : {SamplerKind::kEuler, SamplerKind::kEulerAncestral, SamplerKind::kDpmpp2m,
                           SamplerKind::kDdim}) {
    auto scheduler = *MakeScheduler({kind, false}, SchedulerConfig::SdxlBase());
    for (int64_t steps : {0, -3, 1001}) {
      const absl::Status status = scheduler->SetTimesteps(steps);
      EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument)
          << SamplerName({kind, false}) << " " << steps;
    }
    EXPECT_EQ(scheduler->num_steps(), 0);
  }
}

TEST(SetTimestepsTest, LeadingMatchesDiffusers) {
  // SDXL's default: 1000 // 30 = 33 apart, offset 1.
  auto euler = Make(SamplerKind::kEuler, false, SchedulerConfig::SdxlBase(), 30);
  EXPECT_EQ(euler->timesteps().scalar_type(), torch::kFloat32);
  EXPECT_EQ(euler->timesteps()[0].item<float>(), 958.0f);
  EXPECT_EQ(euler->timesteps()[29].item<float>(), 1.0f);
  auto ddim = Make(SamplerKind::kDdim, false, SchedulerConfig::SdxlBase(), 30);
  EXPECT_EQ(ddim->timesteps().scalar_type(), torch::kLong);
  EXPECT_TRUE(torch::equal(ddim->timesteps(), euler->timesteps().to(torch::kLong)));
  // DPM divides by steps + 1: 1000 // 31 = 32.
  auto dpm = Make(SamplerKind::kDpmpp2m, false, SchedulerConfig::SdxlBase(), 30);
  EXPECT_EQ(dpm->timesteps()[0].item<int64_t>(), 961);
  EXPECT_EQ(dpm->timesteps()[29].item<int64_t>(), 33);
}

TEST(SetTimestepsTest, TrailingStartsAt999) {
  const SchedulerConfig config = WithSpacing(TimestepSpacing::kTrailing);
  for (int64_t steps : {1, 2, 7, 30, 50}) {
    for (SamplerKind kind : {SamplerKind::kEuler, SamplerKind::kEulerAncestral,
                             SamplerKind::kDpmpp2m, SamplerKind::kDdim}) {
      auto scheduler = Make(kind, false, config, steps);
      EXPECT_EQ(scheduler->timesteps()[0].item<double>(), 999.0)
          << SamplerName({kind, false}) << " " << steps;
      EXPECT_EQ(scheduler->num_steps(), steps);
    }
  }
  auto euler = Make(SamplerKind::kEuler, false, config, 30);
  const std::vector<double> t = Values(euler->timesteps());
  EXPECT_EQ(t[1], 966.0);
  EXPECT_EQ(t[29], 32.0);
}

TEST(SetTimestepsTest, TrailingNeverGoesNegative) {
  // numpy's arange gives one value too many for these counts; diffusers then ends at -1.
  const SchedulerConfig config = WithSpacing(TimestepSpacing::kTrailing);
  for (int64_t steps : {61, 103, 121, 499, 998}) {
    for (SamplerKind kind : {SamplerKind::kEuler, SamplerKind::kDpmpp2m, SamplerKind::kDdim}) {
      auto scheduler = Make(kind, false, config, steps);
      EXPECT_EQ(scheduler->num_steps(), steps);
      EXPECT_GE(scheduler->timesteps().min().item<double>(), 0.0) << steps;
    }
  }
}

TEST(SetTimestepsTest, LinspaceSpansTheTrainingRange) {
  const SchedulerConfig config = WithSpacing(TimestepSpacing::kLinspace);
  auto euler = Make(SamplerKind::kEuler, false, config, 4);
  EXPECT_EQ(Values(euler->timesteps()), (std::vector<double>{999, 666, 333, 0}));
  auto ddim = Make(SamplerKind::kDdim, false, config, 3);
  EXPECT_EQ(Values(ddim->timesteps()), (std::vector<double>{999, 500, 0}));  // 499.5 rounds to even
  // Euler's linspace keeps fractions: 999 - 999 / 6 = 832.5.
  auto euler7 = Make(SamplerKind::kEuler, false, config, 7);
  EXPECT_FLOAT_EQ(euler7->timesteps()[1].item<float>(), 832.5f);
  // DPM: linspace(0, 999, steps + 1), the 0 dropped.
  auto dpm = Make(SamplerKind::kDpmpp2m, false, config, 3);
  EXPECT_EQ(Values(dpm->timesteps()), (std::vector<double>{999, 666, 333}));
}

TEST(SetTimestepsTest, OneStep) {
  for (TimestepSpacing spacing :
       {TimestepSpacing::kLeading, TimestepSpacing::kTrailing, TimestepSpacing::kLinspace}) {
    for (SamplerKind kind : {SamplerKind::kEuler, SamplerKind::kEulerAncestral,
                             SamplerKind::kDpmpp2m, SamplerKind::kDdim}) {
      auto scheduler = Make(kind, false, WithSpacing(spacing), 1);
      ASSERT_EQ(scheduler->num_steps(), 1);
      if (kind != SamplerKind::kDdim) {
        EXPECT_EQ(scheduler->sigmas().size(0), 2);
      }
    }
  }
  // Leading with one step starts at the bottom (0 * 1000 + offset), as diffusers does.
  EXPECT_EQ(Make(SamplerKind::kDdim, false, SchedulerConfig::SdxlBase(), 1)
                ->timesteps()[0]
                .item<int64_t>(),
            1);
  // Karras with one step: the ramp is the single value sigma_max.
  auto karras = Make(SamplerKind::kDpmpp2m, true, SchedulerConfig::SdxlBase(), 1);
  EXPECT_EQ(karras->timesteps()[0].item<int64_t>(), 999);
}

TEST(SetTimestepsTest, DdimRejectsATimestepPastTheTable) {
  // Leading, offset 1, 1000 steps: the first timestep would be 1000.
  auto ddim = *MakeScheduler({SamplerKind::kDdim, false}, SchedulerConfig::SdxlBase());
  const absl::Status status = ddim->SetTimesteps(1000);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(status.message(), "1000")) << status;
  EXPECT_TRUE(ddim->SetTimesteps(999).ok());
}

TEST(SetTimestepsTest, EulerKarrasKeepsTheSpacedEnds) {
  const SchedulerConfig config = SchedulerConfig::SdxlBase();
  auto plain = Make(SamplerKind::kEuler, false, config, 20);
  auto karras = Make(SamplerKind::kEuler, true, config, 20);
  EXPECT_NEAR(karras->sigmas()[0].item<double>(), plain->sigmas()[0].item<double>(), 1e-5);
  EXPECT_NEAR(karras->sigmas()[19].item<double>(), plain->sigmas()[19].item<double>(), 1e-6);
  EXPECT_EQ(karras->sigmas()[20].item<double>(), 0.0);
  // The timesteps follow the sigmas back through the log-sigma table: fractional, decreasing.
  EXPECT_NEAR(karras->timesteps()[0].item<double>(), 951.0, 0.01);
  const std::vector<double> t = Values(karras->timesteps());
  for (size_t i = 1; i < t.size(); ++i) EXPECT_LT(t[i], t[i - 1]);
  EXPECT_NE(t[5], std::round(t[5]));
  // sigma_max in the config pins the top of the ramp.
  SchedulerConfig pinned = config;
  pinned.sigma_max = 10.0;
  auto pinned_karras = Make(SamplerKind::kEuler, true, pinned, 20);
  EXPECT_FLOAT_EQ(pinned_karras->sigmas()[0].item<float>(), 10.0f);
}

TEST(SetTimestepsTest, DpmKarrasSpansTheTrainingSigmas) {
  const NoiseSchedule schedule;
  const torch::Tensor acp = schedule.alphas_cumprod();
  const double sigma_max = std::sqrt((1 - acp[999].item<double>()) / acp[999].item<double>());
  const double sigma_min = std::sqrt((1 - acp[0].item<double>()) / acp[0].item<double>());
  SchedulerConfig config = SchedulerConfig::SdxlBase();
  auto karras = Make(SamplerKind::kDpmpp2m, true, config, 25);
  EXPECT_NEAR(karras->sigmas()[0].item<double>(), sigma_max, 1e-5);
  EXPECT_NEAR(karras->sigmas()[24].item<double>(), sigma_min, 1e-6);
  EXPECT_EQ(karras->sigmas()[25].item<double>(), 0.0);  // final_sigmas zero
  EXPECT_EQ(karras->timesteps()[24].item<int64_t>(), 0);
  config.final_sigmas = FinalSigmas::kSigmaMin;
  auto legacy = Make(SamplerKind::kDpmpp2m, true, config, 25);
  EXPECT_EQ(legacy->sigmas()[25].item<float>(), legacy->sigmas()[24].item<float>());
  auto plain_legacy = Make(SamplerKind::kDpmpp2m, false, config, 25);
  EXPECT_NEAR(plain_legacy->sigmas()[25].item<double>(), sigma_min, 1e-6);
}

TEST(SetTimestepsTest, LambdaMinClippedCutsTheNoisiestTimesteps) {
  SchedulerConfig config = WithSpacing(TimestepSpacing::kLinspace);
  config.lambda_min_clipped = -2.0;  // lambda = -log(sigma): keeps sigma <= e^2
  auto dpm = Make(SamplerKind::kDpmpp2m, false, config, 10);
  EXPECT_LT(dpm->timesteps()[0].item<int64_t>(), 999);
  EXPECT_LE(dpm->sigmas()[0].item<double>(), std::exp(2.0) + 1e-4);
  EXPECT_GT(dpm->sigmas()[0].item<double>(), 6.0);
  config.lambda_min_clipped = 100;
  auto none = *MakeScheduler({SamplerKind::kDpmpp2m, false}, config);
  EXPECT_EQ(none->SetTimesteps(10).code(), absl::StatusCode::kInvalidArgument);
}

TEST(SetTimestepsTest, InitNoiseSigma) {
  auto leading = Make(SamplerKind::kEuler, false, SchedulerConfig::SdxlBase(), 30);
  const double top = leading->sigmas()[0].item<double>();
  EXPECT_NEAR(leading->init_noise_sigma(), std::sqrt(top * top + 1), 1e-5);
  auto trailing =
      Make(SamplerKind::kEulerAncestral, false, WithSpacing(TimestepSpacing::kTrailing), 30);
  EXPECT_DOUBLE_EQ(trailing->init_noise_sigma(), trailing->sigmas()[0].item<double>());
  EXPECT_EQ(Make(SamplerKind::kDpmpp2m, true, SchedulerConfig::SdxlBase(), 30)->init_noise_sigma(),
            1.0);
  EXPECT_EQ(Make(SamplerKind::kDdim, false, SchedulerConfig::SdxlBase(), 30)->init_noise_sigma(),
            1.0);
}

TEST(BeginIndexForStrengthTest, FollowsDiffusersGetTimesteps) {
  auto scheduler = Make(SamplerKind::kEuler, false, SchedulerConfig::SdxlBase(), 30);
  EXPECT_EQ(scheduler->BeginIndexForStrength(1.0), 0);
  EXPECT_EQ(scheduler->BeginIndexForStrength(0.5), 15);
  EXPECT_EQ(scheduler->BeginIndexForStrength(0.3), 21);   // int(30 * 0.3) = 9
  EXPECT_EQ(scheduler->BeginIndexForStrength(0.99), 1);   // int(29.7) = 29
  EXPECT_EQ(scheduler->BeginIndexForStrength(0.01), 30);  // int(0.3) = 0: nothing to denoise
  EXPECT_EQ(scheduler->BeginIndexForStrength(0.0), 30);
  EXPECT_EQ(scheduler->BeginIndexForStrength(1.7), 0);
  EXPECT_EQ(scheduler->BeginIndexForStrength(std::numeric_limits<double>::quiet_NaN()), 30);
  auto hundred = Make(SamplerKind::kDdim, false, SchedulerConfig::SdxlBase(), 100);
  EXPECT_EQ(hundred->BeginIndexForStrength(0.29), 72);  // int(28.999999999999996) = 28, truncated
}

TEST(ScheduleMathTest, NumpyLogfMatchesNumpy) {
  // np.log(np.float32 array) from numpy 1.24.2 on x86 AVX2; two of these are not the correctly
  // rounded logf, which is why SigmaToTimestep needs numpy's own.
  const std::pair<float, float> cases[] = {
      {0x1.d3ab2ep+3f, 0x1.574c92p+1f},
      {0x1.dde18p-6f, -0x1.c47104p+1f},
      {0x1p+0f, 0x0p+0f},
      {0x1p-1f, -0x1.62e43p-1f},
      {0x1.6a09e6p-1f, -0x1.62e43p-2f},
      {0x1p+1f, 0x1.62e43p-1f},
      {0x1.a9194ap+1f, 0x1.33464ap+0f},
      {0x1.7513a4p-3f, -0x1.b3ecfcp+0f},
      {0x1.c09168p+2f, 0x1.f27a34p+0f},
      {0x1.edd2f2p+6f, 0x1.343776p+2f},
      {0x1.0624dep-10f, -0x1.ba18aap+2f},
  };
  for (const auto& [x, want] : cases) EXPECT_EQ(internal::NumpyLogf(x), want) << x;
}

TEST(ScheduleMathTest, NumpyArangeAndLinspace) {
  // np.arange(1000, 0, -1000 / 61) has 62 values (float rounding in its length).
  EXPECT_EQ(internal::NumpyArangeLength(1000, 0, -1000.0 / 61), 62);
  EXPECT_EQ(internal::NumpyArangeLength(1000, 0, -1000.0 / 30), 30);
  EXPECT_EQ(internal::NumpyLinspace(0, 1, 1), std::vector<double>{0.0});
  EXPECT_EQ(internal::NumpyLinspace(0, 999, 3), (std::vector<double>{0, 499.5, 999}));
  EXPECT_EQ(internal::NumpyRound(499.5), 500.0);
  EXPECT_EQ(internal::NumpyRound(498.5), 498.0);  // ties to even
  // _sigma_to_t inverts the table at its own entries, up to the float32 logs (the table's are
  // numpy's, the query's a correctly rounded one, as in diffusers).
  const std::vector<float> sigmas = internal::TrainSigmas(NoiseSchedule());
  const std::vector<float> logs = internal::LogSigmas(sigmas);
  EXPECT_NEAR(internal::SigmaToTimestep(sigmas[500], logs), 500.0, 1e-4);
  EXPECT_NEAR(internal::SigmaToTimestep(sigmas[999], logs), 999.0, 1e-4);
  EXPECT_DOUBLE_EQ(internal::SigmaToTimestep(0.0, logs), 0.0);
}

}  // namespace
}  // namespace likeness::sample
