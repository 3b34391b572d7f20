// The tiled algorithm of the fused attention kernels, modelled on the CPU (flash_reference.h),
// against plain softmax(scale q k^T) v and its autograd gradients in float64: ragged lengths,
// padded head dims, one-row and one-key edge cases, and several tile sizes.
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/attention/flash_reference.h"

namespace likeness::kernels::flash {
namespace {

// Float64 throughout: the tiled and the plain orders of summation differ by rounding only.
constexpr double kTolerance = 1e-12;

struct Case {
  int64_t seqlen_q, seqlen_k, head_dim;
};

// With one key softmax is constant and dq, dk are exactly zero: the floor keeps 0 / 0 out.
constexpr double kNormFloor = 1e-30;

double RelativeError(const torch::Tensor& actual, const torch::Tensor& expected) {
  return (actual - expected).norm().item<double>() / std::max(expected.norm().item<double>(), kNormFloor);
}

void CheckCase(const Case& c, const ReferenceBlocks& blocks, uint64_t seed) {
  torch::manual_seed(seed);
  const auto options = torch::TensorOptions().dtype(torch::kFloat64);
  // Scores of a few units: softmax neither uniform nor one-hot, so every term matters.
  torch::Tensor q = torch::randn({c.seqlen_q, c.head_dim}, options) * 1.5;
  torch::Tensor k = torch::randn({c.seqlen_k, c.head_dim}, options) * 1.5;
  torch::Tensor v = torch::randn({c.seqlen_k, c.head_dim}, options);
  torch::Tensor dout = torch::randn({c.seqlen_q, c.head_dim}, options);
  const double scale = 1.0 / std::sqrt(static_cast<double>(c.head_dim));

  torch::Tensor qr = q.clone().requires_grad_(true);
  torch::Tensor kr = k.clone().requires_grad_(true);
  torch::Tensor vr = v.clone().requires_grad_(true);
  torch::Tensor expected = torch::matmul(torch::softmax(torch::matmul(qr, kr.t()) * scale, -1), vr);
  expected.backward(dout);
  const torch::Tensor expected_lse = torch::logsumexp(torch::matmul(q, k.t()) * scale, -1);

  const ReferenceShape shape{c.seqlen_q, c.seqlen_k, c.head_dim};
  torch::Tensor out = torch::full_like(q, NAN);
  torch::Tensor lse = torch::full({c.seqlen_q}, NAN, options);
  FlashForwardReference<double>(q.data_ptr<double>(), k.data_ptr<double>(), v.data_ptr<double>(), shape, scale,
                                blocks, out.data_ptr<double>(), lse.data_ptr<double>());
  torch::Tensor dq = torch::full_like(q, NAN), dk = torch::full_like(k, NAN), dv = torch::full_like(v, NAN);
  FlashBackwardReference<double>(q.data_ptr<double>(), k.data_ptr<double>(), v.data_ptr<double>(),
                                 out.data_ptr<double>(), dout.data_ptr<double>(), lse.data_ptr<double>(), shape,
                                 scale, blocks, dq.data_ptr<double>(), dk.data_ptr<double>(),
                                 dv.data_ptr<double>());

  SCOPED_TRACE(::testing::Message() << "Nq " << c.seqlen_q << " Nk " << c.seqlen_k << " d " << c.head_dim
                                    << " blocks " << blocks.forward_rows << "x" << blocks.forward_keys << " / "
                                    << blocks.backward_keys << "x" << blocks.backward_rows);
  EXPECT_LE(RelativeError(out, expected.detach()), kTolerance);
  EXPECT_LE(RelativeError(lse, expected_lse), kTolerance);
  EXPECT_LE(RelativeError(dq, qr.grad()), kTolerance);
  EXPECT_LE(RelativeError(dk, kr.grad()), kTolerance);
  EXPECT_LE(RelativeError(dv, vr.grad()), kTolerance);
}

TEST(FlashReferenceTest, MatchesPlainAttentionOnRaggedShapes) {
  const std::vector<Case> cases = {
      {1, 1, 8},      {77, 77, 64},   {130, 77, 64},  {257, 200, 40},
      {64, 64, 128},  {129, 65, 96},  {300, 513, 64}, {5, 1000, 16},
  };
  uint64_t seed = 1;
  for (const Case& c : cases) CheckCase(c, ReferenceBlocks{}, seed++);
}

TEST(FlashReferenceTest, TileSizesDoNotChangeTheResult) {
  const Case c{200, 150, 64};
  for (const ReferenceBlocks& blocks :
       {ReferenceBlocks{128, 64, 64, 64}, ReferenceBlocks{16, 16, 16, 16}, ReferenceBlocks{1, 7, 5, 3},
        ReferenceBlocks{1000, 1000, 1000, 1000}}) {
    CheckCase(c, blocks, 42);
  }
}

TEST(FlashReferenceTest, LargeScoresStayFinite) {
  // Scores in the hundreds overflow exp() without the running max; the online softmax keeps
  // every exponent at most 0.
  torch::manual_seed(7);
  const auto options = torch::TensorOptions().dtype(torch::kFloat64);
  const int64_t n = 70, d = 64;
  torch::Tensor q = torch::randn({n, d}, options) * 40;
  torch::Tensor k = torch::randn({n, d}, options) * 40;
  torch::Tensor v = torch::randn({n, d}, options);
  torch::Tensor out = torch::empty_like(q), lse = torch::empty({n}, options);
  FlashForwardReference<double>(q.data_ptr<double>(), k.data_ptr<double>(), v.data_ptr<double>(), {n, n, d}, 1.0,
                                ReferenceBlocks{}, out.data_ptr<double>(), lse.data_ptr<double>());
  const torch::Tensor expected = torch::matmul(torch::softmax(torch::matmul(q, k.t()), -1), v);
  EXPECT_TRUE(torch::isfinite(out).all().item<bool>());
  EXPECT_LE(RelativeError(out, expected), kTolerance);
}

TEST(FlashReferenceTest, FloatInstantiationIsCloseToDouble) {
  torch::manual_seed(3);
  const int64_t nq = 100, nk = 90, d = 64;
  torch::Tensor q = torch::randn({nq, d}), k = torch::randn({nk, d}), v = torch::randn({nk, d});
  torch::Tensor out = torch::empty_like(q), lse = torch::empty({nq});
  FlashForwardReference<float>(q.data_ptr<float>(), k.data_ptr<float>(), v.data_ptr<float>(), {nq, nk, d}, 0.125f,
                               ReferenceBlocks{}, out.data_ptr<float>(), lse.data_ptr<float>());
  const torch::Tensor expected =
      torch::matmul(torch::softmax(torch::matmul(q.to(torch::kFloat64), k.to(torch::kFloat64).t()) * 0.125, -1),
                    v.to(torch::kFloat64));
  EXPECT_LE(RelativeError(out.to(torch::kFloat64), expected), 1e-5);
}

}  // namespace
}  // namespace likeness::kernels::flash
