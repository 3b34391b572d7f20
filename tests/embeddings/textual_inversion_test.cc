// SdxlTextualInversion on the tiny golden SDXL text encoders with the real CLIP vocabulary:
// without added tokens nothing changes, a token initialised from a word is that word, the
// pooled output stays at the end token, widths are validated, and files round-trip exactly.
#include "worker/embeddings/textual_inversion.h"

#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/safetensors/writer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/embeddings/embeddings_test_util.h"
#include "tests/test_data.h"
#include "worker/model/text/sdxl_conditioning.h"

namespace likeness::testing {
namespace {

using embeddings::AddedVectorId;
using embeddings::SdxlPromptIds;
using embeddings::SdxlTextualInversion;
using embeddings::SdxlTokenVectors;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kAbsentName[] = "zqxjkv";

class TextualInversionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tokenizer_ = ClipTokenizerOrFail();
    ASSERT_NE(tokenizer_, nullptr);
    absl::StatusOr<TinyTextEncoders> encoders = LoadTinyTextEncoders();
    ASSERT_TRUE(encoders.ok()) << encoders.status();
    enc_ = std::move(*encoders);
    hidden_1_ = enc_.encoder_1->config().hidden_size;
    hidden_2_ = enc_.encoder_2->config().hidden_size;
  }

  std::unique_ptr<SdxlTextualInversion> Attach() {
    auto set = SdxlTextualInversion::Attach(enc_.encoder_1, enc_.encoder_2, tokenizer_, tokenizer_);
    EXPECT_TRUE(set.ok()) << set.status();
    return set.ok() ? std::move(*set) : nullptr;
  }

  // What the pipeline gives the UNet, from ids of the base tokenizer or of a set.
  model::SdxlPromptEmbeds Encode(const SdxlPromptIds& ids) {
    torch::NoGradGuard no_grad;
    return model::EncodeSdxlPrompt(enc_.encoder_1, enc_.encoder_2, ids.ids_1, ids.ids_2);
  }

  SdxlPromptIds BaseIds(const std::vector<std::string>& prompts) const {
    std::vector<torch::Tensor> rows_1, rows_2;
    for (const std::string& p : prompts) {
      rows_1.push_back(IdsTensor(tokenizer_->Tokenize(p, text::PadStyle::kEndOfText)));
      rows_2.push_back(IdsTensor(tokenizer_->Tokenize(p, text::PadStyle::kZero)));
    }
    return {torch::cat(rows_1), torch::cat(rows_2)};
  }

  // The token table row of a single-token word, per encoder.
  int SingleTokenId(const std::string& word) const {
    const std::vector<int> ids = tokenizer_->Encode(word);
    EXPECT_EQ(ids.size(), 1u) << word;
    return ids.empty() ? 0 : ids.front();
  }

  std::string TempDir() const {
    return MakeTestTempDir(::testing::UnitTest::GetInstance()->current_test_info()->name());
  }

  std::shared_ptr<const text::ClipTokenizer> tokenizer_;
  TinyTextEncoders enc_;
  int64_t hidden_1_ = 0, hidden_2_ = 0;
};

TEST_F(TextualInversionTest, TokenizerPairGivesTheGoldenInputIds) {
  ASSERT_FALSE(enc_.prompts.empty());
  auto set = Attach();
  ASSERT_NE(set, nullptr);
  for (bool with_token : {false, true}) {
    if (with_token) {
      ASSERT_TRUE(set->AddTokenFromWord(kAbsentName, 2, "dog").ok());
    }
    const SdxlPromptIds ids = set->Tokenize(enc_.prompts);
    EXPECT_TRUE(torch::equal(ids.ids_1, enc_.input_ids_1));
    EXPECT_TRUE(torch::equal(ids.ids_2, enc_.input_ids_2));
  }
}

