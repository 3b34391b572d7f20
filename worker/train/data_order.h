// The order in which training examples are seen: a pure function of the seed, so any position
// can be recomputed exactly (resume) and every data-parallel rank derives the same order
// without talking.
//
// Epoch e (0-based), for the instance images:
//   1. a Fisher-Yates permutation of the examples from SplitMix64(seed, e, kPermutationSalt);
//   2. per example, a horizontal flip bit from the same stream (all false without random_flip);
//   3. per bucket, in bucket order, its examples in permutation order cut into batches of
//      batch_size (a bucket's last batch may be smaller: every photo is seen once per epoch);
//   4. the batches themselves shuffled by the same stream.
// Batch b of the run is batch b % n of epoch b / n (n batches per epoch). The trainer consumes
// gradient_accumulation_steps batches per optimizer step, skipped steps included, so the data
// position of step s is s * gradient_accumulation_steps.
//
// Class images (prior preservation) come as one endless sequence: class example k is element
// k % M of epoch k / M's permutation (its own salt). Own arithmetic, no std:: distributions
// (whose results are implementation-defined), so the order is the same on every platform.
#ifndef LIKENESS_WORKER_TRAIN_DATA_ORDER_H_
#define LIKENESS_WORKER_TRAIN_DATA_ORDER_H_

#include <cstdint>
#include <vector>

namespace likeness::train {

// SplitMix64 (Steele et al.): tiny, well mixed, and fully specified.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next();
  // Uniform in [0, n) by rejection (no modulo bias).
  uint64_t Below(uint64_t n);

 private:
  uint64_t state_;
};

// Seeds for separate streams of one run.
inline constexpr uint64_t kPermutationSalt = 0x6c696b656e657373ULL;  // "likeness"
inline constexpr uint64_t kClassSalt = 0x636c617373696d67ULL;        // "classimg"
uint64_t StreamSeed(uint64_t seed, uint64_t epoch, uint64_t salt);

struct BatchRef {
  int bucket = 0;
  std::vector<int> examples;  // indices into the instance images
  std::vector<bool> flips;    // parallel to examples
};

class DataOrder {
 public:
  // example_buckets[i]: the bucket of instance example i; num_buckets > every entry.
  DataOrder(std::vector<int> example_buckets, int num_buckets, int batch_size, uint64_t seed,
            bool random_flip);

  int64_t batches_per_epoch() const { return batches_per_epoch_; }
  // Batch `index` of the run (0-based, over all epochs). Not thread-safe (caches one epoch).
  const BatchRef& Batch(int64_t index) const;
  // Every batch of epoch `epoch` (steps 1-4).
  std::vector<BatchRef> Epoch(int64_t epoch) const;

 private:
  std::vector<int> example_buckets_;
  int num_buckets_;
  int batch_size_;
  uint64_t seed_;
  bool random_flip_;
  int64_t batches_per_epoch_ = 0;
  mutable int64_t cached_epoch_ = -1;
  mutable std::vector<BatchRef> cached_;
};

// Class example k of the endless class sequence over `count` images.
int ClassExample(int64_t k, int count, uint64_t seed);

}  // namespace likeness::train

#endif  // LIKENESS_WORKER_TRAIN_DATA_ORDER_H_
