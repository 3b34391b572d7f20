// The bucketed reducer on one process: hooks start every bucket during backward in the plan's
// order, accumulation micro-steps start nothing, frozen tensors' buckets start at the end,
// and a world of one leaves the gradients as they were.
#include "worker/dist/bucketed_reducer.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "worker/dist/single_process_communicator.h"

namespace likeness::dist {
namespace {

// Records the order in which buckets start.
class RecordingCommunicator : public SingleProcessCommunicator {
 public:
  absl::StatusOr<std::unique_ptr<Work>> StartAllReduce(torch::Tensor flat, ReduceOp op,
                                                       absl::string_view what) override {
    started.emplace_back(what);
    return SingleProcessCommunicator::StartAllReduce(flat, op, what);
  }
  std::vector<std::string> started;
};

struct Net {
  // Four layers of an 8x8 weight and 8 biases (256 B + 32 B): a 300 B cap puts each layer
  // in a bucket of its own.
  Net() {
    torch::manual_seed(0);
    for (int i = 0; i < 4; ++i) layers.push_back(torch::nn::Linear(8, 8));
  }
  std::vector<torch::Tensor> Params() {
    std::vector<torch::Tensor> out;
    for (auto& l : layers) {
      out.push_back(l->weight);
      out.push_back(l->bias);
    }
    return out;
  }
  torch::Tensor Loss(const torch::Tensor& x) {
    torch::Tensor h = x;
    for (auto& l : layers) h = torch::tanh(l->forward(h));
    return h.pow(2).sum();
  }
  std::vector<torch::nn::Linear> layers;
};

std::vector<torch::Tensor> Grads(const std::vector<torch::Tensor>& params) {
  std::vector<torch::Tensor> out;
  for (const auto& p : params) out.push_back(p.grad());
  return out;
}

TEST(BucketedReducerTest, HooksStartEveryBucketDuringBackwardInPlanOrder) {
  Net net;
  RecordingCommunicator comm;
  BucketedGradientReducer reducer(&comm, BucketedReducerOptions{300});
  ASSERT_TRUE(reducer.SyncParameters(net.Params(), 0).ok());
  ASSERT_EQ(reducer.buckets().size(), 4u);
  // Reverse registration: the last layer's bias and weight form bucket 0.
  EXPECT_EQ(reducer.buckets()[0].tensors, (std::vector<int>{7, 6}));
  reducer.PrepareBackward(true);
  net.Loss(torch::randn({3, 8})).backward();
  EXPECT_EQ(comm.started.size(), 4u);  // all started before ReduceGradients
  std::vector<torch::Tensor> grads = Grads(net.Params());
  std::vector<torch::Tensor> before;
  for (const auto& g : grads) before.push_back(g.clone());
  ASSERT_TRUE(reducer.ReduceGradients(grads).ok());
  EXPECT_EQ(reducer.buckets_started_by_hooks(), 4);
  EXPECT_EQ(comm.started,
            (std::vector<std::string>{"gradient bucket 0", "gradient bucket 1",
                                      "gradient bucket 2", "gradient bucket 3"}));
  for (size_t i = 0; i < grads.size(); ++i) EXPECT_TRUE(torch::equal(grads[i], before[i]));
}

TEST(BucketedReducerTest, AccumulationMicroStepsStartNothing) {
  Net net;
  RecordingCommunicator comm;
  BucketedGradientReducer reducer(&comm, BucketedReducerOptions{300});
  ASSERT_TRUE(reducer.SyncParameters(net.Params(), 0).ok());
  reducer.PrepareBackward(false);
  net.Loss(torch::randn({3, 8})).backward();
  EXPECT_TRUE(comm.started.empty());
  reducer.PrepareBackward(true);
  net.Loss(torch::randn({3, 8})).backward();
  EXPECT_EQ(comm.started.size(), 4u);
  std::vector<torch::Tensor> grads = Grads(net.Params());
  ASSERT_TRUE(reducer.ReduceGradients(grads).ok());
}

TEST(BucketedReducerTest, AFrozenTensorsBucketStartsInReduceGradientsAndStaysUndefined) {
  Net net;
  RecordingCommunicator comm;
  BucketedGradientReducer reducer(&comm, BucketedReducerOptions{300});
  ASSERT_TRUE(reducer.SyncParameters(net.Params(), 0).ok());
  net.layers[3]->bias.requires_grad_(false);  // in bucket 0, with layer 3's weight
  reducer.PrepareBackward(true);
  net.Loss(torch::randn({3, 8})).backward();
  // Bucket 0 is full (its frozen tensor is not counted): the hooks start everything.
  EXPECT_EQ(comm.started.size(), 4u);
  std::vector<torch::Tensor> grads = Grads(net.Params());
  EXPECT_FALSE(grads[7].defined());
  ASSERT_TRUE(reducer.ReduceGradients(grads).ok());
  EXPECT_FALSE(grads[7].defined());
}

TEST(BucketedReducerTest, AnUnusedTensorDelaysItsBucketAndTheLaterOnesUntilReduce) {
  Net net;
  RecordingCommunicator comm;
  BucketedGradientReducer reducer(&comm, BucketedReducerOptions{300});
  ASSERT_TRUE(reducer.SyncParameters(net.Params(), 0).ok());
  reducer.PrepareBackward(true);
  // Only layers 0..1 take part: buckets 0 and 1 (layers 3 and 2) never fill, so bucket 2 and 3
  // wait too (the order must hold on every rank).
  torch::Tensor h = torch::randn({3, 8});
  for (int i = 0; i < 2; ++i) h = torch::tanh(net.layers[i]->forward(h));
  h.pow(2).sum().backward();
  EXPECT_TRUE(comm.started.empty());
  std::vector<torch::Tensor> grads = Grads(net.Params());
  ASSERT_TRUE(reducer.ReduceGradients(grads).ok());
  EXPECT_EQ(comm.started.size(), 4u);
  EXPECT_EQ(reducer.buckets_started_by_hooks(), 0);
}

TEST(BucketedReducerTest, OneProcessAgreementsAreTheLocalValues) {
  Net net;
  SingleProcessCommunicator comm;
  BucketedGradientReducer reducer(&comm);
  ASSERT_TRUE(reducer.SyncParameters(net.Params(), 3).ok());
  EXPECT_EQ(reducer.world_size(), 1);
  EXPECT_TRUE(*reducer.AnyNonFinite(true));
  EXPECT_FALSE(*reducer.AnyRank(false));
  EXPECT_EQ(*reducer.AverageScalar(0.25), 0.25);
  EXPECT_TRUE(reducer.ShareRankZeroStatus(absl::OkStatus()).ok());
  EXPECT_EQ(reducer.ShareRankZeroStatus(absl::NotFoundError("x")).code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace likeness::dist
