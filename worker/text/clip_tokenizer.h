// The CLIP BPE tokenizer both SDXL text encoders use (OpenAI CLIP simple_tokenizer.py, which
// HF's CLIPTokenizer matches). Text is cleaned (HTML unescaped twice, whitespace collapsed,
// lower-cased), split by CLIP's pattern, and each word byte-pair encoded.
//
//   auto tokenizer = ClipTokenizer::Load("bpe_simple_vocab_16e6.txt.gz");  // or a diffusers
//   std::vector<int> ids = tokenizer->Tokenize("a photo of sks dog", PadStyle::kZero);
//
// Thread-safe: every const method may run concurrently (the word cache has its own lock).
#ifndef LIKENESS_WORKER_TEXT_CLIP_TOKENIZER_H_
#define LIKENESS_WORKER_TEXT_CLIP_TOKENIZER_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/text/bpe_merger.h"
#include "worker/text/bpe_vocab.h"

namespace likeness::text {

// CLIP's context length: position embeddings exist for 77 tokens.
inline constexpr int kMaxLength = 77;
// The start and end tokens always fit, so no length below this makes sense.
inline constexpr int kMinLength = 2;
// Encoder 2 (OpenCLIP bigG) pads with '!', which is id 0 in CLIP's vocabulary.
inline constexpr int kZeroPadId = 0;

// How Tokenize fills the ids after <|endoftext|> up to max_length. SDXL's two tokenizers differ
// only here. Neither text encoder is given an attention mask: CLIP's causal mask keeps every
// real token from seeing the padding, and the pooled output is read at the first position of
// the largest id, which is the first <|endoftext|> under both styles (49407 is the largest id).
enum class PadStyle {
  kEndOfText,  // Encoder 1, CLIP ViT-L: pad with <|endoftext|>.
  kZero,       // Encoder 2, OpenCLIP ViT-bigG: pad with id 0 ('!').
};

class ClipTokenizer {
 public:
  // `path`: OpenAI's bpe_simple_vocab_16e6.txt.gz (or the same uncompressed), or a diffusers
  // tokenizer folder with vocab.json and merges.txt. Errors name the file (and line).
  static absl::StatusOr<ClipTokenizer> Load(const std::string& path);
  static absl::StatusOr<ClipTokenizer> FromVocab(BpeVocab vocab);

  // The BPE ids of `text`, no special tokens, no length limit. "<|startoftext|>" and
  // "<|endoftext|>" written in the text become their ids, as in CLIP.
  std::vector<int> Encode(std::string_view text) const;

  // <|startoftext|> + Encode(text) + <|endoftext|>, no length limit.
  std::vector<int> EncodeWithSpecials(std::string_view text) const;

  // As HF truncates: the first max_length - 2 BPE ids between the two specials, so the end
  // token is always last. max_length below kMinLength counts as kMinLength.
  std::vector<int> EncodeTruncated(std::string_view text, int max_length = kMaxLength) const;

  // EncodeTruncated padded to exactly max_length ids: what a text encoder takes.
  std::vector<int> Tokenize(std::string_view text, PadStyle pad, int max_length = kMaxLength) const;

  // Text of `ids` as CLIP decodes it: bytes joined, invalid UTF-8 as U+FFFD, each "</w>" a
  // space. Specials decode to their names; ids outside the vocabulary to U+FFFD.
  std::string Decode(const std::vector<int>& ids) const;

  int start_of_text() const { return start_of_text_; }
  int end_of_text() const { return end_of_text_; }
  int pad_id(PadStyle pad) const { return pad == PadStyle::kEndOfText ? end_of_text_ : kZeroPadId; }
  int vocab_size() const { return static_cast<int>(vocab_.tokens.size()); }
  const BpeVocab& vocab() const { return vocab_; }

 private:
  ClipTokenizer(BpeVocab vocab, BpeMerger merger, int start_of_text, int end_of_text)
      : vocab_(std::move(vocab)),
        merger_(std::move(merger)),
        start_of_text_(start_of_text),
        end_of_text_(end_of_text) {}

  // Encode, stopping once `limit` ids are known (a long prompt truncated to 77 ids need not be
  // byte-pair encoded to the end).
  std::vector<int> EncodeUpTo(std::string_view text, size_t limit) const;

  BpeVocab vocab_;
  BpeMerger merger_;
  int start_of_text_;
  int end_of_text_;
};

}  // namespace likeness::text

#endif  // LIKENESS_WORKER_TEXT_CLIP_TOKENIZER_H_
