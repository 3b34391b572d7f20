// The metric arithmetic on constructed embeddings (worker/eval/metrics.h), the paper's reference
// numbers, and the prompt handling CLIP-T relies on (worker/eval/prompts.h).
#include <cmath>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_data.h"
#include "worker/eval/metrics.h"
#include "worker/eval/prompts.h"

namespace likeness::eval {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Optional;

constexpr double kTight = 1e-12;

torch::Tensor Rows(std::vector<std::vector<double>> rows) {
  std::vector<torch::Tensor> tensors;
  for (const auto& row : rows) tensors.push_back(torch::tensor(row, torch::kFloat64));
  return torch::stack(tensors).to(torch::kFloat32);
}

TEST(MetricsTest, IdenticalEmbeddingsScoreOne) {
  const torch::Tensor a = Rows({{1, 2, 3}, {1, 2, 3}});
  EXPECT_NEAR(*MeanPairwiseCosine(a, a), 1.0, 1e-7);
  EXPECT_NEAR(*MeanPairwiseCosineWithin(a), 1.0, 1e-7);
}

TEST(MetricsTest, CosineIgnoresLengthAndSeesDirection) {
  const torch::Tensor a = Rows({{1, 0}});
  EXPECT_NEAR(*MeanPairwiseCosine(a, Rows({{5, 0}})), 1.0, kTight);
  EXPECT_NEAR(*MeanPairwiseCosine(a, Rows({{0, 3}})), 0.0, kTight);   // orthogonal
  EXPECT_NEAR(*MeanPairwiseCosine(a, Rows({{-2, 0}})), -1.0, kTight); // opposite
  EXPECT_NEAR(*MeanPairwiseCosine(a, Rows({{1, 1}})), std::sqrt(0.5), 1e-7);
}

TEST(MetricsTest, MeanOverAllGeneratedRealPairs) {
  // generated {e1, e2} x real {e1}: cosines 1 and 0.
  EXPECT_NEAR(*MeanPairwiseCosine(Rows({{1, 0}, {0, 1}}), Rows({{1, 0}})), 0.5, kTight);
  // 2 x 3 pairs: e1 vs {e1, e1, e2} = 2/3, -e1 vs them = -2/3.
  EXPECT_NEAR(*MeanPairwiseCosine(Rows({{1, 0}, {-1, 0}}), Rows({{1, 0}, {1, 0}, {0, 1}})), 0.0,
              kTight);
}

TEST(MetricsTest, WithinOneSetLeavesOutSelfPairs) {
  // {e1, e2}: the only pairs are (e1, e2) and (e2, e1), both 0; with self-pairs it would be 0.5.
  EXPECT_NEAR(*MeanPairwiseCosineWithin(Rows({{1, 0}, {0, 1}})), 0.0, kTight);
  // {e1, e1, e2}: 6 ordered pairs, 2 of them (e1, e1) -> 2/6.
  EXPECT_NEAR(*MeanPairwiseCosineWithin(Rows({{1, 0}, {1, 0}, {0, 1}})), 1.0 / 3.0, kTight);
  absl::StatusOr<double> single = MeanPairwiseCosineWithin(Rows({{1, 0}}));
  EXPECT_FALSE(single.ok());
  EXPECT_THAT(single.status().message(), HasSubstr("at least 2"));
}

TEST(MetricsTest, PerRowMeansAgreeWithTheOverallMean) {
  const torch::Tensor gen = Rows({{1, 0}, {0, 1}, {1, 1}});
  const torch::Tensor real = Rows({{1, 0}, {2, 1}});
  const torch::Tensor rows = *MeanCosinePerRow(gen, real, /*exclude_same_index=*/false);
  ASSERT_EQ(rows.size(0), 3);
  EXPECT_NEAR(rows.mean().item<double>(), *MeanPairwiseCosine(gen, real), kTight);
  const torch::Tensor within = *MeanCosinePerRow(gen, gen, /*exclude_same_index=*/true);
  EXPECT_NEAR(within.mean().item<double>(), *MeanPairwiseCosineWithin(gen), kTight);
  EXPECT_NEAR(within[0].item<double>(), (0.0 + std::sqrt(0.5)) / 2, 1e-7);
  EXPECT_FALSE(MeanCosinePerRow(gen, real, /*exclude_same_index=*/true).ok());
}

TEST(MetricsTest, RowwiseCosinePairsRowsInOrder) {
  const torch::Tensor c = *RowwiseCosine(Rows({{1, 0}, {0, 1}}), Rows({{3, 0}, {1, 0}}));
  EXPECT_NEAR(c[0].item<double>(), 1.0, kTight);
  EXPECT_NEAR(c[1].item<double>(), 0.0, kTight);
  EXPECT_FALSE(RowwiseCosine(Rows({{1, 0}}), Rows({{1, 0}, {0, 1}})).ok());
}

TEST(MetricsTest, ZeroEmbeddingHasCosineZeroNotNan) {
  const double c = *MeanPairwiseCosine(Rows({{0, 0}}), Rows({{1, 0}}));
  EXPECT_EQ(c, 0.0);
}

TEST(MetricsTest, RejectsMismatchedOrEmptyInput) {
  absl::StatusOr<double> widths = MeanPairwiseCosine(Rows({{1, 0}}), Rows({{1, 0, 0}}));
  EXPECT_FALSE(widths.ok());
  EXPECT_THAT(widths.status().message(), HasSubstr("widths differ"));
  EXPECT_FALSE(MeanPairwiseCosine(torch::zeros({0, 3}), Rows({{1, 0, 0}})).ok());
  EXPECT_FALSE(MeanPairwiseCosine(torch::zeros({3}), Rows({{1, 0, 0}})).ok());
}

TEST(MetricsTest, DiversityIsTheMeanRmsDistance) {
  EXPECT_NEAR(*MeanPairwiseRmsDistance(Rows({{0.5, 0.5}, {0.5, 0.5}})), 0.0, 1e-6);
  // Every value differs by 1: RMS distance 1.
  EXPECT_NEAR(*MeanPairwiseRmsDistance(Rows({{0, 0, 0, 0}, {1, 1, 1, 1}})), 1.0, 1e-9);
  // Pairs (a,b) = 1, (a,c) = 0.5, (b,c) = 0.5 -> 2/3.
  EXPECT_NEAR(*MeanPairwiseRmsDistance(Rows({{0, 0}, {1, 1}, {0.5, 0.5}})), 2.0 / 3.0, 1e-9);
  EXPECT_FALSE(MeanPairwiseRmsDistance(Rows({{0, 0}})).ok());
}

TEST(MetricsTest, ReferenceNumbersAreThePapers) {
  EXPECT_EQ(kPaperRealImagesDino, 0.774);
  EXPECT_EQ(kPaperRealImagesClipI, 0.885);
  EXPECT_EQ(kPaperDreamBoothSdDino, 0.668);
  EXPECT_EQ(kPaperDreamBoothSdClipI, 0.803);
  EXPECT_EQ(kPaperDreamBoothSdClipT, 0.305);
  EXPECT_EQ(kPaperTextualInversionDino, 0.569);
  EXPECT_EQ(kPaperTextualInversionClipI, 0.780);
  EXPECT_EQ(kPaperTextualInversionClipT, 0.255);
  EXPECT_FALSE(kPaperReferenceRows[0].clip_t.has_value());  // no CLIP-T for real images
}

// --- prompts ---------------------------------------------------------------------------------

TEST(EvaluationPromptTest, IdentifierBeforeTheClassNounIsRemoved) {
  EXPECT_EQ(EvaluationPrompt("a sks dog in the jungle", "sks", "dog"), "a dog in the jungle");
  EXPECT_EQ(EvaluationPrompt("a red sks dog", "sks", "dog"), "a red dog");
  EXPECT_EQ(EvaluationPrompt("A SKS Dog on the beach", "sks", "dog"), "A Dog on the beach");
}

TEST(EvaluationPromptTest, IdentifierAloneBecomesTheClassNoun) {
  EXPECT_EQ(EvaluationPrompt("a photo of sks, smiling", "sks", "dog"), "a photo of dog, smiling");
  EXPECT_EQ(EvaluationPrompt("sks", "sks", "stuffed animal"), "stuffed animal");
}

TEST(EvaluationPromptTest, WithoutANounTheIdentifierGoes) {
  EXPECT_EQ(EvaluationPrompt("a sks dog in the snow", "sks", ""), "a dog in the snow");
  EXPECT_EQ(EvaluationPrompt("portrait of ohwx", "ohwx", ""), "portrait of");
}

TEST(EvaluationPromptTest, OnlyWholeWordsMatch) {
  EXPECT_EQ(EvaluationPrompt("she asks the sksdog", "sks", "dog"), "she asks the sksdog");
  EXPECT_EQ(EvaluationPrompt("a <sks> toy", "<sks>", "toy"), "a toy");
  EXPECT_EQ(EvaluationPrompt("a sks dog", "", "dog"), "a sks dog");
}

TEST(PromptFromParametersTest, ReadsAutomatic1111Parameters) {
  EXPECT_THAT(PromptFromParameters("a sks dog in the snow\nNegative prompt: blurry\nSteps: 30, "
                                   "Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 1024x1024"),
              Optional(std::string("a sks dog in the snow")));
  EXPECT_THAT(PromptFromParameters("line one\nline two\nSteps: 20, Sampler: Euler"),
              Optional(std::string("line one\nline two")));
  EXPECT_EQ(PromptFromParameters("\nSteps: 20"), std::nullopt);
  // LoRA tags instruct the sampler; they are not words of the prompt.
  EXPECT_THAT(PromptFromParameters("a sks dog <lora:sks_dog:0.8>\nNegative prompt: blurry\n"
                                   "Steps: 30, Sampler: Euler"),
              Optional(std::string("a sks dog")));
  // No settings line: the lines before "Negative prompt:".
  EXPECT_THAT(PromptFromParameters("a cat\nNegative prompt: dog"), Optional(std::string("a cat")));
}

class PromptFileTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& content) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << content;
    return path;
  }
  const std::string dir_ = likeness::testing::MakeTestTempDir("eval_prompts");
  const std::vector<std::string> images_ = {"a.png", "b.png", "c.png"};
};

