// Test switches the benchmarks read, so a test can make a benchmark deliberately slower and
// check that the nightly report flags it (tests/bench/nightly_regression_test.sh).
#ifndef LIKENESS_BENCHMARKS_BENCH_SWITCHES_H_
#define LIKENESS_BENCHMARKS_BENCH_SWITCHES_H_

namespace likeness::bench {

// Milliseconds each benchmark adds to every timed unit of its work (generate_benchmark: each
// sampling step; sdxl_load_benchmark: the load). Unset or 0 in every real run.
constexpr char kInjectDelayEnv[] = "LIKENESS_BENCH_INJECT_DELAY_MS";

// The delay from kInjectDelayEnv, read on the first call; 0 when unset or not a non-negative
// integer.
int InjectedDelayMs();

// Sleeps for InjectedDelayMs(); call it inside the timed region.
void SleepInjectedDelay();

}  // namespace likeness::bench

#endif  // LIKENESS_BENCHMARKS_BENCH_SWITCHES_H_
