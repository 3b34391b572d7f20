// Data-parallel training on 2 ranks (ctest: mpirun -np 2) on the tiny golden SDXL bundle.
//
// Equivalence: 2 ranks with batch B and accumulation A run the same global batch as one
// process with batch B and accumulation 2A: rank r runs micro-batches r*A .. r*A+A-1 and
// draws the noise of the others, the reducer averages. Sums of two and halvings are exact in
// float32, so the parameters agree to the bit in practice; the stated tolerance is 1e-6
// relative (max |a - b| / max |b| per tensor).
#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/dist/mpi_test_util.h"
#include "tests/train/train_test_util.h"
#include "worker/dist/bucketed_reducer.h"
#include "worker/dist/requeue.h"
#include "worker/train/checkpoint.h"
#include "worker/train/trainer.h"

namespace likeness::train {
namespace {
namespace fs = std::filesystem;

constexpr double kRelativeTolerance = 1e-6;
// Small buckets, so the tiny models still spread over several of them.
constexpr int64_t kTestBucketBytes = 64 << 10;
constexpr int kSteps = 3;
const std::vector<std::pair<int, int>> kPhotoSizes = {{32, 32}, {48, 36}, {36, 48}, {40, 40}};

class DistTrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    comm_ = testing::TestCommunicator();
    if (comm_ == nullptr) GTEST_SKIP() << "needs mpirun -np 2 (ctest runs it so)";
    setenv("LIKENESS_HASH_CACHE", "off", 1);
    root_ = testing::SharedTestDir(
        *comm_, std::string("dist_") +
                    ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_FALSE(root_.empty());
    subject_ = root_ + "/subject";
    if (comm_->rank() == 0) testing::WriteSubjectFolder(subject_, kPhotoSizes, 1);
    ASSERT_TRUE(comm_->Barrier("subject written").ok());
  }

  TrainSettings Settings(v1::TrainMethod method, const std::string& out, int accumulation) {
    v1::TrainConfig c = testing::TinyTrainConfig(method, subject_, root_ + "/" + out);
    c.set_cache_dir(root_ + "/cache");
    c.set_steps(kSteps);
    c.set_gradient_accumulation_steps(accumulation);
    absl::StatusOr<TrainSettings> s = ResolveTrainConfig(c);
    EXPECT_TRUE(s.ok()) << s.status();
    return *s;
  }

  static std::vector<torch::Tensor> Copies(const std::vector<torch::Tensor>& tensors) {
    std::vector<torch::Tensor> out;
    for (const torch::Tensor& t : tensors) out.push_back(t.detach().clone());
    return out;
  }

  // Every rank trains `s` with the bucketed reducer; returns this rank's final tensors.
  std::vector<torch::Tensor> TrainOnAllRanks(const TrainSettings& s, TrainHooks hooks = {},
                                             int64_t* skipped = nullptr) {
    dist::BucketedGradientReducer reducer(comm_, dist::BucketedReducerOptions{kTestBucketBytes});
    hooks.reducer = &reducer;
    absl::StatusOr<std::unique_ptr<Trainer>> trainer = testing::MakeTinyTrainer(s, hooks);
    EXPECT_TRUE(trainer.ok()) << trainer.status();
    if (!trainer.ok()) return {};
    const absl::Status run = (*trainer)->Run();
    EXPECT_TRUE(run.ok()) << run;
    EXPECT_FALSE(reducer.buckets().empty());
    if (skipped != nullptr) *skipped = (*trainer)->skipped_steps();
    return Copies((*trainer)->params());
  }

