// The coordinator's gRPC server: the Health, SweepService and WorkerService services over one
// port, with the bearer token checked on every call, optional TLS or mutual TLS, and message
// size limits. Binds 127.0.0.1 unless told otherwise (constants.h).
#ifndef LIKENESS_COORDINATOR_SERVER_H_
#define LIKENESS_COORDINATOR_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "coordinator/auth.h"
#include "coordinator/constants.h"
#include "coordinator/coordinator.h"
#include "coordinator/health_service.h"
#include "coordinator/sweep_service.h"
#include "coordinator/worker_service.h"

namespace likeness::coordinator {

struct ServerOptions {
  std::string listen = kDefaultListenAddress;  // port 0 picks a free one
  std::string token;                           // required: every call must carry it
  // TLS: both PEM files or neither. With tls_client_ca_file the server also requires a client
  // certificate signed by that CA (mutual TLS).
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
  int max_message_bytes = kMaxMessageBytes;
  std::string version;
};

class CoordinatorServer {
 public:
  static absl::StatusOr<std::unique_ptr<CoordinatorServer>> Start(Coordinator* coordinator,
                                                                  const ServerOptions& options);
  ~CoordinatorServer();

  int port() const { return port_; }
  // Stops accepting calls; in-flight ones get until `deadline`.
  void Shutdown(std::chrono::system_clock::time_point deadline);
  void Wait() { server_->Wait(); }

 private:
  CoordinatorServer(Coordinator* coordinator, const std::string& token, const std::string& version);

  Authenticator auth_;
  HealthService health_;
  SweepService sweeps_;
  WorkerService workers_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

// Reads a whole PEM file; errors name the file and the flag.
absl::StatusOr<std::string> ReadPemFile(const std::string& path, const std::string& flag);

}  // namespace likeness::coordinator

#endif  // LIKENESS_COORDINATOR_SERVER_H_
