// Security seams: bearer tokens (resolution, constant-time check, every RPC refuses a call
// without one), artifact paths confined to the root, and loopback by default.
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "coordinator/artifact_paths.h"
#include "coordinator/auth.h"
#include "coordinator/client.h"
#include "coordinator/constants.h"
#include "coordinator/server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace likeness::coordinator {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr char kToken[] = "0123456789abcdef-test-token";

class TempDir {
 public:
  TempDir() : path_(fs::temp_directory_path() / ("likeness_security_" + std::to_string(::getpid()))) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

TEST(ArtifactPathTest, PathsInsideTheRootBecomeRelative) {
  TempDir dir;
  const fs::path root = dir.path() / "artifacts";
  fs::create_directories(root / "s-1");
  EXPECT_EQ(*ConfineArtifactPath(root.string(), "s-1/train-0/lora.safetensors"),
            "s-1/train-0/lora.safetensors");
  EXPECT_EQ(*ConfineArtifactPath(root.string(), (root / "s-1/x.png").string()), "s-1/x.png");
  EXPECT_EQ(*ConfineArtifactPath(root.string(), "s-1/../s-1/x.png"), "s-1/x.png");
}

TEST(ArtifactPathTest, EscapesAreRefused) {
  TempDir dir;
  const fs::path root = dir.path() / "artifacts";
  fs::create_directories(root);
  fs::create_symlink("/etc", root / "link");
  for (const std::string& bad : {std::string("../secret"), std::string("/etc/passwd"),
                                 std::string("a/../../b"), std::string("link/passwd"),
                                 (dir.path() / "artifacts2/x").string()}) {
    auto confined = ConfineArtifactPath(root.string(), bad);
    ASSERT_FALSE(confined.ok()) << bad;
    EXPECT_TRUE(absl::IsPermissionDenied(confined.status())) << bad;
    EXPECT_THAT(std::string(confined.status().message()), HasSubstr("outside the artifact root"));
  }
  EXPECT_TRUE(absl::IsInvalidArgument(ConfineArtifactPath(root.string(), "").status()));
}

TEST(TokenTest, ConstantTimeEqualsComparesWholeStrings) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abd", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("ab", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abcd", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("", ""));  // an empty token never matches
}

