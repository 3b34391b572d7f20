// YAML files mapped onto protobuf messages field by field: the train, generate and sweep
// configs users write are the protos in protos/likeness.proto (the single source of truth,
// DESIGN.md), so `likeness train CONFIG.yaml`, `likeness generate --config` and the coordinator's
// jobs share one schema and one validator.
//
// Mapping:
//   * a YAML map is a message; keys are the proto field names (snake_case);
//   * scalars convert by field type: integers must be integral and in range, floats accept
//     YAML numbers (and .inf/.nan), bools accept true/false/yes/no/on/off, enums accept the
//     value name ("TRAIN_METHOD_LORA") or its short form without the enum's prefix, in any case
//     ("lora");
//   * a repeated field takes a sequence, or one scalar/map meaning a list of one;
//   * null (`key:` or `key: ~`) leaves the field unset.
// Every error names the source, line and column, the dotted field path and the offending value:
//   "train.yaml:4:8: field 'lora_rank': 'eight' is not an integer".
#ifndef LIKENESS_COMMON_CONFIG_PROTO_YAML_H_
#define LIKENESS_COMMON_CONFIG_PROTO_YAML_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "google/protobuf/message.h"

namespace likeness::config {

// Merges the YAML document `yaml` into `message` (fields it names are set; others are kept).
// `source` names the text in errors (a file path, "--set").
absl::Status MergeYamlIntoProto(std::string_view yaml, const std::string& source,
                                google::protobuf::Message* message);

// Reads `path` and merges it (NOT_FOUND / INVALID_ARGUMENT naming the file).
absl::Status MergeYamlFileIntoProto(const std::string& path, google::protobuf::Message* message);

// Applies one `--set` override, "dotted.path=value", value read as YAML ("[1, 2]" is a list,
// "a photo" a string). A repeated field is replaced, not appended to.
absl::Status ApplyOverride(const std::string& assignment, google::protobuf::Message* message);
absl::Status ApplyOverrides(const std::vector<std::string>& assignments,
                            google::protobuf::Message* message);

// The message as YAML (fields that are set, in field-number order): what a run writes beside
// its outputs so it can be repeated exactly, and what MergeYamlIntoProto reads back.
std::string ProtoToYaml(const google::protobuf::Message& message);

}  // namespace likeness::config

#endif  // LIKENESS_COMMON_CONFIG_PROTO_YAML_H_
