// Byte-pair encoding of one pre-tokenized word, exactly as CLIP's simple_tokenizer.bpe: the word
// becomes its byte symbols (the last one with "</w>"), then, repeatedly, every occurrence of
// the adjacent pair with the best merge rank is merged, left to right, until no pair has a rank.
#ifndef LIKENESS_WORKER_TEXT_BPE_MERGER_H_
#define LIKENESS_WORKER_TEXT_BPE_MERGER_H_

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/text/bpe_vocab.h"
#include "worker/text/byte_encoder.h"

namespace likeness::text {

// Words cached before the cache is dropped and refilled. CLIP's cache never forgets; a worker
// tokenizing for days must not grow without bound. Prompts reuse few words, so this is plenty.
inline constexpr size_t kBpeCacheMaxWords = 1 << 16;

class BpeMerger {
 public:
  // Resolves every symbol to its id once, so merging compares integers, not strings.
  static absl::StatusOr<BpeMerger> Create(const BpeVocab& vocab);

  // Appends the ids of `word` (raw UTF-8 bytes, not yet in the byte alphabet) to `ids`.
  // Safe to call from several threads at once.
  void Encode(std::string_view word, std::vector<int>& ids) const;

 private:
  struct MergeRule {
    int rank;
    int merged_id;
  };
  struct Cache {
    std::mutex mutex;
    std::unordered_map<std::string, std::vector<int>> words;
  };

  static uint64_t PairKey(int first, int second) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(first)) << 32) |
           static_cast<uint32_t>(second);
  }
  std::vector<int> MergeWord(std::string_view word) const;

  std::array<int, kByteCount> byte_ids_{};              // "a"
  std::array<int, kByteCount> byte_end_of_word_ids_{};  // "a</w>"
  std::unordered_map<uint64_t, MergeRule> merges_;      // (first id, second id) -> rule
  std::unique_ptr<Cache> cache_ = std::make_unique<Cache>();
};

}  // namespace likeness::text

#endif  // LIKENESS_WORKER_TEXT_BPE_MERGER_H_
