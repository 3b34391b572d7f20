#include "coordinator/axis_field.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/config/proto_yaml.h"
#include "common/status_macros.h"

namespace likeness::coordinator {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

const Descriptor* RootDescriptor(const std::string& root) {
  if (root == kTrainRoot) return v1::TrainConfig::descriptor();
  if (root == kGenerateRoot) return v1::GenerateConfig::descriptor();
  if (root == kEvaluateRoot) return v1::EvaluateConfig::descriptor();
  return nullptr;
}

google::protobuf::Message* RootMessage(const std::string& root, SweepPoint* point) {
  if (root == kTrainRoot) return &point->train;
  if (root == kGenerateRoot) return &point->generate;
  if (root == kEvaluateRoot) return &point->evaluate;
  return nullptr;
}

// A uniform double in [0, 1) from 53 raw bits.
double Uniform01(std::mt19937_64* rng) {
  return static_cast<double>((*rng)() >> 11) * (1.0 / 9007199254740992.0);
}

// Range values carry exp/log rounding noise (5.000000000000004e-05); six significant digits
// is finer than any sweep needs and reads as the user would write it (5e-05).
constexpr int kRangeSignificantDigits = 6;

std::string NumberText(double value, const FieldDescriptor& field) {
  if (IsIntegerField(field)) return absl::StrCat(static_cast<int64_t>(std::llround(value)));
  char rounded[64];
  std::snprintf(rounded, sizeof(rounded), "%.*g", kRangeSignificantDigits, value);
  return FormatDouble(std::strtod(rounded, nullptr));
}

// A YAML scalar for `text`: strings are quoted so commas and colons stay text.
std::string YamlScalar(const std::string& text, const FieldDescriptor& field) {
  if (field.cpp_type() != FieldDescriptor::CPPTYPE_STRING) return text;
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') quoted += '\\';
    quoted += c;
  }
  return quoted + "\"";
}

}  // namespace

std::string FormatDouble(double value) {
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, result.ptr);
}

bool IsIntegerField(const FieldDescriptor& field) {
  switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64:
    case FieldDescriptor::CPPTYPE_UINT32:
    case FieldDescriptor::CPPTYPE_UINT64:
      return true;
    default:
      return false;
  }
}

bool IsNumericField(const FieldDescriptor& field) {
  return IsIntegerField(field) || field.cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE ||
         field.cpp_type() == FieldDescriptor::CPPTYPE_FLOAT;
}

absl::StatusOr<const FieldDescriptor*> ResolveAxisField(const std::string& path,
                                                       const std::string& where) {
  const std::string prefix = absl::StrCat(where, " '", path, "': ");
  const std::vector<std::string> parts = absl::StrSplit(path, '.');
  const Descriptor* descriptor = parts.empty() ? nullptr : RootDescriptor(parts[0]);
  if (descriptor == nullptr || parts.size() < 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        prefix, "a field path starts with train., generate. or evaluate. (train.learning_rate)"));
  }
  const FieldDescriptor* field = nullptr;
  for (size_t i = 1; i < parts.size(); ++i) {
    field = descriptor->FindFieldByName(parts[i]);
    if (field == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(prefix, "no such field ('", parts[i], "' is not a field of ",
                       descriptor->name(), ")"));
    }
    if (field->is_repeated()) {
      return absl::InvalidArgumentError(
          absl::StrCat(prefix, "is a list; an axis takes a single number, enum or string"));
    }
    const bool last = i + 1 == parts.size();
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (last) {
        return absl::InvalidArgumentError(
            absl::StrCat(prefix, "is a message; name one of its fields"));
      }
      descriptor = field->message_type();
    } else if (!last) {
      return absl::InvalidArgumentError(
          absl::StrCat(prefix, "no such field ('", parts[i], "' has no fields)"));
    }
  }
  return field;
}

