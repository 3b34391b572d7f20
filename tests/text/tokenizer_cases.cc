#include "tests/text/tokenizer_cases.h"

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "tests/test_data.h"

namespace likeness::testing {
namespace {

using Json = nlohmann::json;

absl::StatusOr<std::vector<int>> ReadIds(const Json& value, const std::string& where) {
  if (!value.is_array())
    return absl::InvalidArgumentError(absl::StrCat(where, ": want an array of ids"));
  std::vector<int> ids;
  for (const Json& id : value) {
    if (!id.is_number_integer()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": non-integer id ", id.dump()));
    }
    ids.push_back(id.get<int>());
  }
  return ids;
}

std::optional<int> OptionalInt(const Json& object, const char* key) {
  if (!object.contains(key) || !object[key].is_number_integer()) return std::nullopt;
  return object[key].get<int>();
}

}  // namespace

absl::StatusOr<TokenizerCases> LoadTokenizerCases(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open the tokenizer cases"));
  Json json;
  try {
    json = Json::parse(in);
  } catch (const Json::exception& error) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", error.what()));
  }
  if (!json.is_object() || !json.contains("cases") || !json["cases"].is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": want an object with a \"cases\" array"));
  }
  TokenizerCases cases;
  cases.source = json.value("source", "");
  cases.start_of_text = OptionalInt(json, "start_of_text");
  cases.end_of_text = OptionalInt(json, "end_of_text");
  cases.vocab_size = OptionalInt(json, "vocab_size");
  for (size_t i = 0; i < json["cases"].size(); ++i) {
    const Json& item = json["cases"][i];
    const std::string where = absl::StrCat(path, ": case ", i);
    if (!item.is_object() || !item.contains("text") || !item["text"].is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": want a \"text\" string"));
    }
    TokenizerCase c;
    c.text = item["text"].get<std::string>();
    if (!item.contains("with_specials")) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": lacks \"with_specials\""));
    }
    auto with_specials = ReadIds(item["with_specials"], where + " with_specials");
    if (!with_specials.ok()) return with_specials.status();
    c.with_specials = *std::move(with_specials);
    if (item.contains("bpe_ids")) {
      auto bpe_ids = ReadIds(item["bpe_ids"], where + " bpe_ids");
      if (!bpe_ids.ok()) return bpe_ids.status();
      c.bpe_ids = *std::move(bpe_ids);
    }
    if (item.contains("decoded") && item["decoded"].is_string()) {
      c.decoded = item["decoded"].get<std::string>();
    }
    cases.cases.push_back(std::move(c));
  }
  return cases;
}

const absl::StatusOr<text::ClipTokenizer>& SharedTokenizer() {
  static const auto* const tokenizer =
      new absl::StatusOr<text::ClipTokenizer>(text::ClipTokenizer::Load(BpeVocabPath()));
  return *tokenizer;
}

absl::Status WriteDiffusersTokenizerFolder(const text::BpeVocab& vocab, const std::string& folder) {
  Json ids = Json::object();
  for (size_t id = 0; id < vocab.tokens.size(); ++id) {
    if (!vocab.tokens[id].empty()) ids[vocab.tokens[id]] = id;
  }
  std::ofstream vocab_json(folder + "/" + text::kVocabJsonName, std::ios::binary);
  vocab_json << ids.dump();
  std::ofstream merges_txt(folder + "/" + text::kMergesTxtName, std::ios::binary);
  merges_txt << "#version: 0.2\n";
  for (const auto& [first, second] : vocab.merges) merges_txt << first << " " << second << "\n";
  if (!vocab_json || !merges_txt) {
    return absl::UnavailableError(absl::StrCat(folder, ": writing the tokenizer files failed"));
  }
  return absl::OkStatus();
}

std::string IdsToString(const std::vector<int>& ids) {
  return absl::StrCat("[", absl::StrJoin(ids, ", "), "]");
}

}  // namespace likeness::testing
