// LoraNetwork and LoraSet on the tiny SDXL bundle: targets, B = 0 and scale 0 leave the model's
// outputs bit-identical, only LoRA tensors get gradients, the trainable order is fixed, merge
// equals the unmerged forward, several LoRAs add up, detach restores the base.
#include "worker/lora/lora_network.h"

#include <map>
#include <set>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/lora/lora_test_util.h"
#include "worker/lora/lora_set.h"
#include "worker/model/layers.h"
#include "worker/model/state_dict.h"
#include "worker/model/unet/transformer.h"

namespace likeness::lora {
namespace {

using testing::BitIdentical;
using testing::MakeTinyInputs;
using testing::MaxAbsDiff;
using testing::RandomizeAdapters;
using testing::RunTiny;
using testing::TinySdxl;

// Merged vs unmerged: W x + s B (A x) against (W + s B A) x in float32, through the whole tiny
// UNet and both encoders (outputs up to 3.6): observed 2.3e-6 (merge) and 3.0e-6 (unmerge
// against the base); the bound leaves about 7x room.
constexpr double kMergeTolerance = 2e-5;

model::SdxlModels Tiny(uint64_t seed = 7) {
  absl::StatusOr<model::SdxlModels> models = TinySdxl(seed);
  EXPECT_TRUE(models.ok()) << models.status();
  return *std::move(models);
}

LoraTrainOptions AllTargets() {
  LoraTrainOptions options;
  options.targets = LoraTargets::Default();
  options.targets.WithUnetFeedForward().WithUnetProjections().WithTextEncoders(/*mlp=*/true);
  return options;
}

int CountTransformerBlocks(torch::nn::Module& unet) {
  int count = 0;
  for (const auto& item : unet.named_modules("", false)) {
    if (dynamic_cast<model::unet::BasicTransformerBlockImpl*>(item.value().get()) != nullptr) {
      ++count;
    }
  }
  return count;
}

TEST(LoraNetworkTest, DefaultTargetsAreTheUnetAttentionProjections) {
  model::SdxlModels models = Tiny();
  auto network = LoraNetwork::CreateTrainable(models, {});
  ASSERT_TRUE(network.ok()) << network.status();
  // Tiny UNet: transformer_layers_per_block [1, 1, 2] -> 2 + 4 down, 2 mid, 6 + 3 up = 17
  // blocks, each with attn1 and attn2 of to_q, to_k, to_v, to_out.0.
  const int blocks = CountTransformerBlocks(*models.unet);
  EXPECT_EQ(blocks, 17);
  EXPECT_EQ((*network)->NumModules(), blocks * 8);
  std::set<std::string> leaves;
  for (int64_t i = 0; i < (*network)->NumModules(); ++i) {
    const LoraLayer& layer = (*network)->layer(i);
    EXPECT_EQ(layer.component, LoraComponent::kUnet);
    leaves.insert(layer.path.substr(layer.path.rfind(".attn") + 1));
  }
  EXPECT_EQ(leaves,
            (std::set<std::string>{"attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0",
                                   "attn2.to_q", "attn2.to_k", "attn2.to_v", "attn2.to_out.0"}));
}

TEST(LoraNetworkTest, CountsTrainableParameters) {
  model::SdxlModels models = Tiny();
  LoraTrainOptions options = AllTargets();
  options.rank = 3;
  auto network = LoraNetwork::CreateTrainable(models, options);
  ASSERT_TRUE(network.ok()) << network.status();
  int64_t expected = 0;
  for (int64_t i = 0; i < (*network)->NumModules(); ++i) {
    const LoraLayerShape s = (*network)->layer(i).Shape();
    expected += 3 * (s.in * s.kernel * s.kernel + s.out);
  }
  EXPECT_EQ((*network)->NumTrainableParameters(), expected);
  // UNet: 17 blocks x 10 + 11 Transformer2DModels (4 down, 1 mid, 6 up) x 2; text: 3 layers x
  // 6, twice.
  EXPECT_EQ((*network)->NumModules(), 17 * 10 + 11 * 2 + 2 * 3 * 6);
}

TEST(LoraNetworkTest, FreshLoraLeavesOutputsBitIdentical) {
  model::SdxlModels models = Tiny();
  const testing::TinyInputs inputs = MakeTinyInputs();
  torch::NoGradGuard no_grad;
  const torch::Tensor base = RunTiny(models, inputs);
  auto network = LoraNetwork::CreateTrainable(models, AllTargets());
  ASSERT_TRUE(network.ok()) << network.status();
  EXPECT_TRUE(BitIdentical(RunTiny(models, inputs), base));
}

TEST(LoraNetworkTest, OnlyLoraTensorsGetGradients) {
  model::SdxlModels models = Tiny();
  std::map<std::string, torch::Tensor> before;
  for (const char* name : model::kSdxlComponents) {
    for (const auto& [key, value] : model::ModuleStateDict(*models.Component(name))) {
      before[std::string(name) + "." + key] = value.clone();
    }
  }
  auto network = LoraNetwork::CreateTrainable(models, AllTargets());
  ASSERT_TRUE(network.ok()) << network.status();
  RandomizeAdapters(**network, 3);  // so that every LoRA tensor's gradient is non-zero
  for (const char* name : model::kSdxlComponents) models.Component(name)->train();
  const torch::Tensor out = RunTiny(models, MakeTinyInputs());
  out.pow(2).mean().backward();

  for (const char* name : model::kSdxlComponents) {
    for (const auto& item : models.Component(name)->named_parameters()) {
      EXPECT_FALSE(item.value().requires_grad()) << name << "." << item.key();
      EXPECT_FALSE(item.value().grad().defined()) << name << "." << item.key();
      EXPECT_TRUE(BitIdentical(item.value(), before[std::string(name) + "." + item.key()]))
          << name << "." << item.key();
    }
  }
  for (const auto& [name, tensor] : (*network)->NamedTrainableTensors()) {
    ASSERT_TRUE(tensor.grad().defined()) << name;
    EXPECT_GT(tensor.grad().abs().sum().item<double>(), 0.0) << name;
  }
}

TEST(LoraNetworkTest, TrainableOrderAndValuesAreFixedBySeedAndTargets) {
  model::SdxlModels a = Tiny(1), b = Tiny(2);  // different base weights: the order is the same
  LoraTrainOptions options = AllTargets();
  options.seed = 5;
  auto na = LoraNetwork::CreateTrainable(a, options);
  auto nb = LoraNetwork::CreateTrainable(b, options);
  ASSERT_TRUE(na.ok() && nb.ok());
  const auto ta = (*na)->NamedTrainableTensors();
  const auto tb = (*nb)->NamedTrainableTensors();
  ASSERT_EQ(ta.size(), tb.size());
  for (size_t i = 0; i < ta.size(); ++i) {
    ASSERT_EQ(ta[i].first, tb[i].first);
    EXPECT_TRUE(BitIdentical(ta[i].second, tb[i].second)) << ta[i].first;
  }
  // The documented order: unet, text_encoder, text_encoder_2; down (lora_A) before up (lora_B).
  EXPECT_TRUE(absl::StartsWith(ta.front().first, "unet.down_blocks.1.attentions.0."));
  EXPECT_TRUE(absl::EndsWith(ta[0].first, ".lora_A.weight"));
  EXPECT_TRUE(absl::EndsWith(ta[1].first, ".lora_B.weight"));
  EXPECT_TRUE(
      absl::StartsWith(ta.back().first, "text_encoder_2.text_model.encoder.layers.2.mlp.fc2"));
  int last_component = 0;
  for (const auto& [name, t] : ta) {
    const int component = absl::StartsWith(name, "unet.")             ? 0
                          : absl::StartsWith(name, "text_encoder_2.") ? 2
                                                                      : 1;
    EXPECT_GE(component, last_component) << name;
    last_component = component;
  }

  options.seed = 6;
  auto nc = LoraNetwork::CreateTrainable(a, options);
  ASSERT_TRUE(nc.ok());
  EXPECT_FALSE(BitIdentical((*nc)->TrainableTensors()[0], ta[0].second));
}

TEST(LoraNetworkTest, ScaleZeroIsBaseAndScaleChangesNoBaseWeight) {
  model::SdxlModels models = Tiny();
  const testing::TinyInputs inputs = MakeTinyInputs();
  torch::NoGradGuard no_grad;
  const torch::Tensor base = RunTiny(models, inputs);
  const torch::Tensor q_weight =
      models.unet
          ->named_parameters()["mid_block.attentions.0.transformer_blocks.0.attn1.to_q.weight"];
  const void* q_data = q_weight.data_ptr();
  auto network = LoraNetwork::CreateTrainable(models, AllTargets());
  ASSERT_TRUE(network.ok());
  RandomizeAdapters(**network, 3);
  const torch::Tensor full = RunTiny(models, inputs);
  EXPECT_GT(MaxAbsDiff(full, base), 1e-3);
  (*network)->SetScale(0.0);
  EXPECT_TRUE(BitIdentical(RunTiny(models, inputs), base));
  (*network)->SetScale(1.0);
  EXPECT_TRUE(BitIdentical(RunTiny(models, inputs), full));
  EXPECT_EQ(q_weight.data_ptr(), q_data);
}

TEST(LoraNetworkTest, MergeEqualsUnmergedForwardAndUnmergeRestores) {
  model::SdxlModels models = Tiny();
  const testing::TinyInputs inputs = MakeTinyInputs();
  torch::NoGradGuard no_grad;
  const torch::Tensor base = RunTiny(models, inputs);
  auto network = LoraNetwork::CreateTrainable(models, AllTargets());
  ASSERT_TRUE(network.ok());
  RandomizeAdapters(**network, 3);
  (*network)->SetScale(0.8);
  const torch::Tensor unmerged = RunTiny(models, inputs);

  ASSERT_TRUE((*network)->Merge().ok());
  EXPECT_FALSE((*network)->Merge().ok());  // twice is a precondition error
  const torch::Tensor merged = RunTiny(models, inputs);
  EXPECT_LT(MaxAbsDiff(merged, unmerged), kMergeTolerance);
  EXPECT_FALSE(BitIdentical(merged, base));

  // A scale change while merged re-merges.
  (*network)->SetScale(0.3);
  const torch::Tensor merged_03 = RunTiny(models, inputs);
  ASSERT_TRUE((*network)->Unmerge().ok());
  EXPECT_LT(MaxAbsDiff(merged_03, RunTiny(models, inputs)), kMergeTolerance);

  (*network)->SetScale(0.0);
  // Unmerge subtracts the delta again: float32 rounding, not bit-exact (documented).
  EXPECT_LT(MaxAbsDiff(RunTiny(models, inputs), base), kMergeTolerance);
}

TEST(LoraNetworkTest, DetachRestoresTheBaseAndTwoLorasAddUp) {
  model::SdxlModels models = Tiny();
  const testing::TinyInputs inputs = MakeTinyInputs();
  torch::NoGradGuard no_grad;
  const torch::Tensor base = RunTiny(models, inputs);

  LoraTrainOptions one;
  one.seed = 1;
  LoraTrainOptions two = AllTargets();
  two.seed = 2;
  auto first = LoraNetwork::CreateTrainable(models, one);
  auto second = LoraNetwork::CreateTrainable(models, two);
  ASSERT_TRUE(first.ok() && second.ok());
  RandomizeAdapters(**first, 10);
  RandomizeAdapters(**second, 20);
  const torch::Tensor both = RunTiny(models, inputs);

  // Both merged gives the same model as both attached.
  ASSERT_TRUE((*first)->Merge().ok());
  ASSERT_TRUE((*second)->Merge().ok());
  EXPECT_LT(MaxAbsDiff(RunTiny(models, inputs), both), kMergeTolerance);
  ASSERT_TRUE((*second)->Unmerge().ok());
  ASSERT_TRUE((*first)->Unmerge().ok());

  ASSERT_TRUE((*second)->Detach().ok());
  ASSERT_TRUE((*second)->Detach().ok());  // idempotent
  EXPECT_FALSE((*second)->attached());
  (*first)->SetScale(0.0);
  EXPECT_LT(MaxAbsDiff(RunTiny(models, inputs), base), kMergeTolerance);
  first->reset();  // the destructor detaches
  for (const auto& item : models.unet->named_modules("", false)) {
    if (auto* linear = dynamic_cast<model::LinearImpl*>(item.value().get())) {
      EXPECT_TRUE(linear->adapters.empty()) << item.key();
    }
  }
}

TEST(LoraNetworkTest, BadOptionsNameWhatIsWrong) {
  model::SdxlModels models = Tiny();
  LoraTrainOptions options;
  options.targets.unet.push_back("to_qq");
  auto bad = LoraNetwork::CreateTrainable(models, options);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(bad.status().message(), "'to_qq'")) << bad.status();

