#include "worker/model/layers.h"

#include <fstream>

#include "gtest/gtest.h"
#include "worker/model/attention.h"
#include "worker/model/state_dict.h"

namespace likeness::model {
namespace {

struct TinyImpl : torch::nn::Module {
  TinyImpl() {
    proj = register_module("proj", Linear(4, 3));
    norm = register_module("norm", GroupNorm(1, 3));
    conv = register_module("conv", Conv2d(3, 2, 3, 1, 1));
  }
  Linear proj{nullptr};
  GroupNorm norm{nullptr};
  Conv2d conv{nullptr};
};
TORCH_MODULE(Tiny);

int64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t pages_total = 0, pages_resident = 0;
  statm >> pages_total >> pages_resident;
  return pages_resident * 4096;
}

TEST(LayersTest, NamesMatchTorchNnAndDiffusers) {
  Tiny tiny;
  const StateDict dict = ModuleStateDict(*tiny);
  std::vector<std::string> names;
  for (const auto& [name, t] : dict) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"conv.bias", "conv.weight", "norm.bias", "norm.weight",
                                             "proj.bias", "proj.weight"}));
  EXPECT_EQ(CountParameters(*tiny), 4 * 3 + 3 + 3 + 3 + 3 * 2 * 9 + 2);
}

TEST(LayersTest, ForwardEqualsTorchFunctional) {
  Tiny tiny;
  InitializeRandomly(*tiny, 7);
  torch::Tensor x = torch::randn({2, 5, 4});
  EXPECT_TRUE(tiny->proj(x).allclose(torch::linear(x, tiny->proj->weight, tiny->proj->bias)));
  torch::Tensor img = torch::randn({1, 3, 6, 6});
  EXPECT_EQ(tiny->conv(img).sizes(), (std::vector<int64_t>{1, 2, 6, 6}));
}

TEST(LayersTest, RandomInitIsDeterministicAndParametersFollowScopedOptions) {
  Tiny a, b;
  InitializeRandomly(*a, 42);
  InitializeRandomly(*b, 42);
  EXPECT_TRUE(a->proj->weight.equal(b->proj->weight));
  EXPECT_TRUE(a->norm->weight.equal(torch::ones({3})));
  EXPECT_TRUE(a->proj->bias.equal(torch::zeros({3})));
  {
    ScopedParameterOptions half(torch::TensorOptions().dtype(torch::kBFloat16));
    Linear l(4, 4);
    EXPECT_EQ(l->weight.scalar_type(), torch::kBFloat16);
  }
  Linear l(4, 4);
  EXPECT_EQ(l->weight.scalar_type(), torch::kFloat32);
}

TEST(LayersTest, UninitialisedParametersCostNoResidentMemory) {
  // 4 GiB of float32 weights: a model of SDXL-UNet size is built in virtual memory only.
  constexpr int64_t kRows = 32768, kCols = 32768;
  const int64_t before = ResidentBytes();
  Linear big(kCols, kRows, /*bias=*/false);
  EXPECT_EQ(CountParameters(*big), kRows * kCols);
  EXPECT_LT(ResidentBytes() - before, int64_t{256} << 20);
}

TEST(LoadStateDictTest, MissingShapeMismatchAndUnexpectedAreReported) {
  Tiny tiny;
  StateDict source = ModuleStateDict(*Tiny());
  for (auto& [name, t] : source) t = torch::full_like(t, 0.5);
  source["extra.weight"] = torch::zeros({1});
  auto report = LoadStateDict(*tiny, source, "model.safetensors");
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->loaded, 6);
  EXPECT_EQ(report->unexpected, std::vector<std::string>{"extra.weight"});
  EXPECT_TRUE(tiny->proj->weight.equal(torch::full({3, 4}, 0.5)));

  StateDict wrong_shape = source;
  wrong_shape["proj.weight"] = torch::zeros({4, 3});
  auto bad = LoadStateDict(*tiny, wrong_shape, "model.safetensors");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("proj.weight"), std::string::npos);
  EXPECT_NE(bad.status().message().find("[4, 3]"), std::string::npos);
  EXPECT_NE(bad.status().message().find("[3, 4]"), std::string::npos);

  StateDict missing = source;
  missing.erase("norm.bias");
  missing.erase("conv.weight");
  auto gone = LoadStateDict(*tiny, missing, "model.safetensors");
  ASSERT_FALSE(gone.ok());
  EXPECT_NE(gone.status().message().find("conv.weight, norm.bias"), std::string::npos) << gone.status();
}

TEST(AttentionTest, ReferenceMatchesSoftmaxFormulaAndCausalMaskBlocksTheFuture) {
  torch::Tensor q = torch::randn({2, 3, 5, 8}, torch::kFloat64);
  torch::Tensor k = torch::randn({2, 3, 7, 8}, torch::kFloat64);
  torch::Tensor v = torch::randn({2, 3, 7, 4}, torch::kFloat64);
  torch::Tensor expected = torch::softmax(torch::matmul(q, k.transpose(-1, -2)) / std::sqrt(8.0), -1).matmul(v);
  EXPECT_TRUE(Attention(q, k, v).allclose(expected, 1e-12, 1e-12));
  // With a causal mask, output row 0 depends on key/value 0 only.
  torch::Tensor s = torch::randn({1, 1, 4, 8}, torch::kFloat64);
  AttentionOptions causal;
  causal.mask = CausalMask(4, torch::kFloat64, torch::kCPU);
  torch::Tensor out = Attention(s, s, s, causal);
  EXPECT_TRUE(out[0][0][0].allclose(s[0][0][0]));
}

}  // namespace
}  // namespace likeness::model
