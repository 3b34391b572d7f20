// `likeness train` as a user runs it, on the tiny golden single-file checkpoint (CPU): a few
// LoRA steps write checkpoints, metrics and the resolved config; a rerun resumes; a rerun
// with a result-changing setting changed is refused naming it; bad fields are named.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/cli/run_program.h"
#include "tests/test_data.h"
#include "worker/image/image_io.h"

namespace likeness::testing {
namespace {

namespace fs = std::filesystem;

// The tiny UNet downsamples twice and the tiny VAE halves: multiples of 8.
constexpr int kResolution = 32;
constexpr int kSteps = 3;

const EnvChanges kEnv = {{"LIKENESS_HASH_CACHE", "off"}};

void WritePhotos(const std::string& dir) {
  fs::create_directories(dir);
  const std::pair<int, int> sizes[] = {{32, 32}, {48, 36}, {40, 40}};
  for (int i = 0; i < 3; ++i) {
    const auto [w, h] = sizes[i];
    image::Image img = image::MakeImage(w, h, 3);
    for (size_t p = 0; p < img.pixels.size(); ++p) {
      img.pixels[p] = static_cast<uint8_t>((p * (7 + i)) % 251);
    }
    ASSERT_TRUE(image::WritePngFile(absl::StrCat(dir, "/0", i, ".png"), img).ok());
  }
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

int CountLines(const std::string& text) {
  return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

class TrainCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = MakeTestTempDir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    WritePhotos(root_ + "/photos");
    out_ = root_ + "/run";
    config_ = root_ + "/train.yaml";
    std::ofstream yaml(config_);
    yaml << "method: lora\n"
         << "base_model: " << GoldenDir() << "/sdxl_single_file_tiny.safetensors\n"
         << "model_config: " << GoldenDir() << "/sdxl_single_file_tiny.json\n"
         << "vocab: " << BpeVocabPath() << "\n"
         << "instance_dir: " << root_ << "/photos\n"
         << "instance_prompt: a photo of {identifier} toy\n"
         << "resolution: " << kResolution << "\n"
         << "steps: " << kSteps << "\n"
         << "seed: 5\n"
         << "learning_rate: 0.001\n"
         << "checkpoint_every: 2\n"
         << "device: cpu\n"
         << "output_dir: " << out_ << "\n";
  }

  ProcessResult Train(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"train", config_};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunLikeness(args, kEnv);
  }

  std::string root_, out_, config_;
};

TEST_F(TrainCommandTest, TrainsLoraStepsAndResumes) {
  ProcessResult run = Train();
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const std::string final_dir = absl::StrCat(out_, "/step-", kSteps);
  EXPECT_EQ(run.out, final_dir + "\n");
  for (const char* file : {"manifest.json", "lora.safetensors", "trainer_state.json",
                           "trainer_state.safetensors"}) {
    EXPECT_TRUE(fs::exists(final_dir + "/" + file)) << file;
  }
  EXPECT_TRUE(fs::exists(out_ + "/step-2/manifest.json"));  // checkpoint_every: 2
  EXPECT_TRUE(fs::exists(out_ + "/train.yaml"));
  EXPECT_EQ(CountLines(ReadAll(out_ + "/metrics.jsonl")), kSteps);
  EXPECT_NE(ReadAll(final_dir + "/trainer_state.json").find("settings_hash"), std::string::npos);
  // Not a terminal: plain progress lines with the step and the loss.
  EXPECT_NE(run.err.find("[train]"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("loss "), std::string::npos) << run.err;

  // Checkpoint cadence may change across a resume; the run continues from step-3.
  ProcessResult again = Train({"--set", "checkpoint_every=1"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.err.find("resumed " + final_dir), std::string::npos) << again.err;

  // A result-changing setting may not: the error names the field and both values.
  ProcessResult changed = Train({"--set", "learning_rate=0.002", "--set", "seed=6"});
  EXPECT_EQ(changed.exit_code, 1) << changed.err;
  EXPECT_NE(changed.err.find("learning_rate (checkpoint 0.001, now 0.002)"), std::string::npos)
      << changed.err;
  EXPECT_NE(changed.err.find("seed (checkpoint 5, now 6)"), std::string::npos) << changed.err;
  // The refused run left the run's config alone; it keeps model_config as the path given.
  const std::string saved = ReadAll(out_ + "/train.yaml");
  EXPECT_NE(saved.find("learning_rate: 0.001"), std::string::npos) << saved;
  EXPECT_NE(saved.find("sdxl_single_file_tiny.json"), std::string::npos) << saved;
  ProcessResult from_saved = RunLikeness({"train", out_ + "/train.yaml"}, kEnv);
  EXPECT_EQ(from_saved.exit_code, 0) << from_saved.err;

  ProcessResult fresh = Train({"--no-resume"});
  EXPECT_EQ(fresh.exit_code, 1);
  EXPECT_NE(fresh.err.find("already holds checkpoints"), std::string::npos) << fresh.err;
}

TEST_F(TrainCommandTest, BadFieldsAreNamedAndExitWithUsage) {
  struct Case {
    std::string set;
    std::string expected;
  };
  const Case cases[] = {
      {"lora_rank=-1", "lora_rank: -1 is outside"},
      {"learnin_rate=0.1", "learnin_rate"},
      {"steps=many", "steps"},
      {"mixed_precision=fp8", "mixed_precision: 'fp8'"},
      {"resolution=3", "resolution: 3"},
      {"method=distill", "distill"},
      {"model_config=/nonexistent/config.json", "model_config"},
      {"device=tpu", "device"},
  };
  for (const Case& c : cases) {
    ProcessResult run = Train({"--set", c.set});
    EXPECT_EQ(run.exit_code, 2) << c.set << ": " << run.err;
    EXPECT_NE(run.err.find(c.expected), std::string::npos) << c.set << ": " << run.err;
  }
  EXPECT_FALSE(fs::exists(out_)) << "a refused config must not start a run";

  ProcessResult missing = RunLikeness({"train", root_ + "/absent.yaml"}, kEnv);
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("absent.yaml"), std::string::npos) << missing.err;

  ProcessResult help = RunLikeness({"train", "--help"}, kEnv);
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("Resume"), std::string::npos) << help.out;
}

}  // namespace
}  // namespace likeness::testing
