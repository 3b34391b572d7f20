#include "coordinator/server.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace likeness::coordinator {
namespace {

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeCredentials(
    const ServerOptions& options) {
  const bool has_cert = !options.tls_cert_file.empty(), has_key = !options.tls_key_file.empty();
  if (has_cert != has_key) {
    return absl::InvalidArgumentError("--tls_cert and --tls_key go together");
  }
  if (!has_cert) {
    if (!options.tls_client_ca_file.empty()) {
      return absl::InvalidArgumentError("--tls_client_ca (mutual TLS) needs --tls_cert and --tls_key");
    }
    return grpc::InsecureServerCredentials();
  }
  grpc::SslServerCredentialsOptions ssl;
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  LIKENESS_ASSIGN_OR_RETURN(pair.private_key, ReadPemFile(options.tls_key_file, "--tls_key"));
  LIKENESS_ASSIGN_OR_RETURN(pair.cert_chain, ReadPemFile(options.tls_cert_file, "--tls_cert"));
  ssl.pem_key_cert_pairs.push_back(pair);
  if (!options.tls_client_ca_file.empty()) {
    LIKENESS_ASSIGN_OR_RETURN(ssl.pem_root_certs,
                              ReadPemFile(options.tls_client_ca_file, "--tls_client_ca"));
    ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

}  // namespace

absl::StatusOr<std::string> ReadPemFile(const std::string& path, const std::string& flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(flag, " ", path, ": cannot read"));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

CoordinatorServer::CoordinatorServer(Coordinator* coordinator, const std::string& token,
                                     const std::string& version)
    : auth_(token),
      health_(version, &auth_),
      sweeps_(coordinator, &auth_),
      workers_(coordinator, &auth_) {}

CoordinatorServer::~CoordinatorServer() {
  if (server_) server_->Shutdown(std::chrono::system_clock::now());
}

absl::StatusOr<std::unique_ptr<CoordinatorServer>> CoordinatorServer::Start(
    Coordinator* coordinator, const ServerOptions& options) {
  if (static_cast<int>(options.token.size()) < kMinTokenLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("the server needs a bearer token of at least ", kMinTokenLength, " characters"));
  }
  LIKENESS_ASSIGN_OR_RETURN(auto credentials, MakeCredentials(options));
  std::unique_ptr<CoordinatorServer> server(
      new CoordinatorServer(coordinator, options.token, options.version));
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, credentials, &server->port_);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  builder.RegisterService(&server->health_);
  builder.RegisterService(&server->sweeps_);
  builder.RegisterService(&server->workers_);
  server->server_ = builder.BuildAndStart();
  if (!server->server_ || server->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen));
  }
  return server;
}

void CoordinatorServer::Shutdown(std::chrono::system_clock::time_point deadline) {
  server_->Shutdown(deadline);
}

}  // namespace likeness::coordinator