  // Rank 0 alone trains `s` on one process (the others wait at a barrier).
  std::vector<torch::Tensor> TrainOnRankZero(const TrainSettings& s, TrainHooks hooks = {},
                                             int64_t* skipped = nullptr) {
    std::vector<torch::Tensor> out;
    if (comm_->rank() == 0) {
      absl::StatusOr<std::unique_ptr<Trainer>> trainer = testing::MakeTinyTrainer(s, hooks);
      EXPECT_TRUE(trainer.ok()) << trainer.status();
      if (trainer.ok()) {
        const absl::Status run = (*trainer)->Run();
        EXPECT_TRUE(run.ok()) << run;
        if (skipped != nullptr) *skipped = (*trainer)->skipped_steps();
        out = Copies((*trainer)->params());
      }
    }
    EXPECT_TRUE(comm_->Barrier("reference trained").ok());
    return out;
  }

  // Rank 0: `got` equals `want` within kRelativeTolerance. Every rank: equals rank 0's `got`.
  void ExpectSameParams(const std::vector<torch::Tensor>& got,
                        const std::vector<torch::Tensor>& want) {
    std::vector<torch::Tensor> from_zero = Copies(got);
    ASSERT_TRUE(comm_->Broadcast(from_zero, 0, "rank 0's result").ok());
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_TRUE(torch::equal(got[i], from_zero[i])) << "rank " << comm_->rank() << " tensor " << i;
    }
    if (comm_->rank() != 0) return;
    ASSERT_EQ(got.size(), want.size());
    double worst = 0.0;
    for (size_t i = 0; i < got.size(); ++i) {
      const double scale = want[i].abs().max().item<double>();
      const double error = (got[i] - want[i]).abs().max().item<double>();
      worst = std::max(worst, scale > 0 ? error / scale : error);
    }
    EXPECT_LE(worst, kRelativeTolerance);
    std::printf("max relative difference to one process: %.3g over %zu tensors\n", worst,
                got.size());
  }

  void ExpectEquivalence(v1::TrainMethod method) {
    const std::vector<torch::Tensor> dp = TrainOnAllRanks(Settings(method, "dp", 1));
    const std::vector<torch::Tensor> one = TrainOnRankZero(Settings(method, "one", 2));
    ExpectSameParams(dp, one);
  }

  dist::Communicator* comm_ = nullptr;
  std::string root_, subject_;
};

TEST_F(DistTrainerTest, LoraOnTwoRanksEqualsOneProcessWithTheSameGlobalBatch) {
  ExpectEquivalence(v1::TRAIN_METHOD_LORA);
}

TEST_F(DistTrainerTest, FullFineTuneOnTwoRanksEqualsOneProcessWithTheSameGlobalBatch) {
  ExpectEquivalence(v1::TRAIN_METHOD_DREAMBOOTH);
}

TEST_F(DistTrainerTest, TextualInversionOnTwoRanksEqualsOneProcessWithTheSameGlobalBatch) {
  ExpectEquivalence(v1::TRAIN_METHOD_TEXTUAL_INVERSION);
}

TEST_F(DistTrainerTest, NanOnOneRankMakesEveryRankSkipTheStep) {
  TrainHooks nan_on_last;
  if (comm_->rank() == comm_->size() - 1) nan_on_last.nan_loss_steps = {1};
  int64_t skipped = -1;
  const std::vector<torch::Tensor> dp =
      TrainOnAllRanks(Settings(v1::TRAIN_METHOD_LORA, "dp", 1), nan_on_last, &skipped);
  EXPECT_EQ(skipped, 1) << "rank " << comm_->rank();
  // One process with the NaN in the same step skips it too and ends at the same tensors.
  TrainHooks nan_hooks;
  nan_hooks.nan_loss_steps = {1};
  int64_t reference_skipped = -1;
  const std::vector<torch::Tensor> one =
      TrainOnRankZero(Settings(v1::TRAIN_METHOD_LORA, "one", 2), nan_hooks, &reference_skipped);
  if (comm_->rank() == 0) {
    EXPECT_EQ(reference_skipped, 1);
  }
  ExpectSameParams(dp, one);
}

