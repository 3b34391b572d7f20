// `likeness submit|status|watch|results|cancel`: the coordinator's user service from the command
// line. They need no libtorch, so they live in their own library (likeness_sweep_commands)
// that tests drive in process against a loopback coordinator.
#include <chrono>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/config/proto_yaml.h"
#include "coordinator/auth.h"
#include "coordinator/client.h"
#include "coordinator/leaderboard.h"
#include "coordinator/sweep_expansion.h"
#include "coordinator/job_graph.h"
#include "protos/likeness.grpc.pb.h"
#include "worker/cli/commands.h"

namespace likeness::cli {
namespace {

namespace lc = likeness::coordinator;

// Where a coordinator started in this folder with default flags writes its token.
constexpr char kDefaultTokenFile[] = "runs/coordinator/token";
// Calls answer in milliseconds; a coordinator that takes this long is not answering.
constexpr std::chrono::seconds kCallTimeout(30);

std::vector<Option> ConnectionOptions() {
  return {
      {"coordinator", "HOST:PORT", "the coordinator's address", lc::kDefaultListenAddress},
      {"token-file", "FILE",
       absl::StrCat("bearer token file (default: $", lc::kTokenEnvVar, ", else ", kDefaultTokenFile,
                    ")"),
       ""},
      {"tls-ca", "PEM", "CA of the coordinator's certificate (enables TLS)", ""},
      {"tls-cert", "PEM", "this client's certificate (mutual TLS)", ""},
      {"tls-key", "PEM", "the key of --tls-cert", ""},
  };
}

struct Connection {
  std::unique_ptr<v1::SweepService::Stub> stub;
  std::string token;
  std::unique_ptr<grpc::ClientContext> Context() const { return lc::MakeContext(token, kCallTimeout); }
};

absl::StatusOr<Connection> Connect(const Args& args) {
  absl::StatusOr<std::string> token = lc::ResolveClientToken(args.Get("token-file"), kDefaultTokenFile);
  if (!token.ok()) return token.status();
  lc::ClientOptions options;
  options.address = args.Get("coordinator");
  options.token = *token;
  options.tls_ca_file = args.Get("tls-ca");
  options.tls_cert_file = args.Get("tls-cert");
  options.tls_key_file = args.Get("tls-key");
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = lc::MakeChannel(options);
  if (!channel.ok()) return channel.status();
  return Connection{v1::SweepService::NewStub(*channel), *token};
}

int Fail(std::ostream& err, const std::string& command, const std::string& message) {
  err << "likeness " << command << ": " << message << "\n";
  return kExitFailure;
}

int FailCall(std::ostream& err, const std::string& command, const grpc::Status& status,
             const std::string& address) {
  std::string message = status.error_message();
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    message = absl::StrCat("the coordinator at ", address, " does not answer (", message, ")");
  }
  return Fail(err, command, message);
}

std::string ShortState(const std::string& name) {
  const size_t underscore = name.rfind('_');
  return underscore == std::string::npos ? name : absl::AsciiStrToLower(name.substr(underscore + 1));
}

std::string Counts(const v1::Sweep& sweep) {
  std::vector<std::string> parts;
  for (int s = v1::JOB_STATE_PENDING; s <= v1::JOB_STATE_CANCELLED; ++s) {
    auto it = sweep.job_counts().find(v1::JobState_Name(static_cast<v1::JobState>(s)));
    if (it != sweep.job_counts().end()) {
      parts.push_back(absl::StrCat(it->second, " ", ShortState(it->first)));
    }
  }
  return absl::StrJoin(parts, ", ");
}

std::string PointText(const v1::JobSpec& spec) {
  std::vector<std::string> parts;
  for (const v1::AxisValue& value : spec.point()) {
    parts.push_back(absl::StrCat(value.field(), "=", value.value()));
  }
  return absl::StrJoin(parts, " ");
}

int RunSubmit(const Args& args, std::ostream& out, std::ostream& err) {
  const std::string& path = args.positional()[0];
  v1::SubmitRequest request;
  v1::SweepSpec& spec = *request.mutable_spec();
  absl::Status status = config::MergeYamlFileIntoProto(path, &spec);
  if (status.ok()) status = config::ApplyOverrides(args.GetAll("set"), &spec);
  if (!status.ok()) return Fail(err, "submit", std::string(status.message()));
  // Checked here too, so a typo is reported before any network call.
  absl::StatusOr<std::vector<lc::SweepPoint>> points = lc::ExpandSweep(spec);
  if (!points.ok()) return Fail(err, "submit", absl::StrCat(path, ": ", points.status().message()));
  if (args.Switch("dry-run")) {
    const std::vector<v1::Job> jobs =
        lc::BuildJobGraph("dry-run", lc::NormalizeSweep(spec), *points, "ARTIFACTS");
    out << points->size() << " points, " << jobs.size() << " jobs\n";
    for (const v1::Job& job : jobs) {
      out << "  " << job.id() << "  " << ShortState(v1::JobKind_Name(job.spec().kind())) << "  "
          << PointText(job.spec()) << "\n";
    }
    return kExitOk;
  }
  request.set_request_id(args.Get("request-id"));
  absl::StatusOr<Connection> connection = Connect(args);
  if (!connection.ok()) return Fail(err, "submit", std::string(connection.status().message()));
  v1::SubmitResponse response;
  grpc::Status call = connection->stub->Submit(connection->Context().get(), request, &response);
  if (!call.ok()) return FailCall(err, "submit", call, args.Get("coordinator"));
  out << "submitted " << response.sweep().id() << ": " << points->size() << " points, "
      << response.job_count() << " jobs\n";
  return kExitOk;
}

// Every job of a sweep, page by page.
grpc::Status ListAllJobs(const Connection& connection, const std::string& sweep_id,
                         std::vector<v1::Job>* jobs) {
  v1::ListJobsRequest request;
  request.set_sweep_id(sweep_id);
  do {
    v1::ListJobsResponse response;
    grpc::Status call = connection.stub->ListJobs(connection.Context().get(), request, &response);
    if (!call.ok()) return call;
    jobs->insert(jobs->end(), response.jobs().begin(), response.jobs().end());
    request.set_page_token(response.next_page_token());
  } while (!request.page_token().empty());
  return grpc::Status::OK;
}

int ListSweeps(const Connection& connection, const Args& args, std::ostream& out,
               std::ostream& err) {
  v1::ListSweepsResponse response;
  grpc::Status call = connection.stub->ListSweeps(connection.Context().get(), {}, &response);
  if (!call.ok()) return FailCall(err, "status", call, args.Get("coordinator"));
  if (response.sweeps_size() == 0) out << "no sweeps\n";
  for (const v1::Sweep& sweep : response.sweeps()) {
    out << sweep.id() << "  " << ShortState(v1::SweepState_Name(sweep.state())) << "  "
        << Counts(sweep) << "\n";
  }
  return kExitOk;
}

int RunStatus(const Args& args, std::ostream& out, std::ostream& err) {
  absl::StatusOr<Connection> connection = Connect(args);
  if (!connection.ok()) return Fail(err, "status", std::string(connection.status().message()));
  if (args.positional().empty()) return ListSweeps(*connection, args, out, err);
  v1::GetSweepRequest get;
  get.set_sweep_id(args.positional()[0]);
  v1::Sweep sweep;
  grpc::Status call = connection->stub->GetSweep(connection->Context().get(), get, &sweep);
  if (!call.ok()) return FailCall(err, "status", call, args.Get("coordinator"));
  std::vector<v1::Job> jobs;
  call = ListAllJobs(*connection, sweep.id(), &jobs);
  if (!call.ok()) return FailCall(err, "status", call, args.Get("coordinator"));
  out << sweep.id() << "  " << ShortState(v1::SweepState_Name(sweep.state())) << "  "
      << Counts(sweep) << "\n";
  for (const v1::Job& job : jobs) {
    out << "  " << job.id() << "  " << ShortState(v1::JobState_Name(job.state()));
    if (job.attempt() > 1) out << " (attempt " << job.attempt() << ")";
    if (job.state() == v1::JOB_STATE_LEASED && job.progress().total_steps() > 0) {
      out << "  step " << job.progress().step() << "/" << job.progress().total_steps();
    }
    if (!job.spec().point().empty()) out << "  " << PointText(job.spec());
    if (!job.error().empty()) out << "  " << job.error();
    out << "\n";
  }
  return kExitOk;
}

int RunResults(const Args& args, std::ostream& out, std::ostream& err) {
  absl::StatusOr<Connection> connection = Connect(args);
  if (!connection.ok()) return Fail(err, "results", std::string(connection.status().message()));
  const std::string& sweep_id = args.positional()[0];
  std::vector<v1::Job> jobs;
  grpc::Status call = ListAllJobs(*connection, sweep_id, &jobs);
  if (!call.ok()) return FailCall(err, "results", call, args.Get("coordinator"));
  if (jobs.empty()) return Fail(err, "results", "no sweep '" + sweep_id + "'");
  absl::StatusOr<lc::Leaderboard> board =
      lc::BuildLeaderboard(jobs, args.Get("sort"), args.Switch("ascending"));
  if (!board.ok()) return Fail(err, "results", std::string(board.status().message()));
  out << lc::FormatLeaderboard(*board);
  return kExitOk;
}

int RunCancel(const Args& args, std::ostream& out, std::ostream& err) {
  v1::CancelRequest request;
  if (args.Given("job")) {
    if (!args.positional().empty()) {
      err << "likeness cancel: give a SWEEP or --job JOB, not both\n";
      return kExitUsage;
    }
    request.set_job_id(args.Get("job"));
  } else if (args.positional().size() == 1) {
    request.set_sweep_id(args.positional()[0]);
  } else {
    err << "likeness cancel: give a SWEEP or --job JOB\n";
    return kExitUsage;
  }
  absl::StatusOr<Connection> connection = Connect(args);
  if (!connection.ok()) return Fail(err, "cancel", std::string(connection.status().message()));
  v1::CancelResponse response;
  grpc::Status call = connection->stub->Cancel(connection->Context().get(), request, &response);
  if (!call.ok()) return FailCall(err, "cancel", call, args.Get("coordinator"));
  out << "cancelled " << response.cancelled() << " jobs\n";
  return kExitOk;
}

// One line per job state change, and per quarter of a job's steps, so a log stays short.
int RunWatch(const Args& args, std::ostream& out, std::ostream& err) {
  constexpr int kProgressLinesPerJob = 4;
  absl::StatusOr<Connection> connection = Connect(args);
  if (!connection.ok()) return Fail(err, "watch", std::string(connection.status().message()));
  v1::WatchRequest request;
  request.set_sweep_id(args.positional()[0]);
  auto context = lc::MakeContext(connection->token);  // no deadline: as long as the sweep runs
  auto reader = connection->stub->Watch(context.get(), request);
  std::map<std::string, std::pair<v1::JobState, int64_t>> seen;  // state, progress quarter
  v1::Sweep sweep;
  v1::WatchEvent event;
  while (reader->Read(&event)) {
    const v1::Job& job = event.job();
    sweep = event.sweep();
    const int64_t total = job.progress().total_steps();
    const int64_t quarter = total > 0 ? job.progress().step() * kProgressLinesPerJob / total : 0;
    auto [it, first] = seen.try_emplace(job.id(), job.state(), quarter);
    const bool state_changed = first || it->second.first != job.state();
    const bool progressed = !state_changed && quarter > it->second.second;
    it->second = {job.state(), quarter};
    if (state_changed) {
      out << job.id() << "  " << ShortState(v1::JobState_Name(job.state()));
      if (!job.error().empty()) out << "  " << job.error();
      out << std::endl;
    } else if (progressed && job.state() == v1::JOB_STATE_LEASED) {
      out << job.id() << "  step " << job.progress().step() << "/" << total << "  loss "
          << job.progress().loss() << std::endl;
    }
  }
  grpc::Status status = reader->Finish();
  if (!status.ok()) return FailCall(err, "watch", status, args.Get("coordinator"));
  out << sweep.id() << "  " << ShortState(v1::SweepState_Name(sweep.state())) << "  "
      << Counts(sweep) << "\n";
  return sweep.state() == v1::SWEEP_STATE_SUCCEEDED ? kExitOk : kExitFailure;
}

Command WithConnection(Command command) {
  for (Option& option : ConnectionOptions()) command.options.push_back(std::move(option));
  return command;
}

}  // namespace

