#include "worker/sample/schedule_math.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace likeness::sample::internal {
namespace {

// numpy 1.24's float32 log (AVX2/AVX512F loops): log(1 + x) as a ratio of two degree-5
// minimax polynomials on the mantissa, in fused multiply-adds. Its coefficients, verbatim.
constexpr float kLogP[] = {0.000000000000000000000e+00f, 9.999999999999998702752e-01f,
                           2.112677543073053063722e+00f, 1.480000633576506585156e+00f,
                           3.808837741388407920751e-01f, 2.589979117907922693523e-02f};
constexpr float kLogQ[] = {1.000000000000000000000e+00f, 2.612677543073109236779e+00f,
                           2.453006071784736363091e+00f, 9.864942958519418960339e-01f,
                           1.546476374983906719538e-01f, 5.875095403124574342950e-03f};
constexpr float kLogE2 = 0.693147180559945309417232121458176568f;
constexpr float kSqrtHalf = 0.707106781186547524400844362104849039f;
constexpr uint32_t kFloatMantissaBits = 0x7fffff;
constexpr uint32_t kHalfExponentBits = 126u << 23;  // a mantissa scaled into [0.5, 1)
constexpr int kFloatExponentShift = 23;
constexpr int kHalfExponentBias = 0x7E;

// "trailing" as diffusers writes it: np.arange(start, 0, -train_steps / steps).round() - 1.
// numpy's length can come out one too long (a last value of -1) for some step counts; `steps`
// caps it, so a schedule never has a negative timestep.
std::vector<double> TrailingRounded(double start, int64_t train_steps, int64_t steps) {
  const double step_ratio = static_cast<double>(train_steps) / static_cast<double>(steps);
  const int64_t count = std::min(steps, NumpyArangeLength(start, 0.0, -step_ratio));
  std::vector<double> values = NumpyArange(start, -step_ratio, count);
  for (double& v : values) v = NumpyRound(v) - 1.0;
  return values;
}

}  // namespace

std::vector<double> NumpyLinspace(double start, double stop, int64_t num) {
  std::vector<double> values(std::max<int64_t>(num, 0));
  if (num == 1) {
    values[0] = start;
  } else if (num > 1) {
    const double step = (stop - start) / static_cast<double>(num - 1);
    for (int64_t i = 0; i < num; ++i) values[i] = static_cast<double>(i) * step + start;
    values[num - 1] = stop;
  }
  return values;
}

std::vector<double> NumpyArange(double start, double step, int64_t count) {
  std::vector<double> values(std::max<int64_t>(count, 0));
  if (count >= 1) values[0] = start;
  if (count >= 2) values[1] = start + step;
  if (count >= 3) {
    const double delta = values[1] - start;
    for (int64_t i = 2; i < count; ++i) values[i] = start + static_cast<double>(i) * delta;
  }
  return values;
}

int64_t NumpyArangeLength(double start, double stop, double step) {
  const double length = std::ceil((stop - start) / step);
  return length > 0 ? static_cast<int64_t>(length) : 0;
}

double NumpyRound(double x) { return std::nearbyint(x); }

std::vector<float> TrainSigmas(const NoiseSchedule& schedule) {
  const torch::Tensor acp = schedule.alphas_cumprod().contiguous();
  const float* a = acp.data_ptr<float>();
  std::vector<float> sigmas(acp.numel());
  for (size_t t = 0; t < sigmas.size(); ++t) sigmas[t] = std::sqrt((1.0f - a[t]) / a[t]);
  return sigmas;
}

float NumpyLogf(float x) {
  if (!(x >= FLT_MIN) || std::isinf(x)) return std::log(x);  // never a training sigma
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof(bits));
  // x = m * 2^e with m in [0.5, 1); below sqrt(1/2) take 2m and e - 1, so m - 1 is small.
  float exponent =
      static_cast<float>(static_cast<int>(bits >> kFloatExponentShift) - kHalfExponentBias);
  const uint32_t mantissa_bits = (bits & kFloatMantissaBits) | kHalfExponentBits;
  float m;
  std::memcpy(&m, &mantissa_bits, sizeof(m));
  if (m <= kSqrtHalf) {
    m = m + m;
    exponent = exponent - 1.0f;
  }
  m = m - 1.0f;
  float num = std::fma(kLogP[5], m, kLogP[4]);
  float den = std::fma(kLogQ[5], m, kLogQ[4]);
  for (int i = 3; i >= 0; --i) {
    num = std::fma(num, m, kLogP[i]);
    den = std::fma(den, m, kLogQ[i]);
  }
  return std::fma(exponent, kLogE2, num / den);
}

std::vector<float> LogSigmas(const std::vector<float>& train_sigmas) {
  std::vector<float> logs(train_sigmas.size());
  for (size_t t = 0; t < logs.size(); ++t) logs[t] = NumpyLogf(train_sigmas[t]);
  return logs;
}

double Interp(double x, const std::vector<float>& fp) {
  const int64_t n = static_cast<int64_t>(fp.size());
  if (std::isnan(x)) return x;
  if (x <= 0.0) return fp[0];  // left of the table (numpy's `left`), or exactly on xp[0]
  if (x >= static_cast<double>(n - 1)) return fp[n - 1];
  const int64_t j = static_cast<int64_t>(std::floor(x));
  if (static_cast<double>(j) == x) return fp[j];
  const double slope = (static_cast<double>(fp[j + 1]) - static_cast<double>(fp[j])) / 1.0;
  return slope * (x - static_cast<double>(j)) + static_cast<double>(fp[j]);
}

