// ClipTokenizer behaviour beyond the reference cases: truncation and padding as the two SDXL
// text encoders expect them, decoding, special tokens, and concurrent use.
#include "worker/text/clip_tokenizer.h"

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/test_data.h"
#include "tests/text/tokenizer_cases.h"

namespace likeness::testing {
namespace {

using text::ClipTokenizer;
using text::kMaxLength;
using text::PadStyle;

std::string Repeat(const std::string& word, int times) {
  std::string out;
  for (int i = 0; i < times; ++i) out += word + " ";
  return out;
}

// Where HF's CLIPTextTransformer reads the pooled output: the first position of the largest
// id (input_ids.argmax(-1)), which it relies on being the first <|endoftext|>.
size_t PooledPosition(const std::vector<int>& ids) {
  return static_cast<size_t>(std::max_element(ids.begin(), ids.end()) - ids.begin());
}

class ClipTokenizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(SharedTokenizer().ok()) << SharedTokenizer().status();
    tokenizer_ = &*SharedTokenizer();
  }
  const ClipTokenizer* tokenizer_ = nullptr;
};

TEST_F(ClipTokenizerTest, ClipVocabularyLayout) {
  EXPECT_EQ(tokenizer_->vocab_size(), 49408);
  EXPECT_EQ(tokenizer_->start_of_text(), 49406);
  EXPECT_EQ(tokenizer_->end_of_text(), 49407);
  EXPECT_EQ(tokenizer_->Decode({0}), "!");     // Encoder 2's pad token.
  EXPECT_EQ(tokenizer_->Decode({256}), "! ");  // The same byte ending a word.
  EXPECT_EQ(tokenizer_->pad_id(PadStyle::kEndOfText), 49407);
  EXPECT_EQ(tokenizer_->pad_id(PadStyle::kZero), 0);
}

TEST_F(ClipTokenizerTest, TruncationKeepsTheEndTokenLast) {
  const std::string text = Repeat("cat", 100);  // 100 BPE ids.
  ASSERT_EQ(tokenizer_->Encode(text).size(), 100u);
  EXPECT_EQ(tokenizer_->EncodeWithSpecials(text).size(), 102u)
      << "EncodeWithSpecials never truncates";
  for (PadStyle pad : {PadStyle::kEndOfText, PadStyle::kZero}) {
    const std::vector<int> ids = tokenizer_->Tokenize(text, pad);
    ASSERT_EQ(ids.size(), static_cast<size_t>(kMaxLength));
    EXPECT_EQ(ids[0], tokenizer_->start_of_text());
    EXPECT_EQ(ids[76], tokenizer_->end_of_text());
    const std::vector<int> body = tokenizer_->Encode(text);
    EXPECT_TRUE(std::equal(ids.begin() + 1, ids.begin() + 76, body.begin())) << "the first 75 ids";
    EXPECT_EQ(PooledPosition(ids), 76u);
  }
  const std::vector<int> truncated = tokenizer_->EncodeTruncated(text);
  ASSERT_EQ(truncated.size(), static_cast<size_t>(kMaxLength));
  EXPECT_EQ(truncated.back(), tokenizer_->end_of_text());
}

TEST_F(ClipTokenizerTest, TruncationCanCutAWordInTwo) {
  // "𓀀" is 4 ids, so id 75 falls inside a word: the ids are cut, not the words.
  const std::string text = Repeat("\U00013000", 30);
  const std::vector<int> body = tokenizer_->Encode(text);
  ASSERT_EQ(body.size(), 120u);
  const std::vector<int> ids = tokenizer_->EncodeTruncated(text);
  ASSERT_EQ(ids.size(), static_cast<size_t>(kMaxLength));
  EXPECT_TRUE(std::equal(ids.begin() + 1, ids.end() - 1, body.begin()));
  EXPECT_EQ(ids.back(), tokenizer_->end_of_text());
}

TEST_F(ClipTokenizerTest, ExactlySeventySevenIdsNeedNoTruncation) {
  const std::string text = Repeat("cat", 75);
  const std::vector<int> ids = tokenizer_->Tokenize(text, PadStyle::kZero);
  EXPECT_EQ(ids, tokenizer_->EncodeWithSpecials(text));
  EXPECT_EQ(tokenizer_->Tokenize(Repeat("cat", 76), PadStyle::kZero), ids);
}

TEST_F(ClipTokenizerTest, OtherMaxLengths) {
  const std::string text = "a photo of a cat";  // 5 BPE ids.
  const int start = tokenizer_->start_of_text();
  const int end = tokenizer_->end_of_text();
  EXPECT_EQ(tokenizer_->Tokenize(text, PadStyle::kZero, 4),
            (std::vector<int>{start, 320, 1125, end}));
  EXPECT_EQ(tokenizer_->Tokenize(text, PadStyle::kZero, 2), (std::vector<int>{start, end}));
  EXPECT_EQ(tokenizer_->Tokenize(text, PadStyle::kZero, 0), (std::vector<int>{start, end}))
      << "lengths below 2 count as 2";
  EXPECT_EQ(tokenizer_->Tokenize(text, PadStyle::kEndOfText, 9),
            (std::vector<int>{start, 320, 1125, 539, 320, 2368, end, end, end}));
}

