// Loading CLIP's BPE vocabulary: OpenAI's merges file (bpe_simple_vocab_16e6.txt.gz) or a
// diffusers tokenizer folder (vocab.json + merges.txt, as in SDXL's tokenizer/ and tokenizer_2/).
#ifndef LIKENESS_WORKER_TEXT_BPE_VOCAB_H_
#define LIKENESS_WORKER_TEXT_BPE_VOCAB_H_

#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace likeness::text {

inline constexpr char kStartOfTextToken[] = "<|startoftext|>";
inline constexpr char kEndOfTextToken[] = "<|endoftext|>";
inline constexpr char kEndOfWordSuffix[] = "</w>";
inline constexpr char kVocabJsonName[] = "vocab.json";
inline constexpr char kMergesTxtName[] = "merges.txt";
// CLIP keeps the first 49152 - 256 - 2 merges (simple_tokenizer.py: merges[1:49152-256-2+1],
// after a version header line), so that with the 512 byte tokens and the two specials the
// vocabulary is 49408 ids. HF's CLIPTokenizer caps merges.txt the same way.
inline constexpr int kClipMergeCount = 49152 - 256 - 2;
// vocab.json ids at or above this are rejected rather than allocated for (CLIP has 49408;
// the largest BPE vocabularies in use are about 256k).
inline constexpr int kMaxVocabularyId = 1 << 20;

struct BpeVocab {
  std::string source;  // The file or folder it came from; errors and logs name it.
  // id -> token text in the byte alphabet ("photo</w>"); empty for ids vocab.json leaves unused.
  std::vector<std::string> tokens;
  // token text -> id. Where a text repeats, the later id wins, as Python's dict(zip(...)) does.
  std::unordered_map<std::string, int> ids;
  // The merges, best (lowest rank) first.
  std::vector<std::pair<std::string, std::string>> merges;
};

// Loads OpenAI's merges file, gzip-compressed or not (zlib reads plain text transparently). The
// ids are CLIP's: the 256 byte tokens in bytes_to_unicode order, the same with "</w>", each
// merge's result, then <|startoftext|> and <|endoftext|>.
absl::StatusOr<BpeVocab> LoadClipMergesFile(const std::string& path);

// Loads a diffusers/HF tokenizer folder: ids from vocab.json, merges from merges.txt (its
// "#version" header skipped). Every byte token, its "</w>" form, each merge's result and both
// special tokens must be in vocab.json, so that any text has an encoding.
absl::StatusOr<BpeVocab> LoadDiffusersTokenizerFolder(const std::string& folder);

// A folder -> LoadDiffusersTokenizerFolder, a file -> LoadClipMergesFile.
absl::StatusOr<BpeVocab> LoadBpeVocab(const std::string& path);

}  // namespace likeness::text

#endif  // LIKENESS_WORKER_TEXT_BPE_VOCAB_H_