TEST_F(TextualInversionTest, WithoutAddedTokensInThePromptOutputsAreUnchanged) {
  const model::SdxlPromptEmbeds base = Encode(BaseIds(enc_.prompts));
  auto set = Attach();
  ASSERT_NE(set, nullptr);
  ASSERT_TRUE(set->AddTokenFromWord(kAbsentName, 3, "a photo").ok());
  const model::SdxlPromptEmbeds with_set = Encode(set->Tokenize(enc_.prompts));
  EXPECT_TRUE(torch::equal(with_set.prompt_embeds, base.prompt_embeds));
  EXPECT_TRUE(torch::equal(with_set.pooled_prompt_embeds, base.pooled_prompt_embeds));
}

TEST_F(TextualInversionTest, TokenInitialisedFromAWordIsThatWord) {
  auto set = Attach();
  ASSERT_NE(set, nullptr);
  ASSERT_TRUE(set->AddTokenFromWord("ohwx", 1, "dog").ok());
  const SdxlPromptIds token_ids = set->Tokenize({"a photo of ohwx man"});
  const SdxlPromptIds word_ids = set->Tokenize({"a photo of dog man"});

  // The ids differ at the one position of the token.
  const torch::Tensor differ = token_ids.ids_1.ne(word_ids.ids_1).nonzero();
  ASSERT_EQ(differ.size(0), 1);
  const int64_t position = differ[0][1].item<int64_t>();
  EXPECT_EQ(token_ids.ids_1[0][position].item<int64_t>(), AddedVectorId(0));
  EXPECT_EQ(word_ids.ids_1[0][position].item<int64_t>(), SingleTokenId("dog"));

  torch::NoGradGuard no_grad;
  auto table_1 = enc_.encoder_1->text_model->embeddings->token_embedding;
  auto table_2 = enc_.encoder_2->text_model->embeddings->token_embedding;
  EXPECT_TRUE(torch::equal(table_1(token_ids.ids_1), table_1(word_ids.ids_1)));
  EXPECT_TRUE(torch::equal(table_2(token_ids.ids_2), table_2(word_ids.ids_2)));
  // Hence everything downstream, pooled output included, is the word's.
  const model::SdxlPromptEmbeds token = Encode(token_ids);
  const model::SdxlPromptEmbeds word = Encode(word_ids);
  EXPECT_TRUE(torch::equal(token.prompt_embeds, word.prompt_embeds));
  EXPECT_TRUE(torch::equal(token.pooled_prompt_embeds, word.pooled_prompt_embeds));
}

// Negative added ids keep <|endoftext|> the largest id, so the legacy argmax pooling of SDXL's
// configs reads the end token, as AUTOMATIC1111 and ComfyUI do (added_vocabulary.h).
TEST_F(TextualInversionTest, PooledOutputIsReadAtTheEndToken) {
  auto set = Attach();
  ASSERT_NE(set, nullptr);
  ASSERT_TRUE(
      set->AddToken("ohwx", {torch::randn({2, hidden_1_}), torch::randn({2, hidden_2_})}).ok());
  const SdxlPromptIds ids = set->Tokenize({"ohwx", "a photo of ohwx"});
  for (const auto& [ids_n, eos] : {std::pair{ids.ids_1, enc_.encoder_1->config().eos_token_id},
                                   std::pair{ids.ids_2, enc_.encoder_2->config().eos_token_id}}) {
    const torch::Tensor pooled_at = model::ClipPoolingPositions(ids_n, eos);
    EXPECT_EQ(pooled_at[0].item<int64_t>(), 3);  // <start> v0 v1 <end>
    EXPECT_EQ(pooled_at[1].item<int64_t>(), 6);  // <start> a photo of v0 v1 <end>
  }
}

