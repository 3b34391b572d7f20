// `likeness inspect` as a user runs it: full SDXL without its weights, and real files.
#include <fstream>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/cli/run_program.h"
#include "tests/test_data.h"

namespace likeness::testing {
namespace {

using nlohmann::json;

// Published parameter counts of SDXL base 1.0's components.
const std::map<std::string, int64_t>& PublishedParameters() {
  static const auto* counts = new std::map<std::string, int64_t>{{"unet", 2'567'463'684},
                                                                  {"vae", 83'653'863},
                                                                  {"text_encoder", 123'060'480},
                                                                  {"text_encoder_2", 694'659'840}};
  return *counts;
}

TEST(InspectCommandTest, SdxlBaseArchitectureMatchesPublishedCountsAndEveryShape) {
  ProcessResult r = RunLikeness({"inspect", "--arch", "sdxl-base", "--json", "--tensors"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json report = json::parse(r.out);
  for (const auto& [name, count] : PublishedParameters()) {
    EXPECT_EQ(report["components"][name]["parameters"].get<int64_t>(), count) << name;
  }
  std::ifstream in(SdxlShapesPath());
  ASSERT_TRUE(in.good()) << "cannot read " << SdxlShapesPath();
  const json reference = json::parse(in);
  ASSERT_FALSE(reference["components"].empty());
  for (const auto& [component, shapes] : reference["components"].items()) {
    ASSERT_TRUE(report["components"].contains(component)) << component;
    const json& ours = report["components"][component]["tensors"];
    for (const auto& [name, shape] : shapes.items()) {
      ASSERT_TRUE(ours.contains(name)) << component << ": missing " << name;
      EXPECT_EQ(ours[name], shape) << component << ": " << name;
    }
    // Parameters only on our side, so every one of ours must be in the reference.
    for (const auto& [name, shape] : ours.items()) {
      EXPECT_TRUE(shapes.contains(name)) << component << ": extra " << name;
    }
  }
}

TEST(InspectCommandTest, SingleFileCheckpointListsComponentsAndConfigs) {
  const std::string path = GoldenDir() + "/sdxl_single_file_tiny.safetensors";
  // The tiny model's head counts are not SDXL's, so they come from the sidecar, as a user's would.
  std::ifstream sidecar(GoldenDir() + "/sdxl_single_file_tiny.json");
  const std::string config = MakeTestTempDir("cli_inspect") + "/config.json";
  std::ofstream(config) << json::parse(sidecar)["config"].dump();
  ProcessResult without = RunLikeness({"inspect", path});
  EXPECT_EQ(without.exit_code, 1);
  EXPECT_NE(without.err.find("num_attention_heads"), std::string::npos) << without.err;
  ProcessResult r = RunLikeness({"inspect", path, "--json", "--config", config});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json report = json::parse(r.out);
  EXPECT_EQ(report["format"], "single-file checkpoint");
  for (const char* name : {"unet", "vae", "text_encoder", "text_encoder_2"}) {
    ASSERT_TRUE(report["components"].contains(name)) << name;
    EXPECT_GT(report["components"][name]["parameters"].get<int64_t>(), 0) << name;
    EXPECT_TRUE(report["components"][name]["config"].is_object()) << name;
  }
  EXPECT_TRUE(report["unknown"].empty()) << report["unknown"];
  ProcessResult table = RunLikeness({"inspect", path, "--config", config});
  EXPECT_EQ(table.exit_code, 0);
  EXPECT_NE(table.out.find("UNet2DConditionModel"), std::string::npos) << table.out;
}

TEST(InspectCommandTest, BadInputsNameWhatIsWrong) {
  ProcessResult missing = RunLikeness({"inspect", "/no/such/checkpoint.safetensors"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("/no/such/checkpoint.safetensors"), std::string::npos) << missing.err;
  ProcessResult arch = RunLikeness({"inspect", "--arch", "sdxl-huge"});
  EXPECT_EQ(arch.exit_code, 2);
  EXPECT_NE(arch.err.find("sdxl-huge"), std::string::npos) << arch.err;
  EXPECT_EQ(RunLikeness({"inspect"}).exit_code, 2);
}

}  // namespace
}  // namespace likeness::testing
