// `likeness tokenize` end to end: the binary's JSON for the reference cases, its padding for
// the two encoders, --help, and the error paths' exit codes and messages.
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/cli/run_program.h"
#include "tests/test_data.h"

namespace likeness::testing {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
constexpr int kStartOfText = 49406;
constexpr int kEndOfText = 49407;

struct Case {
  std::string text;
  std::vector<int> with_specials;
};

std::vector<Case> LoadCases() {
  std::ifstream in(TokenizerCasesPath());
  Json json = Json::parse(in, nullptr, /*allow_exceptions=*/false);
  std::vector<Case> cases;
  if (!json.is_object() || !json.contains("cases")) return cases;
  for (const Json& item : json["cases"]) {
    cases.push_back(
        {item.at("text").get<std::string>(), item.at("with_specials").get<std::vector<int>>()});
  }
  return cases;
}

// One JSON array of ids per line of `out`.
std::vector<std::vector<int>> ParseLines(const std::string& out) {
  std::vector<std::vector<int>> lines;
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
    lines.push_back(Json::parse(std::string(line)).get<std::vector<int>>());
  }
  return lines;
}

TEST(CliTokenizeTest, PrintsTheReferenceIdsForEveryCase) {
  const std::vector<Case> cases = LoadCases();
  ASSERT_FALSE(cases.empty()) << "no cases in " << TokenizerCasesPath();
  // All texts in one run, after `--` so a text that starts with dashes stays a text.
  std::vector<std::string> args = {
      "tokenize", "--vocab", BpeVocabPath(), "--no-pad", "--max-length", "100000", "--"};
  for (const Case& c : cases) args.push_back(c.text);
  const ProcessResult result = RunLikeness(args);
  ASSERT_EQ(result.exit_code, kExitOk) << result.err;
  const std::vector<std::vector<int>> lines = ParseLines(result.out);
  ASSERT_EQ(lines.size(), cases.size()) << result.out;
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(lines[i], cases[i].with_specials) << "case text: \"" << cases[i].text << "\"";
  }
}

TEST(CliTokenizeTest, PadsForEncoderOneWithEndOfTextAndForEncoderTwoWithZero) {
  const std::vector<Case> cases = LoadCases();
  ASSERT_FALSE(cases.empty()) << "no cases in " << TokenizerCasesPath();
  const Case& c = cases.front();
  for (const std::string encoder : {"1", "2"}) {
    SCOPED_TRACE("--encoder " + encoder + ", case text: \"" + c.text + "\"");
    const ProcessResult result =
        RunLikeness({"tokenize", "--vocab", BpeVocabPath(), "--encoder", encoder, c.text});
    ASSERT_EQ(result.exit_code, kExitOk) << result.err;
    const std::vector<std::vector<int>> lines = ParseLines(result.out);
    ASSERT_EQ(lines.size(), 1u);
    const std::vector<int>& ids = lines[0];
    ASSERT_EQ(ids.size(), 77u);
    ASSERT_LE(c.with_specials.size(), 77u);
    const int pad = encoder == "1" ? kEndOfText : 0;
    for (size_t i = 0; i < ids.size(); ++i) {
      EXPECT_EQ(ids[i], i < c.with_specials.size() ? c.with_specials[i] : pad) << "position " << i;
    }
  }
}

TEST(CliTokenizeTest, TruncatesKeepingTheEndToken) {
  std::string text;
  for (int i = 0; i < 40; ++i) text += "a cat ";
  const ProcessResult result =
      RunLikeness({"tokenize", "--vocab", BpeVocabPath(), "--max-length", "10", text});
  ASSERT_EQ(result.exit_code, kExitOk) << result.err;
  EXPECT_EQ(ParseLines(result.out),
            (std::vector<std::vector<int>>{
                {kStartOfText, 320, 2368, 320, 2368, 320, 2368, 320, 2368, kEndOfText}}));
}

TEST(CliTokenizeTest, VocabularyFromTheEnvironment) {
  const ProcessResult result = RunLikeness({"tokenize", "--no-pad", "a photo of a cat"},
                                           {{"LIKENESS_BPE_VOCAB", BpeVocabPath()}});
  ASSERT_EQ(result.exit_code, kExitOk) << result.err;
  EXPECT_EQ(result.out, "[49406,320,1125,539,320,2368,49407]\n");
}

TEST(CliTokenizeTest, HelpExitsZeroAndNamesTheDefaults) {
  const ProcessResult result = RunLikeness({"tokenize", "--help"});
  EXPECT_EQ(result.exit_code, kExitOk) << result.err;
  EXPECT_THAT(result.out, HasSubstr("--encoder"));
  EXPECT_THAT(result.out, HasSubstr("--max-length"));
  EXPECT_THAT(result.out, HasSubstr("--no-pad"));
  EXPECT_THAT(result.out, HasSubstr("LIKENESS_BPE_VOCAB"));
  EXPECT_THAT(result.out, HasSubstr("../shared/data/clip/bpe_simple_vocab_16e6.txt.gz"));
  EXPECT_EQ(RunLikeness({"help", "tokenize"}).exit_code, kExitOk);
}

TEST(CliTokenizeTest, BadEncoderIsAUsageErrorNamingTheValue) {
  const ProcessResult result =
      RunLikeness({"tokenize", "--vocab", BpeVocabPath(), "--encoder", "3", "a cat"});
  EXPECT_EQ(result.exit_code, kExitUsage);
  EXPECT_THAT(result.err, HasSubstr("--encoder"));
  EXPECT_THAT(result.err, HasSubstr("'3'"));
  EXPECT_EQ(result.out, "");
}

TEST(CliTokenizeTest, OtherUsageErrors) {
  EXPECT_EQ(RunLikeness({"tokenize", "--vocab", BpeVocabPath()}).exit_code, kExitUsage)
      << "no TEXT";
  const ProcessResult bad_length =
      RunLikeness({"tokenize", "--vocab", BpeVocabPath(), "--max-length", "1", "a cat"});
  EXPECT_EQ(bad_length.exit_code, kExitUsage);
  EXPECT_THAT(bad_length.err, HasSubstr("--max-length"));
  EXPECT_EQ(RunLikeness({"tokenize", "--bogus", "a cat"}).exit_code, kExitUsage);
}

TEST(CliTokenizeTest, MissingVocabularyFailsNamingThePath) {
  const std::string missing = MakeTestTempDir("cli_tokenize") + "/no_such_vocab.txt.gz";
  const ProcessResult given = RunLikeness({"tokenize", "--vocab", missing, "a cat"});
  EXPECT_EQ(given.exit_code, kExitFailure);
  EXPECT_THAT(given.err, HasSubstr(missing));
  EXPECT_EQ(given.out, "");

  const ProcessResult from_env =
      RunLikeness({"tokenize", "a cat"}, {{"LIKENESS_BPE_VOCAB", missing}});
  EXPECT_EQ(from_env.exit_code, kExitFailure);
  EXPECT_THAT(from_env.err, HasSubstr(missing));
}

}  // namespace
}  // namespace likeness::testing