absl::StatusOr<std::vector<std::string>> AxisGridValues(const v1::SweepAxis& axis,
                                                       const FieldDescriptor& field,
                                                       const std::string& where) {
  const bool has_range = axis.has_min() || axis.has_max();
  if (axis.values_size() > 0 && has_range) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, " '", axis.field(), "': give either values or min/max, not both"));
  }
  if (axis.values_size() > 0) {
    if (axis.values_size() > kMaxAxisValues) {
      return absl::InvalidArgumentError(absl::StrCat(where, " '", axis.field(), "': ",
                                                     axis.values_size(), " values (at most ",
                                                     kMaxAxisValues, ")"));
    }
    return std::vector<std::string>(axis.values().begin(), axis.values().end());
  }
  if (!axis.has_min() || !axis.has_max()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, " '", axis.field(), "': no values (give values: [...] or min and max)"));
  }
  if (!IsNumericField(field)) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, " '", axis.field(), "': a min/max range needs a numeric field; list the values"));
  }
  const double lo = axis.min(), hi = axis.max();
  if (!std::isfinite(lo) || !std::isfinite(hi) || lo > hi) {
    return absl::InvalidArgumentError(absl::StrCat(where, ".min/max '", axis.field(), "': [",
                                                   FormatDouble(lo), ", ", FormatDouble(hi),
                                                   "] is not a range"));
  }
  if (axis.log_scale() && lo <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(where, ".min '", axis.field(), "': ",
                                                   FormatDouble(lo),
                                                   " must be > 0 on a log scale"));
  }
  return RangeGridValues(axis, field, where);
}

absl::StatusOr<std::vector<std::string>> RangeGridValues(const v1::SweepAxis& axis,
                                                        const FieldDescriptor& field,
                                                        const std::string& where) {
  const int num = axis.num();
  if (num < 1 || num > kMaxAxisValues) {
    return absl::InvalidArgumentError(absl::StrCat(where, ".num '", axis.field(), "': ", num,
                                                   " is outside [1, ", kMaxAxisValues,
                                                   "]"));
  }
  std::vector<std::string> values;
  std::set<std::string> seen;  // integer rounding can make neighbours equal
  for (int i = 0; i < num; ++i) {
    const double t = num == 1 ? 0.0 : static_cast<double>(i) / (num - 1);
    const double value = axis.log_scale()
                             ? std::exp(std::log(axis.min()) +
                                        t * (std::log(axis.max()) - std::log(axis.min())))
                             : axis.min() + t * (axis.max() - axis.min());
    std::string text = NumberText(i + 1 == num ? axis.max() : value, field);
    if (seen.insert(text).second) values.push_back(std::move(text));
  }
  return values;
}

std::string AxisRandomValue(const v1::SweepAxis& axis, const FieldDescriptor& field,
                            std::mt19937_64* rng) {
  if (axis.values_size() > 0) {
    return axis.values(static_cast<int>((*rng)() % static_cast<uint64_t>(axis.values_size())));
  }
  const double u = Uniform01(rng);
  const double value =
      axis.log_scale()
          ? std::exp(std::log(axis.min()) + u * (std::log(axis.max()) - std::log(axis.min())))
          : axis.min() + u * (axis.max() - axis.min());
  return NumberText(value, field);
}

absl::Status SetAxisValue(const std::string& path, const std::string& text,
                          const std::string& where, SweepPoint* point) {
  LIKENESS_ASSIGN_OR_RETURN(const FieldDescriptor* field, ResolveAxisField(path, where));
  const std::vector<std::string> parts = absl::StrSplit(path, '.');
  // Nested block YAML "a:\n  b: VALUE" merged into the root config: the value is checked by
  // the same code that reads config files, so its errors read the same.
  std::string yaml;
  for (size_t i = 1; i < parts.size(); ++i) {
    absl::StrAppend(&yaml, std::string(2 * (i - 1), ' '), parts[i], ":");
    absl::StrAppend(&yaml, i + 1 == parts.size() ? " " + YamlScalar(text, *field) : "", "\n");
  }
  return config::MergeYamlIntoProto(yaml, absl::StrCat(where, " '", path, "'"),
                                    RootMessage(parts[0], point));
}

}  // namespace likeness::coordinator
