// likeness-coordinator: expands sweeps into jobs and leases them to workers (issue 7 grows it).
// Today it serves the Coordinator service's Health call until SIGINT/SIGTERM.
#include <grpcpp/grpcpp.h>
#include <pthread.h>

#include <chrono>
#include <csignal>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

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

// How long in-flight calls get to finish after SIGINT/SIGTERM.
constexpr std::chrono::seconds kShutdownGrace(5);

}  // namespace

int main(int argc, char** argv) {
  likeness::ParseMainFlags(argc, argv, kUsage, std::string("likeness-coordinator ") + LIKENESS_VERSION);
  // SIGINT/SIGTERM are blocked in every thread (gRPC's included, which inherit the mask) and
  // taken by one thread with sigwait, where calling Shutdown is safe; a signal handler could not.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  likeness::coordinator::HealthService service(LIKENESS_VERSION);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(absl::GetFlag(FLAGS_listen), grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::cerr << "likeness-coordinator: cannot listen on " << absl::GetFlag(FLAGS_listen) << "\n";
    return 1;
  }
  std::thread stopper([&server, &stop_signals] {
    int signal = 0;
    sigwait(&stop_signals, &signal);
    std::cout << "likeness-coordinator: signal " << signal << ", shutting down" << std::endl;
    server->Shutdown(std::chrono::system_clock::now() + kShutdownGrace);
  });
  std::cout << "likeness-coordinator listening on port " << port << std::endl;
  server->Wait();
  stopper.join();
  return 0;
}
