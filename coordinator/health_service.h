#ifndef LIKENESS_COORDINATOR_HEALTH_SERVICE_H_
#define LIKENESS_COORDINATOR_HEALTH_SERVICE_H_

#include <chrono>
#include <string>

#include "coordinator/auth.h"
#include "protos/likeness.grpc.pb.h"

namespace likeness::coordinator {

// Answers Health with the build version and uptime; the liveness probe workers and users call.
// It checks the bearer token like every other call when given an Authenticator.
class HealthService final : public likeness::v1::Coordinator::Service {
 public:
  explicit HealthService(std::string version, const Authenticator* auth = nullptr)
      : version_(std::move(version)), auth_(auth), start_(std::chrono::steady_clock::now()) {}

  grpc::Status Health(grpc::ServerContext* context, const likeness::v1::HealthRequest*,
                      likeness::v1::HealthResponse* response) override {
    if (auth_ != nullptr) {
      grpc::Status status = auth_->Check(*context);
      if (!status.ok()) return status;
    }
    response->set_version(version_);
    response->set_uptime_seconds(std::chrono::duration_cast<std::chrono::seconds>(
                                     std::chrono::steady_clock::now() - start_)
                                     .count());
    return grpc::Status::OK;
  }

 private:
  std::string version_;
  const Authenticator* auth_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace likeness::coordinator

#endif  // LIKENESS_COORDINATOR_HEALTH_SERVICE_H_
