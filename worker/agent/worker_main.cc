// likeness-worker: the node agent (register, lease, heartbeat, report; issue 7 grows it).
// Today it checks that the coordinator answers and reports what this node can run.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "common/flags_usage.h"
#include "kernels/kernels_info.h"
#include "protos/likeness.grpc.pb.h"

ABSL_FLAG(std::string, coordinator, "127.0.0.1:50051", "host:port of likeness-coordinator");
ABSL_FLAG(int, connect_timeout_s, 10, "seconds to wait for the coordinator's answer");

namespace {

constexpr char kUsage[] =
    "likeness-worker: the agent that runs on every node. Registers its GPUs with the\n"
    "coordinator, leases jobs, runs them and reports progress and artifacts.\n\n"
    "Usage: likeness-worker --coordinator=HOST:PORT";

}  // namespace

int main(int argc, char** argv) {
  likeness::ParseMainFlags(argc, argv, kUsage, std::string("likeness-worker ") + LIKENESS_VERSION);
  const std::string address = absl::GetFlag(FLAGS_coordinator);
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  auto stub = likeness::v1::Coordinator::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(absl::GetFlag(FLAGS_connect_timeout_s)));
  context.set_wait_for_ready(true);
  likeness::v1::HealthResponse response;
  grpc::Status status = stub->Health(&context, likeness::v1::HealthRequest(), &response);
  if (!status.ok()) {
    std::cerr << "likeness-worker: coordinator at " << address
              << " did not answer: " << status.error_message() << "\n";
    return 1;
  }
  std::cout << "coordinator " << address << ": version " << response.version() << ", up "
            << response.uptime_seconds() << " s\n"
            << "this node: " << likeness::kernels::CudaDeviceCount() << " CUDA device(s)\n";
  return 0;
}
