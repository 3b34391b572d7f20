#include "worker/model/vision/config_json.h"

#include "absl/strings/str_cat.h"

namespace likeness::model::vision_internal {
namespace {

// How much of an offending value an error message quotes.
constexpr size_t kMaxQuotedValueChars = 60;

std::string Quote(const nlohmann::json& value) {
  std::string text = value.dump();
  if (text.size() > kMaxQuotedValueChars) text = text.substr(0, kMaxQuotedValueChars) + "...";
  return text;
}

}  // namespace

absl::Status ConfigFieldError(absl::string_view config_name, absl::string_view field,
                              absl::string_view want, const nlohmann::json& got) {
  return absl::InvalidArgumentError(
      absl::StrCat(config_name, " field '", field, "': want ", want, ", got ", Quote(got)));
}

absl::Status ConfigFieldReader::Error(absl::string_view field, absl::string_view want,
                                      const nlohmann::json& got) const {
  return ConfigFieldError(config_name_, field, want, got);
}

absl::Status ConfigFieldReader::Int(const char* field, int64_t& out) const {
  const auto it = json_.find(field);
  if (it == json_.end()) return absl::OkStatus();
  if (!it->is_number_integer()) return Error(field, "an integer", *it);
  out = it->get<int64_t>();
  return absl::OkStatus();
}

absl::Status ConfigFieldReader::Double(const char* field, double& out) const {
  const auto it = json_.find(field);
  if (it == json_.end()) return absl::OkStatus();
  if (!it->is_number()) return Error(field, "a number", *it);
  out = it->get<double>();
  return absl::OkStatus();
}

absl::Status ConfigFieldReader::Bool(const char* field, bool& out) const {
  const auto it = json_.find(field);
  if (it == json_.end()) return absl::OkStatus();
  if (!it->is_boolean()) return Error(field, "true or false", *it);
  out = it->get<bool>();
  return absl::OkStatus();
}

absl::Status ConfigFieldReader::Activation(const char* field, ClipActivation& out) const {
  const auto it = json_.find(field);
  if (it == json_.end()) return absl::OkStatus();
  if (it->is_string()) {
    const std::string name = it->get<std::string>();
    if (name == "quick_gelu") {
      out = ClipActivation::kQuickGelu;
      return absl::OkStatus();
    }
    if (name == "gelu") {
      out = ClipActivation::kGelu;
      return absl::OkStatus();
    }
    if (name == "gelu_new" || name == "gelu_pytorch_tanh") {
      out = ClipActivation::kGeluTanh;
      return absl::OkStatus();
    }
  }
  return Error(field, "one of \"quick_gelu\", \"gelu\", \"gelu_new\", \"gelu_pytorch_tanh\"", *it);
}

absl::StatusOr<nlohmann::json> ParseConfigJson(absl::string_view text,
                                               absl::string_view config_name) {
  try {
    return nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& error) {
    return absl::InvalidArgumentError(
        absl::StrCat(config_name, " is not valid JSON: ", error.what()));
  }
}

}  // namespace likeness::model::vision_internal
