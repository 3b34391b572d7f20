// absl::Status <-> grpc::Status. The codes are the same numbers (STYLE.md §4 maps them 1:1),
// so clients retry exactly the UNAVAILABLE ones whichever side produced them.
#ifndef LIKENESS_COORDINATOR_GRPC_STATUS_H_
#define LIKENESS_COORDINATOR_GRPC_STATUS_H_

#include <grpcpp/grpcpp.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace likeness::coordinator {

inline grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

inline absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

// Answers `response` from `result`, or with its error.
template <typename T>
grpc::Status Answer(absl::StatusOr<T> result, T* response) {
  if (!result.ok()) return ToGrpc(result.status());
  *response = std::move(*result);
  return grpc::Status::OK;
}

}  // namespace likeness::coordinator

// First line of every RPC handler: refuses the call unless it carries the bearer token.
#define LIKENESS_CHECK_TOKEN(context)                     \
  do {                                                    \
    grpc::Status auth_status_ = auth_->Check(*(context)); \
    if (!auth_status_.ok()) return auth_status_;          \
  } while (false)

#endif  // LIKENESS_COORDINATOR_GRPC_STATUS_H_
