#include "worker/text/bpe_vocab.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "worker/text/byte_encoder.h"

namespace likeness::text {
namespace {

namespace fs = std::filesystem;

// zlib's default 8 KiB input buffer makes the 1.3 MB vocabulary take hundreds of reads.
constexpr unsigned kGzipBufferBytes = 1 << 20;
constexpr unsigned kReadChunkBytes = 1 << 20;
// Bad lines are quoted in errors, cut to this many bytes.
constexpr size_t kQuotedLineBytes = 80;

std::string Quote(std::string_view line) {
  std::string quoted(line.substr(0, kQuotedLineBytes));
  if (line.size() > kQuotedLineBytes) quoted += "...";
  return absl::StrCat("'", absl::CEscape(quoted), "'");
}

absl::Status CheckRegularFile(const std::string& path) {
  std::error_code error;
  const fs::file_status status = fs::status(path, error);
  if (!fs::exists(status)) return absl::NotFoundError(absl::StrCat(path, ": no such file"));
  if (!fs::is_regular_file(status)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  }
  return absl::OkStatus();
}

// The whole file, decompressed when it is gzip; zlib passes plain text through unchanged.
absl::StatusOr<std::string> ReadMaybeGzipFile(const std::string& path) {
  LIKENESS_RETURN_IF_ERROR(CheckRegularFile(path));
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
  }
  gzbuffer(file, kGzipBufferBytes);
  std::string data;
  std::vector<char> chunk(kReadChunkBytes);
  int read = 0;
  while ((read = gzread(file, chunk.data(), kReadChunkBytes)) > 0) data.append(chunk.data(), read);
  int error_code = Z_OK;
  const std::string error_message = gzerror(file, &error_code);
  // gzclose_r reports Z_BUF_ERROR when the data ended inside a gzip stream (a truncated file).
  const int close_code = gzclose_r(file);
  if (read < 0 || (error_code != Z_OK && error_code != Z_STREAM_END)) {
    return absl::DataLossError(absl::StrCat(path, ": corrupt gzip data: ", error_message));
  }
  if (close_code != Z_OK) {
    return absl::DataLossError(absl::StrCat(
        path, ": corrupt gzip data: ",
        close_code == Z_BUF_ERROR ? "truncated (ends inside a gzip stream)" : "close failed"));
  }
  return data;
}

absl::StatusOr<std::string> ReadTextFile(const std::string& path) {
  LIKENESS_RETURN_IF_ERROR(CheckRegularFile(path));
  std::ifstream in(path, std::ios::binary);
  std::ostringstream contents;
  contents << in.rdbuf();
  if (!in)
    return absl::UnavailableError(absl::StrCat(path, ": read failed: ", std::strerror(errno)));
  return contents.str();
}

// Python's str.split() on a merges line; the byte alphabet has no whitespace, so ASCII's is all.
std::vector<std::string_view> SplitAsciiWhitespace(std::string_view line) {
  constexpr std::string_view kWhitespace = " \t\r\v\f";
  std::vector<std::string_view> pieces;
  size_t begin = line.find_first_not_of(kWhitespace);
  while (begin != std::string_view::npos) {
    const size_t end = std::min(line.find_first_of(kWhitespace, begin), line.size());
    pieces.push_back(line.substr(begin, end - begin));
    begin = line.find_first_not_of(kWhitespace, end);
  }
  return pieces;
}

bool IsValidUtf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    size_t length = 0;
    char32_t c = 0;
    if (lead < 0x80) {
      ++i;
      continue;
    } else if (lead >= 0xC2 && lead < 0xE0) {
      length = 2;
      c = lead & 0x1F;
    } else if (lead >= 0xE0 && lead < 0xF0) {
      length = 3;
      c = lead & 0x0F;
    } else if (lead >= 0xF0 && lead < 0xF5) {
      length = 4;
      c = lead & 0x07;
    } else {
      return false;
    }
    if (i + length > text.size()) return false;
    for (size_t k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      c = (c << 6) | (next & 0x3F);
    }
    const char32_t min_for_length = length == 2 ? 0x80 : length == 3 ? 0x800 : 0x10000;
    if (c < min_for_length || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return false;
    i += length;
  }
  return true;
}

// Parses the merges in `data` (lines after the first, which is a header when `skip_first_line`),
// keeping at most kClipMergeCount. `path` names the file in errors, with 1-based line numbers.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ParseMerges(
    std::string_view data, const std::string& path, bool skip_first_line) {
  std::vector<std::pair<std::string, std::string>> merges;
  size_t line_begin = 0;
  for (int line_number = 1; line_begin < data.size() && merges.size() < kClipMergeCount;
       ++line_number) {
    size_t line_end = data.find('\n', line_begin);
    if (line_end == std::string_view::npos) line_end = data.size();
    const std::string_view line = data.substr(line_begin, line_end - line_begin);
    line_begin = line_end + 1;
    if (line_number == 1 && skip_first_line) continue;
    const std::vector<std::string_view> symbols = SplitAsciiWhitespace(line);
    if (symbols.size() != 2) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", line_number,
                                                     ": malformed merges line ", Quote(line),
                                                     ": want two symbols separated by a space"));
    }
    if (!IsValidUtf8(line)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", line_number, ": merges line is not valid UTF-8: ", Quote(line)));
    }
    merges.emplace_back(std::string(symbols[0]), std::string(symbols[1]));
  }
  return merges;
}

