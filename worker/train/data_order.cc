#include "worker/train/data_order.h"

#include <numeric>
#include <utility>

namespace likeness::train {
namespace {

std::vector<int> Permutation(int n, SplitMix64& rng) {
  std::vector<int> p(n);
  std::iota(p.begin(), p.end(), 0);
  for (int i = n - 1; i > 0; --i) std::swap(p[i], p[rng.Below(static_cast<uint64_t>(i) + 1)]);
  return p;
}

}  // namespace

uint64_t SplitMix64::Next() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t SplitMix64::Below(uint64_t n) {
  // The largest multiple of n that fits; values above it would favour small results.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do {
    x = Next();
  } while (x >= limit);
  return x % n;
}

uint64_t StreamSeed(uint64_t seed, uint64_t epoch, uint64_t salt) {
  SplitMix64 mix(seed ^ salt);
  const uint64_t a = mix.Next();
  SplitMix64 mix2(a ^ (epoch * 0xd1342543de82ef95ULL));
  return mix2.Next();
}

DataOrder::DataOrder(std::vector<int> example_buckets, int num_buckets, int batch_size,
                     uint64_t seed, bool random_flip)
    : example_buckets_(std::move(example_buckets)),
      num_buckets_(num_buckets),
      batch_size_(batch_size),
      seed_(seed),
      random_flip_(random_flip) {
  std::vector<int> per_bucket(num_buckets_, 0);
  for (int b : example_buckets_) ++per_bucket[b];
  for (int count : per_bucket) batches_per_epoch_ += (count + batch_size_ - 1) / batch_size_;
}

std::vector<BatchRef> DataOrder::Epoch(int64_t epoch) const {
  SplitMix64 rng(StreamSeed(seed_, static_cast<uint64_t>(epoch), kPermutationSalt));
  const int n = static_cast<int>(example_buckets_.size());
  const std::vector<int> perm = Permutation(n, rng);
  std::vector<bool> flip(n, false);
  for (int i = 0; i < n; ++i) flip[i] = random_flip_ && (rng.Next() >> 63) != 0;
  std::vector<BatchRef> batches;
  for (int bucket = 0; bucket < num_buckets_; ++bucket) {
    BatchRef current;
    current.bucket = bucket;
    for (int example : perm) {
      if (example_buckets_[example] != bucket) continue;
      current.examples.push_back(example);
      current.flips.push_back(flip[example]);
      if (static_cast<int>(current.examples.size()) == batch_size_) {
        batches.push_back(std::move(current));
        current = BatchRef{};
        current.bucket = bucket;
      }
    }
    if (!current.examples.empty()) batches.push_back(std::move(current));
  }
  const std::vector<int> order = Permutation(static_cast<int>(batches.size()), rng);
  std::vector<BatchRef> shuffled;
  shuffled.reserve(batches.size());
  for (int i : order) shuffled.push_back(batches[i]);
  return shuffled;
}

const BatchRef& DataOrder::Batch(int64_t index) const {
  const int64_t epoch = index / batches_per_epoch_;
  if (epoch != cached_epoch_) {
    cached_ = Epoch(epoch);
    cached_epoch_ = epoch;
  }
  return cached_[index % batches_per_epoch_];
}

int ClassExample(int64_t k, int count, uint64_t seed) {
  SplitMix64 rng(StreamSeed(seed, static_cast<uint64_t>(k / count), kClassSalt));
  return Permutation(count, rng)[k % count];
}

}  // namespace likeness::train