TEST_F(DistTrainerTest, APreemptionSeenByOneRankStopsEveryRankAtTheSameCheckpoint) {
  const TrainSettings s = Settings(v1::TRAIN_METHOD_LORA, "run", 1);
  dist::BucketedGradientReducer reducer(comm_, dist::BucketedReducerOptions{kTestBucketBytes});
  TrainHooks hooks;
  hooks.reducer = &reducer;
  Trainer* raw = nullptr;
  // Only the last rank "receives SIGUSR1", after its first step.
  const bool signalled = comm_->rank() == comm_->size() - 1;
  hooks.stop_requested = [&] { return signalled && raw != nullptr && raw->step() >= 1; };
  absl::StatusOr<std::unique_ptr<Trainer>> trainer = testing::MakeTinyTrainer(s, hooks);
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  raw = trainer->get();
  const absl::Status run = (*trainer)->Run();
  EXPECT_EQ(run.code(), absl::StatusCode::kAborted) << run;
  EXPECT_TRUE(run.GetPayload(dist::kRequeuePayloadUrl).has_value());
  EXPECT_EQ((*trainer)->step(), 1);
  ASSERT_TRUE(comm_->Barrier("preempted").ok());
  absl::StatusOr<std::optional<CheckpointInfo>> latest = FindLatestCheckpoint(s.output_dir);
  ASSERT_TRUE(latest.ok() && latest->has_value());
  EXPECT_EQ((*latest)->step, 1);
}

TEST_F(DistTrainerTest, TwoRanksResumeAOneRankCheckpoint) {
  const TrainSettings s = Settings(v1::TRAIN_METHOD_LORA, "run", 1);
  // One process: one step, then a checkpoint (rank 0 alone, as a 1-rank job would).
  std::string checkpoint;
  std::vector<torch::Tensor> at_checkpoint;
  if (comm_->rank() == 0) {
    absl::StatusOr<std::unique_ptr<Trainer>> trainer = testing::MakeTinyTrainer(s);
    ASSERT_TRUE(trainer.ok()) << trainer.status();
    ASSERT_TRUE((*trainer)->Step().ok());
    absl::StatusOr<std::string> dir = (*trainer)->SaveCheckpoint();
    ASSERT_TRUE(dir.ok()) << dir.status();
    at_checkpoint = Copies((*trainer)->params());
  }
  ASSERT_TRUE(comm_->Barrier("1-rank checkpoint written").ok());
  // Two ranks resume it and finish the run.
  dist::BucketedGradientReducer reducer(comm_, dist::BucketedReducerOptions{kTestBucketBytes});
  TrainHooks hooks;
  hooks.reducer = &reducer;
  absl::StatusOr<std::unique_ptr<Trainer>> trainer = testing::MakeTinyTrainer(s, hooks);
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  absl::StatusOr<std::optional<CheckpointInfo>> latest = FindLatestCheckpoint(s.output_dir);
  ASSERT_TRUE(latest.ok() && latest->has_value());
  ASSERT_TRUE((*trainer)->Resume((*latest)->dir).ok());
  EXPECT_EQ((*trainer)->step(), 1);
  if (comm_->rank() == 0) {
    for (size_t i = 0; i < at_checkpoint.size(); ++i) {
      EXPECT_TRUE(torch::equal((*trainer)->params()[i], at_checkpoint[i]));
    }
  }
  const absl::Status run = (*trainer)->Run();
  ASSERT_TRUE(run.ok()) << run;
  EXPECT_EQ((*trainer)->step(), kSteps);
  ExpectSameParams(Copies((*trainer)->params()), Copies((*trainer)->params()));
  ASSERT_TRUE(comm_->Barrier("final checkpoint written").ok());
  // One batch for the 1-rank step, then two per 2-rank step.
  std::ifstream in(fs::path(s.output_dir) / CheckpointDirName(kSteps) / kStateJsonName);
  const nlohmann::json state = nlohmann::json::parse(in, nullptr, false);
  EXPECT_EQ(state.value("data_batches_consumed", -1), 1 + 2 * (kSteps - 1));
}

}  // namespace
}  // namespace likeness::train