Command MakeSubmitCommand() {
  Command command;
  command.name = "submit";
  command.summary = "Submit a sweep file to the coordinator.";
  command.usage_args = "[options] SWEEP.yaml";
  command.description =
      "Reads a sweep (YAML mapped onto SweepSpec in protos/likeness.proto), checks it and\n"
      "submits it. --set overrides any field first (--set train.steps=200). --dry-run prints\n"
      "the points and jobs without contacting the coordinator.";
  command.options = {
      {"set", "FIELD=VALUE", "override a field of the sweep file", "", /*repeated=*/true},
      {"request-id", "ID", "idempotency key: submitting the same id twice makes one sweep", ""},
      {"dry-run", "", "expand and print the jobs; submit nothing", ""},
  };
  command.min_positional = 1;
  command.max_positional = 1;
  command.run = RunSubmit;
  return WithConnection(std::move(command));
}

Command MakeStatusCommand() {
  Command command;
  command.name = "status";
  command.summary = "Show sweeps, or the jobs of one sweep.";
  command.usage_args = "[options] [SWEEP]";
  command.max_positional = 1;
  command.run = RunStatus;
  return WithConnection(std::move(command));
}

Command MakeResultsCommand() {
  Command command;
  command.name = "results";
  command.summary = "Print a sweep's leaderboard: every evaluated point and its metrics.";
  command.usage_args = "[options] SWEEP";
  command.options = {
      {"sort", "METRIC", "metric to rank by (default: the first, alphabetically)", ""},
      {"ascending", "", "lowest first (for losses)", ""},
  };
  command.min_positional = 1;
  command.max_positional = 1;
  command.run = RunResults;
  return WithConnection(std::move(command));
}

Command MakeWatchCommand() {
  Command command;
  command.name = "watch";
  command.summary = "Follow a sweep until it ends: job states and training progress.";
  command.usage_args = "[options] SWEEP";
  command.description =
      "Prints a line when a job changes state or passes a quarter of its steps. Exits 0 when\n"
      "the sweep succeeded, 1 when it failed or was cancelled.";
  command.min_positional = 1;
  command.max_positional = 1;
  command.run = RunWatch;
  return WithConnection(std::move(command));
}

Command MakeCancelCommand() {
  Command command;
  command.name = "cancel";
  command.summary = "Cancel a sweep, or one job and what depends on it.";
  command.usage_args = "[options] SWEEP | --job JOB";
  command.options = {{"job", "JOB", "cancel this job only", ""}};
  command.max_positional = 1;
  command.run = RunCancel;
  return WithConnection(std::move(command));
}

}  // namespace likeness::cli
