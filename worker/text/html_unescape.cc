#include "worker/text/html_unescape.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/utf8.h"

namespace likeness::text {
namespace {

struct NamedEntity {
  std::string_view name;   // With its ';' when the standard requires one.
  std::string_view value;  // UTF-8.
};

struct RemappedCharref {
  char32_t number;
  char32_t replacement;
};

#include "worker/text/html_entities.inc"

// Python's charref pattern: &(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?).
// The 32 counts code points, not bytes.
constexpr int kMaxNamedReferenceCodePoints = 32;
constexpr char32_t kReplacementCharacter = 0xFFFD;
constexpr char32_t kMaxCodePoint = 0x10FFFF;
// Saturation value while parsing digits: anything past it is already out of Unicode's range.
constexpr uint64_t kNumberCap = 0x110000;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}


// Length in bytes of the UTF-8 sequence that starts with `lead` (input is valid UTF-8).
size_t Utf8Length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  return 4;
}

// Python's _replace_charref for a numeric reference whose value saturates at kNumberCap.
void AppendNumericReference(uint64_t number, std::string& out) {
  const auto* remapped = std::find_if(std::begin(kRemappedCharrefs), std::end(kRemappedCharrefs),
                                      [&](const RemappedCharref& r) { return r.number == number; });
  if (remapped != std::end(kRemappedCharrefs)) {
    AppendUtf8(remapped->replacement, out);
    return;
  }
  if ((number >= 0xD800 && number <= 0xDFFF) || number > kMaxCodePoint) {
    AppendUtf8(kReplacementCharacter, out);
    return;
  }
  const auto c = static_cast<char32_t>(number);
  if (std::binary_search(std::begin(kDroppedCodepoints), std::end(kDroppedCodepoints), c)) return;
  AppendUtf8(c, out);
}

// Parses a numeric reference at text[pos] == '#'. Returns the bytes consumed after the '&', or
// 0 when the text is not one (then '&' is literal: the named branch excludes '#').
size_t ParseNumericReference(std::string_view text, size_t pos, std::string& out) {
  size_t i = pos + 1;
  const bool hex = i < text.size() && (text[i] == 'x' || text[i] == 'X');
  if (hex) ++i;
  const size_t digits_begin = i;
  uint64_t number = 0;
  while (i < text.size() && (hex ? HexValue(text[i]) >= 0 : IsDigit(text[i]))) {
    number = number * (hex ? 16 : 10) + (hex ? HexValue(text[i]) : text[i] - '0');
    number = std::min(number, kNumberCap);
    ++i;
  }
  if (i == digits_begin) return 0;
  if (i < text.size() && text[i] == ';') ++i;
  AppendNumericReference(number, out);
  return i - pos;
}

const NamedEntity* FindEntity(std::string_view name) {
  const auto* it =
      std::lower_bound(std::begin(kNamedEntities), std::end(kNamedEntities), name,
                       [](const NamedEntity& e, std::string_view n) { return e.name < n; });
  if (it != std::end(kNamedEntities) && it->name == name) return it;
  return nullptr;
}

bool EndsNamedReference(char c) {
  return c == '\t' || c == '\n' || c == '\f' || c == ' ' || c == '<' || c == '&' || c == '#' ||
         c == ';';
}

// Parses a named reference starting at text[pos] (just after '&'). Returns the bytes consumed,
// or 0 when nothing matches Python's pattern (the '&' is then literal).
size_t ParseNamedReference(std::string_view text, size_t pos, std::string& out) {
  size_t end = pos;
  int code_points = 0;
  while (end < text.size() && code_points < kMaxNamedReferenceCodePoints &&
         !EndsNamedReference(text[end])) {
    end += std::min(Utf8Length(static_cast<unsigned char>(text[end])), text.size() - end);
    ++code_points;
  }
  if (code_points == 0) return 0;
  if (end < text.size() && text[end] == ';') ++end;
  const std::string_view name = text.substr(pos, end - pos);
  if (const NamedEntity* entity = FindEntity(name)) {
    out.append(entity->value);
    return name.size();
  }
  // Python tries prefixes s[:x] for x = len(s)-1 down to 2 (in code points). Every entity name
  // is ASCII, so a byte prefix can only match where it is also a code-point prefix.
  for (size_t x = name.size() - 1; x >= 2 && x < name.size(); --x) {
    if (const NamedEntity* entity = FindEntity(name.substr(0, x))) {
      out.append(entity->value);
      out.append(name.substr(x));
      return name.size();
    }
  }
  out.push_back('&');
  out.append(name);
  return name.size();
}

}  // namespace

std::string HtmlUnescape(std::string_view text) {
  if (text.find('&') == std::string_view::npos) return std::string(text);
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const size_t amp = text.find('&', i);
    if (amp == std::string_view::npos) {
      out.append(text.substr(i));
      break;
    }
    out.append(text.substr(i, amp - i));
    const size_t after = amp + 1;
    size_t consumed = 0;
    if (after < text.size()) {
      consumed = text[after] == '#' ? ParseNumericReference(text, after, out)
                                    : ParseNamedReference(text, after, out);
    }
    if (consumed == 0) {
      out.push_back('&');
      i = after;
    } else {
      i = after + consumed;
    }
  }
  return out;
}

}  // namespace likeness::text
