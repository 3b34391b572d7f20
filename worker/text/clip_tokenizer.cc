#include "worker/text/clip_tokenizer.h"

#include <algorithm>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/status_macros.h"
#include "unicode/utf8.h"
#include "worker/text/byte_encoder.h"
#include "worker/text/text_normalize.h"

namespace likeness::text {
namespace {

constexpr char kReplacementCharacterUtf8[] = "\xEF\xBF\xBD";

absl::StatusOr<int> SpecialId(const BpeVocab& vocab, const std::string& token) {
  auto it = vocab.ids.find(token);
  if (it == vocab.ids.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat(vocab.source, ": lacks the token '", token, "'"));
  }
  return it->second;
}

// Maps a token's text in the byte alphabet back to the bytes it stands for.
void AppendTokenBytes(const std::string& token, std::string& bytes) {
  const auto* data = reinterpret_cast<const uint8_t*>(token.data());
  const auto length = static_cast<int32_t>(token.size());
  int32_t i = 0;
  while (i < length) {
    UChar32 c;
    U8_NEXT(data, i, length, c);
    const int b = c < 0 ? -1 : CodePointToByte(static_cast<char32_t>(c));
    if (b < 0) {
      bytes += kReplacementCharacterUtf8;
    } else {
      bytes.push_back(static_cast<char>(b));
    }
  }
}

}  // namespace

absl::StatusOr<ClipTokenizer> ClipTokenizer::Load(const std::string& path) {
  LIKENESS_ASSIGN_OR_RETURN(BpeVocab vocab, LoadBpeVocab(path));
  return FromVocab(std::move(vocab));
}

absl::StatusOr<ClipTokenizer> ClipTokenizer::FromVocab(BpeVocab vocab) {
  LIKENESS_RETURN_IF_ERROR(CheckPreTokenizer());
  LIKENESS_ASSIGN_OR_RETURN(const int start, SpecialId(vocab, kStartOfTextToken));
  LIKENESS_ASSIGN_OR_RETURN(const int end, SpecialId(vocab, kEndOfTextToken));
  LIKENESS_ASSIGN_OR_RETURN(BpeMerger merger, BpeMerger::Create(vocab));
  return ClipTokenizer(std::move(vocab), std::move(merger), start, end);
}

std::vector<int> ClipTokenizer::Encode(std::string_view text) const {
  return EncodeUpTo(text, std::numeric_limits<size_t>::max());
}

std::vector<int> ClipTokenizer::EncodeUpTo(std::string_view text, size_t limit) const {
  std::vector<int> ids;
  for (const std::string& word : SplitForBpe(text)) {
    if (ids.size() >= limit) break;  // Words are encoded independently: the rest cannot matter.
    // CLIP seeds its BPE cache with the two specials, so written out they are one token each.
    if (word == kStartOfTextToken) {
      ids.push_back(start_of_text_);
    } else if (word == kEndOfTextToken) {
      ids.push_back(end_of_text_);
    } else {
      merger_.Encode(word, ids);
    }
  }
  if (ids.size() > limit) ids.resize(limit);
  return ids;
}

std::vector<int> ClipTokenizer::EncodeWithSpecials(std::string_view text) const {
  std::vector<int> ids = {start_of_text_};
  const std::vector<int> body = Encode(text);
  ids.insert(ids.end(), body.begin(), body.end());
  ids.push_back(end_of_text_);
  return ids;
}

std::vector<int> ClipTokenizer::EncodeTruncated(std::string_view text, int max_length) const {
  const size_t body_length = static_cast<size_t>(std::max(max_length, kMinLength) - kMinLength);
  const std::vector<int> body = EncodeUpTo(text, body_length);
  std::vector<int> ids = {start_of_text_};
  ids.insert(ids.end(), body.begin(), body.end());
  ids.push_back(end_of_text_);
  return ids;
}

std::vector<int> ClipTokenizer::Tokenize(std::string_view text, PadStyle pad,
                                         int max_length) const {
  std::vector<int> ids = EncodeTruncated(text, max_length);
  ids.resize(static_cast<size_t>(std::max(max_length, kMinLength)), pad_id(pad));
  return ids;
}

std::string ClipTokenizer::Decode(const std::vector<int>& ids) const {
  std::string bytes;
  for (int id : ids) {
    if (id < 0 || id >= vocab_size() || vocab_.tokens[id].empty()) {
      bytes += kReplacementCharacterUtf8;
    } else {
      AppendTokenBytes(vocab_.tokens[id], bytes);
    }
  }
  return absl::StrReplaceAll(SanitizeUtf8(bytes), {{kEndOfWordSuffix, " "}});
}

}  // namespace likeness::text
