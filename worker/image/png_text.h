// Text encodings of PNG text chunks: tEXt/zTXt keywords and values are Latin-1, iTXt values
// are UTF-8. Image::text and PngText hold UTF-8 throughout, so these convert at the edge.
#ifndef LIKENESS_WORKER_IMAGE_PNG_TEXT_H_
#define LIKENESS_WORKER_IMAGE_PNG_TEXT_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace likeness::image::internal {

// PNG keywords are 1-79 bytes (PNG spec 11.3.4.3).
inline constexpr size_t kMaxPngKeywordBytes = 79;

std::string Latin1ToUtf8(absl::string_view latin1);
// The Latin-1 bytes for `utf8`, or nullopt when it has a character above U+00FF or is not
// valid UTF-8.
std::optional<std::string> Utf8ToLatin1(absl::string_view utf8);
bool IsValidUtf8(absl::string_view text);

// OK when `keyword` (UTF-8) is a valid PNG keyword: 1-79 printable Latin-1 characters, no
// leading, trailing or consecutive spaces. `latin1` receives the bytes to write.
absl::Status CheckPngKeyword(absl::string_view keyword, std::string* latin1);

}  // namespace likeness::image::internal

#endif  // LIKENESS_WORKER_IMAGE_PNG_TEXT_H_
