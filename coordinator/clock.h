// The coordinator's time source. Leases, heartbeats and timestamps read it through this
// interface so tests move time by hand (STYLE.md §7: seams for failure).
#ifndef LIKENESS_COORDINATOR_CLOCK_H_
#define LIKENESS_COORDINATOR_CLOCK_H_

#include <atomic>
#include <chrono>
#include <cstdint>

namespace likeness::coordinator {

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch: stored in the journal, so it must survive restarts
  // (a steady clock would not).
  virtual int64_t NowMs() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t NowMs() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

// A clock that moves only when told to; thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t start_ms = 1'700'000'000'000) : now_ms_(start_ms) {}
  int64_t NowMs() const override { return now_ms_.load(); }
  void AdvanceMs(int64_t ms) { now_ms_ += ms; }

 private:
  std::atomic<int64_t> now_ms_;
};

}  // namespace likeness::coordinator

#endif  // LIKENESS_COORDINATOR_CLOCK_H_
