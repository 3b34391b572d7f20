// `likeness prepare` end to end, as the quickstart runs it.
#include <filesystem>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/cli/run_program.h"
#include "tests/test_data.h"
#include "worker/image/image_io.h"

namespace likeness::testing {
namespace {

namespace fs = std::filesystem;

constexpr int kResolution = 64;

TEST(PrepareCommandTest, WritesDatasetAndContactSheetWithParameters) {
  const std::string subject = FirstSubjectDir();
  ASSERT_FALSE(subject.empty()) << "no subject under " << DreamBenchDir();
  const std::string out = MakeTestTempDir("cli_prepare") + "/out";
  ProcessResult r = RunLikeness({"prepare", "--subject", subject, "--prompt", "a photo of sks thing",
                                 "--resolution", std::to_string(kResolution), "--out", out},
                                {{"LIKENESS_BPE_VOCAB", BpeVocabPath()}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json summary = nlohmann::json::parse(r.out);
  EXPECT_EQ(summary["resolution"], kResolution);
  EXPECT_GT(summary["images"].get<int>(), 0);
  EXPECT_TRUE(fs::exists(out + "/dataset.safetensors"));
  auto sheet = image::DecodeImageFile(out + "/contact_sheet.png");
  ASSERT_TRUE(sheet.ok()) << sheet.status();
  ASSERT_EQ(sheet->text.count("parameters"), 1u);
  EXPECT_NE(sheet->text.at("parameters").find("a photo of sks thing"), std::string::npos);
}

TEST(PrepareCommandTest, ErrorsNameWhatIsWrong) {
  ProcessResult missing = RunLikeness({"prepare", "--subject", "/no/such/subject", "--prompt", "x",
                                       "--out", MakeTestTempDir("cli_prepare_missing")},
                                      {{"LIKENESS_BPE_VOCAB", BpeVocabPath()}});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("/no/such/subject"), std::string::npos) << missing.err;

  ProcessResult no_prompt = RunLikeness({"prepare", "--subject", FirstSubjectDir()});
  EXPECT_EQ(no_prompt.exit_code, 2);
  EXPECT_NE(no_prompt.err.find("--prompt"), std::string::npos) << no_prompt.err;

  ProcessResult bad_resolution = RunLikeness({"prepare", "--subject", FirstSubjectDir(), "--prompt", "x",
                                              "--resolution", "big"});
  EXPECT_EQ(bad_resolution.exit_code, 2);
  EXPECT_NE(bad_resolution.err.find("big"), std::string::npos) << bad_resolution.err;

  ProcessResult unknown = RunLikeness({"prepare", "--subjects", "x"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.err.find("--subjects"), std::string::npos) << unknown.err;
}

TEST(PrepareCommandTest, HelpListsEveryOption) {
  ProcessResult r = RunLikeness({"prepare", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* option : {"--subject", "--prompt", "--out", "--resolution", "--vocab"}) {
    EXPECT_NE(r.out.find(option), std::string::npos) << option;
  }
}

}  // namespace
}  // namespace likeness::testing
