#include "worker/dist/requeue.h"

#include <csignal>

#include "absl/strings/cord.h"

namespace likeness::dist {
namespace {

static_assert(kPreemptSignal == SIGUSR1, "kPreemptSignal must be SIGUSR1");

// sig_atomic_t: the only type a handler may write that the program may read back.
volatile std::sig_atomic_t preempt_requested = 0;

extern "C" void OnPreemptSignal(int) { preempt_requested = 1; }

}  // namespace

absl::Status MarkRequeue(absl::Status status) {
  if (status.ok()) return status;
  status.SetPayload(kRequeuePayloadUrl, absl::Cord("1"));
  return status;
}

bool IsRequeue(const absl::Status& status) {
  return !status.ok() && status.GetPayload(kRequeuePayloadUrl).has_value();
}

int ExitCodeFor(const absl::Status& status, int failure_code) {
  if (status.ok()) return 0;
  return IsRequeue(status) ? kRequeueExitCode : failure_code;
}

void InstallPreemptHandler() {
  struct sigaction action = {};
  action.sa_handler = OnPreemptSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // a signal during a read or write must not fail it
  sigaction(kPreemptSignal, &action, nullptr);
}

bool PreemptRequested() { return preempt_requested != 0; }

void SetPreemptRequestedForTesting(bool requested) { preempt_requested = requested ? 1 : 0; }

}  // namespace likeness::dist