TEST_F(PromptFileTest, JsonMapsNamesToPrompts) {
  absl::StatusOr<PromptFile> file =
      ReadPromptFile(Write("p.json", R"({"a.png": "a sks dog", "c.png": "a sks dog swimming"})"));
  ASSERT_TRUE(file.ok()) << file.status();
  absl::StatusOr<std::vector<std::optional<std::string>>> prompts = AssignPrompts(*file, images_);
  ASSERT_TRUE(prompts.ok()) << prompts.status();
  EXPECT_THAT(*prompts, ElementsAre(Optional(std::string("a sks dog")), std::nullopt,
                                    Optional(std::string("a sks dog swimming"))));
}

TEST_F(PromptFileTest, TextLinesFollowFileNameOrder) {
  absl::StatusOr<PromptFile> file = ReadPromptFile(Write("p.txt", "# prompts\none\n\ntwo\nthree\n"));
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_THAT(*AssignPrompts(*file, images_),
              ElementsAre(Optional(std::string("one")), Optional(std::string("two")),
                          Optional(std::string("three"))));
  absl::StatusOr<std::vector<std::optional<std::string>>> short_file =
      AssignPrompts(*file, {"a.png", "b.png"});
  EXPECT_FALSE(short_file.ok());
  EXPECT_THAT(short_file.status().message(), HasSubstr("3 prompt lines for 2"));
}

