// Client side of the coordinator's services, shared by the CLI, the worker agent and tests:
// a channel with the same TLS and size options as the server, and the bearer token on every
// call (gRPC refuses call credentials on plaintext channels, so the header is set per call).
#ifndef LIKENESS_COORDINATOR_CLIENT_H_
#define LIKENESS_COORDINATOR_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "coordinator/constants.h"

namespace likeness::coordinator {

struct ClientOptions {
  std::string address = kDefaultListenAddress;
  std::string token;
  // TLS: the CA that signed the server's certificate; with cert/key the client also presents
  // its own (mutual TLS). None of them: plaintext.
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  int max_message_bytes = kMaxMessageBytes;
};

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const ClientOptions& options);

// A context carrying the token, with a deadline `timeout` from now (none when zero).
std::unique_ptr<grpc::ClientContext> MakeContext(const std::string& token,
                                                 std::chrono::milliseconds timeout =
                                                     std::chrono::milliseconds(0));

}  // namespace likeness::coordinator

#endif  // LIKENESS_COORDINATOR_CLIENT_H_
