#include "coordinator/worker_service.h"

#include "coordinator/artifact_paths.h"
#include "coordinator/grpc_status.h"

namespace likeness::coordinator {

grpc::Status WorkerService::Register(grpc::ServerContext* context,
                                     const v1::RegisterRequest* request,
                                     v1::RegisterResponse* response) {
  LIKENESS_CHECK_TOKEN(context);
  return Answer(coordinator_->Change<v1::RegisterResponse>(
                    [request](CoordinatorState& state, Mutation* mutation) {
                      return state.Register(*request, mutation);
                    }),
                response);
}

grpc::Status WorkerService::Heartbeat(grpc::ServerContext* context,
                                      const v1::HeartbeatRequest* request,
                                      v1::HeartbeatResponse* response) {
  LIKENESS_CHECK_TOKEN(context);
  return Answer(coordinator_->Change<v1::HeartbeatResponse>(
                    [request](CoordinatorState& state, Mutation* mutation) {
                      return state.Heartbeat(*request, mutation);
                    }),
                response);
}

grpc::Status WorkerService::Lease(grpc::ServerContext* context, const v1::LeaseRequest* request,
                                  v1::LeaseResponse* response) {
  LIKENESS_CHECK_TOKEN(context);
  return Answer(coordinator_->Change<v1::LeaseResponse>(
                    [request](CoordinatorState& state, Mutation* mutation) {
                      return state.Lease(*request, mutation);
                    }),
                response);
}

grpc::Status WorkerService::Report(grpc::ServerContext* context, const v1::ReportRequest* request,
                                   v1::ReportResponse* response) {
  LIKENESS_CHECK_TOKEN(context);
  return Answer(coordinator_->Change<v1::ReportResponse>(
                    [request](CoordinatorState& state, Mutation* mutation) {
                      return state.Report(*request, mutation);
                    }),
                response);
}

grpc::Status WorkerService::Complete(grpc::ServerContext* context,
                                     const v1::CompleteRequest* request,
                                     v1::CompleteResponse* response) {
  LIKENESS_CHECK_TOKEN(context);
  // Paths are checked and made relative to the root before the state sees them.
  v1::CompleteRequest confined = *request;
  const std::string& root = coordinator_->options().state.artifact_root;
  for (v1::Artifact& artifact : *confined.mutable_artifacts()) {
    absl::StatusOr<std::string> path = ConfineArtifactPath(root, artifact.path());
    if (!path.ok()) return ToGrpc(path.status());
    artifact.set_path(*path);
  }
  return ToGrpc(coordinator_->ChangeStatus([&confined](CoordinatorState& state, Mutation* mutation) {
    return state.Complete(confined, mutation);
  }));
}

grpc::Status WorkerService::Fail(grpc::ServerContext* context, const v1::FailRequest* request,
                                 v1::FailResponse* response) {
  LIKENESS_CHECK_TOKEN(context);
  return Answer(coordinator_->Change<v1::FailResponse>(
                    [request](CoordinatorState& state, Mutation* mutation) {
                      return state.Fail(*request, mutation);
                    }),
                response);
}

}  // namespace likeness::coordinator