TEST(TokenTest, ServerTokenFromFileEnvOrGeneratedPrivateFile) {
  TempDir dir;
  ::unsetenv(kTokenEnvVar);
  const fs::path file = dir.path() / "given";
  std::ofstream(file) << "  " << kToken << "\n";
  EXPECT_EQ(*ResolveServerToken(file.string(), dir.path().string()), kToken);
  std::ofstream(dir.path() / "short") << "abc";
  EXPECT_THAT(std::string(ResolveServerToken((dir.path() / "short").string(), "").status().message()),
              HasSubstr("use at least"));

  ::setenv(kTokenEnvVar, "from-the-environment-123", 1);
  EXPECT_EQ(*ResolveServerToken("", dir.path().string()), "from-the-environment-123");
  ::unsetenv(kTokenEnvVar);

  const fs::path state = dir.path() / "state";
  auto generated = ResolveServerToken("", state.string());
  ASSERT_TRUE(generated.ok()) << generated.status();
  EXPECT_EQ(generated->size(), 64u);
  struct stat info;
  ASSERT_EQ(::stat((state / kTokenFileName).c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600);
  EXPECT_EQ(*ResolveServerToken("", state.string()), *generated);  // stable across restarts
  EXPECT_EQ(*ResolveClientToken("", (state / kTokenFileName).string()), *generated);
}

TEST(ServerTest, ListensOnLoopbackByDefault) {
  EXPECT_EQ(std::string(ServerOptions().listen).rfind("127.0.0.1:", 0), 0u);
  EXPECT_EQ(std::string(ClientOptions().address).rfind("127.0.0.1:", 0), 0u);
}

class ServerSecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CoordinatorOptions options;
    options.journal_path = (dir_.path() / "journal.db").string();
    options.state.artifact_root = (dir_.path() / "artifacts").string();
    options.expire_leases_in_background = false;
    auto coordinator = Coordinator::Open(&clock_, options);
    ASSERT_TRUE(coordinator.ok()) << coordinator.status();
    coordinator_ = std::move(*coordinator);
    ServerOptions server_options;
    server_options.listen = "127.0.0.1:0";
    server_options.token = kToken;
    server_options.max_message_bytes = 64 << 10;
    auto server = CoordinatorServer::Start(coordinator_.get(), server_options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    ClientOptions client;
    client.address = "127.0.0.1:" + std::to_string(server_->port());
    channel_ = *MakeChannel(client);
  }

  TempDir dir_;
  SystemClock clock_;
  std::unique_ptr<Coordinator> coordinator_;
  std::unique_ptr<CoordinatorServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

// Calls every RPC of both services (and Health) with `token`; returns their status codes.
std::vector<grpc::StatusCode> CallEverything(const std::shared_ptr<grpc::Channel>& channel,
                                             const std::string& token) {
  auto sweeps = v1::SweepService::NewStub(channel);
  auto workers = v1::WorkerService::NewStub(channel);
  auto health = v1::Coordinator::NewStub(channel);
  std::vector<grpc::StatusCode> codes;
  auto record = [&](const grpc::Status& status) { codes.push_back(status.error_code()); };
  { v1::HealthResponse r; record(health->Health(MakeContext(token).get(), {}, &r)); }
  { v1::SubmitResponse r; record(sweeps->Submit(MakeContext(token).get(), {}, &r)); }
  { v1::Sweep r; record(sweeps->GetSweep(MakeContext(token).get(), {}, &r)); }
  { v1::ListSweepsResponse r; record(sweeps->ListSweeps(MakeContext(token).get(), {}, &r)); }
  { v1::Job r; record(sweeps->GetJob(MakeContext(token).get(), {}, &r)); }
  { v1::ListJobsResponse r; record(sweeps->ListJobs(MakeContext(token).get(), {}, &r)); }
  {
    // Watching every sweep streams until the client leaves: a deadline ends it.
    auto context = MakeContext(token, std::chrono::milliseconds(300));
    auto reader = sweeps->Watch(context.get(), v1::WatchRequest());
    v1::WatchEvent event;
    while (reader->Read(&event)) {}
    record(reader->Finish());
  }
  { v1::CancelResponse r; record(sweeps->Cancel(MakeContext(token).get(), {}, &r)); }
  { v1::RetryResponse r; record(sweeps->Retry(MakeContext(token).get(), {}, &r)); }
  { v1::RegisterResponse r; record(workers->Register(MakeContext(token).get(), {}, &r)); }
  { v1::HeartbeatResponse r; record(workers->Heartbeat(MakeContext(token).get(), {}, &r)); }
  { v1::LeaseResponse r; record(workers->Lease(MakeContext(token).get(), {}, &r)); }
  { v1::ReportResponse r; record(workers->Report(MakeContext(token).get(), {}, &r)); }
  { v1::CompleteResponse r; record(workers->Complete(MakeContext(token).get(), {}, &r)); }
  { v1::FailResponse r; record(workers->Fail(MakeContext(token).get(), {}, &r)); }
  return codes;
}

TEST_F(ServerSecurityTest, EveryRpcRefusesAMissingOrWrongToken) {
  for (const std::string& token : {std::string(), std::string("not-the-token-at-all")}) {
    const std::vector<grpc::StatusCode> codes = CallEverything(channel_, token);
    ASSERT_EQ(codes.size(), 15u);
    for (size_t i = 0; i < codes.size(); ++i) {
      EXPECT_EQ(codes[i], grpc::StatusCode::UNAUTHENTICATED) << "call " << i;
    }
  }
  // With the token the same calls get past authentication (and fail on their empty inputs).
  for (grpc::StatusCode code : CallEverything(channel_, kToken)) {
    EXPECT_NE(code, grpc::StatusCode::UNAUTHENTICATED);
  }
}

TEST_F(ServerSecurityTest, OversizedMessagesAreRefused) {
  auto sweeps = v1::SweepService::NewStub(channel_);
  v1::SubmitRequest request;
  request.mutable_spec()->set_name(std::string(128 << 10, 'x'));
  v1::SubmitResponse response;
  grpc::Status status = sweeps->Submit(MakeContext(kToken).get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
}

TEST_F(ServerSecurityTest, ArtifactsOutsideTheRootAreRefusedOnComplete) {
  auto workers = v1::WorkerService::NewStub(channel_);
  v1::CompleteRequest request;
  request.mutable_attempt()->set_job_id("x");
  request.add_artifacts()->set_path("../../etc/passwd");
  v1::CompleteResponse response;
  grpc::Status status = workers->Complete(MakeContext(kToken).get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(status.error_message(), HasSubstr("outside the artifact root"));
}

TEST(ServerStartTest, RefusesAShortTokenAndHalfATlsPair) {
  TempDir dir;
  SystemClock clock;
  CoordinatorOptions options;
  options.journal_path = (dir.path() / "journal.db").string();
  options.expire_leases_in_background = false;
  auto coordinator = Coordinator::Open(&clock, options);
  ASSERT_TRUE(coordinator.ok());
  ServerOptions server;
  server.listen = "127.0.0.1:0";
  server.token = "short";
  EXPECT_TRUE(absl::IsInvalidArgument(CoordinatorServer::Start(coordinator->get(), server).status()));
  server.token = kToken;
  server.tls_cert_file = "/nonexistent/cert.pem";
  EXPECT_THAT(std::string(CoordinatorServer::Start(coordinator->get(), server).status().message()),
              HasSubstr("--tls_cert and --tls_key go together"));
  server.tls_key_file = "/nonexistent/key.pem";
  EXPECT_THAT(std::string(CoordinatorServer::Start(coordinator->get(), server).status().message()),
              HasSubstr("/nonexistent/key.pem"));
}

}  // namespace
}  // namespace likeness::coordinator
