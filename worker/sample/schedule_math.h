// Private to worker/sample: the timestep and sigma tables of diffusers' schedulers, computed
// the way diffusers computes them (numpy float64, then float32), operation for operation, so
// the tables come out bit for bit. Each function names the numpy expression it reproduces.
#ifndef LIKENESS_WORKER_SAMPLE_SCHEDULE_MATH_H_
#define LIKENESS_WORKER_SAMPLE_SCHEDULE_MATH_H_

#include <cstdint>
#include <vector>

#include "worker/sample/noise_schedule.h"
#include "worker/sample/scheduler.h"

namespace likeness::sample::internal {

// Karras et al. (2022)'s rho, the value diffusers and k-diffusion use.
inline constexpr double kKarrasRho = 7.0;
// _sigma_to_t's floor under sigma before its log (a sigma of 0 maps to timestep 0).
inline constexpr double kSigmaToTimestepFloor = 1e-10;

// np.linspace(start, stop, num) in float64: i * ((stop - start) / (num - 1)) + start, the last
// value exactly `stop`.
std::vector<double> NumpyLinspace(double start, double stop, int64_t num);
// The first `count` values of np.arange(start, stop, step) with a float step: numpy computes
// start + i * ((start + step) - start).
std::vector<double> NumpyArange(double start, double step, int64_t count);
// How many values np.arange(start, stop, step) has: ceil((stop - start) / step), at least 0.
int64_t NumpyArangeLength(double start, double stop, double step);
// ndarray.round(): to nearest, ties to even.
double NumpyRound(double x);

// The training sigmas sqrt((1 - acp) / acp), index t, in float32 as diffusers' torch ops give them.
std::vector<float> TrainSigmas(const NoiseSchedule& schedule);
// np.log of a float32 array as numpy 1.24 computes it on x86 with AVX2 or AVX512F (the
// reference's machines): not correctly rounded (3.8 ulp at most), which shows in the last bits
// of Euler's Karras timesteps. Positive normal inputs; others fall back to std::log.
float NumpyLogf(float x);
// np.log of the float32 training sigmas (float32), through NumpyLogf.
std::vector<float> LogSigmas(const std::vector<float>& train_sigmas);
// np.interp(x, arange(len(fp)), fp) in float64.
double Interp(double x, const std::vector<float>& fp);
// _convert_to_karras: (max^(1/rho) + ramp * (min^(1/rho) - max^(1/rho)))^rho, `steps` values.
std::vector<double> KarrasSigmas(double sigma_min, double sigma_max, int64_t steps);
// _sigma_to_t: the fractional timestep of `sigma` by linear interpolation in log sigma. numpy 1.x
// computes the distances and the weight in float32 (a float64 scalar does not promote a
// float32 array) and the final blend in float64; this does the same.
double SigmaToTimestep(double sigma, const std::vector<float>& log_sigmas);

// Timesteps of EulerDiscreteScheduler / EulerAncestralDiscreteScheduler.set_timesteps (float32).
std::vector<float> EulerTimesteps(TimestepSpacing spacing, int64_t train_steps, int64_t steps,
                                  int64_t steps_offset);
// Timesteps of DDIMScheduler.set_timesteps.
std::vector<int64_t> DdimTimesteps(TimestepSpacing spacing, int64_t train_steps, int64_t steps,
                                   int64_t steps_offset);
// Timesteps of DPMSolverMultistepScheduler.set_timesteps before Karras sigmas replace them.
// `last_timestep` is train_steps less the steps lambda_min_clipped removes; the result can be
// shorter than `steps` when it clips.
std::vector<int64_t> DpmTimesteps(TimestepSpacing spacing, int64_t train_steps,
                                  int64_t last_timestep, int64_t steps, int64_t steps_offset);

}  // namespace likeness::sample::internal

#endif  // LIKENESS_WORKER_SAMPLE_SCHEDULE_MATH_H_
