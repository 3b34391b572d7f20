// YAML configs onto the protobuf schema: every field type, lists, enums by short name, --set
// overrides, and errors that name the file, line, field and value.
#include "common/config/proto_yaml.h"

#include <fstream>
#include <limits>

#include "gtest/gtest.h"
#include "protos/likeness.pb.h"
#include "tests/test_data.h"

namespace likeness::config {
namespace {

using ::likeness::v1::GenerateConfig;
using ::likeness::v1::SweepSpec;
using ::likeness::v1::TrainConfig;

TEST(ProtoYamlTest, MapsEveryScalarKind) {
  TrainConfig config;
  ASSERT_TRUE(MergeYamlIntoProto(R"(
method: lora
base_model: /models/sdxl
instance_prompt: "a photo of sks dog"
steps: 1e3
learning_rate: 1e-4
seed: 18446744073709551615
)", "train.yaml", &config).ok());
  EXPECT_EQ(config.method(), likeness::v1::TRAIN_METHOD_LORA);
  EXPECT_EQ(config.base_model(), "/models/sdxl");
  EXPECT_EQ(config.instance_prompt(), "a photo of sks dog");
  EXPECT_EQ(config.steps(), 1000);
  EXPECT_DOUBLE_EQ(config.learning_rate(), 1e-4);
  EXPECT_EQ(config.seed(), std::numeric_limits<uint64_t>::max());
}

TEST(ProtoYamlTest, EnumsAcceptFullAndShortNamesInAnyCase) {
  for (const char* text : {"method: TRAIN_METHOD_DREAMBOOTH", "method: DreamBooth",
                           "method: dreambooth"}) {
    TrainConfig config;
    ASSERT_TRUE(MergeYamlIntoProto(text, "t.yaml", &config).ok()) << text;
    EXPECT_EQ(config.method(), likeness::v1::TRAIN_METHOD_DREAMBOOTH) << text;
  }
}

TEST(ProtoYamlTest, NestedMessagesListsAndPresence) {
  GenerateConfig config;
  ASSERT_TRUE(MergeYamlIntoProto(R"(
prompts: a photo of sks dog       # one value is a list of one
loras:
  - path: a.safetensors
    scale: 0.8
  - {path: b.safetensors}
guidance_scale: 0
paste_back: yes
)", "g.yaml", &config).ok());
  ASSERT_EQ(config.prompts_size(), 1);
  EXPECT_EQ(config.prompts(0), "a photo of sks dog");
  ASSERT_EQ(config.loras_size(), 2);
  EXPECT_TRUE(config.loras(0).has_scale());
  EXPECT_DOUBLE_EQ(config.loras(0).scale(), 0.8);
  EXPECT_FALSE(config.loras(1).has_scale());
  EXPECT_TRUE(config.has_guidance_scale());  // an explicit 0 is kept apart from "unset"
  EXPECT_FALSE(config.has_strength());
  EXPECT_TRUE(config.paste_back());
}

TEST(ProtoYamlTest, OverridesReplaceListsAndReachNestedFields) {
  SweepSpec sweep;
  ASSERT_TRUE(MergeYamlIntoProto("train: {steps: 10, validation_prompts: [a, b]}",
                                 "s.yaml", &sweep).ok());
  ASSERT_TRUE(ApplyOverrides({"train.validation_prompts=[c]", "train.steps=20",
                              "generate.prompts=a photo"}, &sweep).ok());
  ASSERT_EQ(sweep.train().validation_prompts_size(), 1);
  EXPECT_EQ(sweep.train().validation_prompts(0), "c");
  EXPECT_EQ(sweep.train().steps(), 20);
  EXPECT_EQ(sweep.generate().prompts(0), "a photo");
}

struct BadCase {
  const char* yaml;
  const char* expected;  // a substring of the error
};

TEST(ProtoYamlTest, ErrorsNameSourceLineFieldAndValue) {
  const BadCase cases[] = {
      {"steps: ten", "t.yaml:1:8: field 'steps': 'ten' is not an integer"},
      {"steps: 3000000000", "'3000000000' is not an integer"},
      {"steps: 1.5", "'1.5' is not an integer"},
      {"seed: -1", "field 'seed': '-1' is not an integer"},
      {"lora_rankk: 4", "field 'lora_rankk': unknown field of TrainConfig (fields: method"},
      {"method: lorra", "field 'method': 'lorra' is not one of: lora, dreambooth"},
      {"method: unspecified", "'unspecified' is not one of"},
      {"steps: [1, 2]", "field 'steps': expected one value, got a list"},
      {"learning_rate: fast", "'fast' is not a number"},
      {"\n\nsteps: {a: 1}", "t.yaml:3:8: field 'steps': expected a single value"},
      {"steps: [1, 2", "t.yaml:1:"},
      {"- 1\n- 2", "expected a map of the fields of TrainConfig"},
  };
  for (const BadCase& c : cases) {
    TrainConfig config;
    const absl::Status status = MergeYamlIntoProto(c.yaml, "t.yaml", &config);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.yaml;
    EXPECT_NE(std::string(status.message()).find(c.expected), std::string::npos)
        << c.yaml << " -> " << status.message();
  }
  GenerateConfig generate;
  const absl::Status nested =
      MergeYamlIntoProto("loras:\n  - path: a\n    scale: big", "g.yaml", &generate);
  EXPECT_NE(std::string(nested.message()).find("field 'loras.[0].scale': 'big'"),
            std::string::npos) << nested.message();
}

TEST(ProtoYamlTest, BadOverridesAndMissingFiles) {
  TrainConfig config;
  EXPECT_NE(std::string(ApplyOverride("steps", &config).message()).find("expected FIELD=VALUE"),
            std::string::npos);
  EXPECT_NE(std::string(ApplyOverride("stepz=3", &config).message()).find("--set stepz=3"),
            std::string::npos);
  const absl::Status missing = MergeYamlFileIntoProto("/nonexistent/train.yaml", &config);
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(std::string(missing.message()).find("/nonexistent/train.yaml"), std::string::npos);
}

TEST(ProtoYamlTest, YamlRoundTripIsExact) {
  GenerateConfig config;
  config.add_prompts("a \"quoted\" prompt: with colon");
  config.add_prompts("second\nline");
  config.set_guidance_scale(7.123456789012345);
  config.set_seed(std::numeric_limits<uint64_t>::max());
  config.add_loras()->set_path("x.safetensors");
  config.mutable_loras(0)->set_scale(0.1);
  config.set_paste_back(true);
  const std::string yaml = ProtoToYaml(config);
  GenerateConfig back;
  ASSERT_TRUE(MergeYamlIntoProto(yaml, "roundtrip", &back).ok()) << yaml;
  EXPECT_EQ(back.SerializeAsString(), config.SerializeAsString()) << yaml;

  TrainConfig train;
  train.set_method(likeness::v1::TRAIN_METHOD_PIVOTAL_TUNING);
  TrainConfig train_back;
  ASSERT_TRUE(MergeYamlIntoProto(ProtoToYaml(train), "rt", &train_back).ok());
  EXPECT_EQ(train_back.method(), train.method());
  EXPECT_NE(ProtoToYaml(train).find("pivotal_tuning"), std::string::npos);
}

TEST(ProtoYamlTest, ReadsFiles) {
  const std::string dir = testing::MakeTestTempDir("proto_yaml");
  const std::string path = dir + "/train.yaml";
  std::ofstream(path) << "steps: 12\n";
  TrainConfig config;
  ASSERT_TRUE(MergeYamlFileIntoProto(path, &config).ok());
  EXPECT_EQ(config.steps(), 12);
}

}  // namespace
}  // namespace likeness::config
