// `likeness generate` as a user runs it, on the tiny golden single-file checkpoint: images and
// generate.yaml written, parameters embedded, a second run from generate.yaml reproduces the
// bytes, and bad input fails with the field named.
#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "tests/cli/run_program.h"
#include "tests/test_data.h"
#include "worker/image/image_io.h"

namespace likeness::testing {
namespace {

namespace fs = std::filesystem;

std::string TinyModel() { return GoldenDir() + "/sdxl_single_file_tiny.safetensors"; }
std::string TinyModelConfig() { return GoldenDir() + "/sdxl_single_file_tiny.json"; }

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

const EnvChanges kEnv = {{"LIKENESS_HASH_CACHE", "off"}};

TEST(GenerateCommandTest, WritesImagesWithParametersAndAReproducibleConfig) {
  const std::string out = MakeTestTempDir("cli_generate");
  ProcessResult run = RunLikeness(
      {"generate", "--model", TinyModel(), "--model-config", TinyModelConfig(), "--vocab",
       BpeVocabPath(), "--prompt", "a red cube", "--prompt", "a blue ball", "--num", "2",
       "--steps", "3", "--sampler", "dpmpp_2m_karras", "--seed", "11", "--out", out,
       "--device", "cpu", "--grid"},
      kEnv);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  for (const char* name : {"00-000-11.png", "00-001-12.png", "01-000-11.png", "01-001-12.png"}) {
    ASSERT_TRUE(fs::exists(out + "/" + name)) << name << "\n" << run.out;
  }
  absl::StatusOr<image::Image> png = image::DecodeImageFile(out + "/01-001-12.png");
  ASSERT_TRUE(png.ok());
  const std::string& parameters = png->text.at("parameters");
  EXPECT_NE(parameters.find("a blue ball\n"), std::string::npos) << parameters;
  EXPECT_NE(parameters.find("Sampler: DPM++ 2M Karras"), std::string::npos) << parameters;
  EXPECT_NE(parameters.find("Seed: 12"), std::string::npos) << parameters;
  ASSERT_TRUE(fs::exists(out + "/generate.yaml"));
  absl::StatusOr<image::Image> grid = image::DecodeImageFile(out + "/grid.png");
  ASSERT_TRUE(grid.ok()) << grid.status();
  EXPECT_GT(grid->width, 2 * 32);  // two columns of 32-px images plus labels
  EXPECT_GT(grid->height, 2 * 32);

  // generate.yaml alone repeats the run byte for byte.
  const std::string again = MakeTestTempDir("cli_generate_again");
  ProcessResult rerun = RunLikeness(
      {"generate", "--config", out + "/generate.yaml", "--out", again}, kEnv);
  ASSERT_EQ(rerun.exit_code, 0) << rerun.err;
  EXPECT_EQ(ReadAll(out + "/01-001-12.png"), ReadAll(again + "/01-001-12.png"));
}

TEST(GenerateCommandTest, BadInputNamesTheFieldAndExitsWithUsage) {
  const std::string out = MakeTestTempDir("cli_generate_bad");
  const std::vector<std::string> base = {"generate", "--model", TinyModel(), "--model-config",
                                         TinyModelConfig(), "--vocab", BpeVocabPath(),
                                         "--prompt", "x", "--out", out};
  struct Case {
    std::vector<std::string> extra;
    std::string expected;
    int code;
  };
  const Case cases[] = {
      {{"--steps", "-1"}, "steps: -1", 2},
      {{"--sampler", "plms"}, "plms", 2},
      {{"--size", "big"}, "--size wants WIDTHxHEIGHT", 2},
      {{"--set", "stepz=3"}, "stepz", 2},
      {{"--strength", "0.5"}, "only applies with init_image", 2},
      {{"--init", out + "/missing.png"}, "missing.png", 1},
      {{"--size", "36x36"}, "multiple of 8", 1},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = base;
    args.insert(args.end(), c.extra.begin(), c.extra.end());
    ProcessResult run = RunLikeness(args, kEnv);
    EXPECT_EQ(run.exit_code, c.code) << c.extra[0] << ": " << run.err;
    EXPECT_NE(run.err.find(c.expected), std::string::npos) << c.extra[0] << ": " << run.err;
  }
  ProcessResult no_model = RunLikeness({"generate", "--prompt", "x", "--out", out}, kEnv);
  EXPECT_EQ(no_model.exit_code, 2);
  EXPECT_NE(no_model.err.find("--model is required"), std::string::npos);
}

}  // namespace
}  // namespace likeness::testing
