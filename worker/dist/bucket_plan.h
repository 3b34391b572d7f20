// Which gradients share an all-reduce: the bucket plan of the data-parallel reducer. Pure
// arithmetic on sizes, torch-free, so it is unit-tested alone.
//
// The plan (identical on every rank because it depends only on the tensors' sizes, dtypes,
// devices and order, which the settings fix):
//   1. tensors are taken in reverse of registration order (the optimizer's AllParams order):
//      backward produces the gradients of the last layers first, so the first bucket fills
//      first (PyTorch DDP's heuristic);
//   2. a bucket holds tensors of one dtype and device, packed end to end (offsets in
//      elements);
//   3. a new bucket starts when the next tensor would take the bucket past bucket_bytes, or
//      changes dtype or device; a tensor larger than bucket_bytes gets a bucket of its own;
//   4. buckets are numbered in that order, and every rank launches them in that order (a
//      bucket is launched only after all lower-numbered ones), so the collectives match.
#ifndef LIKENESS_WORKER_DIST_BUCKET_PLAN_H_
#define LIKENESS_WORKER_DIST_BUCKET_PLAN_H_

#include <cstdint>
#include <string>
#include <vector>

namespace likeness::dist {

// Default bucket capacity. Not yet tuned on a GPU: on the 2-core CPU machine the bandwidth and
// exposed-communication tables (benchmarks/results/2026-11-22-cpu-mpi-allreduce.md) were
// dominated by noise from other jobs and did not single out a size between 1 and 16 MiB.
// 4 MiB splits even a LoRA's gradients into several buckets, so the first all-reduce starts
// early in backward, while each message stays large enough for bandwidth, not latency, to
// dominate on NVLink and InfiniBand; PyTorch's 25 MB suits full fine-tunes better. Measure
// with `allreduce_benchmark -g -x -B ...` on the GPU machine and change it here. Override per
// job with kBucketBytesEnv.
inline constexpr int64_t kDefaultBucketBytes = int64_t{4} << 20;
inline constexpr char kBucketBytesEnv[] = "LIKENESS_BUCKET_BYTES";

struct TensorSlot {
  int64_t numel = 0;
  int64_t element_size = 4;
  int dtype = 0;        // any key equal for equal dtypes (the torch ScalarType)
  std::string device;   // "cpu", "cuda:0"
};

struct BucketSpec {
  std::vector<int> tensors;      // indices into the planned list, in bucket order
  std::vector<int64_t> offsets;  // element offset of each tensor in the flat bucket
  int64_t numel = 0;
  int dtype = 0;
  std::string device;
  int64_t bytes() const;
  int64_t element_size = 4;
};

std::vector<BucketSpec> PlanBuckets(const std::vector<TensorSlot>& tensors, int64_t bucket_bytes);

}  // namespace likeness::dist

#endif  // LIKENESS_WORKER_DIST_BUCKET_PLAN_H_
