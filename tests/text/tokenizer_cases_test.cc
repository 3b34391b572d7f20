// The reference check (DESIGN.md): every case of LIKENESS_TOKENIZER_CASES, tokenized with the
// vocabulary of LIKENESS_BPE_VOCAB, must give the ids OpenAI CLIP's simple_tokenizer gives.
#include "tests/text/tokenizer_cases.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/test_data.h"
#include "worker/text/clip_tokenizer.h"

namespace likeness::testing {
namespace {

using text::ClipTokenizer;

class TokenizerCasesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(SharedTokenizer().ok())
        << "vocabulary (" << kBpeVocabEnv << "): " << SharedTokenizer().status();
    auto cases = LoadTokenizerCases(TokenizerCasesPath());
    ASSERT_TRUE(cases.ok()) << "cases (" << kTokenizerCasesEnv << "): " << cases.status();
    cases_ = *std::move(cases);
    ASSERT_FALSE(cases_.cases.empty()) << TokenizerCasesPath() << " holds no cases";
  }

  // Checks every case against `tokenizer`; returns how many failed.
  int CheckAllCases(const ClipTokenizer& tokenizer, const std::string& vocab_name) {
    int failures = 0;
    for (const TokenizerCase& c : cases_.cases) {
      SCOPED_TRACE("case text: \"" + c.text + "\" (vocabulary " + vocab_name + ")");
      const std::vector<int> with_specials = tokenizer.EncodeWithSpecials(c.text);
      bool ok = with_specials == c.with_specials;
      EXPECT_EQ(IdsToString(with_specials), IdsToString(c.with_specials)) << "with_specials";
      if (c.bpe_ids) {
        const std::vector<int> bpe_ids = tokenizer.Encode(c.text);
        ok = ok && bpe_ids == *c.bpe_ids;
        EXPECT_EQ(IdsToString(bpe_ids), IdsToString(*c.bpe_ids)) << "bpe_ids";
        if (c.decoded) {
          const std::string decoded = tokenizer.Decode(*c.bpe_ids);
          ok = ok && decoded == *c.decoded;
          EXPECT_EQ(decoded, *c.decoded) << "decoded";
        }
      }
      if (!ok) ++failures;
    }
    return failures;
  }

  TokenizerCases cases_;
};

TEST_F(TokenizerCasesTest, EveryCaseMatchesTheReference) {
  const int failures = CheckAllCases(*SharedTokenizer(), BpeVocabPath());
  EXPECT_EQ(failures, 0) << failures << " of " << cases_.cases.size() << " cases in "
                         << TokenizerCasesPath() << " differ";
}

TEST_F(TokenizerCasesTest, HeaderMatchesTheTokenizer) {
  const ClipTokenizer& tokenizer = *SharedTokenizer();
  if (cases_.start_of_text) {
    EXPECT_EQ(tokenizer.start_of_text(), *cases_.start_of_text);
  }
  if (cases_.end_of_text) {
    EXPECT_EQ(tokenizer.end_of_text(), *cases_.end_of_text);
  }
  if (cases_.vocab_size) {
    EXPECT_EQ(tokenizer.vocab_size(), *cases_.vocab_size);
  }
  for (const TokenizerCase& c : cases_.cases) {
    SCOPED_TRACE("case text: \"" + c.text + "\"");
    ASSERT_GE(c.with_specials.size(), 2u);
    EXPECT_EQ(c.with_specials.front(), tokenizer.start_of_text());
    EXPECT_EQ(c.with_specials.back(), tokenizer.end_of_text());
  }
}

// The same vocabulary written as a diffusers tokenizer folder (ids from vocab.json, merges from
// merges.txt) must tokenize every case identically.
TEST_F(TokenizerCasesTest, DiffusersFolderGivesTheSameIds) {
  const std::string folder = MakeTestTempDir("diffusers_tokenizer");
  ASSERT_TRUE(WriteDiffusersTokenizerFolder(SharedTokenizer()->vocab(), folder).ok());
  auto from_folder = ClipTokenizer::Load(folder);
  ASSERT_TRUE(from_folder.ok()) << from_folder.status();
  EXPECT_EQ(from_folder->vocab_size(), SharedTokenizer()->vocab_size());
  EXPECT_EQ(from_folder->start_of_text(), SharedTokenizer()->start_of_text());
  EXPECT_EQ(from_folder->end_of_text(), SharedTokenizer()->end_of_text());
  EXPECT_EQ(CheckAllCases(*from_folder, folder), 0);
  for (const TokenizerCase& c : cases_.cases) {
    SCOPED_TRACE("case text: \"" + c.text + "\"");
    EXPECT_EQ(from_folder->Tokenize(c.text, text::PadStyle::kZero),
              SharedTokenizer()->Tokenize(c.text, text::PadStyle::kZero));
  }
}

}  // namespace
}  // namespace likeness::testing
