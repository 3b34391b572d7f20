// The fused attention kernels on a GPU (label gpu; every case skips without one): forward and
// gradients against plain attention in float64 on the same half-precision inputs, held to at
// most twice the error of torch's own scaled_dot_product_attention at that precision (the math
// path on libtorch 1.13), on SDXL's shapes and odd ones: ragged lengths, padded head dims,
// cross-attention to 77 keys. Outputs are poisoned with NaN first, so an unwritten element fails.
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "common/torch_compat.h"
#include "gtest/gtest.h"
#include "worker/model/attention.h"
#include "worker/model/flash_attention.h"

namespace likeness::model {
namespace {

// Allowed: twice torch's error, plus a floor for cases where torch's error is ~0 by luck.
constexpr double kErrorFactor = 2.0;
constexpr double kErrorFloor = 1e-3;

struct Shape {
  int64_t batch, heads, seqlen_q, seqlen_k, head_dim;
  std::string name;
};

class FlashAttentionTest : public ::testing::TestWithParam<torch::Dtype> {
 protected:
  void SetUp() override {
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  }
};

// With one key softmax is constant and dq, dk are exactly zero: the floor keeps 0 / 0 out.
constexpr double kNormFloor = 1e-30;

double RelativeError(const torch::Tensor& actual, const torch::Tensor& expected) {
  const torch::Tensor a = actual.to(torch::kFloat64);
  return (a - expected).norm().item<double>() / std::max(expected.norm().item<double>(), kNormFloor);
}

// Our modules' layout: [B, N, H*d] projections viewed as [B, H, N, d].
torch::Tensor ModuleLayout(const Shape& s, int64_t rows, torch::Dtype dtype) {
  return (torch::randn({s.batch, rows, s.heads * s.head_dim}, torch::TensorOptions().device(torch::kCUDA)) * 1.5)
      .to(dtype)
      .view({s.batch, rows, s.heads, s.head_dim})
      .transpose(1, 2);
}

// Leaves NaN in the caching allocator's free blocks of these sizes, so an output the kernel
// fails to write is NaN rather than a stale right answer.
void PoisonAllocator(const std::vector<int64_t>& element_counts) {
  for (int64_t n : element_counts) {
    torch::full({n}, NAN, torch::TensorOptions().device(torch::kCUDA).dtype(torch::kFloat32));
    torch::full({n}, NAN, torch::TensorOptions().device(torch::kCUDA).dtype(torch::kBFloat16));
  }
}

struct Result {
  torch::Tensor out, dq, dk, dv;
};

Result Run(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& dout,
           AttentionBackend backend) {
  torch::Tensor qr = q.detach().requires_grad_(true);
  torch::Tensor kr = k.detach().requires_grad_(true);
  torch::Tensor vr = v.detach().requires_grad_(true);
  AttentionOptions options;
  options.backend = backend;
  torch::Tensor out = Attention(qr, kr, vr, options);
  out.backward(dout);
  return {out.detach(), qr.grad(), kr.grad(), vr.grad()};
}

void CheckShape(const Shape& s, torch::Dtype dtype) {
  SCOPED_TRACE(s.name);
  torch::manual_seed(s.batch * 1000 + s.seqlen_q + s.seqlen_k + s.head_dim);
  const torch::Tensor q = ModuleLayout(s, s.seqlen_q, dtype);
  const torch::Tensor k = ModuleLayout(s, s.seqlen_k, dtype);
  const torch::Tensor v = ModuleLayout(s, s.seqlen_k, dtype);
  const torch::Tensor dout = torch::randn(q.sizes(), q.options());
  ASSERT_EQ(FlashAttentionUnsupported(q, k, v), "");

  // The float64 reference on the same rounded inputs.
  Result ref = Run(q.to(torch::kFloat64), k.to(torch::kFloat64), v.to(torch::kFloat64), dout.to(torch::kFloat64),
                   AttentionBackend::kReference);
  const AttentionBackend torch_backend =
      compat::kHasScaledDotProductAttention ? AttentionBackend::kTorchSdpa : AttentionBackend::kReference;
  Result theirs = Run(q, k, v, dout, torch_backend);
  PoisonAllocator({q.numel(), k.numel(), q.numel() * 2});
  Result ours = Run(q, k, v, dout, AttentionBackend::kFused);

  // Heads-last memory: the module's transpose back to [B, N, H*d] is a view.
  EXPECT_TRUE(ours.out.transpose(1, 2).is_contiguous());
  const std::vector<std::pair<std::string, std::pair<torch::Tensor, torch::Tensor>>> parts = {
      {"out", {ours.out, theirs.out}}, {"dq", {ours.dq, theirs.dq}},
      {"dk", {ours.dk, theirs.dk}},    {"dv", {ours.dv, theirs.dv}}};
  const std::vector<torch::Tensor> refs = {ref.out, ref.dq, ref.dk, ref.dv};
  for (size_t i = 0; i < parts.size(); ++i) {
    const double our_error = RelativeError(parts[i].second.first, refs[i]);
    const double their_error = RelativeError(parts[i].second.second, refs[i]);
    std::cout << "[ flash ] " << s.name << " " << (dtype == torch::kBFloat16 ? "bf16" : "fp16") << " "
              << parts[i].first << ": ours " << our_error << ", torch " << their_error << "\n";
    EXPECT_TRUE(std::isfinite(our_error)) << parts[i].first << " has unwritten or non-finite elements";
    EXPECT_LE(our_error, std::max(kErrorFactor * their_error, kErrorFloor)) << parts[i].first;
  }
}

TEST_P(FlashAttentionTest, SdxlShapes) {
  // 1024² SDXL: 4096 tokens x 10 heads at the first transformer level, 1024 x 20 at the
  // second, and cross-attention to the 77 text tokens; batch 2 (CFG).
  for (const Shape& s : {Shape{2, 10, 4096, 4096, 64, "self 4096 x 10 heads"},
                         Shape{2, 20, 1024, 1024, 64, "self 1024 x 20 heads"},
                         Shape{2, 10, 4096, 77, 64, "cross 4096 x 77"},
                         Shape{2, 20, 1024, 77, 64, "cross 1024 x 77"}}) {
    CheckShape(s, GetParam());
  }
}

TEST_P(FlashAttentionTest, OddShapes) {
  for (const Shape& s : {Shape{1, 1, 1, 1, 8, "one row, one key, d 8"},
                         Shape{1, 3, 77, 77, 64, "CLIP-length self"},
                         Shape{2, 2, 130, 200, 40, "ragged, d 40 padded to 64"},
                         Shape{3, 5, 257, 33, 128, "ragged, d 128"},
                         Shape{1, 2, 100, 513, 96, "ragged, d 96 padded to 128"},
                         Shape{2, 4, 64, 64, 128, "one tile"},
                         Shape{64, 16, 129, 65, 64, "batch x heads 1024"}}) {
    CheckShape(s, GetParam());
  }
}

TEST_P(FlashAttentionTest, AutoPicksTheKernelAndFallsBackWhereItCannot) {
  const Shape s{1, 2, 50, 60, 64, "auto"};
  const torch::Tensor q = ModuleLayout(s, s.seqlen_q, GetParam());
  const torch::Tensor k = ModuleLayout(s, s.seqlen_k, GetParam());
  const torch::Tensor v = ModuleLayout(s, s.seqlen_k, GetParam());
  EXPECT_TRUE(torch::allclose(Attention(q, k, v), FlashAttention(q, k, v, 0.125)));
  // d = 36 is not a multiple of 8, float32 is not a kernel dtype: both fall back and still work.
  const torch::Tensor odd = torch::randn({1, 2, 50, 36}, q.options());
  EXPECT_NE(FlashAttentionUnsupported(odd, odd, odd), "");
  EXPECT_EQ(Attention(odd, odd, odd).sizes(), odd.sizes());
  const torch::Tensor f32 = q.to(torch::kFloat32);
  EXPECT_NE(FlashAttentionUnsupported(f32, f32, f32), "");
  AttentionOptions forced;
  forced.backend = AttentionBackend::kFused;
  EXPECT_THROW(Attention(odd, odd, odd, forced), c10::Error);
}

INSTANTIATE_TEST_SUITE_P(HalfPrecision, FlashAttentionTest, ::testing::Values(torch::kBFloat16, torch::kFloat16),
                         [](const ::testing::TestParamInfo<torch::Dtype>& info) {
                           return info.param == torch::kBFloat16 ? "bf16" : "fp16";
                         });

}  // namespace
}  // namespace likeness::model
