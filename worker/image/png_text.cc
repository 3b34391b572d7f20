#include "worker/image/png_text.h"

#include <cstdint>

#include "absl/strings/str_cat.h"

namespace likeness::image::internal {
namespace {

constexpr uint32_t kMaxLatin1 = 0xFF;
constexpr uint32_t kMaxCodePoint = 0x10FFFF;
constexpr uint32_t kSurrogateFirst = 0xD800;
constexpr uint32_t kSurrogateLast = 0xDFFF;
constexpr uint32_t kLatin1NoBreakSpace = 0xA0;

// Decodes the code point at `*pos` and advances; false on malformed, overlong or surrogate
// sequences.
bool NextCodePoint(absl::string_view text, size_t* pos, uint32_t* code_point) {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(text[i]); };
  const uint8_t lead = byte(*pos);
  int extra = 0;
  uint32_t value = 0;
  uint32_t min_value = 0;
  if (lead < 0x80) {
    *code_point = lead;
    ++*pos;
    return true;
  }
  if ((lead & 0xE0) == 0xC0) {
    extra = 1;
    value = lead & 0x1F;
    min_value = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    extra = 2;
    value = lead & 0x0F;
    min_value = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    extra = 3;
    value = lead & 0x07;
    min_value = 0x10000;
  } else {
    return false;
  }
  if (*pos + extra >= text.size()) return false;
  for (int i = 1; i <= extra; ++i) {
    const uint8_t next = byte(*pos + i);
    if ((next & 0xC0) != 0x80) return false;
    value = (value << 6) | (next & 0x3F);
  }
  if (value < min_value || value > kMaxCodePoint ||
      (value >= kSurrogateFirst && value <= kSurrogateLast)) {
    return false;
  }
  *code_point = value;
  *pos += extra + 1;
  return true;
}

}  // namespace

std::string Latin1ToUtf8(absl::string_view latin1) {
  std::string utf8;
  utf8.reserve(latin1.size());
  for (const char c : latin1) {
    const uint8_t byte = static_cast<uint8_t>(c);
    if (byte < 0x80) {
      utf8.push_back(c);
    } else {
      utf8.push_back(static_cast<char>(0xC0 | (byte >> 6)));
      utf8.push_back(static_cast<char>(0x80 | (byte & 0x3F)));
    }
  }
  return utf8;
}

std::optional<std::string> Utf8ToLatin1(absl::string_view utf8) {
  std::string latin1;
  latin1.reserve(utf8.size());
  for (size_t pos = 0; pos < utf8.size();) {
    uint32_t code_point;
    if (!NextCodePoint(utf8, &pos, &code_point) || code_point > kMaxLatin1) return std::nullopt;
    latin1.push_back(static_cast<char>(code_point));
  }
  return latin1;
}

bool IsValidUtf8(absl::string_view text) {
  for (size_t pos = 0; pos < text.size();) {
    uint32_t code_point;
    if (!NextCodePoint(text, &pos, &code_point)) return false;
  }
  return true;
}

absl::Status CheckPngKeyword(absl::string_view keyword, std::string* latin1) {
  std::optional<std::string> bytes = Utf8ToLatin1(keyword);
  if (!bytes.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "PNG text keyword '", keyword, "' is not Latin-1 (keywords cannot hold other characters)"));
  }
  if (bytes->empty() || bytes->size() > kMaxPngKeywordBytes) {
    return absl::InvalidArgumentError(absl::StrCat("PNG text keyword '", keyword, "' must be 1-",
                                                   kMaxPngKeywordBytes, " characters long"));
  }
  char previous = '\0';
  for (size_t i = 0; i < bytes->size(); ++i) {
    const uint8_t c = static_cast<uint8_t>((*bytes)[i]);
    const bool printable = (c >= 0x20 && c <= 0x7E) || c > kLatin1NoBreakSpace;
    const bool bad_space = c == ' ' && (i == 0 || i + 1 == bytes->size() || previous == ' ');
    if (!printable || bad_space) {
      return absl::InvalidArgumentError(absl::StrCat(
          "PNG text keyword '", keyword,
          "' has a control character, a no-break space, or a leading, trailing or double space"));
    }
    previous = static_cast<char>(c);
  }
  *latin1 = *std::move(bytes);
  return absl::OkStatus();
}

}  // namespace likeness::image::internal