// Encoder 1 (CLIP-L) pads with <|endoftext|>, encoder 2 (bigG) with 0. Neither gets an
// attention mask: the causal mask already hides the padding from every real token, and the
// pooled output is read at the first <|endoftext|>, which argmax finds under both styles.
TEST_F(ClipTokenizerTest, PaddingStylesOfTheTwoEncoders) {
  const std::string text = "a photo of sks dog";
  const std::vector<int> with_specials = tokenizer_->EncodeWithSpecials(text);
  const size_t real = with_specials.size();
  const std::vector<int> one = tokenizer_->Tokenize(text, PadStyle::kEndOfText);
  const std::vector<int> two = tokenizer_->Tokenize(text, PadStyle::kZero);
  ASSERT_EQ(one.size(), static_cast<size_t>(kMaxLength));
  ASSERT_EQ(two.size(), static_cast<size_t>(kMaxLength));
  EXPECT_TRUE(std::equal(with_specials.begin(), with_specials.end(), one.begin()));
  EXPECT_TRUE(std::equal(with_specials.begin(), with_specials.end(), two.begin()));
  for (size_t i = real; i < one.size(); ++i) {
    EXPECT_EQ(one[i], tokenizer_->end_of_text()) << "encoder 1 position " << i;
    EXPECT_EQ(two[i], 0) << "encoder 2 position " << i;
  }
  EXPECT_EQ(PooledPosition(one), real - 1);
  EXPECT_EQ(PooledPosition(two), real - 1);
  // The empty prompt: only the specials are real, and the pooled output sits at position 1.
  EXPECT_EQ(PooledPosition(tokenizer_->Tokenize("", PadStyle::kEndOfText)), 1u);
  EXPECT_EQ(PooledPosition(tokenizer_->Tokenize("", PadStyle::kZero)), 1u);
}

TEST_F(ClipTokenizerTest, SpecialTokensWrittenInTheTextAreOneIdEach) {
  const int start = tokenizer_->start_of_text();
  const int end = tokenizer_->end_of_text();
  EXPECT_EQ(tokenizer_->Encode("<|startoftext|>"), (std::vector<int>{start}));
  EXPECT_EQ(tokenizer_->Encode("<|ENDOFTEXT|>"), (std::vector<int>{end})) << "lower-cased first";
  EXPECT_EQ(tokenizer_->Encode("cat<|endoftext|>cat"), (std::vector<int>{2368, end, 2368}));
}

TEST_F(ClipTokenizerTest, DecodeJoinsBytesAndMarksWordEnds) {
  EXPECT_EQ(tokenizer_->Decode(tokenizer_->EncodeWithSpecials("a cat")),
            "<|startoftext|>a cat <|endoftext|>");
  EXPECT_EQ(tokenizer_->Decode(tokenizer_->Encode("café 😀")), "café 😀 ");
  EXPECT_EQ(tokenizer_->Decode({-1, 49408}), "\xEF\xBF\xBD\xEF\xBF\xBD") << "unknown ids";
  // A token that is half of a multi-byte character decodes to U+FFFD, as Python's "replace".
  const std::vector<int> hieroglyph = tokenizer_->Encode("𓀀");
  ASSERT_GT(hieroglyph.size(), 1u);
  EXPECT_EQ(tokenizer_->Decode({hieroglyph[0]}), "\xEF\xBF\xBD");
}

TEST_F(ClipTokenizerTest, InvalidUtf8BecomesReplacementCharacters) {
  EXPECT_EQ(tokenizer_->Encode("caf\xE9"), tokenizer_->Encode("caf\xEF\xBF\xBD"));
  EXPECT_EQ(tokenizer_->Encode(std::string("a\0b", 3)), tokenizer_->Encode(std::string("a\0b", 3)));
}

TEST_F(ClipTokenizerTest, LongInputIsNotCutShort) {
  // One 200k-letter word and 50k short ones: the pre-tokenizer must see all of it.
  const std::string long_word(200000, 'x');
  const std::vector<int> ids = tokenizer_->Encode(long_word);
  EXPECT_EQ(tokenizer_->Decode(ids), long_word + " ");
  const std::string many_words = Repeat("cat", 50000);
  EXPECT_EQ(tokenizer_->Encode(many_words).size(), 50000u);
}

TEST_F(ClipTokenizerTest, ConcurrentEncodeAgreesWithSerial) {
  // A fresh tokenizer, so the threads race on filling the word cache.
  auto fresh = ClipTokenizer::Load(BpeVocabPath());
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  const std::vector<std::string> texts = {
      "a photo of sks dog in a bucket",
      "portrait of a woman wearing a red dress, highly detailed",
      "emoji 😀 and café naïve résumé",
      "(masterpiece:1.2), best quality, ((close-up)), [blurry]",
      "1024x1024 image, seed=42, cfg 7.5",
      "an old black and white photograph of a greek actor"};
  std::vector<std::vector<int>> expected;
  for (const std::string& t : texts) expected.push_back(tokenizer_->Encode(t));
  constexpr int kThreads = 8;
  constexpr int kRounds = 50;
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        for (size_t i = 0; i < texts.size(); ++i) {
          const size_t k = (i + t) % texts.size();
          if (fresh->Encode(texts[k]) != expected[k]) ++mismatches[t];
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

}  // namespace
}  // namespace likeness::testing
