// The torch-free pieces of worker/dist: the bucket plan, the launcher environment, the
// requeue contract.
#include <csignal>
#include <functional>
#include <map>
#include <string>

#include "gtest/gtest.h"
#include "worker/dist/bucket_plan.h"
#include "worker/dist/environment.h"
#include "worker/dist/requeue.h"

namespace likeness::dist {
namespace {

TensorSlot Floats(int64_t numel, const std::string& device = "cpu") {
  return TensorSlot{numel, 4, /*dtype=*/6, device};
}

TEST(BucketPlanTest, ReverseOrderPackedUpToTheCap) {
  // 4 tensors of 100 floats (400 B), cap 1000 B: two per bucket, last registered first.
  const std::vector<BucketSpec> plan =
      PlanBuckets({Floats(100), Floats(100), Floats(100), Floats(100)}, 1000);
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[0].tensors, (std::vector<int>{3, 2}));
  EXPECT_EQ(plan[0].offsets, (std::vector<int64_t>{0, 100}));
  EXPECT_EQ(plan[0].numel, 200);
  EXPECT_EQ(plan[1].tensors, (std::vector<int>{1, 0}));
}

TEST(BucketPlanTest, ATensorLargerThanTheCapGetsItsOwnBucket) {
  const std::vector<BucketSpec> plan = PlanBuckets({Floats(10), Floats(1000), Floats(10)}, 400);
  ASSERT_EQ(plan.size(), 3u);
  EXPECT_EQ(plan[0].tensors, (std::vector<int>{2}));
  EXPECT_EQ(plan[1].tensors, (std::vector<int>{1}));
  EXPECT_EQ(plan[1].bytes(), 4000);
  EXPECT_EQ(plan[2].tensors, (std::vector<int>{0}));
}

TEST(BucketPlanTest, DtypeOrDeviceChangesStartABucket) {
  std::vector<TensorSlot> slots = {Floats(10), Floats(10), Floats(10, "cuda:0")};
  slots[0].dtype = 15;  // bfloat16
  slots[0].element_size = 2;
  const std::vector<BucketSpec> plan = PlanBuckets(slots, 1 << 20);
  ASSERT_EQ(plan.size(), 3u);
  EXPECT_EQ(plan[0].device, "cuda:0");
  EXPECT_EQ(plan[1].tensors, (std::vector<int>{1}));
  EXPECT_EQ(plan[2].element_size, 2);
}

TEST(BucketPlanTest, EveryTensorExactlyOnceAndThePlanIsAPureFunction) {
  std::vector<TensorSlot> slots;
  for (int i = 0; i < 50; ++i) slots.push_back(Floats(1 + (i * 37) % 300));
  const std::vector<BucketSpec> a = PlanBuckets(slots, 2048);
  const std::vector<BucketSpec> b = PlanBuckets(slots, 2048);
  std::vector<int> seen(slots.size(), 0);
  ASSERT_EQ(a.size(), b.size());
  for (size_t k = 0; k < a.size(); ++k) {
    EXPECT_EQ(a[k].tensors, b[k].tensors);
    EXPECT_LE(a[k].bytes(), 2048);
    for (int t : a[k].tensors) ++seen[t];
  }
  for (int count : seen) EXPECT_EQ(count, 1);
}

TEST(BucketPlanTest, NoTensorsNoBuckets) { EXPECT_TRUE(PlanBuckets({}, 1024).empty()); }

struct FakeEnv {
  std::map<std::string, std::string> vars;
  std::function<const char*(const char*)> Getter() const {
    return [this](const char* name) -> const char* {
      const auto it = vars.find(name);
      return it == vars.end() ? nullptr : it->second.c_str();
    };
  }
};

TEST(EnvironmentTest, NoLauncherIsOneProcess) {
  FakeEnv env;
  const absl::StatusOr<DistEnvironment> e = ReadDistEnvironment(env.Getter());
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->size, 1);
  EXPECT_FALSE(e->distributed());
  EXPECT_EQ(e->source, "none");
}

TEST(EnvironmentTest, OpenMpiSlurmAndExplicitInThatPriority) {
  FakeEnv env;
  env.vars = {{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "8"}, {"SLURM_LOCALID", "1"}};
  absl::StatusOr<DistEnvironment> e = ReadDistEnvironment(env.Getter());
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->source, "slurm");
  EXPECT_EQ(e->rank, 5);
  EXPECT_EQ(e->size, 8);
  EXPECT_EQ(e->local_rank, 1);
  env.vars["OMPI_COMM_WORLD_RANK"] = "3";
  env.vars["OMPI_COMM_WORLD_SIZE"] = "4";
  env.vars["OMPI_COMM_WORLD_LOCAL_RANK"] = "3";
  e = ReadDistEnvironment(env.Getter());
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->source, "openmpi");
  EXPECT_EQ(e->rank, 3);
  env.vars["LIKENESS_RANK"] = "0";
  env.vars["LIKENESS_WORLD_SIZE"] = "2";
  e = ReadDistEnvironment(env.Getter());
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->source, "explicit");
  EXPECT_EQ(e->size, 2);
  EXPECT_EQ(e->local_rank, 0);  // not given: one rank per node
}

TEST(EnvironmentTest, BadValuesNameTheVariable) {
  FakeEnv env;
  env.vars = {{"SLURM_PROCID", "x"}, {"SLURM_NTASKS", "2"}};
  absl::StatusOr<DistEnvironment> e = ReadDistEnvironment(env.Getter());
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("SLURM_PROCID"), std::string::npos);
  env.vars = {{"OMPI_COMM_WORLD_RANK", "2"}, {"OMPI_COMM_WORLD_SIZE", "2"}};
  e = ReadDistEnvironment(env.Getter());
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(RequeueTest, MarkedStatusesMapToTheRequeueExitCode) {
  const absl::Status plain = absl::AbortedError("peer gone");
  EXPECT_FALSE(IsRequeue(plain));
  EXPECT_EQ(ExitCodeFor(plain, 1), 1);
  const absl::Status marked = MarkRequeue(plain);
  EXPECT_TRUE(IsRequeue(marked));
  EXPECT_EQ(marked.message(), "peer gone");
  EXPECT_EQ(ExitCodeFor(marked, 1), kRequeueExitCode);
  EXPECT_EQ(ExitCodeFor(absl::OkStatus(), 1), 0);
  EXPECT_NE(kRequeueExitCode, 1);
  EXPECT_NE(kRequeueExitCode, 2);
}

TEST(RequeueTest, PreemptSignalSetsTheFlag) {
  SetPreemptRequestedForTesting(false);
  InstallPreemptHandler();
  EXPECT_FALSE(PreemptRequested());
  raise(kPreemptSignal);
  EXPECT_TRUE(PreemptRequested());
  SetPreemptRequestedForTesting(false);
}

}  // namespace
}  // namespace likeness::dist
