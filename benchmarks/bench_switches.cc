#include "benchmarks/bench_switches.h"

#include <chrono>
#include <cstdlib>
#include <thread>

#include "absl/strings/numbers.h"

namespace likeness::bench {

int InjectedDelayMs() {
  // Read once: the switch is set before the process starts, and a timed loop should not pay
  // for getenv on every step.
  static const int delay_ms = [] {
    const char* text = std::getenv(kInjectDelayEnv);
    int ms = 0;
    if (text == nullptr || !absl::SimpleAtoi(text, &ms) || ms < 0) return 0;
    return ms;
  }();
  return delay_ms;
}

void SleepInjectedDelay() {
  const int ms = InjectedDelayMs();
  if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

}  // namespace likeness::bench
