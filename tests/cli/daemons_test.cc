// likeness-coordinator and likeness-worker as processes: --help, and a worker reaching a live
// coordinator over gRPC on loopback.
#include <csignal>
#include <regex>

#include "gtest/gtest.h"
#include "tests/cli/run_program.h"

namespace likeness::testing {
namespace {

using std::chrono::seconds;

constexpr seconds kStartTimeout(20);
constexpr seconds kStopTimeout(10);

TEST(DaemonsTest, EveryBinaryAnswersHelpWithExitZero) {
  for (const char* binary : {kLikenessBinary, kCoordinatorBinary, kWorkerBinary}) {
    ProcessResult r = RunProgram(binary, {"--help"});
    EXPECT_EQ(r.exit_code, 0) << binary << ": " << r.err;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << binary << ": " << r.out;
  }
  ProcessResult r = RunProgram(kCoordinatorBinary, {"--help"});
  EXPECT_NE(r.out.find("--listen"), std::string::npos) << r.out;
}

TEST(DaemonsTest, WorkerReachesCoordinatorThenCoordinatorStopsCleanly) {
  BackgroundProcess coordinator(kCoordinatorBinary, {"--listen=127.0.0.1:0"});
  ASSERT_TRUE(coordinator.started());
  std::optional<std::string> out = coordinator.WaitForOutput("listening on port", kStartTimeout);
  ASSERT_TRUE(out.has_value()) << "coordinator did not start";
  std::smatch match;
  ASSERT_TRUE(std::regex_search(*out, match, std::regex("listening on port (\\d+)"))) << *out;
  const std::string address = "127.0.0.1:" + match[1].str();

  ProcessResult worker = RunProgram(kWorkerBinary, {"--coordinator=" + address});
  EXPECT_EQ(worker.exit_code, 0) << worker.err;
  EXPECT_NE(worker.out.find("version " LIKENESS_TEST_VERSION), std::string::npos) << worker.out;

  EXPECT_EQ(coordinator.Stop(SIGTERM, kStopTimeout), 0);
}

TEST(DaemonsTest, WorkerWithoutCoordinatorFailsWithinItsTimeout) {
  // Port 1 on loopback: nothing listens there in a test sandbox.
  ProcessResult worker = RunProgram(kWorkerBinary, {"--coordinator=127.0.0.1:1", "--connect_timeout_s=1"});
  EXPECT_EQ(worker.exit_code, 1);
  EXPECT_NE(worker.err.find("127.0.0.1:1"), std::string::npos) << worker.err;
}

}  // namespace
}  // namespace likeness::testing
