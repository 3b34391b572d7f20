// Test helpers for the tokenizer: the reference cases file (DESIGN.md: every case in
// LIKENESS_TOKENIZER_CASES is checked), the shared vocabulary, and a diffusers-folder writer.
#ifndef LIKENESS_TESTS_TEXT_TOKENIZER_CASES_H_
#define LIKENESS_TESTS_TEXT_TOKENIZER_CASES_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "worker/text/bpe_vocab.h"
#include "worker/text/clip_tokenizer.h"

namespace likeness::testing {

struct TokenizerCase {
  std::string text;
  std::vector<int> with_specials;           // Required.
  std::optional<std::vector<int>> bpe_ids;  // Checked when present.
  std::optional<std::string> decoded;       // Decode(bpe_ids); checked when present.
};

struct TokenizerCases {
  std::string source;
  std::optional<int> start_of_text;
  std::optional<int> end_of_text;
  std::optional<int> vocab_size;
  std::vector<TokenizerCase> cases;
};

// Parses the JSON cases file; errors name the file and what is wrong with which case.
absl::StatusOr<TokenizerCases> LoadTokenizerCases(const std::string& path);

// The tokenizer for BpeVocabPath(), loaded once per test binary.
const absl::StatusOr<text::ClipTokenizer>& SharedTokenizer();

// Writes `vocab` as a diffusers tokenizer folder: vocab.json and merges.txt with its header.
absl::Status WriteDiffusersTokenizerFolder(const text::BpeVocab& vocab, const std::string& folder);

// "[1, 2, 3]" for failure messages.
std::string IdsToString(const std::vector<int>& ids);

}  // namespace likeness::testing

#endif  // LIKENESS_TESTS_TEXT_TOKENIZER_CASES_H_
