// Bearer-token authentication of every RPC. The token comes from a file (--token_file) or the
// LIKENESS_TOKEN environment variable; a coordinator given neither makes one and writes it,
// readable only by its user, to <state_dir>/token, where local clients find it by default.
// Tokens are compared in constant time so response timing does not leak a prefix.
#ifndef LIKENESS_COORDINATOR_AUTH_H_
#define LIKENESS_COORDINATOR_AUTH_H_

#include <grpcpp/grpcpp.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace likeness::coordinator {

// The file name of the generated token inside the state directory.
inline constexpr char kTokenFileName[] = "token";

// Reads a token file (surrounding whitespace dropped); errors name the file.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path);

// The token: `token_file` if given, else $LIKENESS_TOKEN, else <state_dir>/token (created with
// a random token, mode 0600, when missing). Refuses tokens shorter than kMinTokenLength.
absl::StatusOr<std::string> ResolveServerToken(const std::string& token_file,
                                               const std::string& state_dir);

// What a client sends: `token_file` if given, else $LIKENESS_TOKEN, else `default_file` when it
// exists, else "" (the call will be refused with UNAUTHENTICATED, which says what to do).
absl::StatusOr<std::string> ResolveClientToken(const std::string& token_file,
                                               const std::string& default_file);

class Authenticator {
 public:
  explicit Authenticator(std::string token) : token_(std::move(token)) {}
  // OK when the call's "authorization" metadata is "Bearer <token>"; UNAUTHENTICATED otherwise.
  grpc::Status Check(const grpc::ServerContext& context) const;

 private:
  std::string token_;
};

// Constant-time equality (the loop never exits early).
bool ConstantTimeEquals(const std::string& a, const std::string& b);

}  // namespace likeness::coordinator

#endif  // LIKENESS_COORDINATOR_AUTH_H_
