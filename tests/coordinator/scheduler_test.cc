// The scheduler (pure): fit, priority, FIFO, backfill and multi-node gangs.
#include "coordinator/scheduler.h"

#include "gtest/gtest.h"

namespace likeness::coordinator {
namespace {

v1::Job QueuedJob(const std::string& id, int priority, int64_t sequence,
                  const v1::ResourceRequest& request = {}) {
  v1::Job job;
  job.set_id(id);
  job.set_priority(priority);
  job.set_sequence(sequence);
  *job.mutable_spec()->mutable_resources() = request;
  return job;
}

v1::WorkerInfo Node(int gpus, const std::string& model = "NVIDIA H100 80GB HBM3",
                    int64_t memory = int64_t{80} << 30) {
  v1::WorkerInfo info;
  info.set_hostname("node");
  info.set_gpu_count(gpus);
  info.set_gpu_model(model);
  info.set_gpu_memory_bytes(memory);
  return info;
}

class SchedulerTest : public ::testing::Test {
 protected:
  void Add(const v1::Job& job) {
    jobs_[job.id()] = job;
    scheduler_.Enqueue(job);
  }
  std::optional<Assignment> Pick(const std::string& worker, const v1::WorkerInfo& info, int free) {
    return scheduler_.Pick(WorkerView{worker, info, free},
                           [this](const std::string& id) -> const v1::ResourceRequest& {
                             return jobs_.at(id).spec().resources();
                           });
  }
  std::map<std::string, v1::Job> jobs_;
  Scheduler scheduler_;
};

TEST(FitTest, DevicesModelMemoryAndGpuRequirement) {
  v1::ResourceRequest one;
  EXPECT_TRUE(Fits(one, Node(8), 1));
  EXPECT_FALSE(Fits(one, Node(8), 0));
  v1::ResourceRequest four;
  four.set_devices(4);
  EXPECT_FALSE(Fits(four, Node(8), 3));
  EXPECT_FALSE(Fits(four, Node(2), 2));
  v1::ResourceRequest whole;
  whole.set_whole_node(true);
  EXPECT_TRUE(Fits(whole, Node(8), 8));
  EXPECT_FALSE(Fits(whole, Node(8), 7));
  EXPECT_EQ(DevicesNeeded(whole, Node(8)), 8);
  v1::ResourceRequest model;
  model.set_gpu_model("h100");
  EXPECT_TRUE(Fits(model, Node(1), 1));
  EXPECT_FALSE(Fits(model, Node(1, "NVIDIA A100-SXM4-80GB"), 1));
  v1::ResourceRequest memory;
  memory.set_min_device_memory_bytes(int64_t{40} << 30);
  EXPECT_FALSE(Fits(memory, Node(1, "x", int64_t{24} << 30), 1));
  v1::ResourceRequest gpu;
  gpu.set_require_gpu(true);
  v1::WorkerInfo cpu;
  cpu.set_cpu_slots(2);
  EXPECT_FALSE(Fits(gpu, cpu, 2));
  EXPECT_TRUE(Fits(one, cpu, 2));  // CPU slots stand in for devices
  EXPECT_EQ(TotalDevices(cpu), 2);
  EXPECT_EQ(TotalDevices(v1::WorkerInfo()), 1);
}

TEST_F(SchedulerTest, HigherPriorityFirstThenFifo) {
  Add(QueuedJob("a", 0, 1));
  Add(QueuedJob("b", 5, 3));
  Add(QueuedJob("c", 5, 2));
  Add(QueuedJob("d", 0, 0));
  std::vector<std::string> order;
  while (auto assignment = Pick("w", Node(1), 1)) {
    order.push_back(assignment->job_id);
    scheduler_.Remove(assignment->job_id);
  }
  EXPECT_EQ(order, (std::vector<std::string>{"c", "b", "d", "a"}));
}

TEST_F(SchedulerTest, BackfillsWhatFitsWhenTheHeadDoesNot) {
  v1::ResourceRequest whole;
  whole.set_whole_node(true);
  Add(QueuedJob("big", 0, 1, whole));
  Add(QueuedJob("small", 0, 2));
  auto assignment = Pick("w", Node(8), 3);  // 5 of 8 GPUs busy
  ASSERT_TRUE(assignment);
  EXPECT_EQ(assignment->job_id, "small");
  assignment = Pick("w2", Node(8), 8);
  ASSERT_TRUE(assignment);
  EXPECT_EQ(assignment->job_id, "big");
}

TEST_F(SchedulerTest, MultiNodeJobsGatherAGangThenLeaseToAll) {
  v1::ResourceRequest two_nodes;
  two_nodes.set_nodes(2);
  Add(QueuedJob("gang", 1, 1, two_nodes));
  Add(QueuedJob("small", 0, 2));
  EXPECT_FALSE(Pick("w1", Node(8), 8));  // reserved, waits
  EXPECT_EQ(scheduler_.ReservedFor("w1"), "gang");
  EXPECT_FALSE(Pick("w1", Node(8), 8));  // still waiting, takes nothing else
  auto busy = Pick("w3", Node(8), 4);    // a busy node backfills
  ASSERT_TRUE(busy);
  EXPECT_EQ(busy->job_id, "small");
  auto assignment = Pick("w2", Node(8), 8);
  ASSERT_TRUE(assignment);
  EXPECT_EQ(assignment->job_id, "gang");
  EXPECT_EQ(assignment->workers, (std::vector<std::string>{"w1", "w2"}));
  EXPECT_EQ(scheduler_.ReservedFor("w1"), "");
}

TEST_F(SchedulerTest, ALostGangMemberIsReleased) {
  v1::ResourceRequest two_nodes;
  two_nodes.set_nodes(2);
  Add(QueuedJob("gang", 0, 1, two_nodes));
  EXPECT_FALSE(Pick("w1", Node(8), 8));
  scheduler_.ReleaseWorker("w1");
  EXPECT_FALSE(Pick("w2", Node(8), 8));
  EXPECT_EQ(scheduler_.ReservedFor("w1"), "");
  EXPECT_EQ(scheduler_.ReservedFor("w2"), "gang");
  scheduler_.Remove("gang");  // cancelled: its reservations go too
  EXPECT_EQ(scheduler_.ReservedFor("w2"), "");
}

}  // namespace
}  // namespace likeness::coordinator