std::vector<double> KarrasSigmas(double sigma_min, double sigma_max, int64_t steps) {
  const std::vector<double> ramp = NumpyLinspace(0.0, 1.0, steps);
  const double min_inv_rho = std::pow(sigma_min, 1.0 / kKarrasRho);
  const double max_inv_rho = std::pow(sigma_max, 1.0 / kKarrasRho);
  std::vector<double> sigmas(ramp.size());
  for (size_t i = 0; i < ramp.size(); ++i) {
    sigmas[i] = std::pow(max_inv_rho + ramp[i] * (min_inv_rho - max_inv_rho), kKarrasRho);
  }
  return sigmas;
}

double SigmaToTimestep(double sigma, const std::vector<float>& log_sigmas) {
  const int64_t n = static_cast<int64_t>(log_sigmas.size());
  const float log_sigma = static_cast<float>(std::log(std::max(sigma, kSigmaToTimestepFloor)));
  // cumsum(dists >= 0).argmax(): the last index whose log sigma is <= ours, 0 if none.
  int64_t low = 0;
  for (int64_t k = 0; k < n; ++k) {
    if (log_sigma - log_sigmas[k] >= 0.0f) low = k;
  }
  low = std::min(low, n - 2);
  const int64_t high = low + 1;
  const float lo = log_sigmas[low];
  const float hi = log_sigmas[high];
  const float w = std::clamp((lo - log_sigma) / (lo - hi), 0.0f, 1.0f);
  return static_cast<double>(1.0f - w) * static_cast<double>(low) +
         static_cast<double>(w) * static_cast<double>(high);
}

std::vector<float> EulerTimesteps(TimestepSpacing spacing, int64_t train_steps, int64_t steps,
                                  int64_t steps_offset) {
  std::vector<float> timesteps;
  timesteps.reserve(steps);
  switch (spacing) {
    case TimestepSpacing::kLinspace: {
      const std::vector<double> values =
          NumpyLinspace(0.0, static_cast<double>(train_steps - 1), steps);
      for (auto it = values.rbegin(); it != values.rend(); ++it)
        timesteps.push_back(static_cast<float>(*it));
      break;
    }
    case TimestepSpacing::kLeading: {
      const int64_t step_ratio = train_steps / steps;
      for (int64_t i = steps - 1; i >= 0; --i) {
        timesteps.push_back(static_cast<float>(i * step_ratio) + static_cast<float>(steps_offset));
      }
      break;
    }
    case TimestepSpacing::kTrailing: {
      for (double v : TrailingRounded(static_cast<double>(train_steps), train_steps, steps)) {
        timesteps.push_back(static_cast<float>(v));
      }
      break;
    }
  }
  return timesteps;
}

std::vector<int64_t> DdimTimesteps(TimestepSpacing spacing, int64_t train_steps, int64_t steps,
                                   int64_t steps_offset) {
  std::vector<int64_t> timesteps;
  timesteps.reserve(steps);
  switch (spacing) {
    case TimestepSpacing::kLinspace: {
      const std::vector<double> values =
          NumpyLinspace(0.0, static_cast<double>(train_steps - 1), steps);
      for (auto it = values.rbegin(); it != values.rend(); ++it) {
        timesteps.push_back(static_cast<int64_t>(NumpyRound(*it)));
      }
      break;
    }
    case TimestepSpacing::kLeading: {
      const int64_t step_ratio = train_steps / steps;
      for (int64_t i = steps - 1; i >= 0; --i) timesteps.push_back(i * step_ratio + steps_offset);
      break;
    }
    case TimestepSpacing::kTrailing: {
      for (double v : TrailingRounded(static_cast<double>(train_steps), train_steps, steps)) {
        timesteps.push_back(static_cast<int64_t>(v));
      }
      break;
    }
  }
  return timesteps;
}

std::vector<int64_t> DpmTimesteps(TimestepSpacing spacing, int64_t train_steps,
                                  int64_t last_timestep, int64_t steps, int64_t steps_offset) {
  std::vector<int64_t> timesteps;
  timesteps.reserve(steps);
  switch (spacing) {
    case TimestepSpacing::kLinspace: {
      // np.linspace(0, last - 1, steps + 1).round()[::-1][:-1]: the 0 at the end is dropped.
      const std::vector<double> values =
          NumpyLinspace(0.0, static_cast<double>(last_timestep - 1), steps + 1);
      for (int64_t i = steps; i >= 1; --i)
        timesteps.push_back(static_cast<int64_t>(NumpyRound(values[i])));
      break;
    }
    case TimestepSpacing::kLeading: {
      const int64_t step_ratio = last_timestep / (steps + 1);
      for (int64_t i = steps; i >= 1; --i) timesteps.push_back(i * step_ratio + steps_offset);
      break;
    }
    case TimestepSpacing::kTrailing: {
      for (double v : TrailingRounded(static_cast<double>(last_timestep), train_steps, steps)) {
        timesteps.push_back(static_cast<int64_t>(v));
      }
      break;
    }
  }
  return timesteps;
}

}  // namespace likeness::sample::internal
