// The text clean-up and pre-tokenization of OpenAI CLIP's simple_tokenizer.py, matched to
// CPython's string semantics (str.isspace, str.strip, str.lower) with ICU doing the Unicode work.
//
//   text -> BasicClean -> WhitespaceClean -> PythonLower -> PreTokenize -> words for BPE
//
// ftfy.fix_text, the first step of CLIP's basic_clean, is taken as the identity: it repairs
// mojibake heuristically, which has no specification to match, and the reference cases were
// generated without it.
#ifndef LIKENESS_WORKER_TEXT_TEXT_NORMALIZE_H_
#define LIKENESS_WORKER_TEXT_TEXT_NORMALIZE_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace likeness::text {

// CLIP's pre-tokenization pattern, compiled by the `regex` module with IGNORECASE: special
// tokens, English contractions, runs of letters, single digits, runs of anything else but
// whitespace. ICU runs kIcuPreTokenizePattern, which finds the same words (see there).
inline constexpr char kClipPreTokenizePattern[] =
    R"(<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+)";

// kClipPreTokenizePattern in ICU's dialect, checked against `regex` on every code point:
//  - The text is already lower-cased, so IGNORECASE matters only for the literals (it lets
//    "'ſ" count as "'s"); it is scoped to them because ICU closes [\p{L}] over case under it
//    and would then take U+0345 COMBINING GREEK YPOGEGRAMMENI (which folds to iota) as a letter.
//  - `regex` with IGNORECASE matches U+0345 with none of the three classes, so CLIP drops it;
//    the last class excludes it to do the same.
//  - `regex`'s \s is Unicode White_Space; ICU's \s ([\t\n\f\r\p{Z}]) lacks U+000B and U+0085.
inline constexpr char kIcuPreTokenizePattern[] =
    R"((?i:<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d)|[\p{L}]+|[\p{N}]|[^\p{White_Space}\p{L}\p{N}\x{0345}]+)";

// CLIP uses two notions of whitespace, and the difference shows on U+001C..U+001F:
// str.strip() removes Python's str.isspace characters (general category Zs, or bidirectional
// class WS, B or S), which include them; whitespace_clean's regex \s+ collapses Unicode
// White_Space characters, which do not. "a\x1cb" keeps its U+001C as a word of its own.
bool IsPythonWhitespace(char32_t c);
bool IsUnicodeWhiteSpace(char32_t c);

// Ill-formed UTF-8 becomes U+FFFD (one per maximal ill-formed subsequence), so every later step
// sees valid text. Python could not hold such input in a str at all.
std::string SanitizeUtf8(std::string_view text);

// basic_clean: html.unescape twice (so "&amp;amp;" -> "&"), then strip Python whitespace.
std::string BasicClean(std::string_view text);

// whitespace_clean: every run of White_Space -> one ' ', then strip Python whitespace.
std::string WhitespaceClean(std::string_view text);

// str.lower: full Unicode lower-casing, locale independent, final sigma included
// ("İ" -> "i̇", "ΣΑΣ" -> "σας").
std::string PythonLower(std::string_view text);

// The words kClipPreTokenizePattern finds in `text`, in order; whatever it skips (spaces) is
// dropped.
std::vector<std::string> PreTokenize(std::string_view text);

// OK when ICU compiled kIcuPreTokenizePattern; PreTokenize needs it. Checked once at load time.
absl::Status CheckPreTokenizer();

// The whole chain: the words CLIP would hand to BPE for `text` (valid or not UTF-8).
std::vector<std::string> SplitForBpe(std::string_view text);

}  // namespace likeness::text

#endif  // LIKENESS_WORKER_TEXT_TEXT_NORMALIZE_H_
