// likeness-worker: the node agent (register, lease, heartbeat, report; issue 7 grows it).
// Today it checks that the coordinator answers and reports what this node can run.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "common/flags_usage.h"
#include "coordinator/auth.h"
#include "coordinator/client.h"
#include "kernels/kernels_info.h"
#include "protos/likeness.grpc.pb.h"

ABSL_FLAG(std::string, coordinator, "127.0.0.1:50051", "host:port of likeness-coordinator");
ABSL_FLAG(int, connect_timeout_s, 10, "seconds to wait for the coordinator's answer");
ABSL_FLAG(std::string, token_file, "",
          "file holding the coordinator's bearer token (default: $LIKENESS_TOKEN, else "
          "runs/coordinator/token when it exists)");
ABSL_FLAG(std::string, tls_ca, "", "PEM CA of the coordinator's certificate (enables TLS)");

namespace {

constexpr char kUsage[] =
    "likeness-worker: the agent that runs on every node. Registers its GPUs with the\n"
    "coordinator, leases jobs, runs them and reports progress and artifacts.\n\n"
    "Usage: likeness-worker --coordinator=HOST:PORT";

}  // namespace

int main(int argc, char** argv) {
  likeness::ParseMainFlags(argc, argv, kUsage, std::string("likeness-worker ") + LIKENESS_VERSION);
  const std::string address = absl::GetFlag(FLAGS_coordinator);
  // The coordinator's default token file, for a worker started beside it.
  constexpr char kDefaultTokenFile[] = "runs/coordinator/token";
  auto token = likeness::coordinator::ResolveClientToken(absl::GetFlag(FLAGS_token_file),
                                                         kDefaultTokenFile);
  if (!token.ok()) {
    std::cerr << "likeness-worker: " << token.status().message() << "\n";
    return 1;
  }
  likeness::coordinator::ClientOptions options;
  options.address = address;
  options.token = *token;
  options.tls_ca_file = absl::GetFlag(FLAGS_tls_ca);
  auto channel = likeness::coordinator::MakeChannel(options);
  if (!channel.ok()) {
    std::cerr << "likeness-worker: " << channel.status().message() << "\n";
    return 1;
  }
  auto stub = likeness::v1::Coordinator::NewStub(*channel);
  auto context = likeness::coordinator::MakeContext(
      *token, std::chrono::seconds(absl::GetFlag(FLAGS_connect_timeout_s)));
  context->set_wait_for_ready(true);
  likeness::v1::HealthResponse response;
  grpc::Status status = stub->Health(context.get(), likeness::v1::HealthRequest(), &response);
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
