#include "coordinator/sweep_service.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "coordinator/constants.h"
#include "coordinator/grpc_status.h"

namespace likeness::coordinator {

grpc::Status SweepService::Submit(grpc::ServerContext* context, const v1::SubmitRequest* request,
                                  v1::SubmitResponse* response) {
  LIKENESS_CHECK_TOKEN(context);
  return Answer(coordinator_->Change<v1::SubmitResponse>(
                    [request](CoordinatorState& state, Mutation* mutation) {
                      return state.Submit(*request, mutation);
                    }),
                response);
}

grpc::Status SweepService::GetSweep(grpc::ServerContext* context,
                                    const v1::GetSweepRequest* request, v1::Sweep* response) {
  LIKENESS_CHECK_TOKEN(context);
  return Answer(coordinator_->Read([request](const CoordinatorState& state) {
                  return state.GetSweep(request->sweep_id());
                }),
                response);
}

grpc::Status SweepService::ListSweeps(grpc::ServerContext* context,
                                      const v1::ListSweepsRequest* request,
                                      v1::ListSweepsResponse* response) {
  LIKENESS_CHECK_TOKEN(context);
  for (v1::Sweep& sweep :
       coordinator_->Read([](const CoordinatorState& state) { return state.ListSweeps(); })) {
    *response->add_sweeps() = std::move(sweep);
  }
  return grpc::Status::OK;
}

grpc::Status SweepService::GetJob(grpc::ServerContext* context, const v1::GetJobRequest* request,
                                  v1::Job* response) {
  LIKENESS_CHECK_TOKEN(context);
  return Answer(coordinator_->Read([request](const CoordinatorState& state) {
                  return state.GetJob(request->job_id());
                }),
                response);
}

grpc::Status SweepService::ListJobs(grpc::ServerContext* context,
                                    const v1::ListJobsRequest* request,
                                    v1::ListJobsResponse* response) {
  LIKENESS_CHECK_TOKEN(context);
  // The token is the sequence of the last job sent: stable while jobs are added.
  int64_t after = 0;
  if (!request->page_token().empty() && !absl::SimpleAtoi(request->page_token(), &after)) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "page_token '" + request->page_token() + "' is not a token ListJobs gave");
  }
  const int page_size = request->page_size() <= 0 ? kDefaultJobPageSize
                                                  : std::min(request->page_size(), kMaxJobPageSize);
  std::vector<v1::Job> jobs = coordinator_->Read([request](const CoordinatorState& state) {
    return state.ListJobs(request->sweep_id(), request->state());
  });
  for (v1::Job& job : jobs) {
    if (job.sequence() <= after) continue;
    if (response->jobs_size() == page_size) {
      response->set_next_page_token(absl::StrCat(response->jobs(page_size - 1).sequence()));
      break;
    }
    *response->add_jobs() = std::move(job);
  }
  return grpc::Status::OK;
}

grpc::Status SweepService::Watch(grpc::ServerContext* context, const v1::WatchRequest* request,
                                 grpc::ServerWriter<v1::WatchEvent>* writer) {
  LIKENESS_CHECK_TOKEN(context);
  const std::string& sweep_id = request->sweep_id();
  if (!sweep_id.empty()) {
    absl::Status exists = coordinator_->Read(
        [&sweep_id](const CoordinatorState& state) { return state.GetSweep(sweep_id).status(); });
    if (!exists.ok()) return ToGrpc(exists);
  }
  int64_t version = 0;  // the first pass sends every job
  while (!context->IsCancelled()) {
    std::vector<v1::Job> jobs = coordinator_->WaitForChanges(&version, sweep_id, kWatchPollMs);
    for (v1::Job& job : jobs) {
      v1::WatchEvent event;
      auto sweep = coordinator_->Read(
          [&job](const CoordinatorState& state) { return state.GetSweep(job.sweep_id()); });
      if (sweep.ok()) *event.mutable_sweep() = std::move(*sweep);
      *event.mutable_job() = std::move(job);
      if (!writer->Write(event)) return grpc::Status::OK;  // the client left
    }
    if (sweep_id.empty()) continue;
    auto sweep = coordinator_->Read(
        [&sweep_id](const CoordinatorState& state) { return state.GetSweep(sweep_id); });
    if (sweep.ok() && sweep->state() != v1::SWEEP_STATE_RUNNING && jobs.empty()) break;
  }
  return grpc::Status::OK;
}

grpc::Status SweepService::Cancel(grpc::ServerContext* context, const v1::CancelRequest* request,
                                  v1::CancelResponse* response) {
  LIKENESS_CHECK_TOKEN(context);
  if (request->sweep_id().empty() == request->job_id().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "give exactly one of sweep_id, job_id");
  }
  return Answer(coordinator_->Change<v1::CancelResponse>(
                    [request](CoordinatorState& state, Mutation* mutation) {
                      return state.Cancel(*request, mutation);
                    }),
                response);
}

grpc::Status SweepService::Retry(grpc::ServerContext* context, const v1::RetryRequest* request,
                                 v1::RetryResponse* response) {
  LIKENESS_CHECK_TOKEN(context);
  if (request->sweep_id().empty() == request->job_id().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "give exactly one of sweep_id, job_id");
  }
  return Answer(coordinator_->Change<v1::RetryResponse>(
                    [request](CoordinatorState& state, Mutation* mutation) {
                      return state.Retry(*request, mutation);
                    }),
                response);
}

}  // namespace likeness::coordinator