TEST_F(TextualInversionTest, MultiTokenInitWordSpreadsItsTokensAsAutomatic1111) {
  auto set = Attach();
  ASSERT_NE(set, nullptr);
  const int red = SingleTokenId("red"), car = SingleTokenId("car"), blue = SingleTokenId("blue");
  ASSERT_TRUE(set->AddTokenFromWord("four", 4, "red car").ok());
  ASSERT_TRUE(set->AddTokenFromWord("five", 5, "red car blue").ok());
  ASSERT_TRUE(set->AddTokenFromWord("two", 2, "red car blue").ok());
  const auto table_1 = enc_.encoder_1->text_model->embeddings->token_embedding->weight;
  const auto table_2 = enc_.encoder_2->text_model->embeddings->token_embedding->weight;
  const auto rows = [](const torch::Tensor& table, std::vector<int64_t> ids) {
    return table.index_select(0, torch::tensor(ids, torch::kLong));
  };
  const std::map<std::string, std::vector<int64_t>> expected = {
      {"four", {red, red, car, car}},        // 2 tokens over 4 vectors: each twice
      {"five", {red, red, car, car, blue}},  // 3 over 5: floor(i * 3 / 5)
      {"two", {red, car}},                   // extra tokens dropped
  };
  for (const auto& [name, ids] : expected) {
    absl::StatusOr<SdxlTokenVectors> v = set->Vectors(name);
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_TRUE(torch::equal(v->clip_l, rows(table_1, ids))) << name;
    EXPECT_TRUE(torch::equal(v->clip_g, rows(table_2, ids))) << name;
  }
  // An init word may be an added token; one with no tokens is refused.
  ASSERT_TRUE(set->AddTokenFromWord("copy", 1, "two").ok());
  EXPECT_TRUE(torch::equal(set->Vectors("copy")->clip_l, rows(table_1, {red})));
  EXPECT_EQ(set->AddTokenFromWord("none", 1, "  ").code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(TextualInversionTest, WidthsAreValidatedWithBothShapesNamed) {
  auto set = Attach();
  ASSERT_NE(set, nullptr);
  absl::Status s = set->AddToken("xl", {torch::randn({1, 768}), torch::randn({1, 1280})});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("clip_l has shape [1, 768]"));
  EXPECT_THAT(s.message(), HasSubstr("text_encoder's token embedding is [49408, 32]"));

  s = set->AddToken("xl", {torch::randn({1, hidden_1_}), torch::randn({1, 1280})});
  EXPECT_THAT(s.message(), HasSubstr("clip_g has shape [1, 1280]"));
  EXPECT_THAT(s.message(), HasSubstr("text_encoder_2's token embedding is [49408, 32]"));

  s = set->AddToken("xl", {torch::randn({2, hidden_1_}), torch::randn({1, hidden_2_})});
  EXPECT_THAT(s.message(), HasSubstr("different numbers of vectors"));
  s = set->AddToken("xl", {torch::full({1, hidden_1_}, NAN), torch::randn({1, hidden_2_})});
  EXPECT_THAT(s.message(), HasSubstr("NaN"));
  EXPECT_TRUE(set->ListTokens().empty());

  // The same through a file, which is also named.
  const std::string path = TempDir() + "/real_sdxl.safetensors";
  ASSERT_TRUE(
      embeddings::WriteSdxlEmbedding(path, {torch::randn({2, 768}), torch::randn({2, 1280})}).ok());
  s = set->LoadFile(path);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr(path));
  EXPECT_THAT(s.message(), HasSubstr("clip_l has shape [2, 768]"));
}