  options = {};
  options.rank = 0;
  EXPECT_EQ(LoraNetwork::CreateTrainable(models, options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options = {};
  options.dropout = 1.0;
  EXPECT_EQ(LoraNetwork::CreateTrainable(models, options).status().code(),
            absl::StatusCode::kInvalidArgument);
  // A norm layer is not LoRA-able.
  options = {};
  options.targets.text_encoder = {"layer_norm1"};
  bad = LoraNetwork::CreateTrainable(models, options);
  EXPECT_TRUE(absl::StrContains(bad.status().message(), "'layer_norm1' matches no Linear"))
      << bad.status();
}

// LoRA tensors are not registered parameters (layers.h), so checkpointed blocks must take their
// gradients through LayerAdapter::TrainableTensors (activation_checkpoint.cc).
TEST(LoraNetworkTest, GradientCheckpointingGivesTheSameLoraGradients) {
  model::SdxlModels models = Tiny();
  auto network = LoraNetwork::CreateTrainable(models, AllTargets());
  ASSERT_TRUE(network.ok());
  RandomizeAdapters(**network, 3);
  models.unet->train();
  const testing::TinyInputs in = MakeTinyInputs();
  const auto gradients = [&](bool checkpointing) {
    models.unet->SetGradientCheckpointing(checkpointing);
    for (torch::Tensor t : (*network)->TrainableTensors()) t.mutable_grad() = torch::Tensor();
    models.unet
        ->forward(in.sample, in.timestep, in.encoder_hidden_states, in.text_embeds, in.time_ids)
        .pow(2)
        .mean()
        .backward();
    std::vector<torch::Tensor> out;
    for (const torch::Tensor& t : (*network)->TrainableTensors()) out.push_back(t.grad());
    return out;
  };
  const std::vector<torch::Tensor> plain = gradients(false);
  const std::vector<torch::Tensor> checkpointed = gradients(true);
  const auto named = (*network)->NamedTrainableTensors();
  for (size_t i = 0; i < named.size(); ++i) {
    if (!absl::StartsWith(named[i].first, "unet.")) continue;
    ASSERT_TRUE(plain[i].defined()) << named[i].first;
    ASSERT_TRUE(checkpointed[i].defined()) << named[i].first << " got no gradient";
    // Recomputation runs the same float32 kernels on the same data.
    EXPECT_LT(MaxAbsDiff(plain[i], checkpointed[i]), 1e-6) << named[i].first;
  }
}

TEST(LoraSpecTest, ParsesFileAndOptionalScale) {
  auto a = ParseLoraSpec("style.safetensors:0.75");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->path, "style.safetensors");
  EXPECT_DOUBLE_EQ(a->scale, 0.75);
  auto b = ParseLoraSpec("/data/c:d/style.safetensors");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->path, "/data/c:d/style.safetensors");
  EXPECT_DOUBLE_EQ(b->scale, 1.0);
  EXPECT_FALSE(ParseLoraSpec(":0.5").ok());
  EXPECT_FALSE(ParseLoraSpec("x:inf").ok());
}

}  // namespace
}  // namespace likeness::lora
