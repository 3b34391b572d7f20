#include "worker/dist/bucket_plan.h"

namespace likeness::dist {

int64_t BucketSpec::bytes() const { return numel * element_size; }

std::vector<BucketSpec> PlanBuckets(const std::vector<TensorSlot>& tensors, int64_t bucket_bytes) {
  std::vector<BucketSpec> buckets;
  for (int i = static_cast<int>(tensors.size()) - 1; i >= 0; --i) {
    const TensorSlot& t = tensors[i];
    const int64_t bytes = t.numel * t.element_size;
    const bool fits = !buckets.empty() && buckets.back().dtype == t.dtype &&
                      buckets.back().device == t.device &&
                      buckets.back().bytes() + bytes <= bucket_bytes;
    if (!fits) {
      BucketSpec bucket;
      bucket.dtype = t.dtype;
      bucket.device = t.device;
      bucket.element_size = t.element_size;
      buckets.push_back(std::move(bucket));
    }
    BucketSpec& bucket = buckets.back();
    bucket.tensors.push_back(i);
    bucket.offsets.push_back(bucket.numel);
    bucket.numel += t.numel;
  }
  return buckets;
}

}  // namespace likeness::dist
