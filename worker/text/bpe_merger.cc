#include "worker/text/bpe_merger.h"

#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace likeness::text {

absl::StatusOr<BpeMerger> BpeMerger::Create(const BpeVocab& vocab) {
  BpeMerger merger;
  auto id_of = [&](const std::string& token) -> absl::StatusOr<int> {
    auto it = vocab.ids.find(token);
    if (it == vocab.ids.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(vocab.source, ": lacks the token '", token, "'"));
    }
    return it->second;
  };
  for (int b = 0; b < kByteCount; ++b) {
    absl::StatusOr<int> id = id_of(ByteToUtf8(b));
    absl::StatusOr<int> end_id = id_of(ByteToUtf8(b) + kEndOfWordSuffix);
    if (!id.ok()) return id.status();
    if (!end_id.ok()) return end_id.status();
    merger.byte_ids_[b] = *id;
    merger.byte_end_of_word_ids_[b] = *end_id;
  }
  merger.merges_.reserve(vocab.merges.size());
  for (size_t rank = 0; rank < vocab.merges.size(); ++rank) {
    const auto& [first, second] = vocab.merges[rank];
    auto first_it = vocab.ids.find(first);
    auto second_it = vocab.ids.find(second);
    // A merge of a symbol that is not a token can never apply: symbols are always tokens.
    if (first_it == vocab.ids.end() || second_it == vocab.ids.end()) continue;
    absl::StatusOr<int> merged_id = id_of(first + second);
    if (!merged_id.ok()) return merged_id.status();
    // A repeated pair keeps its later rank, as Python's dict(zip(merges, ranks)) does.
    merger.merges_[PairKey(first_it->second, second_it->second)] = {static_cast<int>(rank),
                                                                    *merged_id};
  }
  return merger;
}

std::vector<int> BpeMerger::MergeWord(std::string_view word) const {
  std::vector<int> symbols;
  symbols.reserve(word.size());
  for (size_t i = 0; i < word.size(); ++i) {
    const auto b = static_cast<uint8_t>(word[i]);
    symbols.push_back(i + 1 == word.size() ? byte_end_of_word_ids_[b] : byte_ids_[b]);
  }
  std::vector<int> merged;
  merged.reserve(symbols.size());
  while (symbols.size() > 1) {
    // The adjacent pair with the best rank; every occurrence of it merges in this round.
    const MergeRule* best = nullptr;
    int best_first = 0;
    int best_second = 0;
    for (size_t i = 0; i + 1 < symbols.size(); ++i) {
      auto it = merges_.find(PairKey(symbols[i], symbols[i + 1]));
      if (it != merges_.end() && (best == nullptr || it->second.rank < best->rank)) {
        best = &it->second;
        best_first = symbols[i];
        best_second = symbols[i + 1];
      }
    }
    if (best == nullptr) break;
    merged.clear();
    for (size_t i = 0; i < symbols.size(); ++i) {
      if (i + 1 < symbols.size() && symbols[i] == best_first && symbols[i + 1] == best_second) {
        merged.push_back(best->merged_id);
        ++i;
      } else {
        merged.push_back(symbols[i]);
      }
    }
    symbols.swap(merged);
  }
  return symbols;
}

void BpeMerger::Encode(std::string_view word, std::vector<int>& ids) const {
  if (word.empty()) return;  // The pre-tokenizer never yields one; CLIP would fail on it.
  {
    std::lock_guard<std::mutex> lock(cache_->mutex);
    auto it = cache_->words.find(std::string(word));
    if (it != cache_->words.end()) {
      ids.insert(ids.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  // Merging runs unlocked so threads only contend on lookups; two threads may both merge a new
  // word, which costs time, never correctness.
  std::vector<int> word_ids = MergeWord(word);
  ids.insert(ids.end(), word_ids.begin(), word_ids.end());
  std::lock_guard<std::mutex> lock(cache_->mutex);
  if (cache_->words.size() >= kBpeCacheMaxWords) cache_->words.clear();
  cache_->words.emplace(std::string(word), std::move(word_ids));
}

}  // namespace likeness::text
