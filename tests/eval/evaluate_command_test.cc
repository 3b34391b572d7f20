// `likeness evaluate` as a user runs it: small PNGs written here, the golden tiny encoders as a
// transformers folder (a full CLIPModel with a random text tower, and DINO), and the shared BPE
// vocabulary. The encoders' weights are random, so the numbers are checked for presence and
// range, not value.
#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/cli/run_program.h"
#include "tests/eval/eval_fixtures.h"
#include "tests/test_data.h"
#include "worker/image/image_io.h"

namespace likeness::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using nlohmann::json;

constexpr int kImageWidth = 48;
constexpr int kImageHeight = 40;

// A gradient image tinted by `tint`, so images differ.
image::Image Gradient(int tint) {
  image::Image image = image::MakeImage(kImageWidth, kImageHeight, 3);
  for (int y = 0; y < kImageHeight; ++y) {
    for (int x = 0; x < kImageWidth; ++x) {
      uint8_t* p = &image.pixels[(static_cast<size_t>(y) * kImageWidth + x) * 3];
      p[0] = static_cast<uint8_t>(5 * x + tint);
      p[1] = static_cast<uint8_t>(6 * y);
      p[2] = static_cast<uint8_t>(tint * 3 + x * y);
    }
  }
  return image;
}

std::string Parameters(const std::string& prompt) {
  return prompt + "\nNegative prompt: blurry\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1, "
                  "Size: 48x40";
}

class EvaluateCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTestTempDir("cli_evaluate");
    real_ = dir_ + "/real";
    generated_ = dir_ + "/generated";
    fs::create_directories(real_);
    fs::create_directories(generated_);
    for (int i = 0; i < 2; ++i) {
      ASSERT_TRUE(image::WritePngFile(real_ + "/photo" + std::to_string(i) + ".png", Gradient(40 * i)).ok());
    }
    const std::vector<std::string> prompts = {"a sks dog in the snow", "a sks dog on the beach",
                                              "a red sks dog"};
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(image::WritePngFile(generated_ + "/" + std::to_string(i) + ".png",
                                      Gradient(20 + 50 * i),
                                      {{"parameters", Parameters(prompts[i])}})
                      .ok());
    }
    std::ofstream(generated_ + "/notes.txt") << "not an image; ignored";
    absl::StatusOr<std::string> clip = WriteTinyFullClipFolder(dir_ + "/clip");
    absl::StatusOr<std::string> dino = WriteTinyDinoFolder(dir_ + "/dino");
    ASSERT_TRUE(clip.ok()) << clip.status();
    ASSERT_TRUE(dino.ok()) << dino.status();
    clip_ = *clip;
    dino_ = *dino;
  }

  std::vector<std::string> Args(std::vector<std::string> extra) const {
    std::vector<std::string> args = {"evaluate", "--real", real_, "--generated", generated_,
                                     "--vocab", BpeVocabPath()};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  static json ReadJson(const std::string& path) {
    std::ifstream in(path);
    return json::parse(in);
  }

  std::string dir_, real_, generated_, clip_, dino_;
};