TEST_F(PromptFileTest, TabSeparatedLinesMapNames) {
  absl::StatusOr<PromptFile> file = ReadPromptFile(Write("p.tsv", "b.png\tsecond\r\na.png\tfirst\n"));
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_THAT(*AssignPrompts(*file, images_),
              ElementsAre(Optional(std::string("first")), Optional(std::string("second")),
                          std::nullopt));
}

TEST_F(PromptFileTest, ErrorsNameTheFileAndLine) {
  const std::string mixed = Write("mixed.txt", "a.png\tfirst\nsecond\n");
  absl::StatusOr<PromptFile> file = ReadPromptFile(mixed);
  EXPECT_FALSE(file.ok());
  EXPECT_THAT(file.status().message(), HasSubstr(mixed + ":2"));
  absl::StatusOr<PromptFile> unknown = ReadPromptFile(Write("u.json", R"({"zzz.png": "x"})"));
  ASSERT_TRUE(unknown.ok());
  absl::StatusOr<std::vector<std::optional<std::string>>> assigned = AssignPrompts(*unknown, images_);
  EXPECT_FALSE(assigned.ok());
  EXPECT_THAT(assigned.status().message(), HasSubstr("zzz.png"));
  EXPECT_FALSE(ReadPromptFile(Write("bad.json", "[1, 2]")).ok());
  EXPECT_TRUE(absl::IsNotFound(ReadPromptFile(dir_ + "/missing.txt").status()));
}

}  // namespace
}  // namespace likeness::eval
