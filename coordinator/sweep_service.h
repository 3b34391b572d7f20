// The user-facing gRPC service (likeness submit/status/results/cancel, the dashboard): every
// call checks the bearer token, then delegates to Coordinator.
#ifndef LIKENESS_COORDINATOR_SWEEP_SERVICE_H_
#define LIKENESS_COORDINATOR_SWEEP_SERVICE_H_

#include "coordinator/auth.h"
#include "coordinator/coordinator.h"
#include "protos/likeness.grpc.pb.h"

namespace likeness::coordinator {

class SweepService final : public v1::SweepService::Service {
 public:
  SweepService(Coordinator* coordinator, const Authenticator* auth)
      : coordinator_(coordinator), auth_(auth) {}

  grpc::Status Submit(grpc::ServerContext* context, const v1::SubmitRequest* request,
                      v1::SubmitResponse* response) override;
  grpc::Status GetSweep(grpc::ServerContext* context, const v1::GetSweepRequest* request,
                        v1::Sweep* response) override;
  grpc::Status ListSweeps(grpc::ServerContext* context, const v1::ListSweepsRequest* request,
                          v1::ListSweepsResponse* response) override;
  grpc::Status GetJob(grpc::ServerContext* context, const v1::GetJobRequest* request,
                      v1::Job* response) override;
  grpc::Status ListJobs(grpc::ServerContext* context, const v1::ListJobsRequest* request,
                        v1::ListJobsResponse* response) override;
  // Sends every job of the sweep once, then each change, until the sweep ends or the client
  // goes away.
  grpc::Status Watch(grpc::ServerContext* context, const v1::WatchRequest* request,
                     grpc::ServerWriter<v1::WatchEvent>* writer) override;
  grpc::Status Cancel(grpc::ServerContext* context, const v1::CancelRequest* request,
                      v1::CancelResponse* response) override;
  grpc::Status Retry(grpc::ServerContext* context, const v1::RetryRequest* request,
                     v1::RetryResponse* response) override;

 private:
  Coordinator* coordinator_;
  const Authenticator* auth_;
};

}  // namespace likeness::coordinator

#endif  // LIKENESS_COORDINATOR_SWEEP_SERVICE_H_
