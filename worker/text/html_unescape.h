// Python's html.unescape, byte for byte, for CLIP's basic_clean (which applies it twice).
#ifndef LIKENESS_WORKER_TEXT_HTML_UNESCAPE_H_
#define LIKENESS_WORKER_TEXT_HTML_UNESCAPE_H_

#include <string>
#include <string_view>

namespace likeness::text {

// Replaces HTML character references in valid UTF-8 `text` the way CPython 3.11's
// html.unescape does:
//   - numeric: &#NN; and &#xHH; (the ';' optional); 0x80-0x9F are remapped as Windows-1252,
//     0, surrogates and values past U+10FFFF become U+FFFD, noncharacters and most C0/C1
//     controls are dropped;
//   - named: the HTML5 list (html_entities.inc), including the legacy names accepted without
//     ';' ("&eacute"), and the longest such prefix of an unknown name ("&notit;" -> "¬it;").
// Anything that is not a reference is copied unchanged.
std::string HtmlUnescape(std::string_view text);

}  // namespace likeness::text

#endif  // LIKENESS_WORKER_TEXT_HTML_UNESCAPE_H_
