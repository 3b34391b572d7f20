// PromptTokenizer and AddedVocabulary with the real CLIP vocabulary: without added tokens the
// ids are ClipTokenizer's exactly; with them, the text around each token encodes to the
// reference ids of every tokenizer case, and names match as whole words, case-insensitively.
#include "worker/embeddings/prompt_tokenizer.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/embeddings/embeddings_test_util.h"
#include "tests/test_data.h"
#include "tests/text/tokenizer_cases.h"
#include "worker/embeddings/added_vocabulary.h"

namespace likeness::testing {
namespace {

using embeddings::AddedVectorId;
using embeddings::AddedVocabulary;
using embeddings::PromptTokenizer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using text::PadStyle;

// A name no reference case contains.
constexpr char kAbsentName[] = "zqxjkv";

std::vector<int> Concat(std::initializer_list<std::vector<int>> parts) {
  std::vector<int> out;
  for (const std::vector<int>& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

std::vector<TokenizerCase> AllCases() {
  std::vector<TokenizerCase> all;
  for (const std::string& path :
       {TokenizerCasesPath(), std::string(LIKENESS_EXTRA_TOKENIZER_CASES)}) {
    absl::StatusOr<TokenizerCases> cases = LoadTokenizerCases(path);
    if (!cases.ok()) {
      ADD_FAILURE() << cases.status();
      continue;
    }
    all.insert(all.end(), cases->cases.begin(), cases->cases.end());
  }
  return all;
}

class PromptTokenizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = ClipTokenizerOrFail();
    ASSERT_NE(base_, nullptr);
    vocabulary_ = std::make_shared<AddedVocabulary>();
    absl::StatusOr<PromptTokenizer> tokenizer = PromptTokenizer::Create(base_, vocabulary_);
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    tokenizer_.emplace(std::move(*tokenizer));
  }

  std::vector<int> Base(const std::string& text) const { return base_->Encode(text); }
  std::vector<int> Encode(const std::string& text) const { return tokenizer_->Encode(text); }

  std::shared_ptr<const text::ClipTokenizer> base_;
  std::shared_ptr<AddedVocabulary> vocabulary_;
  std::optional<PromptTokenizer> tokenizer_;
};

TEST_F(PromptTokenizerTest, IdenticalToClipTokenizerWhenNoAddedTokenOccurs) {
  const std::vector<TokenizerCase> cases = AllCases();
  ASSERT_FALSE(cases.empty());
  for (bool with_vocabulary : {false, true}) {
    if (with_vocabulary) {
      ASSERT_TRUE(vocabulary_->Add(kAbsentName, 3).ok());
    }
    for (const TokenizerCase& c : cases) {
      EXPECT_EQ(Encode(c.text), Base(c.text)) << c.text;
      for (PadStyle pad : {PadStyle::kEndOfText, PadStyle::kZero}) {
        for (int length : {text::kMaxLength, 8, 1}) {
          EXPECT_EQ(tokenizer_->Tokenize(c.text, pad, length), base_->Tokenize(c.text, pad, length))
              << c.text << " length " << length;
        }
      }
    }
  }
}

// The pieces around added tokens go through the tokenizer's own path (not ClipTokenizer's), so
// check them against the reference ids of every case: "<tok> TEXT <tok>" must give the case's
// BPE ids between the two added ids.
TEST_F(PromptTokenizerTest, TextAroundAnAddedTokenEncodesToTheReferenceIds) {
  ASSERT_TRUE(vocabulary_->Add(kAbsentName, 1).ok());
  const int added = AddedVectorId(0);
  for (const TokenizerCase& c : AllCases()) {
    ASSERT_GE(c.with_specials.size(), 2u);
    const std::vector<int> reference(c.with_specials.begin() + 1, c.with_specials.end() - 1);
    const std::string prompt = std::string(kAbsentName) + " " + c.text + " " + kAbsentName;
    const std::vector<int> body = Concat({{added}, reference, {added}});
    EXPECT_EQ(Encode(prompt), body) << c.text;

    std::vector<int> expected = {base_->start_of_text()};
    expected.insert(expected.end(), body.begin(),
                    body.begin() + std::min<size_t>(body.size(), text::kMaxLength - 2));
    expected.push_back(base_->end_of_text());
    expected.resize(text::kMaxLength, 0);
    EXPECT_EQ(tokenizer_->Tokenize(prompt, PadStyle::kZero), expected) << c.text;
  }
}

TEST_F(PromptTokenizerTest, NamesMatchAsWholeWordsWhateverTheCase) {
  ASSERT_TRUE(vocabulary_->Add("OhWx", 1).ok());
  const int ohwx = AddedVectorId(0);
  const std::vector<int> dog = Base("dog");
  ASSERT_EQ(dog.size(), 1u);

  EXPECT_EQ(Encode("a photo of OHWX dog"), Concat({Base("a photo of"), {ohwx}, dog}));
  EXPECT_EQ(Encode("ohwx"), std::vector<int>{ohwx});
  EXPECT_EQ(Encode("ohwx, dog"), Concat({{ohwx}, Base(","), dog}));
  EXPECT_EQ(Encode("ohwx's dog"), Concat({{ohwx}, Base("'s"), dog}));
  EXPECT_EQ(Encode("(ohwx)"), Concat({Base("("), {ohwx}, Base(")")}));
  // Letters or digits glued to the name: no match, the text is CLIP's.
  for (const std::string text : {"ohwxs dog", "ohwx2", "2ohwx", "myohwx"}) {
    EXPECT_EQ(Encode(text), Base(text)) << text;
  }
  // HTML references and runs of whitespace are cleaned first, as CLIP cleans them.
  ASSERT_TRUE(vocabulary_->Add("big  cat", 1).ok());
  EXPECT_EQ(Encode("a&#32;BIG\tcat"), Concat({Base("a"), {AddedVectorId(1)}}));
  EXPECT_THAT(tokenizer_->AddedTokensIn("ohwx and big cat, ohwx"), ElementsAre("OhWx", "big  cat"));
}

TEST_F(PromptTokenizerTest, NamesEdgedByPunctuationNeedNoBoundaryThere) {
  ASSERT_TRUE(vocabulary_->Add("<cat-toy>", 1).ok());
  const int toy = AddedVectorId(0);
  // CLIP alone would read ">," as one word; the added token ends at '>'.
  EXPECT_EQ(Encode("a <cat-toy>, photo"), Concat({Base("a"), {toy}, Base(", photo")}));
  EXPECT_EQ(Encode("x<cat-toy>y"), Concat({Base("x"), {toy}, Base("y")}));
}

TEST_F(PromptTokenizerTest, LongestNameWins) {
  ASSERT_TRUE(vocabulary_->Add("ohwx", 1).ok());
  ASSERT_TRUE(vocabulary_->Add("ohwx man", 1).ok());
  EXPECT_EQ(Encode("ohwx man"), std::vector<int>{AddedVectorId(1)});
  EXPECT_EQ(Encode("ohwx woman"), Concat({{AddedVectorId(0)}, Base("woman")}));
}

TEST_F(PromptTokenizerTest, MultiVectorTokenExpandsToConsecutiveIds) {
  ASSERT_TRUE(vocabulary_->Add("aaa", 1).ok());
  ASSERT_TRUE(vocabulary_->Add("ohwx", 3).ok());
  EXPECT_EQ(vocabulary_->num_vectors(), 4);
  EXPECT_EQ(vocabulary_->Find("OHWX")->first_index, 1);
  EXPECT_THAT(Encode("ohwx aaa"),
              ElementsAre(AddedVectorId(1), AddedVectorId(2), AddedVectorId(3), AddedVectorId(0)));
  const std::vector<int> ids = tokenizer_->Tokenize("ohwx", PadStyle::kEndOfText);
  ASSERT_EQ(ids.size(), static_cast<size_t>(text::kMaxLength));
  EXPECT_THAT(std::vector<int>(ids.begin(), ids.begin() + 6),
              ElementsAre(base_->start_of_text(), AddedVectorId(1), AddedVectorId(2),
                          AddedVectorId(3), base_->end_of_text(), base_->end_of_text()));
}

TEST_F(PromptTokenizerTest, TruncationAt77KeepsTheEndToken) {
  ASSERT_TRUE(vocabulary_->Add("ohwx", 3).ok());
  const int dog = Base("dog").at(0);
  const auto dogs = [](int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += "dog ";
    return s;
  };
  for (PadStyle pad : {PadStyle::kEndOfText, PadStyle::kZero}) {
    // The token past the limit is dropped whole.
    std::vector<int> ids = tokenizer_->Tokenize(dogs(80) + "ohwx", pad);
    ASSERT_EQ(ids.size(), static_cast<size_t>(text::kMaxLength));
    EXPECT_EQ(ids.front(), base_->start_of_text());
    EXPECT_EQ(ids.back(), base_->end_of_text());
    for (int i = 1; i < text::kMaxLength - 1; ++i) EXPECT_EQ(ids[i], dog) << i;

    // 73 words + 3 vectors = 76 > 75: the token keeps its first two vectors.
    ids = tokenizer_->Tokenize(dogs(73) + "ohwx", pad);
    ASSERT_EQ(ids.size(), static_cast<size_t>(text::kMaxLength));
    EXPECT_EQ(ids[73], dog);
    EXPECT_EQ(ids[74], AddedVectorId(0));
    EXPECT_EQ(ids[75], AddedVectorId(1));
    EXPECT_EQ(ids[76], base_->end_of_text());
  }
  // Shorter lengths behave as ClipTokenizer's.
  EXPECT_THAT(tokenizer_->Tokenize("ohwx dog", PadStyle::kZero, 4),
              ElementsAre(base_->start_of_text(), AddedVectorId(0), AddedVectorId(1),
                          base_->end_of_text()));
  EXPECT_THAT(tokenizer_->Tokenize("ohwx", PadStyle::kZero, 7),
              ElementsAre(base_->start_of_text(), AddedVectorId(0), AddedVectorId(1),
                          AddedVectorId(2), base_->end_of_text(), 0, 0));
}

TEST_F(PromptTokenizerTest, WrittenSpecialTokensAreNotSearched) {
  ASSERT_TRUE(vocabulary_->Add("endoftext", 1).ok());
  EXPECT_EQ(Encode("<|endoftext|>"), std::vector<int>{base_->end_of_text()});
  EXPECT_EQ(Encode("endoftext <|endoftext|>"),
            Concat({{AddedVectorId(0)}, {base_->end_of_text()}}));
}

TEST_F(PromptTokenizerTest, RemovingATokenMovesLaterIdsDown) {
  ASSERT_TRUE(vocabulary_->Add("aaa", 2).ok());
  ASSERT_TRUE(vocabulary_->Add("bbb", 1).ok());
  EXPECT_EQ(Encode("bbb"), std::vector<int>{AddedVectorId(2)});
  ASSERT_TRUE(vocabulary_->Remove("AAA").ok());
  EXPECT_EQ(Encode("bbb"), std::vector<int>{AddedVectorId(0)});
  EXPECT_EQ(Encode("aaa"), Base("aaa"));
  EXPECT_EQ(vocabulary_->Remove("aaa").code(), absl::StatusCode::kNotFound);
}

TEST(AddedVocabularyTest, RejectsBadNamesAndCounts) {
  AddedVocabulary v;
  EXPECT_EQ(v.Add("", 1).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(v.Add(" \t ", 1).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(v.Add("a<|endoftext|>", 1).message(), HasSubstr("special token"));
  EXPECT_EQ(v.Add("ohwx", 0).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(v.Add("ohwx", embeddings::kMaxVectorsPerToken + 1).code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(v.Add("ohwx", embeddings::kMaxVectorsPerToken).ok());
  const absl::Status again = v.Add("OHWX", 1);
  EXPECT_EQ(again.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(again.message(), HasSubstr("ohwx"));
  EXPECT_EQ(v.tokens().size(), 1u);
}

}  // namespace
}  // namespace likeness::testing
