#include "worker/generate/a1111_parameters.h"

#include <charconv>
#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"

namespace likeness::generate {
namespace {

constexpr char kNegativePrefix[] = "Negative prompt:";
constexpr char kStepsPrefix[] = "Steps:";
constexpr char kLoraHashesKey[] = "Lora hashes";
constexpr char kLoraTagOpen[] = "<lora:";

// A1111's quote(): values with a comma, colon or quote go in JSON double quotes.
std::string Quote(const std::string& value) {
  if (value.find_first_of(",:\"\n") == std::string::npos) return value;
  return nlohmann::json(value).dump();
}

// Splits the "Key: value, Key: "quoted, value", ..." line.
std::vector<std::pair<std::string, std::string>> SplitFields(const std::string& line) {
  std::vector<std::pair<std::string, std::string>> fields;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == ',')) ++i;
    const size_t colon = line.find(':', i);
    if (colon == std::string::npos) break;
    std::string key(absl::StripAsciiWhitespace(line.substr(i, colon - i)));
    i = colon + 1;
    while (i < line.size() && line[i] == ' ') ++i;
    std::string value;
    if (i < line.size() && line[i] == '"') {
      size_t end = i + 1;
      while (end < line.size() && line[end] != '"') end += line[end] == '\\' ? 2 : 1;
      const std::string quoted = line.substr(i, end + 1 - i);
      try {
        value = nlohmann::json::parse(quoted).get<std::string>();
      } catch (const nlohmann::json::exception&) {
        value = quoted;
      }
      i = end + 1;
    } else {
      const size_t comma = line.find(',', i);
      const size_t end = comma == std::string::npos ? line.size() : comma;
      value = std::string(absl::StripAsciiWhitespace(line.substr(i, end - i)));
      i = end;
    }
    fields.emplace_back(std::move(key), std::move(value));
  }
  return fields;
}

// Removes <lora:NAME:SCALE> tags from `prompt`, returning them in order.
std::vector<A1111Parameters::Lora> ExtractLoraTags(std::string* prompt) {
  std::vector<A1111Parameters::Lora> loras;
  std::string out;
  size_t i = 0;
  while (true) {
    const size_t open = prompt->find(kLoraTagOpen, i);
    const size_t close = open == std::string::npos ? open : prompt->find('>', open);
    if (close == std::string::npos) break;
    const std::string body = prompt->substr(open + sizeof(kLoraTagOpen) - 1,
                                            close - open - (sizeof(kLoraTagOpen) - 1));
    A1111Parameters::Lora lora;
    const size_t colon = body.rfind(':');
    double scale = 1.0;
    if (colon != std::string::npos && absl::SimpleAtod(body.substr(colon + 1), &scale)) {
      lora.name = body.substr(0, colon);
      lora.scale = scale;
    } else {
      lora.name = body;
    }
    loras.push_back(lora);
    out += prompt->substr(i, open - i);
    i = close + 1;
  }
  out += prompt->substr(i);
  *prompt = std::string(absl::StripTrailingAsciiWhitespace(out));
  return loras;
}

}  // namespace

std::string A1111Number(double value) {
  if (std::isfinite(value) && value == std::floor(value) && std::fabs(value) < 1e15) {
    return absl::StrCat(static_cast<int64_t>(value));
  }
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, result.ptr);
}

std::string A1111Parameters::Field(const std::string& key) const {
  for (const auto& [k, v] : fields) {
    if (k == key) return v;
  }
  return "";
}

std::string FormatA1111Parameters(const A1111Parameters& parameters) {
  std::string text = parameters.prompt;
  for (const A1111Parameters::Lora& lora : parameters.loras) {
    absl::StrAppend(&text, text.empty() ? "" : " ", kLoraTagOpen, lora.name, ":",
                    A1111Number(lora.scale), ">");
  }
  if (!parameters.negative_prompt.empty()) {
    absl::StrAppend(&text, "\n", kNegativePrefix, " ", parameters.negative_prompt);
  }
  std::vector<std::string> pairs;
  for (const auto& [key, value] : parameters.fields) {
    if (key == kLoraHashesKey) continue;
    pairs.push_back(absl::StrCat(key, ": ", Quote(value)));
  }
  std::vector<std::string> hashes;
  for (const A1111Parameters::Lora& lora : parameters.loras) {
    if (!lora.hash.empty()) hashes.push_back(absl::StrCat(lora.name, ": ", lora.hash));
  }
  if (!hashes.empty()) {
    pairs.push_back(absl::StrCat(kLoraHashesKey, ": ", Quote(absl::StrJoin(hashes, ", "))));
  }
  absl::StrAppend(&text, "\n", absl::StrJoin(pairs, ", "));
  return text;
}

absl::StatusOr<A1111Parameters> ParseA1111Parameters(const std::string& text) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  while (!lines.empty() && absl::StripAsciiWhitespace(lines.back()).empty()) lines.pop_back();
  if (lines.empty() || !absl::StartsWith(lines.back(), kStepsPrefix)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "not AUTOMATIC1111 parameters: the last line should start with \"Steps:\", found \"",
        lines.empty() ? "" : lines.back().substr(0, 40), "\""));
  }
  A1111Parameters parameters;
  parameters.fields = SplitFields(lines.back());
  lines.pop_back();
  std::vector<std::string> prompt_lines;
  bool in_negative = false;
  std::vector<std::string> negative_lines;
  for (const std::string& line : lines) {
    if (!in_negative && absl::StartsWith(line, kNegativePrefix)) {
      in_negative = true;
      negative_lines.push_back(
          std::string(absl::StripLeadingAsciiWhitespace(line.substr(sizeof(kNegativePrefix) - 1))));
    } else {
      (in_negative ? negative_lines : prompt_lines).push_back(line);
    }
  }
  parameters.prompt = absl::StrJoin(prompt_lines, "\n");
  parameters.negative_prompt = absl::StrJoin(negative_lines, "\n");
  parameters.loras = ExtractLoraTags(&parameters.prompt);
  // "Lora hashes": "name: hash, name2: hash2" -> onto the tags by name.
  for (auto it = parameters.fields.begin(); it != parameters.fields.end(); ++it) {
    if (it->first != kLoraHashesKey) continue;
    for (absl::string_view entry : absl::StrSplit(it->second, ',', absl::SkipWhitespace())) {
      const size_t colon = entry.rfind(':');
      if (colon == absl::string_view::npos) continue;
      const std::string name(absl::StripAsciiWhitespace(entry.substr(0, colon)));
      const std::string hash(absl::StripAsciiWhitespace(entry.substr(colon + 1)));
      for (A1111Parameters::Lora& lora : parameters.loras) {
        if (lora.name == name) lora.hash = hash;
      }
    }
    parameters.fields.erase(it);
    break;
  }
  return parameters;
}

}  // namespace likeness::generate
