// The worker-facing gRPC service (the lease protocol of coordinator_state.h): every call
// checks the bearer token; Complete also confines every artifact path to the artifact root.
#ifndef LIKENESS_COORDINATOR_WORKER_SERVICE_H_
#define LIKENESS_COORDINATOR_WORKER_SERVICE_H_

#include "coordinator/auth.h"
#include "coordinator/coordinator.h"
#include "protos/likeness.grpc.pb.h"

namespace likeness::coordinator {

class WorkerService final : public v1::WorkerService::Service {
 public:
  WorkerService(Coordinator* coordinator, const Authenticator* auth)
      : coordinator_(coordinator), auth_(auth) {}

  grpc::Status Register(grpc::ServerContext* context, const v1::RegisterRequest* request,
                        v1::RegisterResponse* response) override;
  grpc::Status Heartbeat(grpc::ServerContext* context, const v1::HeartbeatRequest* request,
                         v1::HeartbeatResponse* response) override;
  grpc::Status Lease(grpc::ServerContext* context, const v1::LeaseRequest* request,
                     v1::LeaseResponse* response) override;
  grpc::Status Report(grpc::ServerContext* context, const v1::ReportRequest* request,
                      v1::ReportResponse* response) override;
  grpc::Status Complete(grpc::ServerContext* context, const v1::CompleteRequest* request,
                        v1::CompleteResponse* response) override;
  grpc::Status Fail(grpc::ServerContext* context, const v1::FailRequest* request,
                    v1::FailResponse* response) override;

 private:
  Coordinator* coordinator_;
  const Authenticator* auth_;
};

}  // namespace likeness::coordinator

#endif  // LIKENESS_COORDINATOR_WORKER_SERVICE_H_
