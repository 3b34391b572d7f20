// The job DAG: train -> generate -> evaluate per point, with shared training runs.
#include "coordinator/job_graph.h"

#include <map>

#include "coordinator/sweep_expansion.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/coordinator/sweep_fixtures.h"

namespace likeness::coordinator {
namespace {

using ::likeness::coordinator::testing::kTwoByTwo;
using ::likeness::coordinator::testing::ParseSweep;
using ::testing::ElementsAre;

std::vector<v1::Job> Build(const v1::SweepSpec& spec) {
  auto points = ExpandSweep(spec);
  EXPECT_TRUE(points.ok()) << points.status();
  return BuildJobGraph("s-1", NormalizeSweep(spec), *points, "/art");
}

// Pointers into `jobs`, which must outlive the map (a temporary cannot be passed).
std::map<v1::JobKind, std::vector<const v1::Job*>> ByKind(std::vector<v1::Job>&&) = delete;
std::map<v1::JobKind, std::vector<const v1::Job*>> ByKind(const std::vector<v1::Job>& jobs) {
  std::map<v1::JobKind, std::vector<const v1::Job*>> kinds;
  for (const v1::Job& job : jobs) kinds[job.spec().kind()].push_back(&job);
  return kinds;
}

TEST(JobGraphTest, ConstantScheduleSharesOneRunAcrossTheStepAxis) {
  const std::vector<v1::Job> jobs = Build(ParseSweep(kTwoByTwo));
  auto kinds = ByKind(jobs);
  // Two learning rates train; each run serves steps 2 and 4 from its checkpoints.
  ASSERT_EQ(kinds[v1::JOB_KIND_TRAIN].size(), 2u);
  ASSERT_EQ(kinds[v1::JOB_KIND_GENERATE].size(), 4u);
  ASSERT_EQ(kinds[v1::JOB_KIND_EVALUATE].size(), 4u);
  const v1::Job& train = *kinds[v1::JOB_KIND_TRAIN][0];
  EXPECT_EQ(train.id(), "s-1.train-0");
  EXPECT_EQ(train.state(), v1::JOB_STATE_QUEUED);
  EXPECT_EQ(train.spec().train().steps(), 4);
  EXPECT_EQ(train.spec().train().checkpoint_every(), 2);
  EXPECT_EQ(train.spec().train().checkpoints_to_keep(), 0);
  EXPECT_THAT(train.spec().checkpoint_steps(), ElementsAre(2, 4));
  EXPECT_EQ(train.spec().train().output_dir(), "/art/s-1/train-0");
  // Its description keeps only what both points share: the learning rate.
  ASSERT_EQ(train.spec().point_size(), 1);
  EXPECT_EQ(train.spec().point(0).field(), "train.learning_rate");

  const v1::Job& generate = *kinds[v1::JOB_KIND_GENERATE][0];
  EXPECT_EQ(generate.state(), v1::JOB_STATE_PENDING);
  EXPECT_THAT(generate.spec().depends_on(), ElementsAre(train.id()));
  EXPECT_EQ(generate.spec().checkpoint_dir(), "/art/s-1/train-0/step-2");
  EXPECT_EQ(generate.spec().checkpoint_step(), 2);
  EXPECT_EQ(generate.spec().generate().output_dir(), "/art/s-1/generate-0");
  const v1::Job& evaluate = *kinds[v1::JOB_KIND_EVALUATE][0];
  EXPECT_THAT(evaluate.spec().depends_on(), ElementsAre(generate.id()));
  EXPECT_EQ(evaluate.spec().images_dir(), "/art/s-1/generate-0");
  EXPECT_EQ(evaluate.spec().reference_dir(), "/data/dog");
  EXPECT_EQ(evaluate.spec().point_size(), 2);
}

TEST(JobGraphTest, StepDependentSchedulesTrainEachLength) {
  for (const char* schedule : {"cosine", "linear"}) {
    v1::SweepSpec spec = ParseSweep(kTwoByTwo);
    spec.mutable_train()->set_lr_scheduler(schedule);
    const std::vector<v1::Job> jobs = Build(spec);
    auto kinds = ByKind(jobs);
    ASSERT_EQ(kinds[v1::JOB_KIND_TRAIN].size(), 4u) << schedule;
    for (const v1::Job* train : kinds[v1::JOB_KIND_TRAIN]) {
      EXPECT_EQ(train->spec().checkpoint_steps_size(), 1);
      EXPECT_EQ(train->spec().train().checkpoint_every(), 0);  // the user's, untouched
    }
  }
}

TEST(JobGraphTest, WarmupThenConstantStillShares) {
  v1::SweepSpec spec = ParseSweep(kTwoByTwo);
  spec.mutable_train()->set_lr_scheduler("constant_with_warmup");
  spec.mutable_train()->set_lr_warmup_steps(1);
  const std::vector<v1::Job> jobs = Build(spec);
  EXPECT_EQ(ByKind(jobs)[v1::JOB_KIND_TRAIN].size(), 2u);
}

TEST(JobGraphTest, PivotalTuningNeverSharesSteps) {
  v1::SweepSpec spec = ParseSweep(kTwoByTwo);
  spec.mutable_train()->set_method(v1::TRAIN_METHOD_PIVOTAL_TUNING);
  const std::vector<v1::Job> jobs = Build(spec);
  EXPECT_EQ(ByKind(jobs)[v1::JOB_KIND_TRAIN].size(), 4u);
}

TEST(JobGraphTest, TooManyCheckpointsTrainSeparately) {
  v1::SweepSpec spec = ParseSweep(kTwoByTwo);
  spec.mutable_axes(0)->clear_values();
  spec.mutable_axes(0)->add_values("1000");
  spec.mutable_axes(0)->add_values("1001");  // gcd 1: 1001 checkpoints
  const std::vector<v1::Job> jobs = Build(spec);
  EXPECT_EQ(ByKind(jobs)[v1::JOB_KIND_TRAIN].size(), 4u);
}

TEST(JobGraphTest, UserCheckpointIntervalIsKeptWhenItDividesTheSteps) {
  v1::SweepSpec spec = ParseSweep(kTwoByTwo);
  spec.mutable_axes(0)->clear_values();
  spec.mutable_axes(0)->add_values("100");
  spec.mutable_axes(0)->add_values("200");
  spec.mutable_train()->set_checkpoint_every(50);
  const std::vector<v1::Job> jobs = Build(spec);
  const v1::Job& train = *ByKind(jobs)[v1::JOB_KIND_TRAIN][0];
  EXPECT_EQ(train.spec().train().checkpoint_every(), 50);
  EXPECT_EQ(train.spec().train().steps(), 200);
}

TEST(JobGraphTest, GenerateAxesShareTheTrainingRun) {
  v1::SweepSpec spec = ParseSweep(R"yaml(
base_model: m
subjects: [{image_dir: /d/dog}]
train: {method: lora, steps: 10}
axes: [{field: generate.guidance_scale, values: [3, 5, 7]}]
)yaml");
  const std::vector<v1::Job> jobs = Build(spec);
    auto kinds = ByKind(jobs);
  EXPECT_EQ(kinds[v1::JOB_KIND_TRAIN].size(), 1u);
  EXPECT_EQ(kinds[v1::JOB_KIND_GENERATE].size(), 3u);
  EXPECT_EQ(kinds[v1::JOB_KIND_EVALUATE].size(), 3u);
}

TEST(JobGraphTest, SkipFlagsAndResourcesAndPriority) {
  v1::SweepSpec spec = ParseSweep(kTwoByTwo);
  spec.set_skip_evaluate(true);
  spec.set_priority(3);
  spec.mutable_train_resources()->set_whole_node(true);
  const std::vector<v1::Job> jobs = Build(spec);
  auto kinds = ByKind(jobs);
  EXPECT_EQ(kinds[v1::JOB_KIND_EVALUATE].size(), 0u);
  EXPECT_TRUE(kinds[v1::JOB_KIND_TRAIN][0]->spec().resources().whole_node());
  EXPECT_FALSE(kinds[v1::JOB_KIND_GENERATE][0]->spec().resources().whole_node());
  for (const v1::Job& job : jobs) EXPECT_EQ(job.priority(), 3);
  spec.set_skip_generate(true);
  EXPECT_EQ(Build(spec).size(), 2u);
}

// The example shipped in launch/examples stays valid and shares its training runs.
TEST(JobGraphTest, TheExampleSweepFileExpands) {
  v1::SweepSpec spec;
  const absl::Status read = config::MergeYamlFileIntoProto(
      std::string(LIKENESS_SOURCE_DIR) + "/launch/examples/lora_sweep.yaml", &spec);
  ASSERT_TRUE(read.ok()) << read;
  const std::vector<v1::Job> jobs = Build(spec);
    auto kinds = ByKind(jobs);
  EXPECT_EQ(kinds[v1::JOB_KIND_TRAIN].size(), 6u);
  EXPECT_EQ(kinds[v1::JOB_KIND_GENERATE].size(), 18u);
  EXPECT_EQ(kinds[v1::JOB_KIND_EVALUATE].size(), 18u);
}

TEST(JobGraphTest, EveryJobFollowsItsDependencies) {
  const std::vector<v1::Job> jobs = Build(ParseSweep(kTwoByTwo));
  std::map<std::string, size_t> position;
  for (size_t i = 0; i < jobs.size(); ++i) position[jobs[i].id()] = i;
  for (size_t i = 0; i < jobs.size(); ++i) {
    for (const std::string& dependency : jobs[i].spec().depends_on()) {
      ASSERT_TRUE(position.count(dependency)) << dependency;
      EXPECT_LT(position[dependency], i);
    }
  }
}

}  // namespace
}  // namespace likeness::coordinator
