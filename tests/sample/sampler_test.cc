// What the samplers do: steps with an oracle model reach the clean latents, both prediction
// types, DPM++'s history, AddNoise / Renoise, step noise, batches, half precision, and the
// DDPM schedule the trainer uses.
#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "worker/sample/noise_schedule.h"
#include "worker/sample/scheduler.h"

namespace likeness::sample {
namespace {

constexpr uint64_t kSeed = 1234;
// Enough samples that a standard deviation is known to ~0.5% (1/sqrt(2n)).
constexpr int64_t kStatisticsSamples = 1 << 16;
constexpr double kStdTolerance = 0.02;
// float32 over ~30 steps of values ~10: what the golden test allows, 1e-5 relative.
constexpr double kFloatTolerance = 1e-4;

const SamplerKind kAllKinds[] = {SamplerKind::kEuler, SamplerKind::kEulerAncestral,
                                 SamplerKind::kDpmpp2m, SamplerKind::kDdim};
const TimestepSpacing kAllSpacings[] = {TimestepSpacing::kLeading, TimestepSpacing::kTrailing,
                                        TimestepSpacing::kLinspace};

struct Variant {
  SamplerKind kind;
  bool karras;
};
// Every sampler the CLI names.
std::vector<Variant> AllVariants() {
  std::vector<Variant> variants;
  for (const std::string& name : SamplerNames()) {
    const SamplerChoice choice = *ParseSamplerName(name);
    variants.push_back({choice.kind, choice.karras_sigmas});
  }
  return variants;
}

std::string Describe(const Variant& v, TimestepSpacing spacing,
                     PredictionType type = PredictionType::kEpsilon) {
  return SamplerName({v.kind, v.karras}) + "/" + TimestepSpacingName(spacing) + "/" +
         PredictionTypeName(type);
}

std::unique_ptr<Scheduler> Make(const Variant& v, int64_t steps,
                                TimestepSpacing spacing = TimestepSpacing::kLeading,
                                PredictionType type = PredictionType::kEpsilon,
                                FinalSigmas final_sigmas = FinalSigmas::kZero) {
  SchedulerConfig config = SchedulerConfig::SdxlBase();
  config.spacing = spacing;
  config.schedule.prediction_type = type;
  config.final_sigmas = final_sigmas;
  absl::StatusOr<std::unique_ptr<Scheduler>> scheduler = MakeScheduler({v.kind, v.karras}, config);
  EXPECT_TRUE(scheduler.ok()) << scheduler.status();
  const absl::Status set = (*scheduler)->SetTimesteps(steps);
  EXPECT_TRUE(set.ok()) << set;
  return std::move(*scheduler);
}

torch::Tensor Randn(at::IntArrayRef shape, uint64_t seed) {
  torch::manual_seed(seed);
  return torch::randn(shape);
}

double MaxAbsDiff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

// The level before step `index` in the variance-preserving form: x = alpha * x0 + sigma * eps.
// AddNoise says it for every kind (Euler's VE sample scaled by ScaleModelInput is VP).
std::pair<double, double> VpLevel(const Scheduler& s, int64_t index) {
  const torch::Tensor one = torch::ones({1});
  const torch::Tensor zero = torch::zeros({1});
  const double x0_scale = s.AddNoise(one, zero, index).item<double>();
  const double noise_scale = s.AddNoise(zero, one, index).item<double>();
  const double norm = std::sqrt(x0_scale * x0_scale + noise_scale * noise_scale);
  return {x0_scale / norm, noise_scale / norm};
}

// The model a perfect UNet would be for data that is exactly x0: the true epsilon (or v) of
// the sample at step `index`.
torch::Tensor OracleOutput(const Scheduler& s, const torch::Tensor& x_in, const torch::Tensor& x0,
                           int64_t index) {
  const auto [alpha, sigma] = VpLevel(s, index);
  const torch::Tensor eps = (x_in - x0 * alpha) / sigma;  // x_in = alpha x0 + sigma eps
  if (s.config().schedule.prediction_type == PredictionType::kVPrediction)
    return eps * alpha - x0 * sigma;
  return eps;
}

// Runs the loop of scheduler.h from step `begin` with the oracle model; returns the last latents.
torch::Tensor RunOracle(Scheduler& s, const torch::Tensor& x0, const torch::Tensor& noise,
                        int64_t begin = 0, double* worst_x0_error = nullptr) {
  torch::Tensor latents = begin == 0 ? noise * s.init_noise_sigma() : s.AddNoise(x0, noise, begin);
  for (int64_t i = begin; i < s.num_steps(); ++i) {
    const torch::Tensor x_in = s.ScaleModelInput(latents, i);
    const torch::Tensor step_noise =
        s.NeedsStepNoise() ? Randn(x0.sizes(), kSeed + 100 + i) : torch::Tensor();
    const StepOutput out = s.Step(OracleOutput(s, x_in, x0, i), i, latents, step_noise);
    if (worst_x0_error != nullptr) {
      *worst_x0_error = std::max(*worst_x0_error, MaxAbsDiff(out.pred_original_sample, x0));
    }
    latents = out.prev_sample;
  }
  return latents;
}

TEST(SamplerTest, OracleModelPredictsTheCleanLatentsEverywhere) {
  // With the exact epsilon or v, every kind's x0 estimate is x0 at every step, for both
  // prediction types and every spacing: the prediction-type algebra is right.
  const torch::Tensor x0 = Randn({2, 4, 8, 8}, kSeed);
  for (const Variant& v : AllVariants()) {
    for (TimestepSpacing spacing : kAllSpacings) {
      for (PredictionType type : {PredictionType::kEpsilon, PredictionType::kVPrediction}) {
        auto s = Make(v, 12, spacing, type);
        double worst = 0;
        RunOracle(*s, x0, Randn(x0.sizes(), kSeed + 1), 0, &worst);
        EXPECT_LT(worst, kFloatTolerance) << Describe(v, spacing, type);
      }
    }
  }
}

TEST(SamplerTest, DeterministicSamplersEndAtTheCleanLatents) {
  // Euler and DPM++ (final sigma 0) integrate the oracle's ODE exactly to x0, and Euler
  // ancestral ends at sigma 0 too. DDIM keeps the oracle's epsilon and stops at the final alpha
  // (alphas_cumprod[0] for SDXL): sqrt(a0) x0 + sqrt(1 - a0) eps.
  const torch::Tensor x0 = Randn({1, 4, 8, 8}, kSeed);
  const torch::Tensor noise = Randn({1, 4, 8, 8}, kSeed + 1);
  for (const Variant& v : AllVariants()) {
    for (TimestepSpacing spacing : kAllSpacings) {
      auto s = Make(v, 20, spacing);
      const torch::Tensor last = RunOracle(*s, x0, noise);
      if (v.kind == SamplerKind::kDdim && spacing != TimestepSpacing::kLeading) {
        // Each step lands T / steps below its timestep, and the next step reads the sample as
        // if it were at the next timestep: with these spacings the two differ, so the oracle's
        // epsilon drifts (diffusers does the same). Only near the end is certain.
        EXPECT_LT(MaxAbsDiff(last, x0), 0.5) << Describe(v, spacing);
      } else if (v.kind == SamplerKind::kDdim) {
        const double a0 = s->schedule().alphas_cumprod()[0].item<double>();
        const auto [alpha, sigma] = VpLevel(*s, 0);
        const torch::Tensor eps = (noise - x0 * alpha) / sigma;
        EXPECT_LT(MaxAbsDiff(last, x0 * std::sqrt(a0) + eps * std::sqrt(1 - a0)), kFloatTolerance)
            << Describe(v, spacing);
      } else {
        EXPECT_LT(MaxAbsDiff(last, x0), kFloatTolerance) << Describe(v, spacing);
      }
    }
  }
}

TEST(SamplerTest, DpmWithSigmaMinStopsShortOfClean) {
  const torch::Tensor x0 = Randn({1, 4, 8, 8}, kSeed);
  const torch::Tensor noise = Randn({1, 4, 8, 8}, kSeed + 1);
  auto s = Make({SamplerKind::kDpmpp2m, true}, 30, TimestepSpacing::kLeading,
                PredictionType::kEpsilon, FinalSigmas::kSigmaMin);
  const float sigma_min = s->sigmas()[30].item<float>();
  EXPECT_GT(sigma_min, 0.0f);
  const torch::Tensor last = RunOracle(*s, x0, noise);
  // Still alpha x0 + sigma eps at sigma_min: off by about sigma_min.
  const double error = MaxAbsDiff(last, x0);
  EXPECT_GT(error, 0.1 * sigma_min);
  EXPECT_LT(error, 10 * sigma_min);
}

TEST(SamplerTest, ImgToImgFromBeginIndex) {
  // Starting at BeginIndexForStrength with AddNoise'd latents also ends at x0.
  const torch::Tensor x0 = Randn({1, 4, 8, 8}, kSeed);
  const torch::Tensor noise = Randn({1, 4, 8, 8}, kSeed + 1);
  for (const Variant& v : AllVariants()) {
    if (v.kind == SamplerKind::kDdim) continue;  // ends at the final alpha, see above
    auto s = Make(v, 30);
    const int64_t begin = s->BeginIndexForStrength(0.4);
    EXPECT_EQ(begin, 18);
    EXPECT_LT(MaxAbsDiff(RunOracle(*s, x0, noise, begin), x0), kFloatTolerance)
        << Describe(v, TimestepSpacing::kLeading);
  }
}

TEST(SamplerTest, DpmSecondOrderUsesTheHistoryAndResetClearsIt) {
  const Variant dpm{SamplerKind::kDpmpp2m, true};
  const torch::Tensor sample = Randn({1, 4, 8, 8}, kSeed);
  const torch::Tensor out0 = Randn({1, 4, 8, 8}, kSeed + 1);
  const torch::Tensor out1 = Randn({1, 4, 8, 8}, kSeed + 2);

  auto with_history = Make(dpm, 30);
  with_history->Step(out0, 0, sample);
  const torch::Tensor second = with_history->Step(out1, 1, sample).prev_sample;

  auto fresh = Make(dpm, 30);
  const torch::Tensor first = fresh->Step(out1, 1, sample).prev_sample;  // no history: first order
  EXPECT_GT(MaxAbsDiff(second, first), 1e-3);

  // Reset: the same step as on a fresh scheduler, bit for bit.
  with_history->Reset();
  EXPECT_TRUE(torch::equal(with_history->Step(out1, 1, sample).prev_sample, first));

  // A repeated step (RePaint) without Reset: the history is from this index, not the one
  // before it, so the step is first order too.
  auto repeated = Make(dpm, 30);
  repeated->Step(out0, 1, sample);
  EXPECT_TRUE(torch::equal(repeated->Step(out1, 1, sample).prev_sample, first));

  // SetTimesteps clears the history as well.
  with_history->Step(out0, 0, sample);
  ASSERT_TRUE(with_history->SetTimesteps(30).ok());
  EXPECT_TRUE(torch::equal(with_history->Step(out1, 1, sample).prev_sample, first));
}

TEST(SamplerTest, DpmLowerOrderFinal) {
  // Below 15 steps lower_order_final makes the last step first order; with final sigma 0 it
  // always is (the second-order formula has h = inf there).
  const Variant dpm{SamplerKind::kDpmpp2m, false};
  const torch::Tensor sample = Randn({1, 4, 4, 4}, kSeed);
  const torch::Tensor out_a = Randn({1, 4, 4, 4}, kSeed + 1);
  const torch::Tensor out_b = Randn({1, 4, 4, 4}, kSeed + 2);
  for (int64_t steps : {5, 20}) {
    auto legacy = Make(dpm, steps, TimestepSpacing::kLeading, PredictionType::kEpsilon,
                       FinalSigmas::kSigmaMin);
    legacy->Step(out_a, steps - 2, sample);
    const torch::Tensor with_history = legacy->Step(out_b, steps - 1, sample).prev_sample;
    legacy->Reset();
    const torch::Tensor without = legacy->Step(out_b, steps - 1, sample).prev_sample;
    EXPECT_EQ(torch::equal(with_history, without), steps < 15) << steps << " steps";
  }
}

TEST(SamplerTest, AddNoiseEnds) {
  const torch::Tensor x0 = Randn({1, 4, 8, 8}, kSeed);
  const torch::Tensor noise = Randn({1, 4, 8, 8}, kSeed + 1);
  for (const Variant& v : AllVariants()) {
    auto s = Make(v, 30);
    EXPECT_TRUE(torch::equal(s->AddNoise(x0, noise, 30), x0))
        << Describe(v, TimestepSpacing::kLeading);
    if (v.kind == SamplerKind::kEuler || v.kind == SamplerKind::kEulerAncestral) {
      const float sigma = s->sigmas()[0].item<float>();
      EXPECT_TRUE(torch::allclose(s->AddNoise(x0, noise, 0), x0 + noise * sigma));
    }
    if (v.kind == SamplerKind::kDdim) {
      // DDIM's AddNoise is the DDPM one at its timestep.
      const torch::Tensor t = s->timesteps().slice(0, 0, 1);
      EXPECT_TRUE(torch::allclose(s->AddNoise(x0, noise, 0), s->schedule().AddNoise(x0, noise, t)));
    }
    EXPECT_THROW(s->AddNoise(x0, noise, 31), c10::Error);
    EXPECT_THROW(s->AddNoise(x0, noise, -1), c10::Error);
  }
}

TEST(SamplerTest, RenoiseGoesBackOneLevel) {
  // From AddNoise(x0, ., i + 1), Renoise(., ., i) is distributed as AddNoise(x0, ., i): the
  // x0 part scaled alike, and fresh noise of the level's standard deviation. (DDIM's Step lands
  // on t_i - T / steps, which with trailing or linspace spacing is a timestep or two off t_{i+1},
  // and after the last step on the final alpha rather than clean; Renoise starts from where Step
  // lands, so the exact x0 scaling is checked only where the two agree. The 0.6% difference
  // between neighbouring timesteps does not show in the standard deviation.)
  const torch::Tensor x0 = Randn({kStatisticsSamples}, kSeed);
  for (const Variant& v : AllVariants()) {
    for (TimestepSpacing spacing : kAllSpacings) {
      auto s = Make(v, 30, spacing);
      for (int64_t index : {0, 7, 28, 29}) {
        // DDIM's last step lands on the final alpha, where AddNoise(., ., steps) means clean.
        if (v.kind == SamplerKind::kDdim && index + 1 == s->num_steps()) continue;
        const torch::Tensor after =
            s->AddNoise(x0, Randn({kStatisticsSamples}, kSeed + 1), index + 1);
        const torch::Tensor renoised =
            s->Renoise(after, Randn({kStatisticsSamples}, kSeed + 2), index);
        const torch::Tensor mean_part = s->AddNoise(x0, torch::zeros_like(x0), index);
        const double want_std =
            s->AddNoise(torch::zeros({1}), torch::ones({1}), index).item<double>();
        const double got_std = (renoised - mean_part).std().item<double>();
        EXPECT_NEAR(got_std, want_std, kStdTolerance * want_std)
            << Describe(v, spacing) << " index " << index;
        EXPECT_NEAR((renoised - mean_part).mean().item<double>(), 0.0,
                    5 * want_std / std::sqrt(kStatisticsSamples))
            << Describe(v, spacing) << " index " << index;
        const bool step_lands_on_next =
            v.kind != SamplerKind::kDdim || spacing == TimestepSpacing::kLeading;
        if (!step_lands_on_next) continue;
        // No fresh noise: only the deterministic part moves.
        const torch::Tensor quiet = s->Renoise(s->AddNoise(x0, torch::zeros_like(x0), index + 1),
                                               torch::zeros_like(x0), index);
        EXPECT_LT(MaxAbsDiff(quiet, mean_part), 1e-4) << Describe(v, spacing) << " index " << index;
      }
      EXPECT_THROW(s->Renoise(x0, x0, 30), c10::Error);
    }
  }
}

TEST(SamplerTest, EulerAncestralTakesItsNoiseFromTheCaller) {
  auto s = Make({SamplerKind::kEulerAncestral, false}, 10);
  EXPECT_TRUE(s->NeedsStepNoise());
  const torch::Tensor sample = Randn({1, 4, 4, 4}, kSeed);
  const torch::Tensor output = Randn({1, 4, 4, 4}, kSeed + 1);
  EXPECT_THROW(s->Step(output, 0, sample), c10::Error);
  const torch::Tensor a = s->Step(output, 0, sample, Randn({1, 4, 4, 4}, 7)).prev_sample;
  const torch::Tensor b = s->Step(output, 0, sample, Randn({1, 4, 4, 4}, 8)).prev_sample;
  EXPECT_GT(MaxAbsDiff(a, b), 0.1);  // the noise matters
  for (const Variant& v : AllVariants()) {
    EXPECT_EQ(Make(v, 10)->NeedsStepNoise(), v.kind == SamplerKind::kEulerAncestral);
  }
}

TEST(SamplerTest, BatchEqualsSingleImages) {
  // Each image of a batch with its own noise equals its own run, bit for bit.
  for (const Variant& v : AllVariants()) {
    auto batch = Make(v, 8);
    auto single = Make(v, 8);
    const torch::Tensor start = Randn({2, 4, 4, 4}, kSeed);
    torch::Tensor latents = start.clone();
    std::vector<torch::Tensor> singles = {start[0].unsqueeze(0), start[1].unsqueeze(0)};
    for (int64_t i = 0; i < 8; ++i) {
      const torch::Tensor noise = Randn({2, 4, 4, 4}, kSeed + 10 + i);
      const torch::Tensor output = batch->ScaleModelInput(latents, i) * 0.1;
      latents = batch->Step(output, i, latents, noise).prev_sample;
    }
    for (int64_t b = 0; b < 2; ++b) {
      single->Reset();
      torch::Tensor x = singles[b];
      for (int64_t i = 0; i < 8; ++i) {
        const torch::Tensor noise = Randn({2, 4, 4, 4}, kSeed + 10 + i)[b].unsqueeze(0);
        x = single->Step(single->ScaleModelInput(x, i) * 0.1, i, x, noise).prev_sample;
      }
      EXPECT_TRUE(torch::equal(x, latents[b].unsqueeze(0)))
          << Describe(v, TimestepSpacing::kLeading) << " image " << b;
    }
  }
}

TEST(SamplerTest, HalfPrecisionLatentsStepInFloat) {
  const torch::Tensor sample = Randn({1, 4, 8, 8}, kSeed) * 3;
  const torch::Tensor output = Randn({1, 4, 8, 8}, kSeed + 1);
  const torch::Tensor noise = Randn({1, 4, 8, 8}, kSeed + 2);
  for (const Variant& v : AllVariants()) {
    auto full = Make(v, 30);
    auto half = Make(v, 30);
    const StepOutput ref = full->Step(output, 29, sample, noise);
    const StepOutput got =
        half->Step(output.to(torch::kHalf), 29, sample.to(torch::kHalf), noise.to(torch::kHalf));
    EXPECT_EQ(got.prev_sample.scalar_type(), torch::kHalf);
    EXPECT_EQ(got.pred_original_sample.scalar_type(), torch::kHalf);
    EXPECT_LT(MaxAbsDiff(got.prev_sample, ref.prev_sample), 0.03)
        << Describe(v, TimestepSpacing::kLeading);
  }
}

TEST(SamplerTest, ProgrammingErrorsThrow) {
  for (SamplerKind kind : kAllKinds) {
    auto unset = *MakeScheduler({kind, false}, SchedulerConfig::SdxlBase());
    const torch::Tensor x = torch::zeros({1, 4, 2, 2});
    EXPECT_THROW(unset->Step(x, 0, x, x), c10::Error);  // no SetTimesteps
    EXPECT_THROW(unset->ScaleModelInput(x, 0), c10::Error);
    ASSERT_TRUE(unset->SetTimesteps(5).ok());
    EXPECT_THROW(unset->Step(x, 5, x, x), c10::Error);
    EXPECT_THROW(unset->Step(x, -1, x, x), c10::Error);
    EXPECT_THROW(unset->Step(torch::zeros({1, 4, 2, 3}), 0, x, x), c10::Error);
    EXPECT_NO_THROW(unset->Step(x, 4, x, x));
  }
}

TEST(SamplerTest, OneStepSampling) {
  const torch::Tensor x0 = Randn({1, 4, 8, 8}, kSeed);
  const torch::Tensor noise = Randn({1, 4, 8, 8}, kSeed + 1);
  for (const Variant& v : AllVariants()) {
    for (TimestepSpacing spacing : kAllSpacings) {
      auto s = Make(v, 1, spacing);
      const torch::Tensor last = RunOracle(*s, x0, noise);
      EXPECT_TRUE(torch::isfinite(last).all().item<bool>()) << Describe(v, spacing);
      if (v.kind != SamplerKind::kDdim) {
        EXPECT_LT(MaxAbsDiff(last, x0), kFloatTolerance) << Describe(v, spacing);
      }
    }
  }
}

TEST(NoiseScheduleTest, SdxlTables) {
  const NoiseSchedule schedule;
  EXPECT_EQ(schedule.betas().scalar_type(), torch::kFloat32);
  ASSERT_EQ(schedule.betas().size(0), kSdxlTrainTimesteps);
  EXPECT_NEAR(schedule.betas()[0].item<double>(), kSdxlBetaStart, 1e-9);
  EXPECT_NEAR(schedule.betas()[999].item<double>(), kSdxlBetaEnd, 1e-9);
  // scaled_linear: linear in sqrt(beta).
  const double mid = std::pow((std::sqrt(kSdxlBetaStart) + std::sqrt(kSdxlBetaEnd)) / 2, 2);
  EXPECT_NEAR((schedule.betas()[499] + schedule.betas()[500]).item<double>() / 2, mid, 1e-6);
  EXPECT_NEAR(schedule.alphas_cumprod()[999].item<double>(), 0.00466, 1e-5);  // SDXL's known end
  NoiseScheduleConfig linear;
  linear.beta_schedule = BetaSchedule::kLinear;
  EXPECT_NEAR(NoiseSchedule(linear).betas()[500].item<double>(),
              kSdxlBetaStart + (kSdxlBetaEnd - kSdxlBetaStart) * 500 / 999, 1e-8);
}

TEST(NoiseScheduleTest, AddNoiseVelocitySnrTarget) {
  NoiseScheduleConfig config;
  const NoiseSchedule eps(config);
  config.prediction_type = PredictionType::kVPrediction;
  const NoiseSchedule v(config);
  const torch::Tensor x0 = Randn({3, 4, 2, 2}, kSeed);
  const torch::Tensor noise = Randn({3, 4, 2, 2}, kSeed + 1);
  const torch::Tensor t = torch::tensor({0, 500, 999}, torch::kLong);
  const torch::Tensor acp = eps.alphas_cumprod().index_select(0, t).view({3, 1, 1, 1});
  const torch::Tensor noisy = eps.AddNoise(x0, noise, t);
  EXPECT_TRUE(torch::allclose(noisy, acp.sqrt() * x0 + (1 - acp).sqrt() * noise));
  const torch::Tensor velocity = eps.Velocity(x0, noise, t);
  EXPECT_TRUE(torch::allclose(velocity, acp.sqrt() * noise - (1 - acp).sqrt() * x0));
  // x0 = sqrt(acp) x_t - sqrt(1 - acp) v: the identity DDIM's v-prediction uses.
  EXPECT_TRUE(torch::allclose(acp.sqrt() * noisy - (1 - acp).sqrt() * velocity, x0, 1e-5, 1e-5));
  EXPECT_TRUE(torch::equal(eps.Target(x0, noise, t), noise));
  EXPECT_TRUE(torch::equal(v.Target(x0, noise, t), velocity));
  const torch::Tensor snr = eps.Snr(t);
  EXPECT_EQ(snr.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::allclose(snr, (acp / (1 - acp)).flatten()));
  EXPECT_GT(snr[0].item<float>(), snr[1].item<float>());
  EXPECT_THROW(eps.AddNoise(x0, noise, t.to(torch::kFloat32)), c10::Error);
  // One timestep broadcasts over the batch.
  EXPECT_TRUE(
      torch::allclose(eps.AddNoise(x0, noise, torch::tensor({500}, torch::kLong)),
                      eps.AddNoise(x0, noise, torch::tensor({500, 500, 500}, torch::kLong))));
}

TEST(NoiseScheduleTest, DdimVPredictionMatchesTheTrainingTarget) {
  // The sampler reads back what the trainer's target puts in: a DDIM step given the exact
  // velocity at its timestep predicts x0.
  const Variant ddim{SamplerKind::kDdim, false};
  auto s = Make(ddim, 30, TimestepSpacing::kTrailing, PredictionType::kVPrediction);
  const torch::Tensor x0 = Randn({1, 4, 8, 8}, kSeed);
  const torch::Tensor noise = Randn({1, 4, 8, 8}, kSeed + 1);
  for (int64_t index : {0, 15, 29}) {
    const torch::Tensor t = s->timesteps().slice(0, index, index + 1);
    const torch::Tensor x_t = s->schedule().AddNoise(x0, noise, t);
    const torch::Tensor v = s->schedule().Target(x0, noise, t);
    EXPECT_LT(MaxAbsDiff(s->Step(v, index, x_t).pred_original_sample, x0), 1e-4) << index;
  }
}

}  // namespace
}  // namespace likeness::sample
