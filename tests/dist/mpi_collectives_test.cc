// The MPI communicator and the bucketed reducer on 2 ranks (ctest: mpirun -np 2).
#include <vector>

#include "gtest/gtest.h"
#include "tests/dist/mpi_test_util.h"
#include "worker/dist/bucketed_reducer.h"

namespace likeness::dist {
namespace {

TEST(MpiCollectivesTest, AllReduceSumAvgMaxOverDtypes) {
  LIKENESS_REQUIRE_MPI_RANKS(comm);
  const int r = comm->rank();
  const int n = comm->size();
  for (const torch::ScalarType type : {torch::kFloat, torch::kDouble, torch::kBFloat16}) {
    std::vector<torch::Tensor> t = {torch::full({3, 2}, r + 1.0, type), torch::full({5}, 2.0 * r, type)};
    ASSERT_TRUE(comm->AllReduce(t, ReduceOp::kSum).ok());
    EXPECT_EQ(t[0][0][0].item<double>(), n * (n + 1) / 2.0);
    EXPECT_EQ(t[1][4].item<double>(), n * (n - 1.0));
    EXPECT_EQ(t[0].scalar_type(), type);
    t = {torch::full({4}, r + 1.0, type)};
    ASSERT_TRUE(comm->AllReduce(t, ReduceOp::kAvg).ok());
    EXPECT_EQ(t[0][3].item<double>(), (n + 1) / 2.0);
    t = {torch::full({4}, static_cast<double>(r), type)};
    ASSERT_TRUE(comm->AllReduce(t, ReduceOp::kMax).ok());
    EXPECT_EQ(t[0][0].item<double>(), n - 1.0);
  }
}

TEST(MpiCollectivesTest, BroadcastAllGatherBarrier) {
  LIKENESS_REQUIRE_MPI_RANKS(comm);
  const int r = comm->rank();
  std::vector<torch::Tensor> t = {torch::full({7, 3}, r * 10.0f), torch::full({2}, int64_t{r}),
                                  torch::full({5}, r * 1.5, torch::kBFloat16)};
  const absl::Status broadcast = comm->Broadcast(t, /*root=*/1);
  ASSERT_TRUE(broadcast.ok()) << broadcast;
  EXPECT_EQ(t[0][6][2].item<float>(), 10.0f);
  EXPECT_EQ(t[1][1].item<int64_t>(), 1);
  EXPECT_EQ(t[2][4].item<float>(), 1.5f);
  absl::StatusOr<std::vector<int64_t>> all = comm->AllGather(100 + r);
  ASSERT_TRUE(all.ok()) << all.status();
  for (int k = 0; k < comm->size(); ++k) EXPECT_EQ((*all)[k], 100 + k);
  EXPECT_TRUE(comm->Barrier().ok());
}

// The reducer's averaged gradients equal the plain all-reduce of the same gradients, to the
// bit, whatever the bucket size.
TEST(MpiCollectivesTest, BucketedReducerEqualsThePlainAverage) {
  LIKENESS_REQUIRE_MPI_RANKS(comm);
  for (const int64_t bucket_bytes : {int64_t{64}, int64_t{1000}, int64_t{1} << 20}) {
    torch::manual_seed(comm->rank() == 0 ? 11 : 12);  // different weights per rank
    std::vector<torch::nn::Linear> layers;
    std::vector<torch::Tensor> params;
    for (int i = 0; i < 3; ++i) {
      layers.push_back(torch::nn::Linear(16, 16));
      params.push_back(layers.back()->weight);
      params.push_back(layers.back()->bias);
    }
    BucketedGradientReducer reducer(comm, BucketedReducerOptions{bucket_bytes});
    ASSERT_TRUE(reducer.SyncParameters(params, 0).ok());  // now rank 0's weights everywhere
    torch::Tensor h = torch::randn({4, 16});              // per-rank data
    reducer.PrepareBackward(true);
    for (auto& l : layers) h = torch::tanh(l->forward(h));
    h.pow(2).sum().backward();
    std::vector<torch::Tensor> grads, plain;
    for (const auto& p : params) {
      grads.push_back(p.grad());
      plain.push_back(p.grad().clone());
    }
    ASSERT_TRUE(reducer.ReduceGradients(grads).ok());
    EXPECT_EQ(reducer.buckets_started_by_hooks(), static_cast<int>(reducer.buckets().size()));
    ASSERT_TRUE(comm->AllReduce(plain, ReduceOp::kAvg).ok());
    for (size_t i = 0; i < grads.size(); ++i) {
      EXPECT_TRUE(torch::equal(grads[i], plain[i])) << "tensor " << i << " bucket " << bucket_bytes;
    }
    // Parameters were broadcast: every rank holds rank 0's.
    std::vector<torch::Tensor> check = {params[0].detach().clone()};
    ASSERT_TRUE(comm->Broadcast(check, 0).ok());
    EXPECT_TRUE(torch::equal(check[0], params[0].detach()));
  }
}

TEST(MpiCollectivesTest, AgreementsFollowAnyRankAndRankZero) {
  LIKENESS_REQUIRE_MPI_RANKS(comm);
  BucketedGradientReducer reducer(comm);
  const bool last = comm->rank() == comm->size() - 1;
  EXPECT_TRUE(*reducer.AnyNonFinite(last));
  EXPECT_FALSE(*reducer.AnyNonFinite(false));
  EXPECT_TRUE(*reducer.AnyRank(last));
  // (0 + 1 + ... + n-1) / n
  EXPECT_EQ(*reducer.AverageScalar(comm->rank()), (comm->size() - 1) / 2.0);
  const absl::Status verdict = reducer.ShareRankZeroStatus(
      comm->rank() == 0 ? absl::ResourceExhaustedError("disk full") : absl::OkStatus());
  EXPECT_EQ(verdict.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(reducer.ShareRankZeroStatus(absl::OkStatus()).ok());
}

TEST(MpiCollectivesTest, RanksAtDifferentStepsAreRefused) {
  LIKENESS_REQUIRE_MPI_RANKS(comm);
  BucketedGradientReducer reducer(comm);
  std::vector<torch::Tensor> params = {torch::zeros({4}, torch::requires_grad())};
  const absl::Status s = reducer.SyncParameters(params, comm->rank() == 0 ? 5 : 6);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("different checkpoints"), std::string::npos) << s;
}

}  // namespace
}  // namespace likeness::dist
