#include "worker/embeddings/prompt_tokenizer.h"

#include <algorithm>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "common/status_macros.h"
#include "worker/text/bpe_vocab.h"
#include "worker/text/text_normalize.h"

namespace likeness::embeddings {

absl::StatusOr<PromptTokenizer> PromptTokenizer::Create(
    std::shared_ptr<const text::ClipTokenizer> base, std::shared_ptr<const AddedVocabulary> added) {
  if (base == nullptr || added == nullptr) {
    return absl::InvalidArgumentError("PromptTokenizer needs a base tokenizer and a vocabulary");
  }
  LIKENESS_ASSIGN_OR_RETURN(text::BpeMerger merger, text::BpeMerger::Create(base->vocab()));
  auto shared_merger = std::make_shared<const text::BpeMerger>(std::move(merger));
  return PromptTokenizer(std::move(base), std::move(added), std::move(shared_merger));
}

bool PromptTokenizer::EncodeWithAddedTokens(std::string_view text, size_t limit,
                                            std::vector<int>& ids) const {
  if (added_->empty()) return false;
  const std::string normalized = NormalizeForClip(text);
  const std::vector<AddedTokenMatch> matches = added_->FindIn(normalized);
  if (matches.empty()) return false;

  std::vector<int> out;
  // As ClipTokenizer::EncodeUpTo: words are encoded independently, so once `limit` ids are
  // known the rest of the prompt cannot matter.
  const auto encode_piece = [&](std::string_view piece) {
    for (const std::string& word : text::PreTokenize(piece)) {
      if (out.size() >= limit) return;
      if (word == text::kStartOfTextToken) {
        out.push_back(base_->start_of_text());
      } else if (word == text::kEndOfTextToken) {
        out.push_back(base_->end_of_text());
      } else {
        merger_->Encode(word, out);
      }
    }
  };
  size_t pos = 0;
  for (const AddedTokenMatch& match : matches) {
    encode_piece(std::string_view(normalized).substr(pos, match.begin - pos));
    for (int j = 0; j < match.token->num_vectors && out.size() < limit; ++j) {
      out.push_back(AddedVectorId(match.token->first_index + j));
    }
    pos = match.end;
  }
  encode_piece(std::string_view(normalized).substr(pos));
  if (out.size() > limit) out.resize(limit);
  ids = std::move(out);
  return true;
}

std::vector<int> PromptTokenizer::Encode(std::string_view text) const {
  std::vector<int> ids;
  if (!EncodeWithAddedTokens(text, std::numeric_limits<size_t>::max(), ids)) {
    return base_->Encode(text);
  }
  return ids;
}

std::vector<int> PromptTokenizer::EncodeTruncated(std::string_view text, int max_length) const {
  const size_t body_length =
      static_cast<size_t>(std::max(max_length, text::kMinLength) - text::kMinLength);
  std::vector<int> body;
  if (!EncodeWithAddedTokens(text, body_length, body)) {
    return base_->EncodeTruncated(text, max_length);
  }
  std::vector<int> ids = {base_->start_of_text()};
  ids.insert(ids.end(), body.begin(), body.end());
  ids.push_back(base_->end_of_text());
  return ids;
}

std::vector<int> PromptTokenizer::Tokenize(std::string_view text, text::PadStyle pad,
                                           int max_length) const {
  std::vector<int> ids = EncodeTruncated(text, max_length);
  ids.resize(static_cast<size_t>(std::max(max_length, text::kMinLength)), base_->pad_id(pad));
  return ids;
}

std::vector<std::string> PromptTokenizer::AddedTokensIn(std::string_view text) const {
  std::vector<std::string> names;
  if (added_->empty()) return names;
  for (const AddedTokenMatch& match : added_->FindIn(NormalizeForClip(text))) {
    if (std::find(names.begin(), names.end(), match.token->name) == names.end()) {
      names.push_back(match.token->name);
    }
  }
  return names;
}

}  // namespace likeness::embeddings
