// SchedulerConfig: diffusers' scheduler_config.json, and SDXL base's values.
#include <cmath>
#include <limits>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "worker/sample/scheduler.h"
#include "worker/sample/scheduler_internal.h"

namespace likeness::sample {
namespace {

// How much of an offending value an error message quotes.
constexpr size_t kMaxQuotedValueChars = 60;

// SDXL base 1.0's scheduler/scheduler_config.json (EulerDiscreteScheduler, diffusers 0.19).
constexpr TimestepSpacing kSdxlSpacing = TimestepSpacing::kLeading;
constexpr int64_t kSdxlStepsOffset = 1;

// Scheduler classes whose noise is not the DDPM schedule's (by class name prefix).
constexpr const char* kForeignSchedulerPrefixes[] = {"EDM", "FlowMatch"};

// The strict-JSON spellings of non-finite floats (golden sidecars), and Python's bare ones.
constexpr char kNegativeInfinity[] = "-Infinity";
constexpr char kPositiveInfinity[] = "Infinity";

std::string Quote(const nlohmann::json& value) {
  std::string text = value.dump();
  if (text.size() > kMaxQuotedValueChars) text = text.substr(0, kMaxQuotedValueChars) + "...";
  return text;
}

absl::Status FieldError(const char* field, absl::string_view want, const nlohmann::json& got) {
  return absl::InvalidArgumentError(
      absl::StrCat("scheduler config field '", field, "': want ", want, ", got ", Quote(got)));
}

// Each Read* leaves `out` as it is when `field` is absent.
absl::Status ReadInt(const nlohmann::json& json, const char* field, int64_t& out) {
  const auto it = json.find(field);
  if (it == json.end()) return absl::OkStatus();
  // Python writes integral floats as 1.0 when a config was edited by hand; accept those.
  if (it->is_number_integer()) {
    out = it->get<int64_t>();
  } else if (it->is_number_float() && std::floor(it->get<double>()) == it->get<double>() &&
             std::abs(it->get<double>()) <
                 static_cast<double>(std::numeric_limits<int32_t>::max())) {
    out = static_cast<int64_t>(it->get<double>());
  } else {
    return FieldError(field, "an integer", *it);
  }
  return absl::OkStatus();
}

// A finite number, or (with `allow_infinite`) also "-Infinity"/"Infinity" strings.
absl::Status ReadDouble(const nlohmann::json& json, const char* field, double& out,
                        bool allow_infinite = false) {
  const auto it = json.find(field);
  if (it == json.end()) return absl::OkStatus();
  if (it->is_number()) {
    out = it->get<double>();
    if (std::isfinite(out)) return absl::OkStatus();
  } else if (allow_infinite && it->is_string()) {
    if (it->get<std::string>() == kNegativeInfinity) {
      out = -std::numeric_limits<double>::infinity();
      return absl::OkStatus();
    }
    if (it->get<std::string>() == kPositiveInfinity) {
      out = std::numeric_limits<double>::infinity();
      return absl::OkStatus();
    }
  }
  return FieldError(field, allow_infinite ? "a number or \"-Infinity\"" : "a finite number", *it);
}

absl::Status ReadOptionalDouble(const nlohmann::json& json, const char* field,
                                std::optional<double>& out) {
  const auto it = json.find(field);
  if (it == json.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_number() || !std::isfinite(it->get<double>())) {
    return FieldError(field, "a number or null", *it);
  }
  out = it->get<double>();
  return absl::OkStatus();
}

absl::Status ReadBool(const nlohmann::json& json, const char* field, bool& out) {
  const auto it = json.find(field);
  if (it == json.end()) return absl::OkStatus();
  if (!it->is_boolean()) return FieldError(field, "true or false", *it);
  out = it->get<bool>();
  return absl::OkStatus();
}

// A string field; absent leaves `out` empty.
absl::Status ReadString(const nlohmann::json& json, const char* field, std::string& out) {
  const auto it = json.find(field);
  if (it == json.end()) return absl::OkStatus();
  if (!it->is_string()) return FieldError(field, "a string", *it);
  out = it->get<std::string>();
  return absl::OkStatus();
}

// A field naming a feature these samplers do not implement: fine while absent, null, false or
// equal to `off` (its "not used" value).
absl::Status RejectFeature(const nlohmann::json& json, const char* field,
                           const nlohmann::json& off = nlohmann::json(false)) {
  const auto it = json.find(field);
  if (it == json.end() || it->is_null() || *it == off || *it == false) return absl::OkStatus();
  return FieldError(field, absl::StrCat(Quote(off), " (the feature is not implemented)"), *it);
}

// A string field with a fixed set of accepted values, parsed by `parse`.
template <typename T, typename Parse>
absl::Status ReadEnum(const nlohmann::json& json, const char* field, const char* accepted, T& out,
                      Parse parse) {
  const auto it = json.find(field);
  if (it == json.end()) return absl::OkStatus();
  if (!it->is_string()) return FieldError(field, accepted, *it);
  absl::StatusOr<T> value = parse(it->get<std::string>());
  if (!value.ok()) return FieldError(field, accepted, *it);
  out = *value;
  return absl::OkStatus();
}

absl::StatusOr<FinalSigmas> ParseFinalSigmas(const std::string& name) {
  if (name == "zero") return FinalSigmas::kZero;
  if (name == "sigma_min") return FinalSigmas::kSigmaMin;
  return absl::InvalidArgumentError(name);
}

}  // namespace

namespace internal {

absl::Status ValidateSchedulerConfig(const SchedulerConfig& config) {
  const NoiseScheduleConfig& s = config.schedule;
  // Interpolation between training sigmas needs two of them.
  if (s.num_train_timesteps < 2) {
    return FieldError("num_train_timesteps", "an integer >= 2", s.num_train_timesteps);
  }
  // Betas are probabilities of the forward process; 0 or 1 make sigma 0 or infinite.
  if (!(s.beta_start > 0.0 && s.beta_start < 1.0)) {
    return FieldError("beta_start", "a number in (0, 1)", s.beta_start);
  }
  if (!(s.beta_end > 0.0 && s.beta_end < 1.0)) {
    return FieldError("beta_end", "a number in (0, 1)", s.beta_end);
  }
  if (config.steps_offset < 0 || config.steps_offset >= s.num_train_timesteps) {
    return FieldError("steps_offset", "an integer in [0, num_train_timesteps)",
                      config.steps_offset);
  }
  if (config.sigma_min.has_value() && !(*config.sigma_min > 0.0)) {
    return FieldError("sigma_min", "a positive number or null", *config.sigma_min);
  }
  if (config.sigma_max.has_value() && !(*config.sigma_max > 0.0)) {
    return FieldError("sigma_max", "a positive number or null", *config.sigma_max);
  }
  if (!(config.clip_sample_range > 0.0)) {
    return FieldError("clip_sample_range", "a positive number", config.clip_sample_range);
  }
  if (std::isnan(config.lambda_min_clipped)) {
    return FieldError("lambda_min_clipped", "a number", "NaN");
  }
  return absl::OkStatus();
}

}  // namespace internal

absl::StatusOr<TimestepSpacing> ParseTimestepSpacing(const std::string& name) {
  if (name == "leading") return TimestepSpacing::kLeading;
  if (name == "trailing") return TimestepSpacing::kTrailing;
  if (name == "linspace") return TimestepSpacing::kLinspace;
  return absl::InvalidArgumentError(absl::StrCat("unsupported timestep_spacing '", name,
                                                 "' (want 'leading', 'trailing' or 'linspace')"));
}

std::string TimestepSpacingName(TimestepSpacing spacing) {
  switch (spacing) {
    case TimestepSpacing::kLeading:
      return "leading";
    case TimestepSpacing::kTrailing:
      return "trailing";
    case TimestepSpacing::kLinspace:
      return "linspace";
  }
  return "leading";
}

absl::StatusOr<SchedulerConfig> SchedulerConfig::FromJson(const nlohmann::json& json) {
  if (!json.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("scheduler config: want a JSON object, got ", Quote(json)));
  }
  // EDM and flow-matching schedulers use another noise parameterization than the DDPM betas
  // every class here shares; their configs would parse into nonsense.
  if (const auto it = json.find("_class_name"); it != json.end()) {
    if (!it->is_string()) return FieldError("_class_name", "a string", *it);
    for (const char* prefix : kForeignSchedulerPrefixes) {
      if (absl::StartsWith(it->get<std::string>(), prefix)) {
        return FieldError("_class_name", "a DDPM-family scheduler (EDM and flow matching are not)",
                          *it);
      }
    }
  }
  SchedulerConfig config;
  NoiseScheduleConfig& s = config.schedule;
  // diffusers' own defaults differ per class (beta_schedule "linear", steps_offset 0, ...);
  // every SDXL-family config states them, and an absent key keeps SDXL's value here.
  LIKENESS_RETURN_IF_ERROR(ReadInt(json, "num_train_timesteps", s.num_train_timesteps));
  LIKENESS_RETURN_IF_ERROR(ReadDouble(json, "beta_start", s.beta_start));
  LIKENESS_RETURN_IF_ERROR(ReadDouble(json, "beta_end", s.beta_end));
  LIKENESS_RETURN_IF_ERROR(ReadEnum(json, "beta_schedule", "\"scaled_linear\" or \"linear\"",
                                    s.beta_schedule, ParseBetaSchedule));
  LIKENESS_RETURN_IF_ERROR(ReadEnum(json, "prediction_type", "\"epsilon\" or \"v_prediction\"",
                                    s.prediction_type, ParsePredictionType));
  LIKENESS_RETURN_IF_ERROR(ReadEnum(json, "timestep_spacing",
                                    "\"leading\", \"trailing\" or \"linspace\"", config.spacing,
                                    ParseTimestepSpacing));
  LIKENESS_RETURN_IF_ERROR(ReadInt(json, "steps_offset", config.steps_offset));
  LIKENESS_RETURN_IF_ERROR(ReadBool(json, "use_karras_sigmas", config.use_karras_sigmas));
  LIKENESS_RETURN_IF_ERROR(ReadBool(json, "set_alpha_to_one", config.set_alpha_to_one));
  LIKENESS_RETURN_IF_ERROR(ReadBool(json, "lower_order_final", config.lower_order_final));
  LIKENESS_RETURN_IF_ERROR(ReadBool(json, "euler_at_final", config.euler_at_final));
  LIKENESS_RETURN_IF_ERROR(ReadEnum(json, "final_sigmas_type", "\"zero\" or \"sigma_min\"",
                                    config.final_sigmas, ParseFinalSigmas));
  LIKENESS_RETURN_IF_ERROR(ReadDouble(json, "lambda_min_clipped", config.lambda_min_clipped,
                                      /*allow_infinite=*/true));
  LIKENESS_RETURN_IF_ERROR(ReadOptionalDouble(json, "sigma_min", config.sigma_min));
  LIKENESS_RETURN_IF_ERROR(ReadOptionalDouble(json, "sigma_max", config.sigma_max));
  LIKENESS_RETURN_IF_ERROR(ReadBool(json, "clip_sample", config.clip_sample));
  LIKENESS_RETURN_IF_ERROR(ReadDouble(json, "clip_sample_range", config.clip_sample_range));

