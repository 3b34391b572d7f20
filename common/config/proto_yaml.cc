#include "common/config/proto_yaml.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <sstream>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "google/protobuf/descriptor.h"

namespace likeness::config {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumDescriptor;
using google::protobuf::EnumValueDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// Where a value came from, for errors: "train.yaml:4:8: field 'lora_rank': ...".
struct Context {
  const std::string& source;
  std::string path;  // dotted field path

  absl::Status Error(const YAML::Node& node, const std::string& what) const {
    std::string where = source;
    if (node.IsDefined() && node.Mark().line >= 0) {
      absl::StrAppend(&where, ":", node.Mark().line + 1, ":", node.Mark().column + 1);
    }
    if (path.empty()) return absl::InvalidArgumentError(absl::StrCat(where, ": ", what));
    return absl::InvalidArgumentError(absl::StrCat(where, ": field '", path, "': ", what));
  }
  Context Child(const std::string& name) const {
    return Context{source, path.empty() ? name : absl::StrCat(path, ".", name)};
  }
};

std::string FieldNames(const Descriptor& descriptor) {
  std::vector<std::string> names;
  for (int i = 0; i < descriptor.field_count(); ++i) names.push_back(descriptor.field(i)->name());
  return absl::StrJoin(names, ", ");
}

// The prefix every value of an enum shares by proto style: TrainMethod -> "TRAIN_METHOD_".
std::string EnumPrefix(const EnumDescriptor& descriptor) {
  std::string prefix;
  for (char c : descriptor.name()) {
    if (absl::ascii_isupper(c) && !prefix.empty()) prefix += '_';
    prefix += absl::ascii_toupper(c);
  }
  return prefix + "_";
}

std::string ShortEnumName(const EnumValueDescriptor& value) {
  std::string name = value.name();
  const std::string prefix = EnumPrefix(*value.type());
  if (absl::StartsWith(name, prefix)) name = name.substr(prefix.size());
  return absl::AsciiStrToLower(name);
}

absl::StatusOr<const EnumValueDescriptor*> ParseEnum(const FieldDescriptor& field,
                                                     const std::string& text,
                                                     const YAML::Node& node, const Context& ctx) {
  const EnumDescriptor& type = *field.enum_type();
  const std::string upper = absl::AsciiStrToUpper(text);
  std::vector<std::string> accepted;
  for (int i = 0; i < type.value_count(); ++i) {
    const EnumValueDescriptor* value = type.value(i);
    if (value->number() == 0) continue;  // *_UNSPECIFIED is never a valid choice
    if (value->name() == upper || value->name() == EnumPrefix(type) + upper) return value;
    accepted.push_back(ShortEnumName(*value));
  }
  return ctx.Error(node, absl::StrCat("'", text, "' is not one of: ", absl::StrJoin(accepted, ", ")));
}

absl::StatusOr<bool> ParseBool(const std::string& text, const YAML::Node& node, const Context& ctx) {
  const std::string lower = absl::AsciiStrToLower(text);
  if (lower == "true" || lower == "yes" || lower == "on") return true;
  if (lower == "false" || lower == "no" || lower == "off") return false;
  return ctx.Error(node, absl::StrCat("'", text, "' is not a boolean (true or false)"));
}

absl::StatusOr<double> ParseDouble(const std::string& text, const YAML::Node& node,
                                   const Context& ctx) {
  const std::string lower = absl::AsciiStrToLower(text);
  if (lower == ".inf" || lower == "+.inf") return std::numeric_limits<double>::infinity();
  if (lower == "-.inf") return -std::numeric_limits<double>::infinity();
  if (lower == ".nan") return std::numeric_limits<double>::quiet_NaN();
  double value = 0;
  if (!absl::SimpleAtod(text, &value) || lower == "inf" || lower == "nan" ||
      absl::StrContains(lower, "infinity")) {
    return ctx.Error(node, absl::StrCat("'", text, "' is not a number"));
  }
  return value;
}

template <typename Int>
absl::StatusOr<Int> ParseInteger(const std::string& text, const YAML::Node& node,
                                 const Context& ctx) {
  int64_t signed_value = 0;
  uint64_t unsigned_value = 0;
  if constexpr (std::is_signed_v<Int>) {
    if (absl::SimpleAtoi(text, &signed_value) &&
        signed_value >= std::numeric_limits<Int>::min() &&
        signed_value <= std::numeric_limits<Int>::max()) {
      return static_cast<Int>(signed_value);
    }
  } else {
    if (!absl::StartsWith(text, "-") && absl::SimpleAtoi(text, &unsigned_value) &&
        unsigned_value <= std::numeric_limits<Int>::max()) {
      return static_cast<Int>(unsigned_value);
    }
  }
  // 1e3 or 1000.0 are integral numbers written as floats; accept them when exact.
  double as_double = 0;
  if (absl::SimpleAtod(text, &as_double) && std::isfinite(as_double) &&
      std::floor(as_double) == as_double &&
      as_double >= static_cast<double>(std::numeric_limits<Int>::min()) &&
      as_double <= static_cast<double>(std::numeric_limits<Int>::max())) {
    return static_cast<Int>(as_double);
  }
  return ctx.Error(node, absl::StrCat("'", text, "' is not an integer in [",
                                      std::numeric_limits<Int>::min(), ", ",
                                      std::numeric_limits<Int>::max(), "]"));
}

absl::Status MergeMap(const YAML::Node& node, const Context& ctx, Message* message);

// Sets (or, for a repeated field, appends) one scalar or message value.
absl::Status SetValue(const FieldDescriptor& field, const YAML::Node& node, const Context& ctx,
                      Message* message) {
  const Reflection& r = *message->GetReflection();
  const bool repeated = field.is_repeated();
  if (field.cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
    if (!node.IsMap()) return ctx.Error(node, "expected a map of the fields of " +
                                                  field.message_type()->name());
    Message* child = repeated ? r.AddMessage(message, &field) : r.MutableMessage(message, &field);
    return MergeMap(node, ctx, child);
  }
  if (!node.IsScalar()) return ctx.Error(node, "expected a single value");
  const std::string& text = node.Scalar();
  switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      repeated ? r.AddString(message, &field, text) : r.SetString(message, &field, text);
      break;
    case FieldDescriptor::CPPTYPE_BOOL: {
      LIKENESS_ASSIGN_OR_RETURN(bool v, ParseBool(text, node, ctx));
      repeated ? r.AddBool(message, &field, v) : r.SetBool(message, &field, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_DOUBLE: {
      LIKENESS_ASSIGN_OR_RETURN(double v, ParseDouble(text, node, ctx));
      repeated ? r.AddDouble(message, &field, v) : r.SetDouble(message, &field, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_FLOAT: {
      LIKENESS_ASSIGN_OR_RETURN(double v, ParseDouble(text, node, ctx));
      const float f = static_cast<float>(v);
      repeated ? r.AddFloat(message, &field, f) : r.SetFloat(message, &field, f);
      break;
    }
    case FieldDescriptor::CPPTYPE_INT32: {
      LIKENESS_ASSIGN_OR_RETURN(int32_t v, ParseInteger<int32_t>(text, node, ctx));
      repeated ? r.AddInt32(message, &field, v) : r.SetInt32(message, &field, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_INT64: {
      LIKENESS_ASSIGN_OR_RETURN(int64_t v, ParseInteger<int64_t>(text, node, ctx));
      repeated ? r.AddInt64(message, &field, v) : r.SetInt64(message, &field, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_UINT32: {
      LIKENESS_ASSIGN_OR_RETURN(uint32_t v, ParseInteger<uint32_t>(text, node, ctx));
      repeated ? r.AddUInt32(message, &field, v) : r.SetUInt32(message, &field, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_UINT64: {
      LIKENESS_ASSIGN_OR_RETURN(uint64_t v, ParseInteger<uint64_t>(text, node, ctx));
      repeated ? r.AddUInt64(message, &field, v) : r.SetUInt64(message, &field, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_ENUM: {
      LIKENESS_ASSIGN_OR_RETURN(const EnumValueDescriptor* v, ParseEnum(field, text, node, ctx));
      repeated ? r.AddEnum(message, &field, v) : r.SetEnum(message, &field, v);
      break;
    }
    default:
      return ctx.Error(node, "unsupported field type");
  }
  return absl::OkStatus();
}

absl::Status SetField(const FieldDescriptor& field, const YAML::Node& node, const Context& ctx,
                      Message* message) {
  if (node.IsNull()) return absl::OkStatus();
  if (!field.is_repeated()) {
    if (node.IsSequence()) return ctx.Error(node, "expected one value, got a list");
    return SetValue(field, node, ctx, message);
  }
  message->GetReflection()->ClearField(message, &field);
  if (!node.IsSequence()) return SetValue(field, node, ctx, message);
  for (size_t i = 0; i < node.size(); ++i) {
    LIKENESS_RETURN_IF_ERROR(
        SetValue(field, node[i], ctx.Child(absl::StrCat("[", i, "]")), message));
  }
  return absl::OkStatus();
}

absl::Status MergeMap(const YAML::Node& node, const Context& ctx, Message* message) {
  if (node.IsNull()) return absl::OkStatus();
  const Descriptor& descriptor = *message->GetDescriptor();
  if (!node.IsMap()) {
    return ctx.Error(node, absl::StrCat("expected a map of the fields of ", descriptor.name()));
  }
  for (const auto& item : node) {
    const std::string key = item.first.as<std::string>();
    const FieldDescriptor* field = descriptor.FindFieldByName(key);
    if (field == nullptr) {
      return ctx.Child(key).Error(item.first, absl::StrCat("unknown field of ", descriptor.name(),
                                                           " (fields: ", FieldNames(descriptor), ")"));
    }
    LIKENESS_RETURN_IF_ERROR(SetField(*field, item.second, ctx.Child(key), message));
  }
  return absl::OkStatus();
}

absl::StatusOr<YAML::Node> ParseYaml(std::string_view yaml, const std::string& source) {
  try {
    return YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ":", e.mark.line + 1, ":",
                                                   e.mark.column + 1, ": invalid YAML: ", e.msg));
  }
}

// Shortest text that reads back as the same double.
std::string DoubleText(double value) {
  if (std::isnan(value)) return ".nan";
  if (std::isinf(value)) return value > 0 ? ".inf" : "-.inf";
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, result.ptr);
}

void EmitScalar(const Message& message, const FieldDescriptor& field, int index,
                YAML::Emitter* out) {
  const Reflection& r = *message.GetReflection();
  const bool rep = field.is_repeated();
  switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      *out << YAML::DoubleQuoted
           << (rep ? r.GetRepeatedString(message, &field, index) : r.GetString(message, &field));
      break;
    case FieldDescriptor::CPPTYPE_BOOL:
      *out << ((rep ? r.GetRepeatedBool(message, &field, index) : r.GetBool(message, &field))
                   ? "true" : "false");
      break;
    case FieldDescriptor::CPPTYPE_DOUBLE:
      *out << DoubleText(rep ? r.GetRepeatedDouble(message, &field, index)
                             : r.GetDouble(message, &field));
      break;
    case FieldDescriptor::CPPTYPE_FLOAT:
      *out << DoubleText(rep ? r.GetRepeatedFloat(message, &field, index)
                             : r.GetFloat(message, &field));
      break;
    case FieldDescriptor::CPPTYPE_INT32:
      *out << (rep ? r.GetRepeatedInt32(message, &field, index) : r.GetInt32(message, &field));
      break;
    case FieldDescriptor::CPPTYPE_INT64:
      *out << (rep ? r.GetRepeatedInt64(message, &field, index) : r.GetInt64(message, &field));
      break;
    case FieldDescriptor::CPPTYPE_UINT32:
      *out << (rep ? r.GetRepeatedUInt32(message, &field, index) : r.GetUInt32(message, &field));
      break;
    case FieldDescriptor::CPPTYPE_UINT64:
      *out << (rep ? r.GetRepeatedUInt64(message, &field, index) : r.GetUInt64(message, &field));
      break;
    case FieldDescriptor::CPPTYPE_ENUM:
      *out << ShortEnumName(
          *(rep ? r.GetRepeatedEnum(message, &field, index) : r.GetEnum(message, &field)));
      break;
    default:
      break;
  }
}

void EmitMessage(const Message& message, YAML::Emitter* out) {
  const Reflection& r = *message.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  r.ListFields(message, &fields);  // set fields, in field-number order
  *out << YAML::BeginMap;
  for (const FieldDescriptor* field : fields) {
    *out << YAML::Key << field->name() << YAML::Value;
    const bool is_message = field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE;
    if (!field->is_repeated()) {
      is_message ? EmitMessage(r.GetMessage(message, field), out) : EmitScalar(message, *field, 0, out);
      continue;
    }
    *out << (is_message ? YAML::Block : YAML::Flow) << YAML::BeginSeq;
    for (int i = 0; i < r.FieldSize(message, field); ++i) {
      is_message ? EmitMessage(r.GetRepeatedMessage(message, field, i), out)
                 : EmitScalar(message, *field, i, out);
    }
    *out << YAML::EndSeq;
  }
  *out << YAML::EndMap;
}

}  // namespace

absl::Status MergeYamlIntoProto(std::string_view yaml, const std::string& source,
                                Message* message) {
  LIKENESS_ASSIGN_OR_RETURN(YAML::Node root, ParseYaml(yaml, source));
  return MergeMap(root, Context{source, ""}, message);
}

absl::Status MergeYamlFileIntoProto(const std::string& path, Message* message) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open the config file"));
  std::stringstream text;
  text << in.rdbuf();
  return MergeYamlIntoProto(text.str(), path, message);
}

absl::Status ApplyOverride(const std::string& assignment, Message* message) {
  const std::string source = absl::StrCat("--set ", assignment);
  const size_t eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": expected FIELD=VALUE, e.g. --set learning_rate=1e-4"));
  }
  const std::vector<std::string> path = absl::StrSplit(assignment.substr(0, eq), '.');
  LIKENESS_ASSIGN_OR_RETURN(YAML::Node value, ParseYaml(assignment.substr(eq + 1), source));
  // Build {a: {b: value}} and merge it, so overrides validate exactly like files.
  YAML::Node root = value;
  for (auto it = path.rbegin(); it != path.rend(); ++it) {
    YAML::Node parent(YAML::NodeType::Map);
    parent[*it] = root;
    root = parent;
  }
  return MergeMap(root, Context{source, ""}, message);
}

absl::Status ApplyOverrides(const std::vector<std::string>& assignments, Message* message) {
  for (const std::string& assignment : assignments) {
    LIKENESS_RETURN_IF_ERROR(ApplyOverride(assignment, message));
  }
  return absl::OkStatus();
}

std::string ProtoToYaml(const Message& message) {
  YAML::Emitter out;
  EmitMessage(message, &out);
  return std::string(out.c_str()) + "\n";
}

}  // namespace likeness::config
