// `likeness submit|status|results|cancel` in process against a loopback coordinator, with the
// token read from a file as a user would pass it.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "coordinator/client.h"
#include "coordinator/server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/coordinator/fake_worker.h"
#include "tests/coordinator/sweep_fixtures.h"
#include "worker/cli/commands.h"

namespace likeness::cli {
namespace {

namespace fs = std::filesystem;
namespace lc = likeness::coordinator;
using ::testing::HasSubstr;

constexpr char kToken[] = "cli-test-token-0123456789abcdef";

struct Result {
  int code;
  std::string out, err;
};

class CliCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("likeness_cli_commands_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::ofstream(dir_ / "token") << kToken << "\n";
    lc::CoordinatorOptions options;
    options.journal_path = (dir_ / "journal.db").string();
    options.state.artifact_root = (dir_ / "artifacts").string();
    options.state.lease_retry_after_ms = 20;
    coordinator_ = std::move(*lc::Coordinator::Open(&clock_, options));
    lc::ServerOptions server;
    server.listen = "127.0.0.1:0";
    server.token = kToken;
    server_ = std::move(*lc::CoordinatorServer::Start(coordinator_.get(), server));
    address_ = "127.0.0.1:" + std::to_string(server_->port());
  }
  void TearDown() override {
    server_.reset();
    coordinator_.reset();
    fs::remove_all(dir_);
  }

  Result Run(const Command& command, std::vector<std::string> argv) {
    argv.push_back("--coordinator=" + address_);
    argv.push_back("--token-file=" + (dir_ / "token").string());
    Result result;
    absl::StatusOr<Args> args = ParseArgs(command, argv);
    if (!args.ok()) return {kExitUsage, "", std::string(args.status().message())};
    std::ostringstream out, err;
    result.code = command.run(*args, out, err);
    result.out = out.str();
    result.err = err.str();
    return result;
  }

  std::string WriteSweep(const std::string& yaml) {
    const fs::path path = dir_ / "sweep.yaml";
    std::ofstream(path) << yaml;
    return path.string();
  }

  fs::path dir_;
  lc::SystemClock clock_;
  std::unique_ptr<lc::Coordinator> coordinator_;
  std::unique_ptr<lc::CoordinatorServer> server_;
  std::string address_;
};

TEST_F(CliCommandsTest, SubmitRunResultsAndCancel) {
  const std::string sweep_file = WriteSweep(lc::testing::kTwoByTwo);
  Result dry = Run(MakeSubmitCommand(), {sweep_file, "--dry-run"});
  ASSERT_EQ(dry.code, kExitOk) << dry.err;
  EXPECT_THAT(dry.out, HasSubstr("4 points, 10 jobs"));

  Result submitted = Run(MakeSubmitCommand(), {sweep_file, "--set", "name=cli"});
  ASSERT_EQ(submitted.code, kExitOk) << submitted.err;
  EXPECT_THAT(submitted.out, HasSubstr("submitted cli-1: 4 points, 10 jobs"));

  Result status = Run(MakeStatusCommand(), {});
  ASSERT_EQ(status.code, kExitOk) << status.err;
  EXPECT_THAT(status.out, HasSubstr("cli-1  running  8 pending, 2 queued"));

  // Two workers run it to the end.
  auto channel = *lc::MakeChannel(lc::ClientOptions{address_, kToken});
  lc::testing::FakeWorker a(channel, kToken, {"node-a", 1, false, 1, std::chrono::milliseconds(1)});
  lc::testing::FakeWorker b(channel, kToken, {"node-b", 1, false, 1, std::chrono::milliseconds(1)});
  a.Start();
  b.Start();
  // `watch` follows the sweep to its end and exits 0 because it succeeded.
  Result watched = Run(MakeWatchCommand(), {"cli-1"});
  EXPECT_EQ(watched.code, kExitOk) << watched.err;
  EXPECT_THAT(watched.out, HasSubstr("cli-1.train-0  "));
  EXPECT_THAT(watched.out, HasSubstr("cli-1.evaluate-3  succeeded"));
  EXPECT_THAT(watched.out, HasSubstr("cli-1  succeeded  10 succeeded"));
  a.Stop();
  b.Stop();
  Result jobs = Run(MakeStatusCommand(), {"cli-1"});
  EXPECT_THAT(jobs.out, HasSubstr("cli-1  succeeded  10 succeeded"));
  EXPECT_THAT(jobs.out, HasSubstr("cli-1.evaluate-0  succeeded  train.steps=2 train.learning_rate=1e-4"));

  Result results = Run(MakeResultsCommand(), {"cli-1"});
  ASSERT_EQ(results.code, kExitOk) << results.err;
  // The fake metric grows with the learning rate: 2e-4 ranks first.
  EXPECT_THAT(results.out, HasSubstr("#  subject  train.steps  train.learning_rate  clip_i"));
  EXPECT_THAT(results.out, HasSubstr("1  dog      2            2e-4                 0.7000"));
  Result unknown_metric = Run(MakeResultsCommand(), {"cli-1", "--sort", "dino"});
  EXPECT_EQ(unknown_metric.code, kExitFailure);
  EXPECT_THAT(unknown_metric.err, HasSubstr("no metric 'dino' (metrics: clip_i)"));

  Result again = Run(MakeSubmitCommand(), {sweep_file, "--set", "name=second"});
  ASSERT_EQ(again.code, kExitOk) << again.err;
  Result cancelled = Run(MakeCancelCommand(), {"second-2"});
  ASSERT_EQ(cancelled.code, kExitOk) << cancelled.err;
  EXPECT_THAT(cancelled.out, HasSubstr("cancelled 10 jobs"));
}

TEST_F(CliCommandsTest, BadSweepsAndBadTokensAreNamed) {
  Result bad = Run(MakeSubmitCommand(),
                   {WriteSweep(std::string(lc::testing::kTwoByTwo) +
                               "  - {field: train.learning_rat, values: [1]}\n")});
  EXPECT_EQ(bad.code, kExitFailure);
  EXPECT_THAT(bad.err, HasSubstr("axes[2].field 'train.learning_rat': no such field"));

  std::ofstream(dir_ / "wrong") << "not-the-right-token-at-all\n";
  Command status = MakeStatusCommand();
  absl::StatusOr<Args> args =
      ParseArgs(status, {"--coordinator=" + address_, "--token-file=" + (dir_ / "wrong").string()});
  ASSERT_TRUE(args.ok());
  std::ostringstream out, err;
  EXPECT_EQ(status.run(*args, out, err), kExitFailure);
  EXPECT_THAT(err.str(), HasSubstr("the bearer token is not valid"));
}

}  // namespace
}  // namespace likeness::cli
