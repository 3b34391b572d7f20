// A data-parallel "training" loop on a small network, for the fault tests (dist_faults_test.cc
// runs it under mpirun). Usage: dist_fault_driver SCENARIO, SCENARIO one of
//   ok        ten steps, exit 0;
//   kill      the last rank SIGKILLs itself in the middle of step 3's backward;
//   stall     the last rank SIGSTOPs itself there (alive, but never reaches the collective).
// Rank 0 prints "step N" after each step. The other ranks must end within the collective
// timeout with the communicator's error and dist::kRequeueExitCode.
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include <torch/torch.h>

#include "worker/dist/bucketed_reducer.h"
#include "worker/dist/communicator_factory.h"
#include "worker/dist/requeue.h"

namespace {

constexpr int kSteps = 10;
constexpr int kFaultStep = 3;
constexpr int kLayers = 6;
constexpr int kWidth = 64;
// One layer per bucket, so the first buckets are in flight when the fault strikes.
constexpr int64_t kBucketBytes = (kWidth * kWidth + kWidth) * 4;

int Run(const std::string& scenario) {
  using namespace likeness;
  absl::StatusOr<std::unique_ptr<dist::Communicator>> comm = dist::CommunicatorFromEnvironment();
  if (!comm.ok()) {
    std::fprintf(stderr, "%s\n", comm.status().ToString().c_str());
    return 1;
  }
  const bool faulty = (*comm)->rank() == (*comm)->size() - 1 && scenario != "ok";
  torch::manual_seed((*comm)->rank());
  std::vector<torch::nn::Linear> layers;
  std::vector<torch::Tensor> params;
  for (int i = 0; i < kLayers; ++i) {
    layers.push_back(torch::nn::Linear(kWidth, kWidth));
    params.push_back(layers.back()->weight);
    params.push_back(layers.back()->bias);
  }
  dist::BucketedGradientReducer reducer(comm->get(), dist::BucketedReducerOptions{kBucketBytes});
  absl::Status status = reducer.SyncParameters(params, 0);
  for (int step = 0; step < kSteps && status.ok(); ++step) {
    for (auto& p : params) p.mutable_grad() = torch::Tensor();
    reducer.PrepareBackward(true);
    torch::Tensor h = torch::randn({8, kWidth});
    for (int i = 0; i < kLayers; ++i) {
      h = torch::tanh(layers[i]->forward(h));
      if (faulty && step == kFaultStep && i == kLayers / 2) {
        // Fires halfway through backward: the last layers' buckets have started.
        h.register_hook([scenario](const torch::Tensor& g) {
          std::raise(scenario == "kill" ? SIGKILL : SIGSTOP);
          return g;
        });
      }
    }
    h.pow(2).mean().backward();
    std::vector<torch::Tensor> grads;
    for (const auto& p : params) grads.push_back(p.grad());
    status = reducer.ReduceGradients(grads);
    if (status.ok() && (*comm)->rank() == 0) std::printf("step %d\n", step), std::fflush(stdout);
  }
  if (!status.ok()) {
    std::fprintf(stderr, "%s\n", status.ToString().c_str());
    return dist::ExitCodeFor(status, 1);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: dist_fault_driver ok|kill|stall\n");
    return 2;
  }
  return Run(argv[1]);
}
