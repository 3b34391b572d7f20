// The trainer's side of SdxlTextualInversion on the tiny golden text encoders: gradients reach
// exactly the added vectors, an optimizer step changes nothing else, the trainable tensors come
// in their documented order, and a checkpoint restore is in place.
#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/embeddings/embeddings_test_util.h"
#include "worker/embeddings/textual_inversion.h"
#include "worker/model/state_dict.h"
#include "worker/model/text/sdxl_conditioning.h"

namespace likeness::testing {
namespace {

using embeddings::SdxlPromptIds;
using embeddings::SdxlTextualInversion;
using ::testing::ElementsAre;

class TextualInversionTrainingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tokenizer_ = ClipTokenizerOrFail();
    ASSERT_NE(tokenizer_, nullptr);
    absl::StatusOr<TinyTextEncoders> encoders = LoadTinyTextEncoders();
    ASSERT_TRUE(encoders.ok()) << encoders.status();
    enc_ = std::move(*encoders);
    auto set = SdxlTextualInversion::Attach(enc_.encoder_1, enc_.encoder_2, tokenizer_, tokenizer_);
    ASSERT_TRUE(set.ok()) << set.status();
    set_ = std::move(*set);
  }

  void FreezeEncoders() {
    for (auto& p : enc_.encoder_1->parameters()) p.requires_grad_(false);
    for (auto& p : enc_.encoder_2->parameters()) p.requires_grad_(false);
  }

  // A loss that depends on every output SDXL takes from the encoders.
  torch::Tensor Loss(const std::string& prompt) {
    const SdxlPromptIds ids = set_->Tokenize({prompt});
    const model::SdxlPromptEmbeds e =
        model::EncodeSdxlPrompt(enc_.encoder_1, enc_.encoder_2, ids.ids_1, ids.ids_2);
    return e.prompt_embeds.square().mean() + e.pooled_prompt_embeds.square().mean();
  }

  // Copies of both encoders' weights, "text_encoder.<name>" / "text_encoder_2.<name>".
  model::StateDict Snapshot() const {
    model::StateDict out;
    for (const auto& [name, t] : model::ModuleStateDict(*enc_.encoder_1)) {
      out["text_encoder." + name] = t.detach().clone();
    }
    for (const auto& [name, t] : model::ModuleStateDict(*enc_.encoder_2)) {
      out["text_encoder_2." + name] = t.detach().clone();
    }
    return out;
  }

  std::shared_ptr<const text::ClipTokenizer> tokenizer_;
  TinyTextEncoders enc_;
  std::unique_ptr<SdxlTextualInversion> set_;
};

TEST_F(TextualInversionTrainingTest, GradientReachesOnlyTheAddedVectorsInThePrompt) {
  FreezeEncoders();
  ASSERT_TRUE(set_->AddTokenFromWord("ohwx", 2, "dog", /*trainable=*/true).ok());
  ASSERT_TRUE(set_->AddTokenFromWord("unused", 1, "cat", /*trainable=*/true).ok());
  ASSERT_TRUE(set_->AddTokenFromWord("frozen", 1, "cat").ok());
  Loss("a photo of ohwx frozen").backward();

  EXPECT_FALSE(enc_.encoder_1->text_model->embeddings->token_embedding->weight.grad().defined());
  EXPECT_FALSE(enc_.encoder_2->text_model->embeddings->token_embedding->weight.grad().defined());
  const auto ohwx = set_->Vectors("ohwx");
  ASSERT_TRUE(ohwx.ok());
  for (const torch::Tensor& v : {ohwx->clip_l, ohwx->clip_g}) {
    ASSERT_TRUE(v.grad().defined());
    // Both vectors of the token took part.
    EXPECT_TRUE(v.grad().abs().sum(1).gt(0).all().item<bool>());
  }
  // A token that is not in the prompt gets zeros, a frozen one nothing.
  for (const torch::Tensor& v :
       {set_->Vectors("unused")->clip_l, set_->Vectors("unused")->clip_g}) {
    ASSERT_TRUE(v.grad().defined());  // Defined, so every rank reduces the same tensors.
    EXPECT_EQ(v.grad().abs().sum().item<float>(), 0.0f);
  }
  EXPECT_FALSE(set_->Vectors("frozen")->clip_l.grad().defined());
  EXPECT_FALSE(set_->Vectors("frozen")->clip_l.requires_grad());
}

