// DPMSolverMultistepScheduler with algorithm_type "dpmsolver++", solver_order 2 and the
// midpoint solver type: DPM-Solver++(2M) (Lu et al. 2022), A1111's "DPM++ 2M". It integrates
// the data prediction x0(x_t) in lambda = log(alpha_t / sigma_t), the latents kept in the
// variance-preserving form alpha_t * x0 + sigma_t * eps, alpha_t = 1 / sqrt(sigma^2 + 1).
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "worker/sample/schedule_math.h"
#include "worker/sample/scheduler_internal.h"

namespace likeness::sample::internal {
namespace {

// Below this many steps lower_order_final makes the last step first order (diffusers' 15:
// second-order steps from a coarse schedule are unstable at the very end).
constexpr int64_t kLowerOrderFinalBelowSteps = 15;

// A sigma's variance-preserving pair (alpha_t, sigma_t), float32 as diffusers computes it.
struct AlphaSigma {
  float alpha;
  float sigma;
  float lambda() const { return std::log(alpha) - std::log(sigma); }
};

AlphaSigma ToAlphaSigma(float sigma) {
  const float alpha = 1.0f / std::sqrt(sigma * sigma + 1.0f);
  return {alpha, sigma * alpha};
}

class DpmSolverScheduler final : public Scheduler {
 public:
  explicit DpmSolverScheduler(const SchedulerConfig& config)
      : Scheduler(config), train_sigmas_(TrainSigmas(schedule_)) {}

  absl::Status SetTimesteps(int64_t steps) override {
    LIKENESS_RETURN_IF_ERROR(CheckStepCount(config_, steps));
    const int64_t train_steps = config_.schedule.num_train_timesteps;
    const int64_t last_timestep = train_steps - ClippedTimesteps();
    if (last_timestep < 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "lambda_min_clipped ", config_.lambda_min_clipped, " removes every training timestep"));
    }
    std::vector<int64_t> timesteps =
        DpmTimesteps(config_.spacing, train_steps, last_timestep, steps, config_.steps_offset);
    sigma_values_.clear();
    if (config_.use_karras_sigmas) {
      // The Karras ramp spans the whole training range; the timesteps follow from its sigmas,
      // so the spacing does not matter here.
      const std::vector<double> sigmas =
          KarrasSigmas(train_sigmas_.front(), train_sigmas_.back(), steps);
      const std::vector<float> log_sigmas = LogSigmas(train_sigmas_);
      timesteps.clear();
      for (double s : sigmas) {
        timesteps.push_back(static_cast<int64_t>(NumpyRound(SigmaToTimestep(s, log_sigmas))));
        sigma_values_.push_back(static_cast<float>(s));
      }
    } else {
      for (int64_t t : timesteps) {
        sigma_values_.push_back(static_cast<float>(Interp(static_cast<double>(t), train_sigmas_)));
      }
    }
    // The smallest training sigma: the Karras ramp's own last value, as diffusers 0.24 repeats it.
    const float sigma_min =
        config_.use_karras_sigmas ? sigma_values_.back() : train_sigmas_.front();
    sigma_values_.push_back(config_.final_sigmas == FinalSigmas::kZero ? 0.0f : sigma_min);
    timesteps_ = torch::tensor(timesteps, torch::kLong);
    sigmas_ = torch::tensor(sigma_values_, torch::kFloat32);
    Reset();
    return absl::OkStatus();
  }

  double init_noise_sigma() const override { return 1.0; }

  torch::Tensor ScaleModelInput(const torch::Tensor& sample, int64_t index) const override {
    CheckIndex(*this, index, num_steps(), "ScaleModelInput");
    return sample;
  }

  StepOutput Step(const torch::Tensor& model_output, int64_t index, const torch::Tensor& sample,
                  const torch::Tensor& noise) override {
    CheckIndex(*this, index, num_steps(), "DPM++ Step");
    CheckStepShapes(model_output, sample, noise);
    const torch::Tensor x = ToStepPrecision(sample);
    const torch::Tensor x0 =
        ConvertModelOutput(ToStepPrecision(model_output), x, sigma_values_[index]);
    const int64_t steps = num_steps();
    const bool first_order_final =
        index == steps - 1 && (config_.euler_at_final ||
                               (config_.lower_order_final && steps < kLowerOrderFinalBelowSteps) ||
                               config_.final_sigmas == FinalSigmas::kZero);
    // The multistep history is usable only when it holds the previous step's output.
    const bool second_order =
        !first_order_final && index >= 1 && previous_index_ == index - 1 && previous_x0_.defined();
    const torch::Tensor prev_sample = second_order ? SecondOrderUpdate(x0, previous_x0_, x, index)
                                                   : FirstOrderUpdate(x0, x, index);
    previous_x0_ = x0;
    previous_index_ = index;
    return {prev_sample.to(sample.scalar_type()), x0.to(sample.scalar_type())};
  }