void AddToken(BpeVocab& vocab, std::string token) {
  vocab.ids[token] = static_cast<int>(vocab.tokens.size());
  vocab.tokens.push_back(std::move(token));
}

absl::StatusOr<BpeVocab> ParseVocabJson(const std::string& path, const std::string& contents) {
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(contents);
  } catch (const nlohmann::json::parse_error& error) {
    const size_t offset = std::min<size_t>(error.byte == 0 ? 0 : error.byte - 1, contents.size());
    const auto line = 1 + std::count(contents.begin(), contents.begin() + offset, '\n');
    return absl::InvalidArgumentError(
        absl::StrCat(path, ":", line, ": not valid JSON: ", error.what()));
  }
  if (!json.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ":1: want a JSON object of token -> id, got ", json.type_name()));
  }
  BpeVocab vocab;
  for (const auto& [token, value] : json.items()) {
    if (!value.is_number_integer() || value.get<long long>() < 0 ||
        value.get<long long>() >= kMaxVocabularyId) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": token ", Quote(token),
                                                     ": id must be an integer in [0, ",
                                                     kMaxVocabularyId, "), got ", value.dump()));
    }
    const int id = value.get<int>();
    if (static_cast<size_t>(id) >= vocab.tokens.size()) vocab.tokens.resize(id + 1);
    if (!vocab.tokens[id].empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": id ", id, " is given to both ", Quote(vocab.tokens[id]), " and ", Quote(token)));
    }
    if (token.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": id ", id, " has an empty token"));
    }
    vocab.tokens[id] = token;
    vocab.ids[token] = id;
  }
  return vocab;
}

absl::Status RequireToken(const BpeVocab& vocab, const std::string& token,
                          const std::string& path) {
  if (vocab.ids.count(token) == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": lacks the token ", Quote(token), ", which CLIP's BPE needs"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<BpeVocab> LoadClipMergesFile(const std::string& path) {
  LIKENESS_ASSIGN_OR_RETURN(const std::string data, ReadMaybeGzipFile(path));
  BpeVocab vocab;
  vocab.source = path;
  LIKENESS_ASSIGN_OR_RETURN(vocab.merges, ParseMerges(data, path, /*skip_first_line=*/true));
  const auto& order = ByteVocabularyOrder();
  vocab.tokens.reserve(2 * kByteCount + vocab.merges.size() + 2);
  for (uint8_t b : order) AddToken(vocab, ByteToUtf8(b));
  for (uint8_t b : order) AddToken(vocab, ByteToUtf8(b) + kEndOfWordSuffix);
  for (const auto& [first, second] : vocab.merges) AddToken(vocab, first + second);
  AddToken(vocab, kStartOfTextToken);
  AddToken(vocab, kEndOfTextToken);
  return vocab;
}

absl::StatusOr<BpeVocab> LoadDiffusersTokenizerFolder(const std::string& folder) {
  const std::string vocab_path = (fs::path(folder) / kVocabJsonName).string();
  const std::string merges_path = (fs::path(folder) / kMergesTxtName).string();
  LIKENESS_ASSIGN_OR_RETURN(const std::string vocab_json, ReadTextFile(vocab_path));
  LIKENESS_ASSIGN_OR_RETURN(BpeVocab vocab, ParseVocabJson(vocab_path, vocab_json));
  vocab.source = folder;
  for (int b = 0; b < kByteCount; ++b) {
    LIKENESS_RETURN_IF_ERROR(RequireToken(vocab, ByteToUtf8(b), vocab_path));
    LIKENESS_RETURN_IF_ERROR(RequireToken(vocab, ByteToUtf8(b) + kEndOfWordSuffix, vocab_path));
  }
  LIKENESS_RETURN_IF_ERROR(RequireToken(vocab, kStartOfTextToken, vocab_path));
  LIKENESS_RETURN_IF_ERROR(RequireToken(vocab, kEndOfTextToken, vocab_path));

  LIKENESS_ASSIGN_OR_RETURN(const std::string merges_txt, ReadTextFile(merges_path));
  const bool has_header = merges_txt.rfind('#', 0) == 0;  // "#version: 0.2"
  LIKENESS_ASSIGN_OR_RETURN(vocab.merges, ParseMerges(merges_txt, merges_path, has_header));
  for (size_t rank = 0; rank < vocab.merges.size(); ++rank) {
    const auto& [first, second] = vocab.merges[rank];
    if (vocab.ids.count(first + second) == 0) {
      const size_t line = rank + 1 + (has_header ? 1 : 0);
      return absl::InvalidArgumentError(absl::StrCat(merges_path, ":", line, ": the merge of ",
                                                     Quote(first), " and ", Quote(second),
                                                     " is not in ", vocab_path));
    }
  }
  return vocab;
}

absl::StatusOr<BpeVocab> LoadBpeVocab(const std::string& path) {
  std::error_code error;
  if (fs::is_directory(path, error)) return LoadDiffusersTokenizerFolder(path);
  return LoadClipMergesFile(path);
}

}  // namespace likeness::text