TEST_F(TextualInversionTest, SaveAndLoadRoundTripExactly) {
  const std::string path = TempDir() + "/MySubject.safetensors";
  torch::Tensor prompt_embeds, pooled;
  {
    auto set = Attach();
    ASSERT_NE(set, nullptr);
    ASSERT_TRUE(set->AddTokenFromWord("ohwx", 3, "dog", /*trainable=*/true).ok());
    ASSERT_TRUE(
        set->SetVectors("ohwx", {torch::randn({3, hidden_1_}), torch::randn({3, hidden_2_})}).ok());
    ASSERT_TRUE(set->Save("ohwx", path, {{"likeness_step", "10"}}).ok());
    const model::SdxlPromptEmbeds e = Encode(set->Tokenize({"a photo of ohwx, studio light"}));
    prompt_embeds = e.prompt_embeds;
    pooled = e.pooled_prompt_embeds;

    absl::StatusOr<embeddings::SdxlEmbeddingFile> file = embeddings::ReadSdxlEmbedding(path);
    ASSERT_TRUE(file.ok()) << file.status();
    EXPECT_TRUE(torch::equal(file->vectors.clip_l, set->Vectors("ohwx")->clip_l));
    EXPECT_TRUE(torch::equal(file->vectors.clip_g, set->Vectors("ohwx")->clip_g));
    EXPECT_EQ(file->metadata.at("likeness_step"), "10");
    EXPECT_TRUE(file->unexpected.empty());
  }
  auto set = Attach();  // The first set detached itself.
  ASSERT_NE(set, nullptr);
  ASSERT_TRUE(set->LoadFile(path).ok());                 // token: the file stem
  ASSERT_TRUE(set->LoadFile(path, "other token").ok());  // or given
  ASSERT_EQ(set->ListTokens().size(), 2u);
  EXPECT_EQ(set->ListTokens()[0].name, "MySubject");
  EXPECT_EQ(set->ListTokens()[0].num_vectors, 3);
  EXPECT_FALSE(set->ListTokens()[0].trainable);
  for (const std::string prompt :
       {"a photo of mysubject, studio light", "a photo of Other Token, studio light"}) {
    const model::SdxlPromptEmbeds e = Encode(set->Tokenize({prompt}));
    EXPECT_TRUE(torch::equal(e.prompt_embeds, prompt_embeds)) << prompt;
    EXPECT_TRUE(torch::equal(e.pooled_prompt_embeds, pooled)) << prompt;
  }
  EXPECT_EQ(set->LoadFile(path).code(), absl::StatusCode::kAlreadyExists);
}

TEST_F(TextualInversionTest, LoadSdxlEmbeddingsAttachesToTheModels) {
  const std::string dir = TempDir();
  ASSERT_TRUE(embeddings::WriteSdxlEmbedding(dir + "/a.safetensors", {torch::randn({1, hidden_1_}),
                                                                      torch::randn({1, hidden_2_})})
                  .ok());
  ASSERT_TRUE(embeddings::WriteSdxlEmbedding(dir + "/b.safetensors", {torch::randn({4, hidden_1_}),
                                                                      torch::randn({4, hidden_2_})})
                  .ok());
  model::SdxlModels models;
  models.text_encoder = enc_.encoder_1;
  models.text_encoder_2 = enc_.encoder_2;
  {
    auto set = embeddings::LoadSdxlEmbeddings(
        models, tokenizer_, tokenizer_,
        {{dir + "/a.safetensors", ""}, {dir + "/b.safetensors", "bee"}});
    ASSERT_TRUE(set.ok()) << set.status();
    std::vector<std::string> names;
    for (const auto& t : (*set)->ListTokens()) names.push_back(t.name);
    EXPECT_THAT(names, ElementsAre("a", "bee"));
    EXPECT_THAT((*set)->tokenizer_1().AddedTokensIn("bee and a"), ElementsAre("bee", "a"));
  }
  // A failing file leaves nothing attached.
  auto bad =
      embeddings::LoadSdxlEmbeddings(models, tokenizer_, tokenizer_,
                                     {{dir + "/a.safetensors", ""}, {dir + "/no.safetensors", ""}});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(enc_.encoder_1->text_model->embeddings->token_embedding->adapter, nullptr);
}