TEST_F(EvaluateCommandTest, ComputesEveryMetricWithWeights) {
  const std::string out = dir_ + "/report.json";
  ProcessResult r = RunLikeness(Args({"--clip", clip_, "--dino", dino_, "--class", "dog",
                                      "--identifier", "sks", "--json", out}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("DINO"));
  EXPECT_THAT(r.out, HasSubstr("0.774"));  // the paper's numbers beside ours
  EXPECT_THAT(r.out, HasSubstr("0.305"));
  const json report = ReadJson(out);
  EXPECT_EQ(report["format"], "likeness.evaluation/1");
  EXPECT_EQ(report["generated"]["images"], 3);
  EXPECT_EQ(report["real"]["images"], 2);
  EXPECT_FALSE(report["same_set"].get<bool>());
  for (const char* metric : {"dino", "clip_i", "clip_t", "diversity_pixels", "diversity_dino",
                             "diversity_clip"}) {
    ASSERT_TRUE(report["metrics"].contains(metric)) << metric << ": " << report["skipped"].dump();
    const double value = report["metrics"][metric].get<double>();
    EXPECT_GE(value, -1.0) << metric;
    EXPECT_LE(value, 2.0) << metric;
  }
  EXPECT_TRUE(report["skipped"].contains("train_loss"));
  const json& first = report["images"][0];
  EXPECT_EQ(first["file"], "0.png");
  EXPECT_EQ(first["prompt"], "a sks dog in the snow");
  EXPECT_EQ(first["prompt_source"], "png parameters");
  EXPECT_EQ(first["evaluation_prompt"], "a dog in the snow");
  EXPECT_TRUE(first.contains("clip_t"));
  EXPECT_EQ(report["models"]["clip"]["text_tower"], true);
}

TEST_F(EvaluateCommandTest, PromptsFileTakesPrecedenceOverPngParameters) {
  const std::string prompts = dir_ + "/prompts.txt";
  std::ofstream(prompts) << "1.png\ta photo of sks\n";
  const std::string out = dir_ + "/report.json";
  ProcessResult r = RunLikeness(Args({"--clip", clip_, "--prompts", prompts, "--class", "dog",
                                      "--identifier", "sks", "--json", out}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json report = ReadJson(out);
  EXPECT_EQ(report["images"][1]["prompt_source"], "prompts file");
  EXPECT_EQ(report["images"][1]["evaluation_prompt"], "a photo of dog");
  EXPECT_EQ(report["images"][0]["prompt_source"], "png parameters");
}

TEST_F(EvaluateCommandTest, WithoutWeightsComputesCheapSignalsAndSaysWhatItSkipped) {
  const std::string losses = dir_ + "/losses.json";
  std::ofstream(losses) << R"({"train_loss": 0.125, "heldout_loss": 0.25})";
  const std::string out = dir_ + "/report.json";
  ProcessResult r = RunLikeness(Args({"--json", out, "--losses", losses}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("skipped"));
  EXPECT_THAT(r.out, HasSubstr("--dino"));
  const json report = ReadJson(out);
  for (const char* metric : {"dino", "clip_i", "clip_t"}) {
    EXPECT_TRUE(report["skipped"].contains(metric)) << metric;
  }
  EXPECT_TRUE(report["metrics"].contains("diversity_pixels"));
  EXPECT_EQ(report["metrics"]["train_loss"], 0.125);
  EXPECT_EQ(report["metrics"]["heldout_loss"], 0.25);
}

TEST_F(EvaluateCommandTest, OneFolderForBothIsTheRealImageRow) {
  const std::string out = dir_ + "/report.json";
  ProcessResult r = RunLikeness({"evaluate", "--real", real_, "--generated", real_, "--dino",
                                 dino_, "--json", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json report = ReadJson(out);
  EXPECT_TRUE(report["same_set"].get<bool>());
  EXPECT_TRUE(report["metrics"].contains("dino"));
}

TEST_F(EvaluateCommandTest, BadCommandLinesExitTwo) {
  EXPECT_EQ(RunLikeness({"evaluate", "--generated", generated_}).exit_code, 2);
  EXPECT_EQ(RunLikeness(Args({"--batch-size", "0"})).exit_code, 2);
  EXPECT_EQ(RunLikeness(Args({"--no-such-flag"})).exit_code, 2);
  ProcessResult help = RunLikeness({"evaluate", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out, HasSubstr("--identifier"));
}

TEST_F(EvaluateCommandTest, FailuresExitOneNamingTheFile) {
  ProcessResult missing = RunLikeness({"evaluate", "--real", dir_ + "/nope", "--generated", generated_});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.err, HasSubstr(dir_ + "/nope"));
  ProcessResult weights = RunLikeness(Args({"--clip", dir_ + "/no_clip"}));
  EXPECT_EQ(weights.exit_code, 1);
  EXPECT_THAT(weights.err, HasSubstr(dir_ + "/no_clip"));
  const std::string broken = generated_ + "/zz_broken.png";
  std::ofstream(broken) << "\x89PNG\r\n\x1a\n truncated";
  ProcessResult corrupt = RunLikeness(Args({}));
  EXPECT_EQ(corrupt.exit_code, 1);
  EXPECT_THAT(corrupt.err, HasSubstr("zz_broken.png"));
}

}  // namespace
}  // namespace likeness::testing
