// Embedding files: the SDXL clip_l/clip_g form is read as A1111 and ComfyUI read it (any float
// dtype, widened to float32), SD 1.x and single-encoder files are refused with a message saying
// so, and the diffusers per-encoder form reads its one tensor.
#include "worker/embeddings/embedding_file.h"

#include <torch/torch.h>

#include <string>

#include "common/safetensors/writer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_data.h"

namespace likeness::testing {
namespace {

using embeddings::ReadEncoderEmbedding;
using embeddings::ReadSdxlEmbedding;
using embeddings::WriteSdxlEmbedding;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class EmbeddingFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTestTempDir(::testing::UnitTest::GetInstance()->current_test_info()->name());
  }
  std::string Write(const std::string& name, const safetensors::NamedTensors& tensors) {
    const std::string path = dir_ + "/" + name;
    EXPECT_TRUE(safetensors::WriteSafetensors(path, tensors).ok()) << path;
    return path;
  }
  std::string dir_;
};

TEST_F(EmbeddingFileTest, RefusesStableDiffusion1Embeddings) {
  const std::string emb_params =
      Write("sd15.safetensors", {{"emb_params", torch::randn({2, 768})}});
  absl::StatusOr<embeddings::SdxlEmbeddingFile> read = ReadSdxlEmbedding(emb_params);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(read.status().message(), HasSubstr(emb_params));
  EXPECT_THAT(read.status().message(), HasSubstr("not an SDXL embedding"));
  EXPECT_THAT(read.status().message(), HasSubstr("'emb_params' [2, 768]"));
  EXPECT_THAT(read.status().message(), HasSubstr("Stable Diffusion 1.x"));
  EXPECT_THAT(read.status().message(), HasSubstr("'clip_l' [n, 768] and 'clip_g' [n, 1280]"));

  const std::string flattened =
      Write("a1111.safetensors", {{"string_to_param.*", torch::randn({1, 768})}});
  EXPECT_THAT(ReadSdxlEmbedding(flattened).status().message(), HasSubstr("Stable Diffusion 1.x"));
  EXPECT_THAT(ReadEncoderEmbedding(emb_params).status().message(),
              HasSubstr("Stable Diffusion 1.x"));

  // Pickles are refused by name before anything is opened.
  for (const std::string name : {"/old.pt", "/learned_embeds.bin"}) {
    const absl::Status s = ReadSdxlEmbedding(dir_ + name).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(s.message(), HasSubstr("pickled"));
  }
}

TEST_F(EmbeddingFileTest, RefusesFilesThatAreNotTheSdxlForm) {
  const std::string single = Write("single.safetensors", {{"<tok>", torch::randn({2, 768})}});
  EXPECT_THAT(ReadSdxlEmbedding(single).status().message(),
              HasSubstr("one tensor '<tok>' [2, 768]"));
  const std::string half = Write("half.safetensors", {{"clip_l", torch::randn({2, 768})}});
  EXPECT_THAT(ReadSdxlEmbedding(half).status().message(), HasSubstr("lacks 'clip_g'"));
  const std::string other =
      Write("other.safetensors", {{"a", torch::randn({1, 8})}, {"b", torch::randn({1, 8})}});
  EXPECT_THAT(ReadSdxlEmbedding(other).status().message(),
              HasSubstr("lacks 'clip_l' and 'clip_g' (it holds a, b)"));
  const std::string uneven = Write("uneven.safetensors", {{"clip_l", torch::randn({2, 768})},
                                                          {"clip_g", torch::randn({3, 1280})}});
  EXPECT_THAT(ReadSdxlEmbedding(uneven).status().message(),
              HasSubstr("clip_l [2, 768] and clip_g [3, 1280] hold different numbers of vectors"));
  const std::string ints =
      Write("ints.safetensors",
            {{"clip_l", torch::ones({1, 768}, torch::kLong)}, {"clip_g", torch::randn({1, 1280})}});
  EXPECT_THAT(ReadSdxlEmbedding(ints).status().message(), HasSubstr("floating point"));
  EXPECT_EQ(ReadSdxlEmbedding(dir_ + "/missing.safetensors").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(EmbeddingFileTest, ReadsAnyFloatDtypeAsFloat32AndReportsExtraTensors) {
  const torch::Tensor l = torch::randn({2, 768}).to(torch::kHalf);
  const torch::Tensor g = torch::randn({2, 1280}).to(torch::kBFloat16);
  const std::string path =
      Write("mixed.safetensors", {{"clip_l", l}, {"clip_g", g}, {"step", torch::ones({1})}});
  absl::StatusOr<embeddings::SdxlEmbeddingFile> read = ReadSdxlEmbedding(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->vectors.clip_l.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(read->vectors.clip_l, l.to(torch::kFloat32)));
  EXPECT_TRUE(torch::equal(read->vectors.clip_g, g.to(torch::kFloat32)));
  EXPECT_EQ(read->vectors.num_vectors(), 2);
  EXPECT_THAT(read->unexpected, ElementsAre("step"));
}

TEST_F(EmbeddingFileTest, WriteThenReadIsExact) {
  const embeddings::SdxlTokenVectors v{torch::randn({3, 768}), torch::randn({3, 1280})};
  const std::string path = dir_ + "/ohwx.safetensors";
  ASSERT_TRUE(WriteSdxlEmbedding(path, v, {{"name", "ohwx"}}).ok());
  absl::StatusOr<embeddings::SdxlEmbeddingFile> read = ReadSdxlEmbedding(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_TRUE(torch::equal(read->vectors.clip_l, v.clip_l));
  EXPECT_TRUE(torch::equal(read->vectors.clip_g, v.clip_g));
  EXPECT_EQ(read->metadata.at("name"), "ohwx");
  EXPECT_THAT(WriteSdxlEmbedding(path, {torch::randn({3, 768}), torch::randn({2, 1280})}).message(),
              HasSubstr("different numbers of vectors"));
  EXPECT_THAT(WriteSdxlEmbedding(path, {torch::randn({768}), torch::randn({1, 1280})}).message(),
              HasSubstr("want [n, dim]"));
}

TEST_F(EmbeddingFileTest, ReadsOneEncodersDiffusersFile) {
  const torch::Tensor one = torch::randn({768});
  const std::string path = Write("learned_embeds.safetensors", {{"<cat-toy>", one}});
  absl::StatusOr<embeddings::EncoderEmbeddingFile> read = ReadEncoderEmbedding(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->token, "<cat-toy>");
  EXPECT_TRUE(torch::equal(read->vectors, one.unsqueeze(0)));
  const std::string two = Write("two.safetensors", {{"a", one}, {"b", one}});
  EXPECT_THAT(ReadEncoderEmbedding(two).status().message(), HasSubstr("holds 2 tensors"));
}

TEST(TokenNameFromPathTest, IsTheFileStemAsAutomatic1111Names) {
  EXPECT_EQ(embeddings::TokenNameFromPath("/emb/My Style.safetensors"), "My Style");
  EXPECT_EQ(embeddings::TokenNameFromPath("ohwx.v2.safetensors"), "ohwx.v2");
  EXPECT_EQ(embeddings::TokenNameFromPath("plain"), "plain");
}

}  // namespace
}  // namespace likeness::testing
