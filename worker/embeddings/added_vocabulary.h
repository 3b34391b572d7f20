// The tokens textual inversion adds to SDXL's tokenizers: names, how many vectors each stands
// for, and where those vectors sit among the added embedding rows.
//
// Ids. The k-th added vector (counting over all tokens, in the order they were added) has the
// token id AddedVectorId(k) = -1 - k: added ids are NEGATIVE, not vocab_size + k as in
// diffusers. The reason is the pooled output: SDXL's text-encoder configs carry the legacy
// eos_token_id (2), so the encoders read their pooled output at argmax(ids), which must be the
// <|endoftext|> (49407, the largest base id). An id of vocab_size + k would win the argmax and
// move encoder 2's pooled embedding (SDXL's `text_embeds`) onto the added token: diffusers has
// that quirk; AUTOMATIC1111 (placeholder id 0) and ComfyUI (the end token looked up explicitly)
// do not, and they are where users take our embeddings. Negative ids keep the end token the
// largest id, so every SDXL code path pools where A1111 and ComfyUI pool. Only the
// AddedRowsAdapter (added_rows_adapter.h) reads them; a model without it fails loudly
// (torch::embedding rejects a negative index).
//
// Names are matched in prompts the way CLIP sees text: after its clean-up (HTML unescaped
// twice, whitespace collapsed, lower-cased), so "OhwX" in a prompt finds the token "ohwx", and
// as a whole word: where the name begins (ends) with a letter or number, the text before
// (after) it must not be one, so "ohwx" does not fire inside "ohwxs" or "2ohwx". A name that
// begins or ends with punctuation ("<cat-toy>") needs no boundary there, so "<cat-toy>," works.
// AUTOMATIC1111 names an embedding by its file stem and matches its BPE ids, which is the same
// case-insensitivity; diffusers matches added tokens as written.
//
// Not thread-safe for mutation: do not Add or Remove while another thread tokenizes.
#ifndef LIKENESS_WORKER_EMBEDDINGS_ADDED_VOCABULARY_H_
#define LIKENESS_WORKER_EMBEDDINGS_ADDED_VOCABULARY_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "worker/text/clip_tokenizer.h"

namespace likeness::embeddings {

// A token stands for at most this many vectors: more cannot fit between <|startoftext|> and
// <|endoftext|> in CLIP's 77 positions.
inline constexpr int kMaxVectorsPerToken = text::kMaxLength - text::kMinLength;

// Token id of added vector `index` (0-based over all added vectors), and back.
constexpr int AddedVectorId(int index) { return -1 - index; }
constexpr int AddedVectorIndex(int id) { return -1 - id; }
constexpr bool IsAddedVectorId(int id) { return id < 0; }

// CLIP's text clean-up without pre-tokenization: SanitizeUtf8, BasicClean, WhitespaceClean,
// PythonLower (worker/text/text_normalize.h). Prompts and token names are compared in this form.
std::string NormalizeForClip(std::string_view text);

struct AddedToken {
  std::string name;     // As given: "OhwX", a file stem.
  std::string key;      // NormalizeForClip(name): what prompts are searched for.
  int num_vectors = 0;  // Ids it expands to, 1..kMaxVectorsPerToken.
  int first_index = 0;  // Its vectors are added vectors first_index ... + num_vectors - 1.
};

// One occurrence of an added token in normalized text: bytes [begin, end).
struct AddedTokenMatch {
  size_t begin = 0;
  size_t end = 0;
  const AddedToken* token = nullptr;
};

class AddedVocabulary {
 public:
  // Appends a token. INVALID_ARGUMENT for a name that is empty after clean-up or holds
  // <|startoftext|> / <|endoftext|>, or num_vectors outside 1..kMaxVectorsPerToken;
  // ALREADY_EXISTS when a token with the same key is present.
  absl::Status Add(std::string_view name, int num_vectors);

  // Removes the token whose key is NormalizeForClip(name); later tokens' vectors move down to
  // close the gap. NOT_FOUND when there is none.
  absl::Status Remove(std::string_view name);

  // The token whose key is NormalizeForClip(name), or nullptr.
  const AddedToken* Find(std::string_view name) const;
  // Position of that token in tokens(), or -1.
  int IndexOf(std::string_view name) const;

  const std::vector<AddedToken>& tokens() const { return tokens_; }
  bool empty() const { return tokens_.empty(); }
  // All added vectors: the number of added embedding rows.
  int num_vectors() const;

  // Occurrences in `normalized` (NormalizeForClip output), left to right, not overlapping; at
  // one position the longest key wins. Text inside a written "<|startoftext|>" or
  // "<|endoftext|>" is skipped: CLIP reads those as one special token each.
  std::vector<AddedTokenMatch> FindIn(std::string_view normalized) const;

 private:
  std::vector<AddedToken> tokens_;
};

}  // namespace likeness::embeddings

#endif  // LIKENESS_WORKER_EMBEDDINGS_ADDED_VOCABULARY_H_
