#include "worker/eval/prompts.h"

#include <cctype>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/atomic_file.h"
#include "nlohmann/json.hpp"
#include "worker/generate/a1111_parameters.h"

namespace likeness::eval {
namespace {

constexpr char kJsonSuffix[] = ".json";
constexpr char kCommentPrefix = '#';
constexpr char kTab = '\t';

// Letters, digits, '_' and every byte of a multi-byte UTF-8 character count as word characters.
bool IsWordByte(char c) {
  const unsigned char u = static_cast<unsigned char>(c);
  return u >= 0x80 || std::isalnum(u) || c == '_';
}

bool IsSpace(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

// `word` at `pos` of `text`, case-insensitively, with no word character glued on either side
// where `word` itself begins or ends with one.
bool WordAt(absl::string_view text, size_t pos, absl::string_view word) {
  if (word.empty() || pos + word.size() > text.size()) return false;
  if (!absl::EqualsIgnoreCase(text.substr(pos, word.size()), word)) return false;
  if (IsWordByte(word.front()) && pos > 0 && IsWordByte(text[pos - 1])) return false;
  const size_t end = pos + word.size();
  if (IsWordByte(word.back()) && end < text.size() && IsWordByte(text[end])) return false;
  return true;
}

// Runs of whitespace become one space; none at either end.
std::string CollapseSpaces(absl::string_view text) {
  std::string out;
  bool pending_space = false;
  for (char c : text) {
    if (IsSpace(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

absl::StatusOr<PromptFile> ParseJson(const std::string& path, const std::string& text) {
  const nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": want a JSON object {\"<image file name>\": \"<prompt>\", ...}"));
  }
  PromptFile file;
  file.path = path;
  for (const auto& [name, prompt] : json.items()) {
    if (!prompt.is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": the prompt of '", name, "' is not a string"));
    }
    file.by_name[name] = prompt.get<std::string>();
  }
  return file;
}

absl::StatusOr<PromptFile> ParseText(const std::string& path, const std::string& text) {
  PromptFile file;
  file.path = path;
  int line_number = 0;
  int first_mapped = 0, first_plain = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripSuffix(line, "\r");
    if (absl::StripAsciiWhitespace(line).empty() || line.front() == kCommentPrefix) continue;
    const size_t tab = line.find(kTab);
    if (tab != absl::string_view::npos) {
      if (first_mapped == 0) first_mapped = line_number;
      const std::string name(absl::StripAsciiWhitespace(line.substr(0, tab)));
      if (name.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ":", line_number, ": no image file name before the tab"));
      }
      if (!file.by_name.emplace(name, std::string(absl::StripAsciiWhitespace(line.substr(tab + 1))))
               .second) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ":", line_number, ": a second prompt for '", name, "'"));
      }
    } else {
      if (first_plain == 0) first_plain = line_number;
      file.in_order.emplace_back(absl::StripAsciiWhitespace(line));
    }
    if (first_mapped != 0 && first_plain != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ":", line_number, ": mixes \"NAME<TAB>PROMPT\" lines (first at line ",
          first_mapped, ") with plain prompt lines (first at line ", first_plain,
          "); use one form"));
    }
  }
  return file;
}

}  // namespace

absl::StatusOr<PromptFile> ReadPromptFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  return absl::EndsWithIgnoreCase(path, kJsonSuffix) ? ParseJson(path, *text)
                                                     : ParseText(path, *text);
}

absl::StatusOr<std::vector<std::optional<std::string>>> AssignPrompts(
    const PromptFile& file, const std::vector<std::string>& image_names) {
  std::vector<std::optional<std::string>> prompts(image_names.size());
  if (!file.in_order.empty()) {
    if (file.in_order.size() != image_names.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          file.path, ": ", file.in_order.size(), " prompt lines for ", image_names.size(),
          " generated images; one line per image in file-name order, or NAME<TAB>PROMPT lines"));
    }
    for (size_t i = 0; i < image_names.size(); ++i) prompts[i] = file.in_order[i];
    return prompts;
  }
  const std::set<std::string> present(image_names.begin(), image_names.end());
  std::vector<std::string> absent;
  for (const auto& [name, prompt] : file.by_name) {
    if (present.count(name) == 0) absent.push_back(name);
  }
  if (!absent.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(file.path, ": prompts for images the generated folder lacks: ",
                     absl::StrJoin(absent, ", ")));
  }
  for (size_t i = 0; i < image_names.size(); ++i) {
    if (const auto it = file.by_name.find(image_names[i]); it != file.by_name.end()) {
      prompts[i] = it->second;
    }
  }
  return prompts;
}

std::optional<std::string> PromptFromParameters(absl::string_view parameters) {
  // The generator's own parser first: it also takes the <lora:NAME:SCALE> tags out, which are
  // instructions to the sampler, not words of the prompt.
  if (absl::StatusOr<generate::A1111Parameters> parsed =
          generate::ParseA1111Parameters(std::string(parameters));
      parsed.ok()) {
    std::string prompt(absl::StripAsciiWhitespace(parsed->prompt));
    if (prompt.empty()) return std::nullopt;
    return prompt;
  }
  // Without a settings line it is not strictly A1111's format; take the lines before
  // "Negative prompt:" as the prompt anyway.
  std::vector<absl::string_view> lines;
  for (absl::string_view line : absl::StrSplit(parameters, '\n')) {
    line = absl::StripSuffix(line, "\r");
    if (absl::StartsWith(line, kNegativePromptPrefix) || absl::StartsWith(line, kSettingsLinePrefix)) {
      break;
    }
    lines.push_back(line);
  }
  std::string prompt(absl::StripAsciiWhitespace(absl::StrJoin(lines, "\n")));
  if (prompt.empty()) return std::nullopt;
  return prompt;
}

std::string EvaluationPrompt(absl::string_view prompt, absl::string_view identifier,
                             absl::string_view class_noun) {
  if (identifier.empty()) return std::string(prompt);
  std::string out;
  size_t i = 0;
  while (i < prompt.size()) {
    if (!WordAt(prompt, i, identifier)) {
      out.push_back(prompt[i++]);
      continue;
    }
    size_t next = i + identifier.size();
    while (next < prompt.size() && IsSpace(prompt[next])) ++next;
    if (!class_noun.empty() && !WordAt(prompt, next, class_noun)) {
      out.append(class_noun.data(), class_noun.size());  // "a photo of sks" -> "... of dog"
    }
    // Otherwise the identifier (and the space after it) goes: "a sks dog" -> "a dog".
    i = class_noun.empty() || WordAt(prompt, next, class_noun) ? next : i + identifier.size();
  }
  return CollapseSpaces(out);
}

}  // namespace likeness::eval
