// The model stack on a CUDA device in bf16 and fp16 (the training and inference dtypes), against
// the fp32 golden references. Skips without a CUDA device (CPU libtorch, or no GPU).
#include <algorithm>
#include <filesystem>
#include <fstream>

#include "common/safetensors/safetensors_file.h"
#include "common/torch_compat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/test_data.h"
#include "worker/model/layers.h"
#include "worker/model/state_dict.h"
#include "worker/model/unet/unet2d_condition.h"
#include "worker/model/vae/autoencoder_kl.h"

namespace likeness::model {
namespace {

// Half-precision formats keep 8 (bf16) or 11 (fp16) significant bits; through a dozen layers
// the error against fp32 grows to a few percent of the output's range.
constexpr double kBf16RelTolerance = 5e-2;
constexpr double kFp16RelTolerance = 1e-2;
constexpr double kFp32RelTolerance = 1e-4;  // the golden README's float32 tolerance
constexpr double kTf32RelTolerance = 3e-3;

struct Golden {
  std::shared_ptr<safetensors::SafetensorsFile> file;
  nlohmann::json sidecar;
  torch::Tensor Get(const std::string& name) const { return *file->Get(name); }
};

Golden Open(const std::string& stem) {
  Golden g;
  const std::string base = testing::GoldenDir() + "/" + stem;
  g.file = *safetensors::SafetensorsFile::Open(base + ".safetensors");
  std::ifstream in(base + ".json");
  g.sidecar = nlohmann::json::parse(in);
  return g;
}

double RelativeError(const torch::Tensor& actual, const torch::Tensor& expected) {
  const torch::Tensor e = expected.to(torch::kFloat64).cpu();
  return (actual.to(torch::kFloat64).cpu() - e).abs().max().item<double>() / e.abs().max().item<double>();
}

class CudaModelsTest : public ::testing::TestWithParam<torch::Dtype> {
 protected:
  void SetUp() override {
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  }
};

TEST_P(CudaModelsTest, UNetForwardAndBackwardInHalfPrecision) {
  const torch::Dtype dtype = GetParam();
  const torch::Device cuda(torch::kCUDA);
  Golden g = Open("unet_tiny_sdxl");
  absl::StatusOr<unet::UNetConfig> config = unet::UNetConfig::FromJson(g.sidecar["config"]);
  ASSERT_TRUE(config.ok()) << config.status();
  ScopedParameterOptions options(torch::TensorOptions().dtype(dtype).device(cuda));
  absl::StatusOr<unet::UNet2DConditionModel> unet = unet::MakeUNet(*config);
  ASSERT_TRUE(unet.ok()) << unet.status();
  ASSERT_TRUE(LoadStateDict(**unet, *ReadStateDict(*g.file), "unet_tiny_sdxl").ok());
  auto in = [&](const std::string& k) { return g.Get("__input__." + k).to(cuda); };
  torch::Tensor sample = in("sample").to(dtype).requires_grad_(true);
  torch::Tensor out = (*unet)->forward(sample, in("timestep"), in("encoder_hidden_states").to(dtype),
                                       in("text_embeds").to(dtype), in("time_ids"));
  EXPECT_EQ(out.scalar_type(), dtype);
  EXPECT_LE(RelativeError(out, g.Get("__output__.sample")),
            dtype == torch::kBFloat16 ? kBf16RelTolerance : kFp16RelTolerance);
  (out.to(torch::kFloat32) * in("loss_weight")).sum().backward();
  EXPECT_LE(RelativeError(sample.grad(), g.Get("__output__.grad.sample")),
            dtype == torch::kBFloat16 ? kBf16RelTolerance : kFp16RelTolerance);
  for (const auto& p : (*unet)->parameters()) {
    ASSERT_TRUE(p.grad().defined());
    EXPECT_TRUE(torch::isfinite(p.grad()).all().item<bool>());
  }
}

// The training setup of a full fine-tune: float32 weights under bf16 autocast. Checkpointed
// blocks recompute in backward, outside the caller's autocast guard; they must re-enter it
// (seen failing on the H100 before: "expected scalar type BFloat16 but found Float").
TEST_P(CudaModelsTest, CheckpointingUnderAutocastGivesTheSameGradients) {
  const torch::Dtype dtype = GetParam();
  const torch::Device cuda(torch::kCUDA);
  Golden g = Open("unet_tiny_sdxl");
  absl::StatusOr<unet::UNetConfig> config = unet::UNetConfig::FromJson(g.sidecar["config"]);
  ASSERT_TRUE(config.ok()) << config.status();
  ScopedParameterOptions options(torch::TensorOptions().dtype(torch::kFloat32).device(cuda));
  absl::StatusOr<unet::UNet2DConditionModel> unet = unet::MakeUNet(*config);
  ASSERT_TRUE(unet.ok()) << unet.status();
  ASSERT_TRUE(LoadStateDict(**unet, *ReadStateDict(*g.file), "unet_tiny_sdxl").ok());
  auto in = [&](const std::string& k) { return g.Get("__input__." + k).to(cuda); };
  std::vector<torch::Tensor> grads[2];
  for (int checkpointing = 0; checkpointing < 2; ++checkpointing) {
    (*unet)->SetGradientCheckpointing(checkpointing == 1);
    (*unet)->zero_grad();
    {
      compat::CudaAutocast autocast(dtype);
      torch::Tensor out = (*unet)->forward(in("sample"), in("timestep"), in("encoder_hidden_states"),
                                           in("text_embeds"), in("time_ids"));
      (out.to(torch::kFloat32) * in("loss_weight")).sum().backward();
    }
    for (const auto& p : (*unet)->parameters()) grads[checkpointing].push_back(p.grad().clone());
  }
  ASSERT_EQ(grads[0].size(), grads[1].size());
  for (size_t i = 0; i < grads[0].size(); ++i) {
    // The same half-precision operations in the same order: equal up to atomics' order.
    const double scale = std::max(grads[0][i].abs().max().item<double>(), 1e-12);
    EXPECT_LE((grads[1][i] - grads[0][i]).abs().max().item<double>() / scale, kFp16RelTolerance)
        << "parameter " << i;
  }
}

class CudaVaeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  }
};

