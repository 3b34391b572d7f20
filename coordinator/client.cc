#include "coordinator/client.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "coordinator/server.h"

namespace likeness::coordinator {

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const ClientOptions& options) {
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (options.tls_ca_file.empty() && options.tls_cert_file.empty()) {
    credentials = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions ssl;
    if (!options.tls_ca_file.empty()) {
      LIKENESS_ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadPemFile(options.tls_ca_file, "--tls_ca"));
    }
    if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
      return absl::InvalidArgumentError("--tls_cert and --tls_key go together");
    }
    if (!options.tls_cert_file.empty()) {
      LIKENESS_ASSIGN_OR_RETURN(ssl.pem_cert_chain, ReadPemFile(options.tls_cert_file, "--tls_cert"));
      LIKENESS_ASSIGN_OR_RETURN(ssl.pem_private_key, ReadPemFile(options.tls_key_file, "--tls_key"));
    }
    credentials = grpc::SslCredentials(ssl);
  }
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(options.max_message_bytes);
  arguments.SetMaxSendMessageSize(options.max_message_bytes);
  return grpc::CreateCustomChannel(options.address, credentials, arguments);
}

std::unique_ptr<grpc::ClientContext> MakeContext(const std::string& token,
                                                 std::chrono::milliseconds timeout) {
  auto context = std::make_unique<grpc::ClientContext>();
  if (!token.empty()) context->AddMetadata(kAuthMetadataKey, absl::StrCat(kBearerPrefix, token));
  if (timeout.count() > 0) context->set_deadline(std::chrono::system_clock::now() + timeout);
  return context;
}

}  // namespace likeness::coordinator
