// AUTOMATIC1111's `parameters` text: what we write reads back field for field, and A1111's own
// text (copied from its PNG Info tab) parses.
#include "worker/generate/a1111_parameters.h"

#include "gtest/gtest.h"

namespace likeness::generate {
namespace {

TEST(A1111ParametersTest, FormatsTheWayA1111Writes) {
  A1111Parameters p;
  p.prompt = "a photo of sks dog";
  p.negative_prompt = "blurry";
  p.loras = {{"sks_dog", 0.8, "1a2b3c4d5e6f"}};
  p.fields = {{"Steps", "30"}, {"Sampler", "DPM++ 2M Karras"}, {"CFG scale", "5"},
              {"Seed", "1234"}, {"Size", "1024x1024"}, {"Model hash", "31e35c80fc"},
              {"Model", "sd_xl_base_1.0"}, {"Version", "likeness 0.1.0"}};
  EXPECT_EQ(FormatA1111Parameters(p),
            "a photo of sks dog <lora:sks_dog:0.8>\n"
            "Negative prompt: blurry\n"
            "Steps: 30, Sampler: DPM++ 2M Karras, CFG scale: 5, Seed: 1234, Size: 1024x1024, "
            "Model hash: 31e35c80fc, Model: sd_xl_base_1.0, Version: likeness 0.1.0, "
            "Lora hashes: \"sks_dog: 1a2b3c4d5e6f\"");
}

TEST(A1111ParametersTest, RoundTripsQuotedValuesMultilinePromptsAndLoras) {
  A1111Parameters p;
  p.prompt = "line one,\nline two: with \"quotes\"";
  p.negative_prompt = "bad, worse";
  p.loras = {{"a", 1.0, "aaaaaaaaaaaa"}, {"b", 0.25, ""}};
  p.fields = {{"Steps", "20"}, {"Model", "name, with comma"}, {"Note", "x: \"y\""}};
  absl::StatusOr<A1111Parameters> back = ParseA1111Parameters(FormatA1111Parameters(p));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->prompt, p.prompt);
  EXPECT_EQ(back->negative_prompt, p.negative_prompt);
  ASSERT_EQ(back->loras.size(), 2u);
  EXPECT_EQ(back->loras[0].name, "a");
  EXPECT_EQ(back->loras[0].hash, "aaaaaaaaaaaa");
  EXPECT_DOUBLE_EQ(back->loras[1].scale, 0.25);
  EXPECT_EQ(back->fields, p.fields);
}

TEST(A1111ParametersTest, ParsesA1111sOwnText) {
  const std::string text =
      "masterpiece, 1girl <lora:detail:0.5>\n"
      "Negative prompt: lowres\n"
      "Steps: 25, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7, Seed: 42, "
      "Size: 832x1216, Model hash: e6bb9ea85b, Model: sdXL_v10, Denoising strength: 0.4, "
      "Lora hashes: \"detail: 8b2e7d9c1a3f\", Version: v1.10.1";
  absl::StatusOr<A1111Parameters> p = ParseA1111Parameters(text);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->prompt, "masterpiece, 1girl");
  EXPECT_EQ(p->Field("Sampler"), "Euler a");
  EXPECT_EQ(p->Field("Seed"), "42");
  EXPECT_EQ(p->Field("Version"), "v1.10.1");
  EXPECT_EQ(p->Field("Lora hashes"), "");  // moved onto the LoRA
  ASSERT_EQ(p->loras.size(), 1u);
  EXPECT_EQ(p->loras[0].hash, "8b2e7d9c1a3f");
  EXPECT_DOUBLE_EQ(p->loras[0].scale, 0.5);
}

TEST(A1111ParametersTest, RejectsTextThatIsNotParameters) {
  const absl::StatusOr<A1111Parameters> p = ParseA1111Parameters("just a caption");
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(p.status().message()).find("just a caption"), std::string::npos);
}

TEST(A1111ParametersTest, NumbersAsA1111PrintsThem) {
  EXPECT_EQ(A1111Number(7.0), "7");
  EXPECT_EQ(A1111Number(7.5), "7.5");
  EXPECT_EQ(A1111Number(0.1), "0.1");
}

}  // namespace
}  // namespace likeness::generate
