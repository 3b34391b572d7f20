// LoraAdapter on single layers: the formula, B = 0 and multiplier 0 leave the base output
// bit-identical, kaiming-uniform initialisation from a seed, dropout only in training, dtype
// handling, and the merged delta against sd-scripts' formula.
#include "worker/lora/lora_adapter.h"

#include <cmath>
#include <memory>

#include "gtest/gtest.h"
#include "tests/lora/lora_test_util.h"
#include "worker/model/layers.h"

namespace likeness::lora {
namespace {

using testing::BitIdentical;
using testing::MaxAbsDiff;

// float32 sums of a few dozen products: a few ulps of values of order 1.
constexpr double kFloat32Tolerance = 1e-5;

model::Linear RandomLinear(int64_t in, int64_t out, uint64_t seed) {
  model::Linear layer(in, out);
  model::InitializeRandomly(*layer, seed);
  torch::NoGradGuard no_grad;
  layer->bias.normal_(0.0, 0.1);
  return layer;
}

model::Conv2d RandomConv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t padding,
                         uint64_t seed) {
  model::Conv2d layer(in, out, k, stride, padding);
  model::InitializeRandomly(*layer, seed);
  return layer;
}

std::shared_ptr<LoraAdapter> Attach(torch::nn::Module* base, const LoraLayerShape& shape,
                                    std::vector<std::shared_ptr<model::LayerAdapter>>& adapters,
                                    int64_t rank, double alpha, uint64_t seed,
                                    double dropout = 0.0) {
  torch::Generator g = at::detail::createCPUGenerator(seed);
  LoraPair pair = InitLoraPair(shape, rank, g, torch::TensorOptions().dtype(torch::kFloat32));
  auto adapter = std::make_shared<LoraAdapter>(base, shape, pair.down, pair.up, alpha, dropout);
  adapters.push_back(adapter);
  return adapter;
}

void FillUp(LoraAdapter& adapter, uint64_t seed) {
  torch::NoGradGuard no_grad;
  torch::Generator g = at::detail::createCPUGenerator(seed);
  torch::Tensor up = adapter.up();
  up.copy_(at::normal(0.0, 0.5, up.sizes(), g));
}

TEST(LoraAdapterTest, ZeroUpLeavesLinearAndConvOutputsBitIdentical) {
  model::Linear linear = RandomLinear(16, 24, 1);
  const torch::Tensor x = torch::randn({3, 5, 16});
  const torch::Tensor base = linear(x);
  Attach(linear.get(), LoraLayerShape::Of(*linear), linear->adapters, 4, 8.0, 2);
  EXPECT_TRUE(BitIdentical(linear(x), base));

  model::Conv2d conv = RandomConv(8, 12, 3, 2, 1, 3);
  const torch::Tensor image = torch::randn({2, 8, 9, 9});
  const torch::Tensor conv_base = conv(image);
  Attach(conv.get(), LoraLayerShape::Of(*conv), conv->adapters, 2, 1.0, 4);
  EXPECT_TRUE(BitIdentical(conv(image), conv_base));
}

TEST(LoraAdapterTest, LinearComputesScaledLowRankTerm) {
  model::Linear linear = RandomLinear(16, 24, 1);
  const torch::Tensor x = torch::randn({3, 16});
  const torch::Tensor base = linear(x);
  auto adapter = Attach(linear.get(), LoraLayerShape::Of(*linear), linear->adapters, 4, 2.0, 2);
  FillUp(*adapter, 5);
  adapter->set_multiplier(0.7);
  EXPECT_DOUBLE_EQ(adapter->scale(), 0.5);  // alpha / rank
  const torch::Tensor expected =
      base + 0.5 * 0.7 * torch::matmul(torch::matmul(x, adapter->down().t()), adapter->up().t());
  EXPECT_LT(MaxAbsDiff(linear(x), expected), kFloat32Tolerance);
}

TEST(LoraAdapterTest, ConvIsLoConAndEqualsItsMergedKernel) {
  // A strided, padded 3x3 conv: down repeats the base geometry, up is 1x1 (kohya's LoCon).
  model::Conv2d conv = RandomConv(8, 12, 3, 2, 1, 3);
  const torch::Tensor image = torch::randn({2, 8, 9, 9});
  auto adapter = Attach(conv.get(), LoraLayerShape::Of(*conv), conv->adapters, 3, 6.0, 4);
  EXPECT_EQ(adapter->down().sizes(), torch::IntArrayRef({3, 8, 3, 3}));
  EXPECT_EQ(adapter->up().sizes(), torch::IntArrayRef({12, 3, 1, 1}));
  FillUp(*adapter, 6);
  const torch::Tensor with_lora = conv(image);
  const torch::Tensor merged =
      torch::conv2d(image, conv->weight + adapter->DeltaWeight(), conv->bias, {2, 2}, {1, 1});
  EXPECT_LT(MaxAbsDiff(with_lora, merged), kFloat32Tolerance);
}

TEST(LoraAdapterTest, DeltaMatchesSdScriptsMergeFormula) {
  // sd-scripts LoRAInfModule.merge_to for a k x k conv:
  //   conv2d(down.permute(1, 0, 2, 3), up).permute(1, 0, 2, 3) * multiplier * scale
  model::Conv2d conv = RandomConv(5, 7, 3, 1, 1, 3);
  auto adapter = Attach(conv.get(), LoraLayerShape::Of(*conv), conv->adapters, 2, 1.0, 4);
  FillUp(*adapter, 6);
  adapter->set_multiplier(0.25);
  torch::NoGradGuard no_grad;
  const torch::Tensor reference =
      torch::conv2d(adapter->down().permute({1, 0, 2, 3}), adapter->up()).permute({1, 0, 2, 3}) *
      0.25 * adapter->scale();
  EXPECT_LT(MaxAbsDiff(adapter->DeltaWeight(), reference), kFloat32Tolerance);
}

TEST(LoraAdapterTest, MultiplierZeroIsBaseAndNeverTouchesTheWeight) {
  model::Linear linear = RandomLinear(16, 24, 1);
  const torch::Tensor x = torch::randn({4, 16});
  const torch::Tensor base = linear(x);
  const torch::Tensor weight_before = linear->weight.clone();
  const void* weight_data = linear->weight.data_ptr();
  auto adapter = Attach(linear.get(), LoraLayerShape::Of(*linear), linear->adapters, 4, 4.0, 2);
  FillUp(*adapter, 5);
  for (double m : {0.0, 1.0, -0.5, 0.0}) {
    adapter->set_multiplier(m);
    const torch::Tensor y = linear(x);
    EXPECT_EQ(BitIdentical(y, base), m == 0.0) << "multiplier " << m;
  }
  EXPECT_EQ(linear->weight.data_ptr(), weight_data);
  EXPECT_TRUE(BitIdentical(linear->weight, weight_before));
}

TEST(LoraAdapterTest, InitIsSeededKaimingUniformDownAndZeroUp) {
  const LoraLayerShape shape = LoraLayerShape::Of(*model::Linear(100, 30));
  torch::Generator g1 = at::detail::createCPUGenerator(42);
  torch::Generator g2 = at::detail::createCPUGenerator(42);
  torch::Generator g3 = at::detail::createCPUGenerator(43);
  const auto options = torch::TensorOptions().dtype(torch::kFloat32);
  LoraPair a = InitLoraPair(shape, 8, g1, options);
  LoraPair b = InitLoraPair(shape, 8, g2, options);
  LoraPair c = InitLoraPair(shape, 8, g3, options);
  EXPECT_TRUE(BitIdentical(a.down, b.down));
  EXPECT_FALSE(BitIdentical(a.down, c.down));
  // kaiming_uniform_(a = sqrt(5)) on [8, 100]: U(-1/sqrt(100), 1/sqrt(100)).
  const double bound = 0.1;
  EXPECT_LE(a.down.abs().max().item<double>(), bound);
  EXPECT_GT(a.down.abs().max().item<double>(), 0.9 * bound);  // 800 draws reach the edge
  EXPECT_NEAR(a.down.mean().item<double>(), 0.0, 0.01);
  EXPECT_EQ(a.up.count_nonzero().item<int64_t>(), 0);
  EXPECT_TRUE(a.down.is_leaf() && a.down.requires_grad());
  EXPECT_TRUE(a.up.is_leaf() && a.up.requires_grad());
}

TEST(LoraAdapterTest, DropoutOnlyInTrainingMode) {
  model::Linear linear = RandomLinear(64, 64, 1);
  const torch::Tensor x = torch::randn({8, 64});
  auto adapter =
      Attach(linear.get(), LoraLayerShape::Of(*linear), linear->adapters, 4, 4.0, 2, 0.5);
  FillUp(*adapter, 5);
  linear->eval();
  const torch::Tensor eval_1 = linear(x);
  EXPECT_TRUE(BitIdentical(linear(x), eval_1));
  linear->train();
  torch::manual_seed(0);
  EXPECT_FALSE(BitIdentical(linear(x), eval_1));
}

TEST(LoraAdapterTest, ComputesInTheBaseDtypeAndKeepsFloat32Gradients) {
  // A float64 layer with a float32 adapter: the output stays float64 and the gradient reaches
  // the float32 leaf (the bf16-base / float32-master case, in a dtype every CPU kernel has).
  model::ScopedParameterOptions float64(torch::TensorOptions().dtype(torch::kFloat64));
  model::Linear linear = RandomLinear(16, 8, 1);
  auto adapter = Attach(linear.get(), LoraLayerShape::Of(*linear), linear->adapters, 2, 2.0, 2);
  const torch::Tensor y = linear(torch::randn({3, 16}, torch::kFloat64));
  EXPECT_EQ(y.scalar_type(), torch::kFloat64);
  y.sum().backward();
  ASSERT_TRUE(adapter->up().grad().defined());
  EXPECT_EQ(adapter->up().grad().scalar_type(), torch::kFloat32);
  EXPECT_GT(adapter->up().grad().abs().sum().item<double>(), 0.0);
}

}  // namespace
}  // namespace likeness::lora