TEST_F(TextualInversionTrainingTest, UnfrozenTableGetsNothingFromAddedPositions) {
  // The adapter's select sends no gradient into the base table where a position is an added
  // token: neither the clamped row 0 nor the row of the init word gets any.
  ASSERT_TRUE(set_->AddTokenFromWord("ohwx", 1, "dog", /*trainable=*/true).ok());
  Loss("ohwx").backward();
  const torch::Tensor grad = enc_.encoder_1->text_model->embeddings->token_embedding->weight.grad();
  ASSERT_TRUE(grad.defined());
  const int dog = tokenizer_->Encode("dog").at(0);
  EXPECT_EQ(grad[0].abs().sum().item<float>(), 0.0f);    // '!' is not in encoder 1's ids
  EXPECT_EQ(grad[dog].abs().sum().item<float>(), 0.0f);  // the init word is not in the prompt
  EXPECT_GT(grad[tokenizer_->end_of_text()].abs().sum().item<float>(), 0.0f);
  EXPECT_GT(set_->Vectors("ohwx")->clip_l.grad().abs().sum().item<float>(), 0.0f);
}

TEST_F(TextualInversionTrainingTest, OptimizerStepChangesOnlyTheTrainedVectors) {
  FreezeEncoders();
  ASSERT_TRUE(set_->AddTokenFromWord("ohwx", 3, "dog", /*trainable=*/true).ok());
  ASSERT_TRUE(set_->AddTokenFromWord("fixed", 1, "cat").ok());
  const model::StateDict before = Snapshot();
  const torch::Tensor ohwx_before = set_->Vectors("ohwx")->clip_g.detach().clone();
  const torch::Tensor fixed_before = set_->Vectors("fixed")->clip_l.detach().clone();

  torch::optim::SGD optimizer(set_->TrainableTensors(), torch::optim::SGDOptions(1.0));
  optimizer.zero_grad();
  Loss("a photo of ohwx and fixed").backward();
  optimizer.step();

  const model::StateDict after = Snapshot();
  for (const auto& [name, t] : before) EXPECT_TRUE(torch::equal(t, after.at(name))) << name;
  EXPECT_FALSE(torch::equal(set_->Vectors("ohwx")->clip_g, ohwx_before));
  EXPECT_TRUE(torch::equal(set_->Vectors("fixed")->clip_l, fixed_before));
}

TEST_F(TextualInversionTrainingTest, TrainableTensorsComeInTheDocumentedOrder) {
  ASSERT_TRUE(set_->AddTokenFromWord("first", 2, "dog", /*trainable=*/true).ok());
  ASSERT_TRUE(set_->AddTokenFromWord("skipped", 1, "dog").ok());
  ASSERT_TRUE(set_->AddTokenFromWord("second", 1, "cat", /*trainable=*/true).ok());
  EXPECT_THAT(set_->TrainableTensorNames(),
              ElementsAre("first.clip_l", "first.clip_g", "second.clip_l", "second.clip_g"));
  const std::vector<torch::Tensor> tensors = set_->TrainableTensors();
  ASSERT_EQ(tensors.size(), 4u);
  EXPECT_TRUE(tensors[0].is_same(set_->Vectors("first")->clip_l));
  EXPECT_TRUE(tensors[1].is_same(set_->Vectors("first")->clip_g));
  EXPECT_TRUE(tensors[2].is_same(set_->Vectors("second")->clip_l));
  EXPECT_TRUE(tensors[3].is_same(set_->Vectors("second")->clip_g));
  for (const torch::Tensor& t : tensors) {
    EXPECT_TRUE(t.is_leaf());
    EXPECT_TRUE(t.requires_grad());
    EXPECT_EQ(t.scalar_type(), torch::kFloat32);
  }
  ASSERT_TRUE(set_->SetTrainable("skipped", true).ok());
  ASSERT_TRUE(set_->SetTrainable("first", false).ok());
  EXPECT_THAT(set_->TrainableTensorNames(),
              ElementsAre("skipped.clip_l", "skipped.clip_g", "second.clip_l", "second.clip_g"));
  EXPECT_EQ(set_->SetTrainable("nope", true).code(), absl::StatusCode::kNotFound);
}

TEST_F(TextualInversionTrainingTest, SetVectorsRestoresInPlace) {
  ASSERT_TRUE(set_->AddTokenFromWord("ohwx", 2, "dog", /*trainable=*/true).ok());
  const torch::Tensor held = set_->TrainableTensors().front();
  const void* storage = held.data_ptr();
  const torch::Tensor values = torch::randn({2, enc_.encoder_1->config().hidden_size});
  ASSERT_TRUE(
      set_->SetVectors("ohwx", {values, torch::randn({2, enc_.encoder_2->config().hidden_size})})
          .ok());
  EXPECT_EQ(held.data_ptr(), storage);
  EXPECT_TRUE(torch::equal(held, values));
  EXPECT_TRUE(held.requires_grad());
  EXPECT_EQ(set_->SetVectors("ohwx", {torch::randn({3, 32}), torch::randn({3, 32})}).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace likeness::testing
