// Faults on 2 ranks, through mpirun as a job would run: a rank that stalls or dies in the
// middle of backward ends the job within the collective timeout, with an error naming the
// collective and the rank, and dist::kRequeueExitCode.
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/cli/run_program.h"
#include "worker/dist/requeue.h"

namespace likeness::testing {
namespace {

// Short, so the tests are quick; the grace and mpirun's start and teardown come on top.
constexpr int kTimeoutSeconds = 3;
constexpr double kAllowedSeconds = kTimeoutSeconds + 2 /*kDiagnosisGrace*/ + 20 /*mpirun*/;

struct Outcome {
  ProcessResult result;
  double seconds = 0.0;
};

Outcome RunJob(const std::string& scenario, const std::vector<std::string>& mpirun_options = {}) {
  std::vector<std::string> args = {"-np", "2", "--oversubscribe"};
  args.insert(args.end(), mpirun_options.begin(), mpirun_options.end());
  args.push_back(LIKENESS_FAULT_DRIVER);
  args.push_back(scenario);
  const auto start = std::chrono::steady_clock::now();
  Outcome o;
  o.result = RunProgram(LIKENESS_MPIEXEC, args,
                        {{"LIKENESS_COLLECTIVE_TIMEOUT_S", std::to_string(kTimeoutSeconds)},
                         {"OMPI_ALLOW_RUN_AS_ROOT", "1"},
                         {"OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1"}});
  o.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return o;
}

class DistFaultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string(LIKENESS_MPIEXEC).empty() || access(LIKENESS_MPIEXEC, X_OK) != 0) {
      GTEST_SKIP() << "no mpirun";
    }
  }
};

TEST_F(DistFaultsTest, AHealthyJobFinishes) {
  const Outcome o = RunJob("ok");
  EXPECT_EQ(o.result.exit_code, 0) << o.result.err;
  EXPECT_NE(o.result.out.find("step 9"), std::string::npos) << o.result.out;
}

TEST_F(DistFaultsTest, AStalledRankEndsTheJobWithinTheTimeoutNamingIt) {
  const Outcome o = RunJob("stall");
  EXPECT_EQ(o.result.exit_code, dist::kRequeueExitCode) << o.result.err;
  EXPECT_LT(o.seconds, kAllowedSeconds);
  EXPECT_NE(o.result.out.find("step 2"), std::string::npos) << o.result.out;
  EXPECT_NE(o.result.err.find("dist: rank 0 of 2"), std::string::npos) << o.result.err;
  EXPECT_NE(o.result.err.find("gradient bucket"), std::string::npos) << o.result.err;
  EXPECT_NE(o.result.err.find(absl::StrCat("timed out after ", kTimeoutSeconds, "s")),
            std::string::npos) << o.result.err;
  EXPECT_NE(o.result.err.find("rank(s) 1 did not answer"), std::string::npos) << o.result.err;
}

// Open MPI itself ends a job whose rank died (its default); with that turned off the
// survivors' own deadline does it, as on launchers that do not watch their processes.
TEST_F(DistFaultsTest, AKilledRankEndsTheJobWithinTheTimeout) {
  const Outcome watched = RunJob("kill");
  EXPECT_NE(watched.result.exit_code, 0);
  EXPECT_LT(watched.seconds, kAllowedSeconds);
  const Outcome unwatched = RunJob("kill", {"--mca", "orte_abort_on_non_zero_status", "0"});
  EXPECT_NE(unwatched.result.exit_code, 0);  // mpirun reports the first failure, the kill
  EXPECT_LT(unwatched.seconds, kAllowedSeconds);
  EXPECT_NE((unwatched.result.out + unwatched.result.err).find("rank(s) 1 did not answer"),
            std::string::npos) << unwatched.result.err;
  std::printf("killed rank: mpirun exit %d after %.1f s (watched), %d after %.1f s (unwatched)\n",
              watched.result.exit_code, watched.seconds, unwatched.result.exit_code,
              unwatched.seconds);
}

}  // namespace
}  // namespace likeness::testing
