// likeness-coordinator: expands sweeps into jobs and leases them to workers (issue 7 grows it).
// Today it serves the Coordinator service's Health call until SIGINT/SIGTERM.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <csignal>
#include <iostream>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "common/flags_usage.h"
#include "coordinator/health_service.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051",
          "host:port the gRPC service listens on; port 0 picks a free one");

namespace {

constexpr char kUsage[] =
    "likeness-coordinator: the cluster's coordinator. Expands sweeps into train -> generate ->\n"
    "evaluate jobs, leases them to workers and keeps a journal.\n\n"
    "Usage: likeness-coordinator [--listen=HOST:PORT]";

std::unique_ptr<grpc::Server> server;

void Shutdown(int) {
  // Shutdown from a signal handler must not block; grpc's Shutdown with an immediate deadline
  // only flags the server, and Wait() in main returns.
  if (server) server->Shutdown(std::chrono::system_clock::now());
}

}  // namespace

int main(int argc, char** argv) {
  likeness::ParseMainFlags(argc, argv, kUsage, std::string("likeness-coordinator ") + LIKENESS_VERSION);
  likeness::coordinator::HealthService service(LIKENESS_VERSION);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(absl::GetFlag(FLAGS_listen), grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::cerr << "likeness-coordinator: cannot listen on " << absl::GetFlag(FLAGS_listen) << "\n";
    return 1;
  }
  std::cout << "likeness-coordinator listening on port " << port << std::endl;
  std::signal(SIGINT, Shutdown);
  std::signal(SIGTERM, Shutdown);
  server->Wait();
  return 0;
}