TEST_F(TextualInversionTest, LoadsADiffusersPerEncoderPair) {
  const std::string dir = TempDir();
  const torch::Tensor v1 = torch::randn({2, hidden_1_}), v2 = torch::randn({2, hidden_2_});
  ASSERT_TRUE(
      safetensors::WriteSafetensors(dir + "/learned_embeds.safetensors", {{"<s0>", v1}}).ok());
  ASSERT_TRUE(
      safetensors::WriteSafetensors(dir + "/learned_embeds_2.safetensors", {{"<s0>", v2}}).ok());
  ASSERT_TRUE(safetensors::WriteSafetensors(dir + "/other.safetensors", {{"<s1>", v2}}).ok());
  auto set = Attach();
  ASSERT_NE(set, nullptr);
  ASSERT_TRUE(set->LoadDiffusersPair(dir + "/learned_embeds.safetensors",
                                     dir + "/learned_embeds_2.safetensors")
                  .ok());
  EXPECT_TRUE(torch::equal(set->Vectors("<s0>")->clip_l, v1));
  EXPECT_TRUE(torch::equal(set->Vectors("<s0>")->clip_g, v2));
  EXPECT_THAT(
      set->LoadDiffusersPair(dir + "/learned_embeds.safetensors", dir + "/other.safetensors")
          .message(),
      HasSubstr("name the token"));
  EXPECT_TRUE(set->LoadDiffusersPair(dir + "/learned_embeds.safetensors",
                                     dir + "/other.safetensors", "mixed")
                  .ok());
}

TEST_F(TextualInversionTest, RemovedTokenIsPlainTextAgain) {
  const model::SdxlPromptEmbeds base = Encode(BaseIds({"a photo of ohwx"}));
  auto set = Attach();
  ASSERT_NE(set, nullptr);
  ASSERT_TRUE(set->AddTokenFromWord("ohwx", 2, "cat").ok());
  ASSERT_TRUE(set->AddTokenFromWord("later", 1, "dog").ok());
  EXPECT_FALSE(
      torch::equal(Encode(set->Tokenize({"a photo of ohwx"})).prompt_embeds, base.prompt_embeds));
  ASSERT_TRUE(set->RemoveToken("OHWX").ok());
  EXPECT_EQ(set->RemoveToken("ohwx").code(), absl::StatusCode::kNotFound);
  const model::SdxlPromptEmbeds after = Encode(set->Tokenize({"a photo of ohwx"}));
  EXPECT_TRUE(torch::equal(after.prompt_embeds, base.prompt_embeds));
  // The later token moved to the freed ids and still reads its own vectors.
  const SdxlPromptIds later = set->Tokenize({"later"});
  EXPECT_EQ(later.ids_1[0][1].item<int64_t>(), AddedVectorId(0));
  EXPECT_TRUE(
      torch::equal(Encode(later).prompt_embeds, Encode(set->Tokenize({"dog"})).prompt_embeds));
}

TEST_F(TextualInversionTest, OneSetPerModelAndItDetachesItself) {
  auto set = Attach();
  ASSERT_NE(set, nullptr);
  auto second =
      SdxlTextualInversion::Attach(enc_.encoder_1, enc_.encoder_2, tokenizer_, tokenizer_);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  set.reset();
  EXPECT_EQ(enc_.encoder_1->text_model->embeddings->token_embedding->adapter, nullptr);
  EXPECT_EQ(enc_.encoder_2->text_model->embeddings->token_embedding->adapter, nullptr);
  EXPECT_NE(Attach(), nullptr);
  EXPECT_EQ(
      SdxlTextualInversion::Attach(model::SdxlModels{}, tokenizer_, tokenizer_).status().code(),
      absl::StatusCode::kFailedPrecondition);
}

TEST_F(TextualInversionTest, IdsPastTheAddedRowsFailLoudly) {
  auto set = Attach();
  ASSERT_NE(set, nullptr);
  ASSERT_TRUE(set->AddTokenFromWord("ohwx", 2, "dog").ok());
  torch::NoGradGuard no_grad;
  const int start = tokenizer_->start_of_text(), end = tokenizer_->end_of_text();
  EXPECT_NO_THROW(enc_.encoder_1(IdsTensor({start, AddedVectorId(1), end})));
  EXPECT_THROW(enc_.encoder_1(IdsTensor({start, AddedVectorId(2), end})), c10::Error);
  EXPECT_THROW(enc_.encoder_1(IdsTensor({start, 49408, end})), c10::Error);
}

}  // namespace
}  // namespace likeness::testing
