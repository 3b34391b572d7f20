// UTF-8 encoding of one code point, shared by the tokenizer's HTML unescaping and the text
// renderer. Header-only: both libraries are torch-free and need nothing else from common/.
#ifndef LIKENESS_COMMON_UTF8_H_
#define LIKENESS_COMMON_UTF8_H_

#include <string>

namespace likeness {

inline constexpr char32_t kUtf8ReplacementCharacter = 0xFFFD;
inline constexpr char32_t kMaxUnicodeCodePoint = 0x10FFFF;

// Appends `c` as UTF-8; a surrogate or a value past U+10FFFF becomes U+FFFD.
inline void AppendUtf8(char32_t c, std::string& out) {
  if (c > kMaxUnicodeCodePoint || (c >= 0xD800 && c <= 0xDFFF)) c = kUtf8ReplacementCharacter;
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

}  // namespace likeness

#endif  // LIKENESS_COMMON_UTF8_H_
