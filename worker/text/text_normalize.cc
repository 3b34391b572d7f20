#include "worker/text/text_normalize.h"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "unicode/locid.h"
#include "unicode/regex.h"
#include "unicode/uchar.h"
#include "unicode/unistr.h"
#include "unicode/utf8.h"
#include "worker/text/html_unescape.h"

namespace likeness::text {
namespace {

// CLIP's basic_clean unescapes twice so doubly escaped scraped captions ("&amp;quot;") clean up.
constexpr int kHtmlUnescapePasses = 2;

struct CompiledPattern {
  std::unique_ptr<icu::RegexPattern> pattern;
  UErrorCode status = U_ZERO_ERROR;
};

// RegexPattern is immutable after compilation and ICU documents it as safe to share between
// threads; each call makes its own RegexMatcher.
const CompiledPattern& GetPattern() {
  static const CompiledPattern* const compiled = [] {
    auto* c = new CompiledPattern;
    UParseError parse_error;
    c->pattern.reset(icu::RegexPattern::compile(
        icu::UnicodeString::fromUTF8(kIcuPreTokenizePattern), /*flags=*/0, parse_error, c->status));
    return c;
  }();
  return *compiled;
}

icu::UnicodeString ToUnicode(std::string_view text) {
  return icu::UnicodeString::fromUTF8(
      icu::StringPiece(text.data(), static_cast<int32_t>(text.size())));
}

std::string ToUtf8(const icu::UnicodeString& text) {
  std::string out;
  text.toUTF8String(out);
  return out;
}

// Calls `visit(begin, end, code_point)` for each code point of valid UTF-8 `text`.
template <typename Visit>
void ForEachCodePoint(std::string_view text, Visit visit) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(text.data());
  const auto length = static_cast<int32_t>(text.size());
  int32_t i = 0;
  while (i < length) {
    const int32_t begin = i;
    UChar32 c;
    U8_NEXT(bytes, i, length, c);
    visit(static_cast<size_t>(begin), static_cast<size_t>(i), static_cast<char32_t>(c));
  }
}

std::string StripPythonWhitespace(std::string_view text) {
  size_t first = std::string_view::npos;
  size_t last_end = 0;
  ForEachCodePoint(text, [&](size_t begin, size_t end, char32_t c) {
    if (IsPythonWhitespace(c)) return;
    if (first == std::string_view::npos) first = begin;
    last_end = end;
  });
  if (first == std::string_view::npos) return "";
  return std::string(text.substr(first, last_end - first));
}

}  // namespace

bool IsPythonWhitespace(char32_t c) {
  const auto code_point = static_cast<UChar32>(c);
  if (u_charType(code_point) == U_SPACE_SEPARATOR) return true;
  switch (u_charDirection(code_point)) {
    case U_WHITE_SPACE_NEUTRAL:
    case U_BLOCK_SEPARATOR:
    case U_SEGMENT_SEPARATOR:
      return true;
    default:
      return false;
  }
}

bool IsUnicodeWhiteSpace(char32_t c) { return u_isUWhiteSpace(static_cast<UChar32>(c)); }

std::string SanitizeUtf8(std::string_view text) { return ToUtf8(ToUnicode(text)); }

std::string BasicClean(std::string_view text) {
  std::string cleaned(text);
  for (int pass = 0; pass < kHtmlUnescapePasses; ++pass) cleaned = HtmlUnescape(cleaned);
  return StripPythonWhitespace(cleaned);
}

std::string WhitespaceClean(std::string_view text) {
  std::string collapsed;
  collapsed.reserve(text.size());
  bool in_space = false;
  ForEachCodePoint(text, [&](size_t begin, size_t end, char32_t c) {
    if (IsUnicodeWhiteSpace(c)) {
      if (!in_space) collapsed.push_back(' ');
      in_space = true;
    } else {
      collapsed.append(text.substr(begin, end - begin));
      in_space = false;
    }
  });
  return StripPythonWhitespace(collapsed);
}

std::string PythonLower(std::string_view text) {
  icu::UnicodeString unicode = ToUnicode(text);
  unicode.toLower(icu::Locale::getRoot());
  return ToUtf8(unicode);
}

std::vector<std::string> PreTokenize(std::string_view text) {
  std::vector<std::string> words;
  const CompiledPattern& compiled = GetPattern();
  if (U_FAILURE(compiled.status)) return words;      // CheckPreTokenizer reported it at load time.
  const icu::UnicodeString input = ToUnicode(text);  // Outlives the matcher, which refers to it.
  UErrorCode status = U_ZERO_ERROR;
  std::unique_ptr<icu::RegexMatcher> matcher(compiled.pattern->matcher(input, status));
  if (U_FAILURE(status)) return words;
  // find() fails only when ICU runs out of memory; the words found so far are returned. Runs of
  // millions of letters or symbols match without backtracking, so input length is no risk.
  while (matcher->find(status) && U_SUCCESS(status)) {
    words.push_back(ToUtf8(matcher->group(status)));
  }
  return words;
}

absl::Status CheckPreTokenizer() {
  const CompiledPattern& compiled = GetPattern();
  if (U_FAILURE(compiled.status)) {
    return absl::InternalError(absl::StrCat(
        "ICU could not compile the CLIP pre-tokenizer pattern: ", u_errorName(compiled.status)));
  }
  return absl::OkStatus();
}

std::vector<std::string> SplitForBpe(std::string_view text) {
  return PreTokenize(PythonLower(WhitespaceClean(BasicClean(SanitizeUtf8(text)))));
}

}  // namespace likeness::text