  // Features with a value that changes the math, which these samplers do not implement.
  LIKENESS_RETURN_IF_ERROR(RejectFeature(json, "trained_betas"));
  LIKENESS_RETURN_IF_ERROR(RejectFeature(json, "thresholding"));
  LIKENESS_RETURN_IF_ERROR(RejectFeature(json, "rescale_betas_zero_snr"));
  LIKENESS_RETURN_IF_ERROR(RejectFeature(json, "use_lu_lambdas"));
  LIKENESS_RETURN_IF_ERROR(RejectFeature(json, "use_exponential_sigmas"));
  LIKENESS_RETURN_IF_ERROR(RejectFeature(json, "use_beta_sigmas"));
  LIKENESS_RETURN_IF_ERROR(RejectFeature(json, "use_flow_sigmas"));
  LIKENESS_RETURN_IF_ERROR(RejectFeature(json, "use_dynamic_shifting"));
  LIKENESS_RETURN_IF_ERROR(RejectFeature(json, "interpolation_type", "linear"));
  LIKENESS_RETURN_IF_ERROR(RejectFeature(json, "timestep_type", "discrete"));
  // variance_type: DPM's "learned"/"learned_range" split the UNet output's channels (DeepFloyd);
  // DDPM's own values ("fixed_small", ...) only concern DDPM sampling.
  if (const auto it = json.find("variance_type"); it != json.end() && !it->is_null()) {
    if (!it->is_string()) return FieldError("variance_type", "a string or null", *it);
    if (absl::StartsWith(it->get<std::string>(), "learned")) {
      return FieldError("variance_type", "not learned (learned variances are not implemented)",
                        *it);
    }
  }
  // algorithm_type / solver_order / solver_type: the SamplerKind decides them (see the header);
  // only their types are checked, so a typo still reads as an error.
  std::string ignored;
  LIKENESS_RETURN_IF_ERROR(ReadString(json, "algorithm_type", ignored));
  LIKENESS_RETURN_IF_ERROR(ReadString(json, "solver_type", ignored));
  int64_t ignored_order = 0;
  LIKENESS_RETURN_IF_ERROR(ReadInt(json, "solver_order", ignored_order));

  LIKENESS_RETURN_IF_ERROR(internal::ValidateSchedulerConfig(config));
  return config;
}

SchedulerConfig SchedulerConfig::SdxlBase() {
  SchedulerConfig config;
  config.schedule.num_train_timesteps = kSdxlTrainTimesteps;
  config.schedule.beta_start = kSdxlBetaStart;
  config.schedule.beta_end = kSdxlBetaEnd;
  config.schedule.beta_schedule = BetaSchedule::kScaledLinear;
  config.schedule.prediction_type = PredictionType::kEpsilon;
  config.spacing = kSdxlSpacing;
  config.steps_offset = kSdxlStepsOffset;
  config.use_karras_sigmas = false;
  config.set_alpha_to_one = false;
  config.clip_sample = false;
  return config;
}

}  // namespace likeness::sample
