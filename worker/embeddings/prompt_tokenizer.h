// A ClipTokenizer that also knows the tokens textual inversion added (added_vocabulary.h).
//
// How a prompt becomes ids when an added token occurs in it:
//   1. The prompt is cleaned as CLIP cleans it (NormalizeForClip) and searched for the added
//      tokens' names (AddedVocabulary::FindIn: whole words, case-insensitive).
//   2. The text between matches is pre-tokenized and byte-pair encoded exactly as
//      ClipTokenizer::Encode does (same pattern, same merges, the specials written out become
//      their ids).
//   3. Each match becomes its token's ids, one per vector: an embedding of n vectors expands
//      to n consecutive ids, as AUTOMATIC1111 and diffusers' load_textual_inversion
//      ("tok", "tok_1", ... "tok_{n-1}") expand it.
//   4. <|startoftext|> + the first max_length - 2 ids + <|endoftext|>, padded to max_length as
//      ClipTokenizer::Tokenize pads. Truncation may cut a multi-vector token: its first vectors
//      stay, as in diffusers (AUTOMATIC1111 would move it whole to a second 77-token chunk,
//      which SDXL here does not use).
// When no added token occurs, every call is ClipTokenizer's own, so the ids are identical.
//
// Thread-safe for const calls, as ClipTokenizer, while the vocabulary is not being changed.
#ifndef LIKENESS_WORKER_EMBEDDINGS_PROMPT_TOKENIZER_H_
#define LIKENESS_WORKER_EMBEDDINGS_PROMPT_TOKENIZER_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/embeddings/added_vocabulary.h"
#include "worker/text/bpe_merger.h"
#include "worker/text/clip_tokenizer.h"

namespace likeness::embeddings {

class PromptTokenizer {
 public:
  // `added` is read live: tokens added to or removed from it later are seen by later calls.
  static absl::StatusOr<PromptTokenizer> Create(std::shared_ptr<const text::ClipTokenizer> base,
                                                std::shared_ptr<const AddedVocabulary> added);

  // Ids of `text`, no specials, no length limit; added tokens expanded (negative ids).
  std::vector<int> Encode(std::string_view text) const;
  // <|startoftext|> + at most max_length - 2 ids + <|endoftext|> (ClipTokenizer::EncodeTruncated).
  std::vector<int> EncodeTruncated(std::string_view text, int max_length = text::kMaxLength) const;
  // EncodeTruncated padded to exactly max_length ids (ClipTokenizer::Tokenize).
  std::vector<int> Tokenize(std::string_view text, text::PadStyle pad,
                            int max_length = text::kMaxLength) const;

  // Names of the added tokens that occur in `text`, in order of appearance, each once: what a
  // generation records (AUTOMATIC1111 writes them as "TI hashes").
  std::vector<std::string> AddedTokensIn(std::string_view text) const;

  const text::ClipTokenizer& base() const { return *base_; }
  const AddedVocabulary& added() const { return *added_; }

 private:
  PromptTokenizer(std::shared_ptr<const text::ClipTokenizer> base,
                  std::shared_ptr<const AddedVocabulary> added,
                  std::shared_ptr<const text::BpeMerger> merger)
      : base_(std::move(base)), added_(std::move(added)), merger_(std::move(merger)) {}

  // Steps 1-3 with at most `limit` ids. False, and `ids` untouched, when no added token occurs:
  // the caller then asks the base tokenizer.
  bool EncodeWithAddedTokens(std::string_view text, size_t limit, std::vector<int>& ids) const;

  std::shared_ptr<const text::ClipTokenizer> base_;
  std::shared_ptr<const AddedVocabulary> added_;
  // The base vocabulary's merges. ClipTokenizer::Encode cleans its input again, which is not
  // the identity on already-cleaned pieces (a piece edged by U+001C..U+001F loses it to the
  // strip, a piece reading "&amp;" after two unescapes would be unescaped a third time), so the
  // pieces are encoded word by word here. A ClipTokenizer::EncodeWords(words) would remove it.
  std::shared_ptr<const text::BpeMerger> merger_;
};

}  // namespace likeness::embeddings

#endif  // LIKENESS_WORKER_EMBEDDINGS_PROMPT_TOKENIZER_H_
