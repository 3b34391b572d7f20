// Sweep expansion: strategies, subject fill-in and errors that name the field and the value.
#include "coordinator/sweep_expansion.h"

#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/coordinator/sweep_fixtures.h"

namespace likeness::coordinator {
namespace {

using ::likeness::coordinator::testing::kTwoByTwo;
using ::likeness::coordinator::testing::ParseSweep;
using ::testing::HasSubstr;

TEST(SweepExpansionTest, GridIsTheProductWithTheFirstAxisSlowest) {
  auto points = ExpandSweep(ParseSweep(kTwoByTwo));
  ASSERT_TRUE(points.ok()) << points.status();
  ASSERT_EQ(points->size(), 4u);
  EXPECT_EQ((*points)[0].train.steps(), 2);
  EXPECT_DOUBLE_EQ((*points)[0].train.learning_rate(), 1e-4);
  EXPECT_EQ((*points)[1].train.steps(), 2);
  EXPECT_DOUBLE_EQ((*points)[1].train.learning_rate(), 2e-4);
  EXPECT_EQ((*points)[3].train.steps(), 4);
  ASSERT_EQ((*points)[3].values.size(), 2u);
  EXPECT_EQ((*points)[3].values[0].field(), "train.steps");
  EXPECT_EQ((*points)[3].values[0].value(), "4");
  EXPECT_EQ((*points)[3].values[1].value(), "2e-4");
}

TEST(SweepExpansionTest, SubjectAndBaseModelFillTheConfigs) {
  auto points = ExpandSweep(ParseSweep(kTwoByTwo));
  ASSERT_TRUE(points.ok()) << points.status();
  const SweepPoint& point = points->front();
  EXPECT_EQ(point.train.base_model(), "/models/tiny-sdxl");
  EXPECT_EQ(point.generate.model(), "/models/tiny-sdxl");
  EXPECT_EQ(point.train.instance_dir(), "/data/dog");
  EXPECT_EQ(point.train.identifier(), "sks");
  EXPECT_EQ(point.train.instance_prompt(), "a photo of sks dog");
  ASSERT_EQ(point.generate.prompts_size(), 1);
  EXPECT_EQ(point.generate.prompts(0), "a sks dog on the beach");
  EXPECT_EQ(point.train.lora_rank(), 4);  // fixed settings carry over
}

TEST(SweepExpansionTest, DefaultPromptsAreDreamBenchStyle) {
  v1::SweepSpec spec = ParseSweep(kTwoByTwo);
  spec.mutable_generate()->clear_prompts();
  auto points = ExpandSweep(spec);
  ASSERT_TRUE(points.ok()) << points.status();
  EXPECT_GE(points->front().generate.prompts_size(), 4);
  EXPECT_EQ(points->front().generate.prompts(0), "a sks dog in the jungle");
}

TEST(SweepExpansionTest, SubjectsVarySlowestAndNamesDefaultToTheFolder) {
  v1::SweepSpec spec = ParseSweep(kTwoByTwo);
  v1::Subject* cat = spec.add_subjects();
  cat->set_image_dir("/data/cat/");
  auto points = ExpandSweep(spec);
  ASSERT_TRUE(points.ok()) << points.status();
  ASSERT_EQ(points->size(), 8u);
  EXPECT_EQ((*points)[3].subject_index, 0);
  EXPECT_EQ((*points)[4].subject_index, 1);
  EXPECT_EQ((*points)[4].train.instance_dir(), "/data/cat/");
  EXPECT_EQ(NormalizeSweep(spec).subjects(1).name(), "cat");
}

TEST(SweepExpansionTest, RangesAreLinearOrLogAndIntegersRound) {
  auto points = ExpandSweep(ParseSweep(R"yaml(
base_model: m
subjects: [{image_dir: /d}]
train: {method: lora, steps: 10}
axes:
  - {field: train.learning_rate, min: 1e-5, max: 1e-3, num: 3, log_scale: true}
  - {field: train.lora_rank, min: 4, max: 8, num: 3}
)yaml"));
  ASSERT_TRUE(points.ok()) << points.status();
  ASSERT_EQ(points->size(), 9u);
  EXPECT_DOUBLE_EQ((*points)[3].train.learning_rate(), 1e-4);  // rounded: no exp/log noise
  EXPECT_EQ((*points)[3].values[0].value(), "1e-04");
  EXPECT_DOUBLE_EQ((*points)[8].train.learning_rate(), 1e-3);
  EXPECT_EQ((*points)[0].train.lora_rank(), 4);
  EXPECT_EQ((*points)[1].train.lora_rank(), 6);
  EXPECT_EQ((*points)[2].train.lora_rank(), 8);
}

TEST(SweepExpansionTest, EnumAndStringAxes) {
  auto points = ExpandSweep(ParseSweep(R"yaml(
base_model: m
subjects: [{image_dir: /d}]
train: {steps: 10}
axes:
  - {field: train.method, values: [lora, dreambooth]}
  - {field: generate.sampler, values: [euler, "dpmpp_2m_karras"]}
)yaml"));
  ASSERT_TRUE(points.ok()) << points.status();
  ASSERT_EQ(points->size(), 4u);
  EXPECT_EQ((*points)[0].train.method(), v1::TRAIN_METHOD_LORA);
  EXPECT_EQ((*points)[2].train.method(), v1::TRAIN_METHOD_DREAMBOOTH);
  EXPECT_EQ((*points)[1].generate.sampler(), "dpmpp_2m_karras");
}

TEST(SweepExpansionTest, RandomIsReproducibleFromItsSeedAndStaysInRange) {
  const char* yaml = R"yaml(
base_model: m
subjects: [{image_dir: /d}]
train: {method: lora, steps: 10}
strategy: random
random_seed: 7
random_count: 20
axes:
  - {field: train.learning_rate, min: 1e-5, max: 1e-3, log_scale: true}
  - {field: train.seed, values: [1, 2, 3]}
)yaml";
  auto a = ExpandSweep(ParseSweep(yaml));
  auto b = ExpandSweep(ParseSweep(yaml));
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_EQ(a->size(), 20u);
  std::set<uint64_t> seeds;
  for (size_t i = 0; i < a->size(); ++i) {
    EXPECT_EQ((*a)[i].train.learning_rate(), (*b)[i].train.learning_rate());
    EXPECT_GE((*a)[i].train.learning_rate(), 1e-5);
    EXPECT_LE((*a)[i].train.learning_rate(), 1e-3);
    seeds.insert((*a)[i].train.seed());
  }
  EXPECT_EQ(seeds.size(), 3u);
  v1::SweepSpec other = ParseSweep(yaml);
  other.set_random_seed(8);
  auto c = ExpandSweep(other);
  ASSERT_TRUE(c.ok());
  EXPECT_NE((*a)[0].train.learning_rate(), (*c)[0].train.learning_rate());
}

TEST(SweepExpansionTest, ZipPairsTheIthValues) {
  auto points = ExpandSweep(ParseSweep(R"yaml(
base_model: m
subjects: [{image_dir: /d}]
train: {method: lora}
strategy: zip
axes:
  - {field: train.steps, values: [100, 200, 300]}
  - {field: train.learning_rate, values: [1e-4, 5e-5, 2.5e-5]}
)yaml"));
  ASSERT_TRUE(points.ok()) << points.status();
  ASSERT_EQ(points->size(), 3u);
  EXPECT_EQ((*points)[2].train.steps(), 300);
  EXPECT_DOUBLE_EQ((*points)[2].train.learning_rate(), 2.5e-5);
}

struct BadSweep {
  const char* axes_yaml;  // appended to a valid spec
  const char* expected;   // a substring of the error
};

TEST(SweepExpansionTest, ErrorsNameTheFieldAndTheValue) {
  const BadSweep cases[] = {
      {"axes: [{field: train.steps, values: [1]}, {field: train.learning_rat, values: [1]}]",
       "axes[1].field 'train.learning_rat': no such field"},
      {"axes: [{field: training.steps, values: [1]}]",
       "axes[0].field 'training.steps': a field path starts with train., generate. or evaluate."},
      {"axes: [{field: train.learning_rate, values: [fast]}]",
       "axes[0].values[0] 'train.learning_rate'"},
      {"axes: [{field: train.learning_rate, values: [fast]}]", "'fast' is not a number"},
      {"axes: [{field: train.method, values: [lorra]}]", "'lorra' is not one of: lora"},
      {"axes: [{field: train.steps, values: [1.5]}]", "'1.5' is not an integer"},
      {"axes: [{field: train.lora_unet_targets, values: [a]}]", "is a list"},
      {"axes: [{field: train.steps, values: [1]}, {field: train.steps, values: [2]}]",
       "axes[1].field: 'train.steps' is swept twice"},
      {"axes: [{field: train.learning_rate, min: 1e-3, max: 1e-5, num: 2}]", "is not a range"},
      {"axes: [{field: train.learning_rate, min: 0, max: 1, num: 2, log_scale: true}]",
       "must be > 0 on a log scale"},
      {"axes: [{field: train.learning_rate, min: 0, max: 1}]", "axes[0].num 'train.learning_rate': 0"},
      {"axes: [{field: generate.sampler, min: 0, max: 1, num: 2}]", "needs a numeric field"},
      {"axes: [{field: train.steps}]", "no values"},
      {"strategy: zip\naxes: [{field: train.steps, values: [1, 2]}, {field: train.seed, values: [1]}]",
       "axes[1]: 'train.seed' has 1 values but axes[0] has 2"},
      {"strategy: random\naxes: [{field: train.steps, values: [1]}]", "random_count: 0"},
      {"axes: [{field: train.steps, values: [0]}]", "train.steps: 0"},
      {"axes: [{field: train.seed, min: 1, max: 100000, num: 200}, "
       "{field: train.lora_rank, min: 1, max: 100, num: 100}]",
       "more than 10000 points"},
  };
  for (const BadSweep& bad : cases) {
    const std::string yaml = std::string(R"yaml(
base_model: m
subjects: [{image_dir: /d}]
train: {method: lora, steps: 10}
)yaml") + bad.axes_yaml;
    auto points = ExpandSweep(ParseSweep(yaml));
    ASSERT_FALSE(points.ok()) << bad.axes_yaml;
    EXPECT_EQ(points.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(points.status().message()), HasSubstr(bad.expected)) << bad.axes_yaml;
  }
}

TEST(SweepExpansionTest, MissingEssentialsAreNamed) {
  EXPECT_THAT(std::string(ExpandSweep(ParseSweep("subjects: [{image_dir: /d}]\ntrain: {method: lora}"))
                              .status().message()),
              HasSubstr("base_model: empty"));
  EXPECT_THAT(std::string(ExpandSweep(ParseSweep("base_model: m\ntrain: {method: lora}")).status().message()),
              HasSubstr("subjects: empty"));
  EXPECT_THAT(std::string(ExpandSweep(ParseSweep("base_model: m\nsubjects: [{image_dir: /d}]\ntrain: {steps: 1}"))
                              .status().message()),
              HasSubstr("train.method: unset"));
  EXPECT_THAT(std::string(ExpandSweep(ParseSweep("base_model: m\nsubjects: [{name: a, image_dir: /d}, "
                                                 "{name: a, image_dir: /e}]\ntrain: {method: lora, steps: 1}"))
                              .status().message()),
              HasSubstr("subjects[1].name: 'a' names two subjects"));
}

}  // namespace
}  // namespace likeness::coordinator