  void Reset() override {
    previous_x0_ = torch::Tensor();
    previous_index_ = -1;
  }

  torch::Tensor AddNoise(const torch::Tensor& original, const torch::Tensor& noise,
                         int64_t index) const override {
    CheckIndex(*this, index, num_steps() + 1, "AddNoise");
    if (index == num_steps()) return original;
    const AlphaSigma level = ToAlphaSigma(sigma_values_[index]);
    return original * level.alpha + noise * level.sigma;
  }

  torch::Tensor Renoise(const torch::Tensor& sample, const torch::Tensor& noise,
                        int64_t index) const override {
    CheckIndex(*this, index, num_steps(), "Renoise");
    // alphas_cumprod of the two levels: 1 / (sigma^2 + 1).
    const double from_sigma = sigma_values_[index + 1];
    const double to_sigma = sigma_values_[index];
    const double ratio =
        (from_sigma * from_sigma + 1.0) / (to_sigma * to_sigma + 1.0);  // a_i / a_next
    return sample * std::sqrt(ratio) + noise * std::sqrt(std::max(1.0 - ratio, 0.0));
  }

 private:
  // How many of the top training timesteps lambda_min_clipped removes: searchsorted over the
  // flipped (ascending) lambda_t, with diffusers' float32 torch ops.
  int64_t ClippedTimesteps() const {
    if (std::isinf(config_.lambda_min_clipped) && config_.lambda_min_clipped < 0) return 0;
    const torch::Tensor acp = schedule_.alphas_cumprod();
    const torch::Tensor lambda_t = torch::log(acp.sqrt()) - torch::log((1 - acp).sqrt());
    const torch::Tensor bound = torch::tensor({config_.lambda_min_clipped}, torch::kFloat32);
    return torch::searchsorted(lambda_t.flip({0}), bound).item<int64_t>();
  }

  // The data prediction x0 (dpmsolver++ integrates it rather than the noise).
  torch::Tensor ConvertModelOutput(const torch::Tensor& model_output, const torch::Tensor& sample,
                                   float sigma) const {
    const AlphaSigma s = ToAlphaSigma(sigma);
    if (config_.schedule.prediction_type == PredictionType::kVPrediction) {
      return sample * s.alpha - model_output * s.sigma;
    }
    return (sample - model_output * s.sigma) / s.alpha;
  }

  // DPM-Solver++ first order (DDIM in lambda): x_t = (sigma_t / sigma_s) x - alpha_t (e^-h - 1) x0.
  torch::Tensor FirstOrderUpdate(const torch::Tensor& x0, const torch::Tensor& sample,
                                 int64_t index) const {
    if (sigma_values_[index + 1] == 0.0f) return x0.clone();  // h = inf: the limit is x0 itself
    const AlphaSigma t = ToAlphaSigma(sigma_values_[index + 1]);
    const AlphaSigma s = ToAlphaSigma(sigma_values_[index]);
    const float h = t.lambda() - s.lambda();
    return sample * (t.sigma / s.sigma) - x0 * (t.alpha * (std::exp(-h) - 1.0f));
  }

  // DPM-Solver++(2M), midpoint: the first-order step plus half the finite-difference slope
  // D1 = (m0 - m1) / r0 between this step's and the previous step's data predictions.
  torch::Tensor SecondOrderUpdate(const torch::Tensor& m0, const torch::Tensor& m1,
                                  const torch::Tensor& sample, int64_t index) const {
    if (sigma_values_[index + 1] == 0.0f) return m0.clone();
    const AlphaSigma t = ToAlphaSigma(sigma_values_[index + 1]);
    const AlphaSigma s0 = ToAlphaSigma(sigma_values_[index]);
    const AlphaSigma s1 = ToAlphaSigma(sigma_values_[index - 1]);
    const float lambda_s0 = s0.lambda();
    const float h = t.lambda() - lambda_s0;
    const float r0 = (lambda_s0 - s1.lambda()) / h;
    const torch::Tensor d1 = (m0 - m1) * (1.0f / r0);
    const float c = t.alpha * (std::exp(-h) - 1.0f);
    return sample * (t.sigma / s0.sigma) - m0 * c - d1 * (0.5f * c);
  }

  std::vector<float> train_sigmas_;  // [num_train_timesteps], float32
  std::vector<float> sigma_values_;  // sigmas_ on the host: [steps + 1]
  torch::Tensor previous_x0_;        // the last Step's data prediction
  int64_t previous_index_ = -1;      // ... and its step index
};

}  // namespace

std::unique_ptr<Scheduler> NewDpmSolverScheduler(const SchedulerConfig& config) {
  return std::make_unique<DpmSolverScheduler>(config);
}

}  // namespace likeness::sample::internal
