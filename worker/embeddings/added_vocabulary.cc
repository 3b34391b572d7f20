#include "worker/embeddings/added_vocabulary.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "unicode/uchar.h"
#include "unicode/utf8.h"
#include "worker/text/bpe_vocab.h"
#include "worker/text/text_normalize.h"

namespace likeness::embeddings {
namespace {

// The characters a whole-word match must not touch: CLIP's pattern reads runs of letters
// (\p{L}) and digits (\p{N}) as words, so these are what would glue a name to its neighbour.
bool IsWordCharacter(UChar32 c) {
  return c >= 0 && (U_GET_GC_MASK(c) & (U_GC_L_MASK | U_GC_N_MASK)) != 0;
}

// absl::string_view is its own type in Debian's abseil; std::string_view has no starts_with
// before C++20.
bool HasPrefix(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

UChar32 FirstCodePoint(std::string_view s) {
  if (s.empty()) return -1;
  const auto* data = reinterpret_cast<const uint8_t*>(s.data());
  int32_t i = 0;
  UChar32 c;
  U8_NEXT(data, i, static_cast<int32_t>(s.size()), c);
  return c;
}

UChar32 LastCodePoint(std::string_view s) {
  if (s.empty()) return -1;
  const auto* data = reinterpret_cast<const uint8_t*>(s.data());
  auto i = static_cast<int32_t>(s.size());
  UChar32 c;
  U8_PREV(data, 0, i, c);
  return c;
}

// Byte length of the code point starting at `pos` (1 for a stray byte, so scanning advances).
size_t CodePointLength(std::string_view s, size_t pos) {
  const auto* data = reinterpret_cast<const uint8_t*>(s.data());
  auto i = static_cast<int32_t>(pos);
  U8_FWD_1(data, i, static_cast<int32_t>(s.size()));
  return std::max<size_t>(1, static_cast<size_t>(i) - pos);
}

}  // namespace

std::string NormalizeForClip(std::string_view text) {
  return text::PythonLower(text::WhitespaceClean(text::BasicClean(text::SanitizeUtf8(text))));
}

absl::Status AddedVocabulary::Add(std::string_view name, int num_vectors) {
  std::string key = NormalizeForClip(name);
  if (key.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("token name '", std::string(name), "' is empty after CLIP's text clean-up"));
  }
  if (key.find(text::kStartOfTextToken) != std::string::npos ||
      key.find(text::kEndOfTextToken) != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("token name '", std::string(name), "' holds a CLIP special token"));
  }
  if (num_vectors < 1 || num_vectors > kMaxVectorsPerToken) {
    return absl::InvalidArgumentError(absl::StrCat("token '", std::string(name), "': ", num_vectors,
                                                   " vectors; want 1 to ", kMaxVectorsPerToken));
  }
  if (const AddedToken* existing = Find(name); existing != nullptr) {
    return absl::AlreadyExistsError(absl::StrCat("token '", std::string(name),
                                                 "' is already added (as '", existing->name, "')"));
  }
  tokens_.push_back(
      AddedToken{std::string(name), std::move(key), num_vectors, this->num_vectors()});
  return absl::OkStatus();
}

absl::Status AddedVocabulary::Remove(std::string_view name) {
  const int index = IndexOf(name);
  if (index < 0)
    return absl::NotFoundError(absl::StrCat("no added token '", std::string(name), "'"));
  tokens_.erase(tokens_.begin() + index);
  int first = 0;
  for (AddedToken& token : tokens_) {
    token.first_index = first;
    first += token.num_vectors;
  }
  return absl::OkStatus();
}

const AddedToken* AddedVocabulary::Find(std::string_view name) const {
  const int index = IndexOf(name);
  return index < 0 ? nullptr : &tokens_[index];
}

int AddedVocabulary::IndexOf(std::string_view name) const {
  const std::string key = NormalizeForClip(name);
  for (size_t i = 0; i < tokens_.size(); ++i) {
    if (tokens_[i].key == key) return static_cast<int>(i);
  }
  return -1;
}

int AddedVocabulary::num_vectors() const {
  int total = 0;
  for (const AddedToken& token : tokens_) total += token.num_vectors;
  return total;
}

std::vector<AddedTokenMatch> AddedVocabulary::FindIn(std::string_view normalized) const {
  std::vector<AddedTokenMatch> matches;
  if (tokens_.empty()) return matches;
  // Longest key first, so "ohwx man" wins over "ohwx" where both fit.
  std::vector<const AddedToken*> by_length;
  for (const AddedToken& token : tokens_) by_length.push_back(&token);
  std::stable_sort(
      by_length.begin(), by_length.end(),
      [](const AddedToken* a, const AddedToken* b) { return a->key.size() > b->key.size(); });

  const std::string_view specials[] = {text::kStartOfTextToken, text::kEndOfTextToken};
  size_t pos = 0;
  while (pos < normalized.size()) {
    const std::string_view rest = normalized.substr(pos);
    bool skipped_special = false;
    for (std::string_view special : specials) {
      if (HasPrefix(rest, special)) {
        pos += special.size();
        skipped_special = true;
        break;
      }
    }
    if (skipped_special) continue;

    const bool after_word = IsWordCharacter(LastCodePoint(normalized.substr(0, pos)));
    const AddedToken* found = nullptr;
    for (const AddedToken* token : by_length) {
      if (!HasPrefix(rest, token->key)) continue;
      if (after_word && IsWordCharacter(FirstCodePoint(token->key))) continue;
      const bool before_word = IsWordCharacter(FirstCodePoint(rest.substr(token->key.size())));
      if (before_word && IsWordCharacter(LastCodePoint(token->key))) continue;
      found = token;
      break;
    }
    if (found != nullptr) {
      matches.push_back(AddedTokenMatch{pos, pos + found->key.size(), found});
      pos += found->key.size();
    } else {
      pos += CodePointLength(normalized, pos);
    }
  }
  return matches;
}

}  // namespace likeness::embeddings