// force_upcast: SDXL's VAE runs in float32 even when the rest of the pipeline is half.
TEST_F(CudaVaeTest, DecodesLikeTheReferenceInFloat32) {
  const torch::Device cuda(torch::kCUDA);
  Golden g = Open("vae_tiny");
  absl::StatusOr<VaeConfig> config = VaeConfig::FromJson(g.sidecar["config"]);
  ASSERT_TRUE(config.ok()) << config.status();
  ScopedParameterOptions options(torch::TensorOptions().dtype(torch::kFloat32).device(cuda));
  absl::StatusOr<AutoencoderKL> vae = CreateAutoencoderKL(*config);
  ASSERT_TRUE(vae.ok()) << vae.status();
  ASSERT_TRUE(LoadStateDict(**vae, *ReadStateDict(*g.file), "vae_tiny").ok());
  torch::NoGradGuard no_grad;
  // cuDNN convolutions default to TF32 on Hopper (10-bit mantissa): exact float32 is checked
  // with it off, and the default with TF32's own tolerance (seen: 5.3e-4 on an H100).
  auto& context = at::globalContext();
  const bool tf32_default = context.allowTF32CuDNN();
  context.setAllowTF32CuDNN(false);
  const torch::Tensor exact = (*vae)->Decode(g.Get("__input__.latent").to(cuda));
  context.setAllowTF32CuDNN(tf32_default);
  EXPECT_LE(RelativeError(exact, g.Get("__output__.decoded")), kFp32RelTolerance);
  const torch::Tensor fast = (*vae)->Decode(g.Get("__input__.latent").to(cuda));
  EXPECT_LE(RelativeError(fast, g.Get("__output__.decoded")), kTf32RelTolerance);
}

INSTANTIATE_TEST_SUITE_P(HalfPrecision, CudaModelsTest, ::testing::Values(torch::kBFloat16, torch::kFloat16),
                         [](const ::testing::TestParamInfo<torch::Dtype>& info) {
                           return info.param == torch::kBFloat16 ? "bf16" : "fp16";
                         });

}  // namespace
}  // namespace likeness::model
